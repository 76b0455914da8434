"""Per-command CPU inside one process, without sockets: where the server's own time goes.

``python -m bench.micro`` parses requests (16 per read, as a P=16 client sends them) with the C parser and the
Python one, runs LPUSH, RPOP, HSET (a new 10-field hash each) and HGET through the dispatcher and the RESP encoder,
and pushes straight into the storage engine (one list, and 10,000 lists picked at random), flushing the journal
every 16 operations as a pipelined batch would. It prints microseconds of process CPU per operation. No fsync is
involved: this is the loop thread's share of a command, the part the throughput rows cannot separate from syscalls
and scheduling.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable

from respq.client import Client
from respq.commands.dispatch import execute
from respq.config import load_config
from respq.log import Logger
from respq.protocol import RequestParser, encode_command, encode_reply
from respq.server import Server
from respq.speedups import parse_multibulk
from respq.storage import Engine
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


def commands(operations: int, directory: str) -> dict[str, float]:
    config = load_config(["--dir", directory, "--loglevel", "warning"])
    server = Server(config, Logger("warning"))
    server._load()
    server.loading = False
    ctx = server.context(Client("127.0.0.1:1", "127.0.0.1:2", authenticated=True))
    engine = server.engine
    assert engine is not None
    results = {
        "LPUSH q <100 B>": cpu_per_op(
            operations, lambda _: encode_reply(execute(ctx, [b"LPUSH", b"q", VALUE]), 2), engine.flush
        ),
        "RPOP q": cpu_per_op(operations, lambda _: encode_reply(execute(ctx, [b"RPOP", b"q"]), 2), engine.flush),
        "HSET h:<new> 10 fields": cpu_per_op(
            operations, lambda n: encode_reply(execute(ctx, [b"HSET", b"h:%d" % n, *HASH_FIELDS]), 2), engine.flush
        ),
        "HGET h:0 field3": cpu_per_op(
            operations, lambda _: encode_reply(execute(ctx, [b"HGET", b"h:0", b"field3"]), 2), engine.flush
        ),
    }
    engine.close()
    return results


def storage(operations: int, directory: str) -> dict[str, float]:
    engine = Engine.open(directory, types=REGISTRY, appendfsync="always", log=lambda _level, _message: None)
    one = engine.create(0, b"q", "list")
    results = {
        "engine push, one list": cpu_per_op(operations, lambda _: one.push(LEFT, [VALUE]), engine.flush),
        "engine pop, one list": cpu_per_op(operations, lambda _: one.pop(RIGHT, 1), engine.flush),
    }
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        results = parsing(args.operations) | commands(args.operations, first) | storage(args.operations, second)
    for name, micros in results.items():
        print(f"{name:32} {micros:6.1f} us CPU per operation")


if __name__ == "__main__":
    main()
