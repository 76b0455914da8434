"""The hash value type in the engine: what a crash, a checkpoint and a full disk leave of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from respq.storage import Engine
from respq.storage.errors import DiskFullError
from respq.types import REGISTRY
from respq.types.hashes.model import HASH, HashValue, new_hash


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "data")


def open_engine(path: str, **options: int) -> Engine:
    return Engine.open(path, types=REGISTRY, databases=2, log=lambda *_: None, **options)  # type: ignore[arg-type]


def crash(engine: Engine, path: str) -> Engine:
    engine.sync(engine.flush())
    engine.abandon()
    return open_engine(path)


def get_hash(engine: Engine, key: bytes) -> HashValue:
    value = engine.get(0, key)
    assert isinstance(value, HashValue)
    return value


def fill(engine: Engine) -> None:
    value = new_hash(engine, 0, b"h", [b"z", b"1", b"y", b"2", b"x", b"3"])
    value.set_many([b"w", b"4", b"y", b"20"])  # y keeps its place
    value.delete_many([b"z", b"nosuch", b"z"])
    value.set_many([b"z", b"5"])  # back at the end
    small = new_hash(engine, 0, b"small", [b"a", b"1"], 2, 3)
    small.set_many([b"b", b"2", b"c", b"3"], 2, 3)  # a third field: a hashtable from now on
    small.delete_many([b"b", b"c"])
    new_hash(engine, 0, b"long", [b"f", b"v" * 65])


def check(engine: Engine) -> None:
    assert list(get_hash(engine, b"h").items()) == [(b"y", b"20"), (b"x", b"3"), (b"w", b"4"), (b"z", b"5")]
    assert get_hash(engine, b"h").encoding() == b"listpack"
    assert list(get_hash(engine, b"small").items()) == [(b"a", b"1")]
    assert get_hash(engine, b"small").encoding() == b"hashtable"  # never back to a listpack
    assert get_hash(engine, b"long").encoding() == b"hashtable"


def test_replay_after_a_crash_keeps_fields_order_and_encoding(data_dir: str) -> None:
    engine = open_engine(data_dir)
    fill(engine)
    engine = crash(engine, data_dir)
    try:
        check(engine)
    finally:
        engine.close()


def test_a_checkpoint_keeps_fields_order_and_encoding(data_dir: str) -> None:
    engine = open_engine(data_dir)
    fill(engine)
    engine.checkpoint()
    engine.close()
    engine = open_engine(data_dir)
    try:
        check(engine)
        engine.checkpoint()  # and the state it loaded dumps back the same
        engine = crash(engine, data_dir)
        check(engine)
    finally:
        engine.close()


def test_unflushed_writes_are_lost_whole(data_dir: str) -> None:
    engine = open_engine(data_dir)
    new_hash(engine, 0, b"h", [b"a", b"1"])
    engine.sync(engine.flush())
    get_hash(engine, b"h").set_many([b"b", b"2"])
    new_hash(engine, 0, b"new", [b"a", b"1", b"b", b"2"])
    engine.abandon()  # nothing of the last two writes was flushed
    engine = open_engine(data_dir)
    try:
        assert list(get_hash(engine, b"h").items()) == [(b"a", b"1")]
        assert engine.get(0, b"new") is None  # never an empty hash
    finally:
        engine.close()


def test_a_new_hash_the_disk_cannot_take_is_refused_whole(data_dir: str) -> None:
    engine = open_engine(data_dir)
    # Room for the key (what creating it checks) but not for its first field.
    engine.maxdisk = int(engine.stats()["disk_bytes"]) + 200
    try:
        with pytest.raises(DiskFullError):
            new_hash(engine, 0, b"h", [b"a", b"x" * 1000])
        assert engine.get(0, b"h") is None
        assert engine.empty_keys(0) == []
    finally:
        engine.close()


def test_a_hashtable_scan_returns_every_field_present_throughout(data_dir: str) -> None:
    engine = open_engine(data_dir)
    try:
        value = new_hash(engine, 0, b"h", [item for i in range(300) for item in (b"f%d" % i, b"v")], 100, 64)
        assert value.encoding() == b"hashtable"
        seen: list[bytes] = []
        cursor, step = 0, 0
        while True:
            cursor, batch = value.scan(cursor, 7)
            seen += batch
            step += 1
            value.set_many([b"new%d" % step, b"v"], 100, 64)  # fields come and go during the walk
            value.delete_many([b"new%d" % (step - 1)])
            if cursor == 0:
                break
        assert {b"f%d" % i for i in range(300)} <= set(seen)
        small = new_hash(engine, 0, b"s", [b"b", b"1", b"a", b"2"])
        assert small.scan(12345, 1) == (0, [b"b", b"a"])  # a listpack answers whole, in order, at once
    finally:
        engine.close()


def test_a_copy_keeps_fields_order_and_encoding_through_a_crash(data_dir: str) -> None:
    engine = open_engine(data_dir)
    source = new_hash(engine, 0, b"src", [b"b", b"1", b"a", b"2"], 1, 64)  # two fields over a limit of one
    with engine.atomic():  # as COPY does it: the key's creation, then the copy under its queue id
        created = engine.create(0, b"dst", "hash")
        engine.catalog[0][b"dst"] = HASH.copy(engine, source, created.qid)
    source.set_many([b"c", b"3"])  # the copy is a copy
    engine = crash(engine, data_dir)
    try:
        copied = get_hash(engine, b"dst")
        assert list(copied.items()) == [(b"b", b"1"), (b"a", b"2")]
        assert copied.encoding() == b"hashtable"
        assert len(get_hash(engine, b"src")) == 3
    finally:
        engine.close()
