"""Push times of list values (format 4): a clock record per journal batch, a time per segment chunk. A list's
oldest push time (the earliest of its chunks') survives settling, checkpoints, cold entries, a clean restart and a
crash's replay; a chunk holds at most CHUNK_SPAN_MS of pushes, so the age follows consumption; memory storage times
its chunks too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from respq.storage import Engine, journal
from respq.storage.memory import MemoryEngine
from respq.types import REGISTRY
from respq.types.lists.model import CHUNK_SPAN_MS, LEFT, RIGHT, ListLog, cold_push_ms, push_keys
from tests.unit.test_storage_engine import durable, open_engine

T0 = 1_800_000_000_000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    now = [T0]
    monkeypatch.setattr(journal, "wall_ms", lambda: now[0])
    yield now


def pushed_ms(engine: Engine | MemoryEngine, key: bytes) -> int:
    value = engine.get(0, key)
    assert isinstance(value, ListLog)
    return value.oldest_push_ms()


def test_a_journal_batch_gets_one_clock_record_at_most_every_mark_interval(tmp_path: Path, clock: list[int]) -> None:
    engine = open_engine(tmp_path)
    queue = engine.create(0, b"q", "list")
    assert isinstance(queue, ListLog)
    queue.push(RIGHT, [b"a"])
    durable(engine)
    clock[0] += journal.CLOCK_MARK_MS // 2
    queue.push(RIGHT, [b"b"])  # a batch within the interval: no clock record of its own
    durable(engine)
    clock[0] += journal.CLOCK_MARK_MS
    queue.push(RIGHT, [b"c"])
    durable(engine)
    assert list(engine.journal.mark_times)[-2:] == [T0, T0 + journal.CLOCK_MARK_MS * 3 // 2]
    assert queue.oldest_push_ms() == T0
    queue.pop(LEFT, 2)
    assert queue.oldest_push_ms() == T0 + journal.CLOCK_MARK_MS * 3 // 2
    engine.close()


@pytest.mark.parametrize("restart", ["clean", "crash"])
def test_push_times_survive_settling_checkpoints_cold_entries_and_restarts(
    tmp_path: Path, clock: list[int], restart: str
) -> None:
    engine = open_engine(tmp_path, segment_size=64 << 10)
    queue = engine.create(0, b"q", "list")
    assert isinstance(queue, ListLog)
    for step in range(30):  # LPUSH one value a second for 30 s: a queue consumed from the right
        queue.push(LEFT, [b"%d" % step + b"v" * 100])
        durable(engine)
        clock[0] += 1000
    push_keys(engine, 0, RIGHT, [(b"idle", [b"one"])])  # a new list of one value: a cold entry at once
    durable(engine)
    assert type(engine.catalog[0][b"idle"]) is bytes
    assert cold_push_ms(engine.catalog[0][b"idle"], engine.journal) == T0 + 30_000
    assert queue.oldest_push_ms() == T0
    engine.checkpoint()  # settled into segment chunks, cut at CHUNK_SPAN_MS of push times
    assert pushed_ms(engine, b"q") == T0
    chunks = queue._chunks
    assert all(chunk.ms and chunk.count <= CHUNK_SPAN_MS // 1000 for chunk in chunks)  # type: ignore[union-attr]
    queue.pop(RIGHT, 12)  # the oldest 12: the age follows, to within a chunk
    assert T0 + 12_000 - CHUNK_SPAN_MS <= pushed_ms(engine, b"q") <= T0 + 12_000
    after_pop = pushed_ms(engine, b"q")
    queue.push(RIGHT, [b"late"])  # a newer value pushed at the consumer's end does not hide the old ones
    durable(engine)
    assert pushed_ms(engine, b"q") == after_pop
    engine.checkpoint()
    engine.checkpoint()  # idle for a whole interval: both lists go cold, their states carry the times
    assert type(engine.catalog[0][b"idle"]) is bytes
    assert cold_push_ms(engine.catalog[0][b"idle"], engine.journal) == T0 + 30_000
    queue.push(LEFT, [b"after the checkpoint"])  # journal-resident again, replayed after a crash
    durable(engine)
    if restart == "clean":
        engine.close()
    else:
        engine.abandon()
    clock[0] += 60_000
    engine = open_engine(tmp_path, segment_size=64 << 10)
    assert pushed_ms(engine, b"q") == after_pop
    assert pushed_ms(engine, b"idle") == T0 + 30_000
    assert len(engine.get(0, b"q").pop(RIGHT, 19)) == 19  # type: ignore[union-attr]
    assert pushed_ms(engine, b"q") == T0 + 30_000  # only the value pushed after the checkpoint is left
    engine.close()


def test_pushes_behind_a_backlog_and_middle_operations_keep_times(
    tmp_path: Path, clock: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from respq.types.lists import model

    monkeypatch.setattr(model, "BACKLOG_VALUES", 3)  # pushes go to segment records at once
    engine = open_engine(tmp_path, segment_size=64 << 10)
    queue = engine.create(0, b"q", "list")
    assert isinstance(queue, ListLog)
    queue.push(RIGHT, [b"a", b"b", b"c"])
    clock[0] += 1000
    queue.push(RIGHT, [b"d"])  # behind the backlog
    clock[0] += CHUNK_SPAN_MS
    queue.push(RIGHT, [b"e"])  # too late to extend the chunk holding d
    durable(engine)
    queue.pop(LEFT, 4)
    assert queue.oldest_push_ms() == T0 + 1000 + CHUNK_SPAN_MS
    queue.push(LEFT, [b"x", b"y", b"z"])
    clock[0] += 1000
    queue.set(1, b"Y")  # LSET settles and splits: the split chunks keep their time
    queue.insert(b"Y", b"new", before=True)
    assert queue.oldest_push_ms() == T0 + 1000 + CHUNK_SPAN_MS  # both ends: e and x are the same age
    engine.close()


def test_memory_storage_times_its_chunks(clock: list[int]) -> None:
    engine = MemoryEngine.open(databases=1, types=REGISTRY)
    queue = engine.create(0, b"q", "list")
    assert isinstance(queue, ListLog)
    for step in range(20):
        queue.push(LEFT, [b"m%d" % step])
        clock[0] += 1000
    assert queue.oldest_push_ms() == T0
    queue.pop(RIGHT, 15)
    assert T0 + 15_000 - CHUNK_SPAN_MS <= queue.oldest_push_ms() <= T0 + 15_000
    assert len(queue._chunks) <= 20_000 // CHUNK_SPAN_MS + 1
