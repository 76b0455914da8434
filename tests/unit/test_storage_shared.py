"""Small lists settled at a checkpoint share segment files: a few files and fsyncs for thousands of lists, each file
kept while any list still holds a chunk of it, and mostly-dead ones emptied into the current one."""

from __future__ import annotations

from pathlib import Path

from respq.storage import Engine
from respq.storage.check import check_directory
from respq.storage.segments import SHARED_QID, queue_dir_name
from respq.types import REGISTRY
from respq.types.lists.model import LEFT, RIGHT
from tests.unit.test_storage_engine import contents, durable, open_engine

VALUE = b"v" * 90


def value(n: int, i: int) -> bytes:
    return b"%04d:%03d:" % (n, i) + VALUE


def expected(n: int, count: int) -> list[bytes]:
    """What list ``n`` holds after ``fill``: odd lists were pushed on the left, newest first."""
    values = [value(n, i) for i in range(count)]
    return values[::-1] if n % 2 else values


def fill(engine: Engine, lists: int, count: int, first: int = 0) -> None:
    for i in range(count):
        for n in range(first, first + lists):
            entry = engine.get(0, b"q%d" % n)
            log = engine.create(0, b"q%d" % n, "list") if entry is None else entry.value
            log.push(LEFT if n % 2 else RIGHT, [value(n, i)])  # type: ignore[union-attr]


def segment_files(path: Path) -> dict[str, int]:
    """Directory name -> segment files in it."""
    return {d.name: len(list(d.glob("*.seg"))) for d in (path / "queues").iterdir() if d.is_dir()}


def shared_dir(path: Path) -> Path:
    return path / "queues" / queue_dir_name(SHARED_QID)


def test_small_lists_settle_into_a_few_shared_files_and_survive_reopen_and_crash(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=64 << 10)
    fill(engine, 500, 10)
    engine.checkpoint()
    files = segment_files(tmp_path)
    assert list(files) == [queue_dir_name(SHARED_QID)]  # no list got a directory or a file of its own
    assert files[queue_dir_name(SHARED_QID)] <= 500 * 10 * 130 // (64 << 10) + 2
    assert check_directory(str(tmp_path), REGISTRY) == []  # chunks are checked in the file that holds them
    fill(engine, 500, 1, first=500)  # journal-resident only: replayed after the crash
    durable(engine)
    engine.abandon()
    for _ in range(2):  # a crash, then a clean close and reopen
        engine = open_engine(tmp_path, segment_size=64 << 10)
        for n in (0, 1, 250, 499):
            assert contents(engine, b"q%d" % n) == expected(n, 10)
        assert contents(engine, b"q999") == [value(999, 0)]
        engine.close()


def test_a_shared_file_is_deleted_once_no_list_holds_a_chunk_of_it(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=16 << 10)
    fill(engine, 200, 5)
    engine.checkpoint()
    first_files = set(shared_dir(tmp_path).glob("*.seg"))
    assert len(first_files) >= 3
    engine.close()
    engine = open_engine(tmp_path, segment_size=16 << 10)  # references rebuilt from the manifest
    for n in range(200):
        log = engine.get(0, b"q%d" % n).value  # type: ignore[union-attr]
        if n % 3 == 0:
            assert engine.delete(0, b"q%d" % n)
        else:
            assert log.pop(LEFT, 2) == expected(n, 5)[:2]  # type: ignore[union-attr]
            assert log.pop(RIGHT, 3) == expected(n, 5)[:1:-1]  # type: ignore[union-attr]
    engine.checkpoint()
    engine.checkpoint()  # dead files go once a durable manifest no longer names them
    assert not first_files & set(shared_dir(tmp_path).glob("*.seg"))
    engine.close()


def test_a_list_left_unconsumed_keeps_its_values_not_the_files_it_shared(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=16 << 10)
    for round_ in range(4):
        fill(engine, 100, 5, first=round_ * 100)
        fill(engine, 1, 5, first=1000) if round_ == 0 else None
        engine.checkpoint()
    stale = expected(1000, 5)
    before = sum(f.stat().st_size for f in shared_dir(tmp_path).glob("*.seg"))
    for n in range(400):  # everyone else is consumed
        assert engine.get(0, b"q%d" % n).value.pop(LEFT, 5)  # type: ignore[union-attr]
        engine.delete(0, b"q%d" % n)
    engine.checkpoint()  # moves the stale list's chunk out of its mostly dead file
    engine.checkpoint()
    after = sum(f.stat().st_size for f in shared_dir(tmp_path).glob("*.seg"))
    assert after < before // 10
    assert contents(engine, b"q1000") == stale
    engine.close()
    engine = open_engine(tmp_path, segment_size=16 << 10)
    assert contents(engine, b"q1000") == stale
    assert engine.get(0, b"q1000").value.pop(RIGHT, 5) == stale[::-1]  # type: ignore[union-attr]
    engine.close()


def test_large_runs_still_go_to_the_lists_own_files(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=1 << 20)
    log = engine.create(0, b"big", "list")
    log.push(RIGHT, [b"%06d" % i + VALUE for i in range(2000)])  # ~200 KiB: more than a shared settle takes
    engine.checkpoint()
    files = segment_files(tmp_path)
    assert queue_dir_name(log.qid) in files
    assert queue_dir_name(SHARED_QID) not in files
    assert log.pop(LEFT, 2000) == [b"%06d" % i + VALUE for i in range(2000)]
    engine.close()
