"""MULTI/EXEC is all-or-nothing across a power cut that tears the journal's tail.

A transaction writing keys of every type runs through the command handlers over an engine on ``SimFS``; everything
it wrote, journal and stream segment alike, is then made durable. The journal is cut at every byte offset from where
the transaction's records start to where they end (and, at some offsets, a garbage tail is left past the cut, as a
disk may): after recovery every key holds what it held before EXEC, or what it held after it, and nothing between.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from respq.blocking import BlockingRegistry
from respq.commands.context import Context
from respq.commands.dispatch import execute
from respq.commands.modules import load_all
from respq.config import load_config
from respq.keyspace import Keyspace
from respq.protocol import encode_reply
from respq.pubsub import PubSub
from respq.replies import ErrorReply
from respq.stats import Stats
from respq.storage import Engine
from respq.types import REGISTRY
from tests.crash.simfs import SimFS
from tests.unit.contexts import StubControl, new_client

DATA = "/disk/respq"
JOURNAL = DATA + "/journal"
DATABASES = 3

# Acknowledged before the transaction: every key the transaction changes holds something first.
BEFORE = [
    ["RPUSH", "q", "a", "b", "c"],
    ["RPUSH", "moved", "x"],
    ["HSET", "h", "f", "1", "g", "2"],
    ["SET", "s", "old"],
    ["XADD", "x", "1-1", "f", "v"],
    ["XGROUP", "CREATE", "x", "g", "0"],
    ["SADD", "set", "m0", "1"],
    ["ZADD", "z", "1", "a", "2", "b"],
    ["SET", "gone", "soon"],
    ["SELECT", "1"],
    ["SET", "in1", "one"],
    ["SELECT", "0"],
]
# The transaction: several keys of each type, keys created, replaced, deleted and moved between databases, a script
# (its own atomic block, nested), blocking commands, and a command that fails (it changes nothing, the rest still
# runs).
TRANSACTION = [
    ["RPUSH", "q", "d", "e"],
    ["LPOP", "q"],
    ["LMOVE", "q", "moved", "LEFT", "RIGHT"],
    ["LPUSH", "newlist", "n1", "n2"],
    ["HSET", "h", "f", "10", "k", "3"],
    ["HDEL", "h", "g"],
    ["SET", "s", "new", "PXAT", "4000000000000"],
    ["APPEND", "s2", "appended"],
    ["INCR", "counter"],
    ["INCR", "h"],  # WRONGTYPE
    ["XADD", "x", "2-1", "f", "w"],
    ["XADD", "x", "3-1", "f", "y"],
    ["XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "x", ">"],
    ["SADD", "set", "m1", "m2"],
    ["SREM", "set", "1"],
    ["ZADD", "z", "3", "c"],
    ["ZINCRBY", "z", "5", "a"],
    ["MSET", "m1", "v1", "m2", "v2"],
    ["DEL", "gone"],
    ["RENAME", "m1", "renamed"],
    ["COPY", "q", "qcopy"],
    ["EVAL", "redis.call('set', KEYS[1], 'lua'); return redis.call('rpush', KEYS[2], 'l')", "2", "fromlua", "q"],
    ["SWAPDB", "1", "2"],
    ["MOVE", "m2", "1"],
    # Blocking commands, which scripts may not run: inside EXEC they answer at once
    ["BLPOP", "q", "0"],
    ["BLMOVE", "moved", "newlist", "RIGHT", "LEFT", "0"],
    ["BZPOPMIN", "z", "0"],
    ["XREADGROUP", "GROUP", "g", "c2", "BLOCK", "0", "STREAMS", "x", ">"],
    ["BRPOP", "empty", "0"],
]


def _context(engine: Engine) -> Context:
    config = load_config(["--dir", DATA, "--loglevel", "warning", "--databases", str(DATABASES)])
    stats, blocking, client = Stats(), BlockingRegistry(), new_client()
    return Context(
        client,
        keyspace=Keyspace(engine, databases=DATABASES, stats=stats, blocking=blocking),
        engine=engine,
        blocking=blocking,
        pubsub=PubSub(),
        stats=stats,
        config=config,
        clients={client.id: client},
        server=StubControl(),  # type: ignore[arg-type]
    )


def _open(fs: SimFS) -> Engine:
    return Engine.open(
        DATA, types=REGISTRY, io=fs, databases=DATABASES, segment_size=4096, log=lambda _level, _message: None
    )


def _run(ctx: Context, command: list[str]) -> Any:
    return execute(ctx, [part.encode() for part in command])


def _acknowledge(engine: Engine) -> None:
    engine.sync(engine.flush())


def _state(ctx: Context) -> dict[tuple[int, bytes], Any]:
    """Every key of every database, read back through the commands: type, contents, expiry."""
    state: dict[tuple[int, bytes], Any] = {}
    for db in range(DATABASES):
        _run(ctx, ["SELECT", str(db)])
        for key in sorted(_run(ctx, ["KEYS", "*"])):
            name = key.decode()
            kind = _run(ctx, ["TYPE", name]).text
            reads = {
                b"list": [["LRANGE", name, "0", "-1"]],
                b"hash": [["HGETALL", name]],
                b"string": [["GET", name]],
                b"set": [["SMEMBERS", name]],
                b"zset": [["ZRANGE", name, "0", "-1", "WITHSCORES"]],
                b"stream": [["XRANGE", name, "-", "+"], ["XPENDING", name, "g"], ["XINFO", "GROUPS", name]],
            }[kind]
            contents = [encode_reply(_run(ctx, read), 2) for read in reads]
            if kind in (b"hash", b"set"):  # no order to compare
                contents = [sorted(contents[0].split(b"\r\n"))]
            state[db, key] = (kind, contents, _run(ctx, ["PEXPIRETIME", name]))
    _run(ctx, ["SELECT", "0"])
    return state


def _journal_files(fs: SimFS) -> dict[str, bytes]:
    return {name: fs.read_file(f"{JOURNAL}/{name}") for name in fs.listdir(JOURNAL) if name.endswith(".wal")}


@pytest.mark.timeout(300)
def test_a_transaction_torn_anywhere_in_the_journal_is_kept_whole_or_not_at_all() -> None:
    load_all()
    fs = SimFS()
    fs.make_durable_dir(DATA)
    engine = _open(fs)
    ctx = _context(engine)
    for command in BEFORE:
        assert not isinstance(_run(ctx, command), ErrorReply), command
    _acknowledge(engine)
    before = _state(ctx)
    journals = _journal_files(fs)
    _run(ctx, ["MULTI"])
    for command in TRANSACTION:
        _run(ctx, command)
    replies = _run(ctx, ["EXEC"])
    assert isinstance(replies, list) and len(replies) == len(TRANSACTION)
    assert [i for i, reply in enumerate(replies) if isinstance(reply, ErrorReply)] == [9]  # INCR h only
    _acknowledge(engine)  # the stream's segment and the journal both durable: only the cut below takes anything
    after = _state(ctx)
    assert after != before
    changed = {name: data for name, data in _journal_files(fs).items() if journals.get(name) != data}
    assert len(changed) == 1, "the transaction's records are in one journal file"
    [(name, data)] = changed.items()
    start = len(journals.get(name, b""))
    assert data.startswith(journals.get(name, b"")) and len(data) > start
    engine.abandon()
    fs.power_cut()  # nothing is lost: everything was synced
    rng = random.Random(1)
    kept = torn = 0
    for cut in range(start, len(data) + 1):
        tails = [b""]
        if cut % 7 == 0 and cut < len(data):  # junk past the cut: random bytes, or zeros
            tails += [rng.randbytes(rng.randint(1, 64)), bytes(rng.randint(1, 64))]
        for tail in tails:
            trial = copy.deepcopy(fs)
            trial.write_file(f"{JOURNAL}/{name}", data[:cut] + tail)
            recovered = _open(trial)
            try:
                state = _state(_context(recovered))
            finally:
                recovered.abandon()
            if state == after:
                kept += 1
            elif state == before:
                torn += 1
            else:
                diff = {k: (before.get(k), state.get(k), after.get(k)) for k in before.keys() | state.keys()}
                diff = {k: v for k, v in diff.items() if not (v[1] == v[0] or v[1] == v[2])}
                raise AssertionError(f"cut at {cut - start} of {len(data) - start} bytes kept part of EXEC: {diff}")
            # Junk that happens to restore the cut bytes (zeros where the record's last length byte was) makes it whole.
            whole = (data[:cut] + tail).startswith(data)
            assert (state == after) == whole, f"cut at {cut - start}: kept whole only when it reached the disk whole"
    assert kept >= 1 and torn >= len(data) - start
