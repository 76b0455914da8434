"""Per-command CPU inside one process, without sockets: where the server's own time goes.

``python -m bench.micro`` parses requests (16 per read, as a P=16 client sends them) with the C parser and the
Python one, runs LPUSH, RPOP, SET (one key, and 10,000 keys picked at random), GET and MGET of 10 keys (SET and GET
also as the runs of 16 a pipelining client's reads make), HSET (a new 10-field hash each), HGET and XADD (alone,
trimming with `MAXLEN ~`, and as a pipelined run of 16 calls), EVALSHA of the bench's small script (INCR + LPUSH)
and a transaction (MULTI, three pushes, EXEC: that row is per transaction) through the dispatcher and the RESP
encoder, and pushes and stream adds straight into the storage engine (one list, and 10,000 lists picked at random),
flushing the journal every 16 operations as a pipelined batch would. It prints microseconds of process CPU per
operation. No fsync is involved: this is the loop thread's share of a command, the part the throughput rows cannot
separate from syscalls and scheduling. ``--storage memory`` runs the same against the memory store
(storage/memory.py). ``--cluster`` runs the commands with cluster-enabled yes, this node owning every slot: the
routing check's cost.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable

from bench.workloads import SCRIPT, SCRIPT_SHA
from respq.blocking import Waiter
from respq.client import Client
from respq.commands.context import Context
from respq.commands.dispatch import blocked, execute, execute_run, unblocked
from respq.config import load_config
from respq.log import Logger
from respq.protocol import RequestParser, encode_command, encode_replies, encode_reply
from respq.server import Server
from respq.speedups import parse_multibulk
from respq.storage import Engine
from respq.storage.memory import MemoryEngine
from respq.types import REGISTRY
from respq.types.lists.model import LEFT, RIGHT

VALUE = b"x" * 100
HASH_FIELDS = [item for i in range(10) for item in (b"field%d" % i, b"value-%04d" % i)]
FLUSH_EVERY = 16


def cpu_per_op(operations: int, step: Callable[[int], object], flush: Callable[[], object]) -> float:
    started = time.process_time()
    for n in range(operations):
        step(n)
        if n % FLUSH_EVERY == FLUSH_EVERY - 1:
            flush()
    return (time.process_time() - started) / operations * 1e6


def parsing(operations: int) -> dict[str, float]:
    results = {}
    for name, command in (("LPUSH q <100 B>", [b"LPUSH", b"q", VALUE]), ("RPOP q", [b"RPOP", b"q"])):
        read = encode_command(command) * FLUSH_EVERY
        for parser_name, accelerated in (("C", True), ("Python", False)):
            if accelerated and parse_multibulk is None:
                continue
            parser = RequestParser(speedups=accelerated)

            def parse_read(_: int, parser: RequestParser = parser, read: bytes = read) -> None:
                parser.feed(read)
                parser.parse()

            per_read = cpu_per_op(operations // FLUSH_EVERY, parse_read, lambda: None)
            results[f"parse {name}, {parser_name}"] = per_read / FLUSH_EVERY
    return results


def commands(operations: int, directory: str, storage_mode: str = "disk", cluster: bool = False) -> dict[str, float]:
    extra = ["--cluster-enabled", "yes"] if cluster else []
    config = load_config(["--dir", directory, "--loglevel", "warning", "--storage", storage_mode, *extra])
    server = Server(config, Logger("warning"))
    server._load()
    server.loading = False
    ctx = server.context(Client("127.0.0.1:1", "127.0.0.1:2", authenticated=True))
    if cluster:  # this node owns every slot: what the routing check costs a command it lets through
        node = b"0" * 40
        execute(ctx, [b"CLUSTERX", b"SETNODEID", node])
        execute(ctx, [b"CLUSTERX", b"SETNODES", node + b" 127.0.0.1 6379 master - 0-16383", b"1"])
    engine = server.engine
    assert engine is not None
    keys = [b"k:%d" % random.Random(n).randrange(10_000) for n in range(10_000)]
    execute(ctx, [b"SCRIPT", b"LOAD", SCRIPT])
    evalsha = [b"EVALSHA", SCRIPT_SHA, b"2", b"c", b"q2", VALUE]
    results = {
        "LPUSH q <100 B>": cpu_per_op(
            operations, lambda _: encode_reply(execute(ctx, [b"LPUSH", b"q", VALUE]), 2), engine.flush
        ),
        "RPOP q": cpu_per_op(operations, lambda _: encode_reply(execute(ctx, [b"RPOP", b"q"]), 2), engine.flush),
        "SET k <100 B>": cpu_per_op(
            operations, lambda _: encode_reply(execute(ctx, [b"SET", b"k", VALUE]), 2), engine.flush
        ),
        "GET k": cpu_per_op(operations, lambda _: encode_reply(execute(ctx, [b"GET", b"k"]), 2), engine.flush),
        "SET k:<10k random> <100 B>": cpu_per_op(
            operations, lambda n: encode_reply(execute(ctx, [b"SET", keys[n % len(keys)], VALUE]), 2), engine.flush
        ),
        "MGET of 10 keys": cpu_per_op(
            operations, lambda _: encode_reply(execute(ctx, [b"MGET", *keys[:10]]), 2), engine.flush
        ),
        "HSET h:<new> 10 fields": cpu_per_op(
            operations, lambda n: encode_reply(execute(ctx, [b"HSET", b"h:%d" % n, *HASH_FIELDS]), 2), engine.flush
        ),
        "HGET h:0 field3": cpu_per_op(
            operations, lambda _: encode_reply(execute(ctx, [b"HGET", b"h:0", b"field3"]), 2), engine.flush
        ),
        "XADD s * f <100 B>": cpu_per_op(
            operations, lambda _: encode_reply(execute(ctx, [b"XADD", b"s", b"*", b"f", VALUE]), 2), engine.flush
        ),
        "ZADD z <score> <new member>": cpu_per_op(
            operations, lambda n: encode_reply(execute(ctx, [b"ZADD", b"z", b"%d" % (n * 7919 % 100_003),
                                                             b"member:%d" % n]), 2), engine.flush
        ),
        "ZRANGEBYSCORE z -inf now LIMIT 0 10": cpu_per_op(
            operations,
            lambda _: encode_reply(execute(ctx, [b"ZRANGEBYSCORE", b"z", b"-inf", b"50000", b"LIMIT", b"0", b"10"]), 2),
            engine.flush,
        ),
        "ZPOPMIN z": cpu_per_op(operations, lambda _: encode_reply(execute(ctx, [b"ZPOPMIN", b"z"]), 2), engine.flush),
        "EVALSHA (INCR c, LPUSH q2 <100 B>)": cpu_per_op(
            operations, lambda _: encode_reply(execute(ctx, evalsha), 2), engine.flush
        ),
        "XADD t MAXLEN ~ 1000 * f <100 B>": cpu_per_op(
            operations,
            lambda _: encode_reply(execute(ctx, [b"XADD", b"t", b"MAXLEN", b"~", b"1000", b"*", b"f", VALUE]), 2),
            engine.flush,
        ),
    }
    transaction = [[b"MULTI"], [b"LPUSH", b"q3", VALUE], [b"LPUSH", b"q3", VALUE], [b"RPUSH", b"q4", VALUE], [b"EXEC"]]

    def multi_exec(_: int) -> None:  # the five commands of one transaction, each reply encoded as a connection does
        for argv in transaction:
            encode_reply(execute(ctx, argv), 2)

    results["MULTI, 3 pushes <100 B>, EXEC"] = cpu_per_op(operations // 4, multi_exec, engine.flush)
    results["BLPOP bq 0 blocked, served by RPUSH bq <100 B>"] = cpu_per_op(
        operations, _blocked_pop_served(server, ctx), engine.flush
    )
    runs = (
        ("SET k <100 B>", [b"SET", b"k", VALUE]),
        ("GET k", [b"GET", b"k"]),
        ("HGET h:0 field3", [b"HGET", b"h:0", b"field3"]),
        ("ZRANGEBYSCORE z -inf now LIMIT 0 10", [b"ZRANGEBYSCORE", b"z", b"-inf", b"50000", b"LIMIT", b"0", b"10"]),
    )
    for name, argv in runs:
        batch = [argv] * FLUSH_EVERY  # a P=16 client's read: one run of the command
        results[f"{name}, runs of 16"] = cpu_per_op(
            operations // FLUSH_EVERY,
            lambda _, batch=batch: encode_replies(execute_run(ctx, batch, 0), 2),  # type: ignore[misc]
            engine.flush,
        ) / FLUSH_EVERY
    run = [[b"XADD", b"u", b"*", b"f", VALUE]] * FLUSH_EVERY

    def xadd_run(_: int) -> None:  # one pipelined read of 16 calls, then the flush of its pass
        encode_replies(execute_run(ctx, run, 0), 2)
        engine.flush()

    runs = operations // FLUSH_EVERY
    results["XADD u * f <100 B>, runs of 16"] = cpu_per_op(runs, xadd_run, lambda: None) / FLUSH_EVERY
    engine.close()
    return results


def _blocked_pop_served(server: Server, producer: Context) -> Callable[[int], object]:
    """One cycle of the blocking path without sockets: a BLPOP blocks, an RPUSH serves it, as a connection does."""
    ctx = server.context(Client("127.0.0.1:3", "127.0.0.1:2", authenticated=True))
    blpop = [b"BLPOP", b"bq", b"0"]
    push = [b"RPUSH", b"bq", VALUE]

    def cycle(_: int) -> None:
        block = execute(ctx, blpop)
        blocked(ctx, block)
        waiter = Waiter(ctx.client.id, ctx.client.db, block)
        server.blocking.add(waiter)
        encode_reply(execute(producer, push), 2)
        server.blocking.serve_ready()
        unblocked(ctx, blpop, block)
        encode_reply(waiter.reply, 2)

    return cycle


def storage(operations: int, directory: str, storage_mode: str = "disk") -> dict[str, float]:
    engine: Engine | MemoryEngine
    if storage_mode == "memory":
        engine = MemoryEngine.open(types=REGISTRY)
    else:
        engine = Engine.open(directory, types=REGISTRY, appendfsync="always", log=lambda _level, _message: None)
    one = engine.create(0, b"q", "list")
    results = {
        "engine push, one list": cpu_per_op(operations, lambda _: one.push(LEFT, [VALUE]), engine.flush),
        "engine pop, one list": cpu_per_op(operations, lambda _: one.pop(RIGHT, 1), engine.flush),
    }
    stream = engine.create(0, b"s", "stream")
    fields = [b"f", VALUE]
    results["engine add, one stream"] = cpu_per_op(
        operations,
        lambda n: stream.add((n + 1) << 64, fields),  # type: ignore[attr-defined]
        engine.flush,
    )
    lists = [engine.create(0, b"q%d" % n, "list") for n in range(10_000)]
    pick = random.Random(1).randrange
    results["engine push, 10k random lists"] = cpu_per_op(
        operations, lambda _: lists[pick(len(lists))].push(LEFT, [VALUE]), engine.flush
    )
    engine.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=100_000)
    parser.add_argument("--storage", choices=("disk", "memory"), default="disk", help="the storage directive")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="cluster-enabled yes, owning every slot (rows naming keys of several slots answer CROSSSLOT then)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        results = (
            parsing(args.operations)
            | commands(args.operations, first, args.storage, args.cluster)
            | storage(args.operations, second, args.storage)
        )
    for name, micros in results.items():
        print(f"{name:32} {micros:6.1f} us CPU per operation")


if __name__ == "__main__":
    main()
