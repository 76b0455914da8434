"""Engine.copy (COPY) of lists and streams: the copy equals its source, survives clean and crash restarts, a torn
journal loses all of it or none, and a copy that fails half-way leaves everything as it was."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from respq.storage import DiskFullError, Engine
from respq.storage.check import check_directory
from respq.types import REGISTRY
from respq.types.lists.model import LEFT, RIGHT, ListLog
from respq.types.streams.model import MAX_ID, MAXLEN, StreamLog, id_of


def _open(path: Path, **options: Any) -> Engine:
    options.setdefault("segment_size", 4096)
    return Engine.open(str(path), types=REGISTRY, log=lambda *_: None, **options)


def durable(engine: Engine) -> None:
    engine.sync(engine.flush())


def list_state(engine: Engine, db: int, key: bytes) -> Any:
    entry = engine.get(db, key)
    if entry is None:
        return None
    assert isinstance(entry, ListLog)
    return ("list", entry.expire_ms, list(entry))


def stream_state(engine: Engine, db: int, key: bytes) -> Any:
    """Everything a stream holds that a client can observe, node layout included."""
    entry = engine.get(db, key)
    if entry is None:
        return None
    assert isinstance(entry, StreamLog)
    groups = []
    for group in entry.groups.values():
        consumers = []
        for consumer in group.consumers.values():
            pending = [(p.id, p.delivered, p.count) for p in group.iter_pending(consumer=consumer)]
            consumers.append((consumer.name, consumer.seen, pending))
        groups.append((group.name, group.last_id, group.entries_read, consumers))
    nodes = [(node[3], node[2] - node[1] > 0) for node in entry.nodes()]
    totals = entry.node_ids()  # the layout Redis copies
    return (
        "stream",
        entry.expire_ms,
        entry.range(0, MAX_ID),
        (entry.length, entry.last_id, entry.first_id, entry.max_deleted_id, entry.entries_added),
        nodes,
        totals,
        groups,
    )


def state(engine: Engine, db: int, key: bytes) -> Any:
    found = engine.peek(db, key)
    if found is None:
        return None
    return list_state(engine, db, key) if found[0] == "list" else stream_state(engine, db, key)


def _big_list(engine: Engine, key: bytes = b"src") -> ListLog:
    """A list holding values in segments (settled by a checkpoint), a shared file and the journal."""
    log = engine.create(0, key, "list")
    log.push(RIGHT, [b"seg-%d" % i + b"x" * (i % 50) for i in range(600)])
    engine.checkpoint()
    log.push(LEFT, [b"head-%d" % i for i in range(5)])
    log.push(RIGHT, [b"tail-%d" % i for i in range(700)])
    log.pop(LEFT, 2)
    return log  # type: ignore[return-value]


def _busy_stream(engine: Engine, key: bytes = b"src") -> StreamLog:
    """A stream with several nodes, a trimmed first node, deleted entries, groups, consumers and pending entries."""
    stream: StreamLog = engine.create(0, key, "stream")  # type: ignore[assignment]
    for i in range(1, 260):
        fields = [b"f", b"%d" % i] if i % 7 else [b"other", b"v" * (i % 30), b"g", b"h"]
        stream.add(id_of(i // 3 + 1, i % 3), fields)
    stream.trim(MAXLEN, 230, False, 0)  # exact: the first node keeps a tail of its entries
    stream.delete([id_of(40, 0), id_of(41, 1), id_of(80, 2)])
    group = stream.set_group(b"g1", id_of(60, 0), 150)
    alice, _ = stream.create_consumer(group, b"alice", 1_700_000_000_123)
    bob, _ = stream.create_consumer(group, b"bob", 1_700_000_000_456)
    stream.set_pending(group, alice, [(id_of(50, 1), 1_700_000_000_001, 3), (id_of(55, 2), 1_700_000_000_002, 1)])
    stream.set_pending(group, bob, [(id_of(58, 0), 1_700_000_000_003, 7)])
    stream.set_group(b"g2", MAX_ID >> 1, -1)
    return stream


def test_a_list_copy_equals_its_source_and_survives_restarts(tmp_path: Path) -> None:
    engine = _open(tmp_path)
    source = _big_list(engine)
    engine.set_expire(0, b"src", 4_000_000_000_000)
    engine.create(1, b"dst", "stream")
    copied = engine.copy(0, b"src", 1, b"dst", replace=True)
    assert list(copied) == list(source) and copied.expire_ms == 4_000_000_000_000
    copied.push(RIGHT, [b"only in the copy"])
    source.pop(RIGHT, 3)
    expected = {(0, b"src"): state(engine, 0, b"src"), (1, b"dst"): state(engine, 1, b"dst")}
    durable(engine)
    engine.abandon()
    engine = _open(tmp_path)
    assert {slot: state(engine, *slot) for slot in expected} == expected
    engine.close()
    engine = _open(tmp_path)
    assert {slot: state(engine, *slot) for slot in expected} == expected
    engine.close()
    assert check_directory(str(tmp_path), REGISTRY) == []


def test_a_cold_list_is_copied(tmp_path: Path) -> None:
    engine = _open(tmp_path)
    engine.create(0, b"idle", "list").push(RIGHT, [b"one"])
    engine.checkpoint()
    engine.checkpoint()  # unused since the last one: kept cold
    assert type(engine.catalog[0][b"idle"]) is bytes
    assert list(engine.copy(0, b"idle", 0, b"copy")) == [b"one"]
    durable(engine)
    engine.abandon()
    engine = _open(tmp_path)
    assert list_state(engine, 0, b"copy") == ("list", None, [b"one"])
    engine.close()


def test_a_stream_copy_has_its_sources_entries_layout_and_groups(tmp_path: Path) -> None:
    engine = _open(tmp_path)
    _busy_stream(engine)
    expected = stream_state(engine, 0, b"src")
    copied = engine.copy(0, b"src", 0, b"dst")
    assert stream_state(engine, 0, b"dst") == expected
    # Independent from here on: the copy's first node fills up to 100 entries as the source's would.
    copied.add(id_of(1000, 0), [b"f", b"new"])
    assert stream_state(engine, 0, b"src") == expected
    wanted = {b"src": stream_state(engine, 0, b"src"), b"dst": stream_state(engine, 0, b"dst")}
    durable(engine)
    engine.abandon()
    engine = _open(tmp_path)
    assert {key: stream_state(engine, 0, key) for key in wanted} == wanted
    engine.checkpoint()
    engine.close()
    engine = _open(tmp_path)
    assert {key: stream_state(engine, 0, key) for key in wanted} == wanted
    engine.close()
    assert check_directory(str(tmp_path), REGISTRY) == []


def test_an_empty_stream_copy_keeps_its_counters(tmp_path: Path) -> None:
    engine = _open(tmp_path)
    stream: StreamLog = engine.create(0, b"src", "stream")  # type: ignore[assignment]
    stream.add(id_of(5, 5), [b"a", b"1"])
    stream.delete([id_of(5, 5)])
    stream.set_id(id_of(7, 7), 3, id_of(6, 0))
    stream.set_group(b"g", 0, 0)
    expected = stream_state(engine, 0, b"src")
    engine.copy(0, b"src", 2, b"dst")
    assert stream_state(engine, 2, b"dst") == expected
    durable(engine)
    engine.abandon()
    engine = _open(tmp_path)
    assert stream_state(engine, 2, b"dst") == expected
    engine.close()


@pytest.mark.parametrize("kind", ["list", "stream"])
def test_a_torn_copy_is_lost_whole(tmp_path: Path, kind: str) -> None:
    """The copy, the old destination's deletion and the expiry are one batch record: cut anywhere, recovery
    finds the old destination intact or the whole copy."""
    base = tmp_path / "base"
    engine = _open(base)
    if kind == "list":
        _big_list(engine)
    else:
        _busy_stream(engine)
    engine.create(0, b"dst", "list").push(RIGHT, [b"old"])
    engine.set_expire(0, b"src", 4_000_000_000_000)
    durable(engine)
    before = state(engine, 0, b"dst")
    wal = max((base / "journal").glob("*.wal"))
    start = wal.stat().st_size
    engine.copy(0, b"src", 0, b"dst", replace=True)
    after = state(engine, 0, b"dst")
    durable(engine)
    engine.abandon()
    end = wal.stat().st_size
    assert end > start
    cuts = sorted({start, start + 1, start + 9, (start + end) // 2, end - 5, end - 1, end})
    for cut in cuts:
        trial = tmp_path / f"cut-{cut}"
        shutil.copytree(base, trial)
        with open(trial / "journal" / wal.name, "r+b") as f:
            f.truncate(cut)
        engine = _open(trial)
        assert state(engine, 0, b"dst") == (after if cut == end else before), cut
        engine.close()
        assert check_directory(str(trial), REGISTRY) == []


@pytest.mark.parametrize("kind", ["list", "stream"])
def test_a_copy_that_fails_half_way_changes_nothing(tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _open(tmp_path)
    if kind == "list":
        _big_list(engine)
        target, method = ListLog, "push"
    else:
        _busy_stream(engine)
        target, method = StreamLog, "_append_node"
    engine.create(0, b"dst", "list").push(RIGHT, [b"old"])
    other: ListLog = engine.create(0, b"other", "list")  # type: ignore[assignment]
    before = {key: state(engine, 0, key) for key in (b"src", b"dst", b"other")}
    real = getattr(target, method)
    calls = 0

    def failing(self: Any, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2 and self.qid != other.qid:
            raise DiskFullError("disk full half-way through the copy")
        return real(self, *args)

    monkeypatch.setattr(target, method, failing)
    with pytest.raises(DiskFullError):
        engine.copy(0, b"src", 0, b"dst", replace=True)
    monkeypatch.setattr(target, method, real)
    assert {key: state(engine, 0, key) for key in before} == before
    other.push(RIGHT, [b"after"])  # the journal goes on as if the copy never began
    before[b"other"] = state(engine, 0, b"other")
    durable(engine)
    engine.abandon()
    engine = _open(tmp_path)
    assert {key: state(engine, 0, key) for key in before} == before
    copied = engine.copy(0, b"src", 0, b"dst", replace=True)
    assert state(engine, 0, b"dst")[2] == before[b"src"][2] and copied.expire_ms is None
    engine.close()
    assert check_directory(str(tmp_path), REGISTRY) == []


def test_copy_refuses_a_missing_source_an_existing_destination_and_itself(tmp_path: Path) -> None:
    engine = _open(tmp_path)
    engine.create(0, b"a", "list").push(RIGHT, [b"1"])
    engine.create(0, b"b", "list").push(RIGHT, [b"2"])
    with pytest.raises(KeyError):
        engine.copy(0, b"missing", 0, b"c")
    with pytest.raises(KeyError):
        engine.copy(0, b"a", 0, b"b")
    with pytest.raises(KeyError):
        engine.copy(0, b"a", 0, b"a", replace=True)
    assert list_state(engine, 0, b"b") == ("list", None, [b"2"])
    engine.close()


def test_strings_and_hashes_are_copied_with_their_encodings(tmp_path: Path) -> None:
    engine = _open(tmp_path)
    with engine.atomic():
        engine.create(0, b"int", "string").set(b"123")  # type: ignore[attr-defined]
    with engine.atomic():
        grown = engine.create(0, b"raw", "string")
        grown.set(b"ab")  # type: ignore[attr-defined]
        grown.append(b"cd")  # type: ignore[attr-defined]
    with engine.atomic():
        small = engine.create(0, b"small", "hash")
        small.set_many([b"a", b"1", b"b", b"2"])  # type: ignore[attr-defined]
    with engine.atomic():
        big = engine.create(0, b"big", "hash")
        big.set_many([b"f", b"v" * 100, b"g", b"1"])  # type: ignore[attr-defined]
    for key in (b"int", b"raw", b"small", b"big"):
        engine.copy(0, key, 1, key)

    def described(db: int, key: bytes) -> Any:
        value = engine.get(db, key)
        assert value is not None
        contents = value.data if value.type == "string" else list(value.items())  # type: ignore[attr-defined]
        return value.type, value.encoding(), contents

    expected = {key: described(0, key) for key in (b"int", b"raw", b"small", b"big")}
    assert {key: described(1, key) for key in expected} == expected
    assert expected[b"raw"][1] == b"raw" and expected[b"big"][1] == b"hashtable"
    durable(engine)
    engine.abandon()
    engine = _open(tmp_path)
    assert {key: described(1, key) for key in expected} == expected
    engine.close()
