"""List snapshots (streamed LRANGE replies): the values as they were when taken, whatever happens to the list after."""

from __future__ import annotations

import os
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import pytest

from respq.storage import Engine
from respq.types.lists.model import LEFT, RIGHT, ListLog
from tests.unit.test_storage_engine import journals, open_engine

SEGMENT_SIZE = 4096  # many small files, so a range spans several chunks and files


def value(tag: str, i: int) -> bytes:
    return b"%s-%05d-" % (tag.encode(), i) + b"x" * (i % 37)


def mixed_list(engine: Engine, key: bytes = b"q") -> tuple[ListLog, list[bytes]]:
    """A list whose middle is segment chunks (forward and backward) and whose two ends are journal runs, the
    outermost values of each still in the journal's unwritten buffer."""
    log = engine.create(0, key, "list")
    model: list[bytes] = []
    for i in range(300):
        log.push(RIGHT, [value("r", i)])
        model.append(value("r", i))
        log.push(LEFT, [value("l", i)])
        model.insert(0, value("l", i))
    engine.checkpoint()  # settles everything into segment chunks of both directions
    for i in range(300, 500):
        log.push(RIGHT, [value("r", i)])
        model.append(value("r", i))
        log.push(LEFT, [value("l", i)])
        model.insert(0, value("l", i))
    engine.flush()  # in the journal file
    for i in range(500, 520):
        log.push(RIGHT, [value("r", i)])
        model.append(value("r", i))
        log.push(LEFT, [value("l", i)])
        model.insert(0, value("l", i))  # still in the journal's buffer
    assert list(log.range(0, -1)) == model
    return log, model


def expected_range(model: list[bytes], start: int, stop: int) -> list[bytes]:
    length = len(model)
    start = max(0, start + length) if start < 0 else start
    stop = stop + length if stop < 0 else stop
    return model[start : stop + 1]


def pop_all(log: ListLog) -> None:
    while len(log):
        log.pop(LEFT, 100)


Mutation = Callable[[Engine, ListLog], None]

MUTATIONS: dict[str, Mutation] = {
    "pop both ends": lambda engine, log: (log.pop(LEFT, 250), log.pop(RIGHT, 250)),
    "push both ends": lambda engine, log: (log.push(LEFT, [b"new-left"] * 50), log.push(RIGHT, [b"new-right"] * 50)),
    "lset": lambda engine, log: [log.set(i, b"changed") for i in range(0, len(log), 97)],
    "linsert": lambda engine, log: [log.insert(value("r", i), b"inserted", True) for i in range(0, 520, 61)],
    "lrem": lambda engine, log: log.remove(0, value("l", 310)) + log.remove(0, value("r", 10)),
    "ltrim": lambda engine, log: log.trim(400, 500),
    "del": lambda engine, log: engine.delete(0, b"q"),
    "flushall": lambda engine, log: engine.flushall(),
    "pop all and checkpoint": lambda engine, log: (pop_all(log), engine.checkpoint(), engine.checkpoint()),
    "settle and checkpoint": lambda engine, log: (engine.checkpoint(), log.pop(LEFT, 600), engine.checkpoint()),
    "del and checkpoint": lambda engine, log: (engine.delete(0, b"q"), engine.checkpoint(), engine.checkpoint()),
}
RANGES = [(0, -1), (7, -8), (-700, 1400), (150, 650), (520, 1020)]


@pytest.mark.parametrize("mutation", list(MUTATIONS))
@pytest.mark.parametrize(("start", "stop"), RANGES)
def test_a_snapshot_keeps_the_values_it_was_taken_with(tmp_path: Path, mutation: str, start: int, stop: int) -> None:
    engine = open_engine(tmp_path, segment_size=SEGMENT_SIZE)
    log, model = mixed_list(engine)
    expected = expected_range(model, start, stop)
    with log.snapshot(start, stop) as snapshot:
        assert len(snapshot) == len(expected)
        values = iter(snapshot)
        head = list(islice(values, 40))  # a reply is read while the list changes
        MUTATIONS[mutation](engine, log)
        assert head + list(values) == expected
    engine.close()


def test_snapshots_of_every_range_shape(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=SEGMENT_SIZE)
    log, model = mixed_list(engine)
    length = len(model)
    for start, stop in [(0, 0), (length - 1, -1), (3, 2), (length, length + 5), (-5, -1), (0, 10**9), (-(10**9), 3)]:
        with log.snapshot(start, stop) as snapshot:
            assert list(snapshot) == expected_range(model, start, stop) == list(log.range(start, stop))
    for start in range(0, length, 53):
        with log.snapshot(start, start + 211) as snapshot:
            assert list(snapshot) == model[start : start + 212]
    engine.close()


def seg_files(path: Path) -> set[Path]:
    return set((path / "queues").rglob("*.seg"))


def test_checkpoints_keep_the_files_an_open_snapshot_reads_and_delete_them_once_it_closes(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=SEGMENT_SIZE)
    log, model = mixed_list(engine)
    before_segments, before_journals = seg_files(tmp_path), set(journals(tmp_path))
    snapshot = log.snapshot(0, -1)
    pop_all(log)
    engine.delete(0, b"q")
    engine.checkpoint()
    engine.checkpoint()
    # The list is gone and two checkpoints retired its files, but the snapshot still reads them.
    assert before_segments <= seg_files(tmp_path)
    assert before_journals <= set(journals(tmp_path))
    assert engine.stats()["segments"] >= len(before_segments)
    assert not engine.checkpoint_due()  # pinned dead files do not make checkpoints run back to back
    assert list(snapshot) == model
    snapshot.close()
    snapshot.close()  # idempotent
    engine.checkpoint()
    assert seg_files(tmp_path) == set()
    assert not before_journals & set(journals(tmp_path))
    assert not os.listdir(tmp_path / "queues")  # the emptied queue directory went too
    assert engine.stats()["segments"] == 0
    engine.close()


def test_a_file_shared_by_two_snapshots_stays_until_both_close(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=SEGMENT_SIZE)
    log, model = mixed_list(engine)
    first, second = log.snapshot(0, -1), log.snapshot(100, 900)
    files = seg_files(tmp_path)
    engine.delete(0, b"q")
    engine.checkpoint()
    first.close()
    engine.checkpoint()
    assert files & seg_files(tmp_path)  # what the second one reads is still there
    assert list(second) == model[100:901]
    second.close()
    engine.checkpoint()
    assert seg_files(tmp_path) == set()
    engine.close()


def test_files_left_by_a_snapshot_open_at_shutdown_are_deleted_by_recovery(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=SEGMENT_SIZE)
    log, _ = mixed_list(engine)
    snapshot = log.snapshot(0, -1)
    old_journals = set(journals(tmp_path))
    engine.delete(0, b"q")
    engine.close()  # checkpoints with the snapshot's files still pinned
    assert seg_files(tmp_path) and old_journals & set(journals(tmp_path))
    snapshot.close()
    engine = open_engine(tmp_path, segment_size=SEGMENT_SIZE)
    assert seg_files(tmp_path) == set()
    assert not old_journals & set(journals(tmp_path))
    assert engine.get(0, b"q") is None
    engine.close()


def test_a_closed_snapshot_refuses_to_read(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=SEGMENT_SIZE)
    log, _ = mixed_list(engine)
    snapshot = log.snapshot(0, -1)
    values = iter(snapshot)
    next(values)
    snapshot.close()
    with pytest.raises(ValueError):
        list(values)
    engine.close()


def test_a_snapshot_spanning_journal_files_replayed_after_a_crash(tmp_path: Path) -> None:
    """Until the first checkpoint after a crash, replayed pushes live in the replayed journal files; a snapshot
    taken then reads them from there (and from the new file for later pushes) even when that checkpoint retires
    the replayed files before the snapshot is read."""
    engine = open_engine(tmp_path, segment_size=SEGMENT_SIZE)
    log, model = mixed_list(engine)
    engine.sync(engine.flush())
    engine.abandon()
    engine = open_engine(tmp_path, segment_size=SEGMENT_SIZE)
    replayed = journals(tmp_path)[:-1]
    assert replayed  # the replayed file stays until the next checkpoint
    entry = engine.get(0, b"q")
    assert entry is not None
    log = entry.value  # type: ignore[assignment]
    for i in range(20):
        log.push(RIGHT, [value("after", i)])
        model.append(value("after", i))
    engine.flush()
    snapshot = log.snapshot(0, -1)
    pop_all(log)
    engine.checkpoint()
    engine.checkpoint()
    assert list(snapshot) == model
    snapshot.close()
    engine.checkpoint()
    assert not set(replayed) & set(journals(tmp_path))
    engine.close()


def test_the_checkpoint_worker_deletes_the_journal_files_it_replaces_but_pinned_ones(tmp_path: Path) -> None:
    """Once its manifest is durable, the checkpoint's worker-thread step deletes the journal files the checkpoint
    replaces (freeing a 64 MiB file's blocks took the loop thread's finishing step 25-40 ms); a file an open
    snapshot reads stays until the first checkpoint after the snapshot closes."""
    engine = open_engine(tmp_path, segment_size=SEGMENT_SIZE)
    log, model = mixed_list(engine)
    engine.flush()
    pinned = set(journals(tmp_path))
    snapshot = log.snapshot(0, -1)  # its ends are read from the journal file
    engine.checkpoint()
    for i in range(10):
        log.push(RIGHT, [value("later", i)])
    engine.flush()
    replaced = set(journals(tmp_path)) - pinned
    assert replaced
    cp = engine.begin_checkpoint()
    engine.run_checkpoint(cp)
    newest = set(journals(tmp_path)) - pinned
    assert not replaced & newest and len(newest) == 1  # gone before finish_checkpoint
    assert pinned <= set(journals(tmp_path))
    engine.finish_checkpoint(cp)
    assert list(snapshot) == model
    snapshot.close()
    engine.checkpoint()
    assert len(journals(tmp_path)) == 1 and not pinned & set(journals(tmp_path))
    engine.close()
