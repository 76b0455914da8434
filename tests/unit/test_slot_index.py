"""Cluster mode's per-slot key index follows every way a key appears or goes, in both storage engines: after any
sequence of writes, deletes, renames, moves, copies, flushes, expiries, restores and restarts it equals a scan."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from respq.client import Client
from respq.cluster import key_slot
from respq.cluster.slotindex import SMALL, SlotIndex
from respq.commands.dispatch import execute
from respq.config import load_config
from respq.log import Logger
from respq.server import Server

# Keys of a few slots, two sharing one through a hash tag, so that a slot's set fills and empties.
_KEYS = st.sampled_from([b"a", b"b", b"{a}x", b"q"])
_VALUE = st.sampled_from([b"1", b"22"])
_CALLS = st.lists(
    st.one_of(
        st.tuples(st.just(b"RPUSH"), _KEYS, _VALUE).map(list),
        st.tuples(st.just(b"LPOP"), _KEYS).map(list),  # the last element deletes the list
        st.tuples(st.just(b"SET"), _KEYS, _VALUE).map(list),  # a type overwrite
        st.tuples(st.just(b"XADD"), _KEYS, st.just(b"*"), st.just(b"f"), _VALUE).map(list),
        st.tuples(st.just(b"DEL"), _KEYS).map(list),
        st.tuples(st.just(b"UNLINK"), _KEYS, _KEYS).map(list),
        st.tuples(st.just(b"RENAME"), _KEYS, _KEYS).map(list),
        st.tuples(st.just(b"COPY"), _KEYS, _KEYS, st.just(b"REPLACE")).map(list),
        st.tuples(st.just(b"COPY"), _KEYS, _KEYS, st.just(b"DB"), st.sampled_from([b"0", b"1"])).map(list),
        st.tuples(st.just(b"MOVE"), _KEYS, st.sampled_from([b"0", b"1"])).map(list),
        st.tuples(st.just(b"SWAPDB"), st.just(b"0"), st.just(b"1")).map(list),
        st.tuples(st.just(b"PEXPIREAT"), _KEYS, st.just(b"1")).map(list),  # in the past: deleted at once
        st.tuples(st.just(b"PEXPIRE"), _KEYS, st.just(b"1")).map(list),  # gone at a later lookup or sweep
        st.tuples(st.just(b"EXISTS"), _KEYS).map(list),
        st.tuples(st.just(b"RESTORE"), _KEYS, _KEYS).map(list),  # DUMP of the first, RESTORE REPLACE as the second
        st.tuples(st.just(b"SELECT"), st.sampled_from([b"0", b"1"])).map(list),  # MOVE and COPY DB 0 from db 1
        st.tuples(st.just(b"MOVEIN"), _KEYS).map(list),  # MOVE from database 1 into 0
        st.just([b"FLUSHDB"]),
        st.just([b"FLUSHALL"]),
        st.just([b"SWEEP"]),  # active expiry
        st.just([b"RESTART"]),
    ),
    max_size=30,
)


def _start(directory: Path, storage: str) -> tuple[Server, object]:
    config = load_config(["--dir", str(directory), "--loglevel", "warning", "--storage", storage])
    server = Server(config, Logger("warning"))
    server._load()
    server.loading = False
    return server, server.context(Client("127.0.0.1:1", "127.0.0.1:2", authenticated=True))


def _scan(server: Server) -> dict[int, set[bytes]]:
    found: dict[int, set[bytes]] = {}
    for key in server.engine.keys(0):
        found.setdefault(key_slot(key), set()).add(key)
    return found


@pytest.mark.parametrize("storage", ["disk", "memory"])
@settings(max_examples=150, deadline=None)
@given(calls=_CALLS)
def test_the_slot_index_equals_a_scan_after_any_sequence(tmp_path_factory, calls, storage) -> None:  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("slots")
    server, ctx = _start(directory, storage)
    for argv in (
        [b"RPUSH", b"a", b"1"],
        [b"SET", b"{a}x", b"1"],
        [b"XADD", b"q", b"*", b"f", b"1"],
        [b"SELECT", b"1"],
        [b"RPUSH", b"b", b"1"],  # in database 1, that MOVE or SWAPDB bring into 0
        [b"SELECT", b"0"],
    ):
        execute(ctx, argv)  # keys present from the start (the index reads them), that renames and copies find
    index = SlotIndex(server.engine)
    try:
        for argv in calls:
            if argv == [b"RESTART"]:
                if storage == "disk":  # a store in memory starts empty: nothing to recover
                    server.engine.close()
                    server, ctx = _start(directory, storage)
                    index = SlotIndex(server.engine)
            elif argv == [b"SWEEP"]:
                server.keyspace.expire_some()
            elif argv[0] == b"MOVEIN":
                db = str(ctx.client.db).encode()
                execute(ctx, [b"SELECT", b"1"])
                execute(ctx, [b"MOVE", argv[1], b"0"])
                execute(ctx, [b"SELECT", db])
            elif argv[0] == b"RESTORE":
                payload = execute(ctx, [b"DUMP", argv[1]])
                if payload is not None:
                    execute(ctx, [b"RESTORE", argv[2], b"0", payload, b"REPLACE"])
            else:
                execute(ctx, argv)
            assert index.snapshot() == _scan(server), argv
            assert all(index.count(slot) == len(keys) for slot, keys in _scan(server).items())
    finally:
        server.engine.close()


class _Keys:
    key_listener: object = None

    def keys(self, db: int) -> list[bytes]:
        return []


def test_a_slot_holding_many_keys_grows_into_a_set_and_back() -> None:
    index = SlotIndex(_Keys())
    keys = [b"{t}%d" % n for n in range(SMALL * 3)]
    for key in keys:
        index.key_added(0, key)
        index.key_added(0, key)  # told twice (RENAME over it): still one key
    slot = key_slot(b"t")
    assert index.count(slot) == len(keys) and sorted(index.keys(slot)) == sorted(keys)
    assert index.keys_of([slot, 0]) == set(keys)
    for done, key in enumerate(keys, 1):
        index.key_removed(0, key)
        index.key_removed(0, key)
        assert index.count(slot) == len(keys) - done
        assert set(index.keys(slot)) == set(keys[done:])
    assert index.snapshot() == {}
