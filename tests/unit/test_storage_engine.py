"""Engine behaviour: recovery, torn tails, corruption, checkpoints, disk space, failures and limits."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from respq.storage import (
    CorruptionError,
    DirectoryLockedError,
    DiskFullError,
    Engine,
    FormatError,
    StorageWriteError,
    framing,
)
from respq.storage.check import check_directory
from respq.storage.fileio import FileIO
from respq.types import REGISTRY
from respq.types.lists.model import LEFT, RIGHT


class Logs:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, level: str, message: str) -> None:
        self.lines.append((level, message))


def open_engine(path: Path, **options) -> Engine:  # type: ignore[no-untyped-def]
    options.setdefault("log", Logs())
    return Engine.open(str(path), types=REGISTRY, **options)


def journals(path: Path) -> list[Path]:
    return sorted((path / "journal").glob("*.wal"))


def segment_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in (path / "queues").rglob("*.seg"))


def durable(engine: Engine) -> None:
    engine.sync(engine.flush())


def contents(engine: Engine, key: bytes, db: int = 0) -> list[bytes] | None:
    entry = engine.get(db, key)
    return None if entry is None else list(entry.value.range(0, -1))


def test_push_pop_both_ends_and_reopen(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    log = engine.create(0, b"q", "list")
    assert log.push(RIGHT, [b"1", b"2"]) == 2
    assert log.push(LEFT, [b"0", b"-1"]) == 4
    assert list(log.range(0, -1)) == [b"-1", b"0", b"1", b"2"]
    assert log.pop(RIGHT, 1) == [b"2"]
    assert log.pop(LEFT, 10) == [b"-1", b"0", b"1"]
    assert len(log) == 0 and log.pop(LEFT, 1) == []
    log.push(RIGHT, [b"kept"])
    engine.set_expire(0, b"q", 1_900_000_000_000)
    engine.close()
    engine = open_engine(tmp_path)
    entry = engine.get(0, b"q")
    assert entry is not None and entry.type == "list" and entry.expire_ms == 1_900_000_000_000
    assert contents(engine, b"q") == [b"kept"]
    engine.close()


def test_flushed_and_synced_writes_survive_a_crash_unflushed_do_not(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=4096)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"v%d" % i for i in range(1000)])
    assert log.pop(LEFT, 10) == [b"v%d" % i for i in range(10)]
    durable(engine)
    log.push(RIGHT, [b"lost"])  # never flushed
    engine.abandon()
    engine = open_engine(tmp_path, segment_size=4096)
    assert contents(engine, b"q") == [b"v%d" % i for i in range(10, 1000)]
    engine.close()


def test_crash_during_a_checkpoint_recovers_from_the_previous_one(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=4096)
    log = engine.create(0, b"q", "list")
    log.push(LEFT, [b"a%d" % i for i in range(300)])
    durable(engine)
    cp = engine.begin_checkpoint()
    log.pop(RIGHT, 100)
    log.push(RIGHT, [b"after"])
    durable(engine)
    engine.run_checkpoint(cp)  # manifest written, but finish never runs: old journal and dead files remain
    log.pop(RIGHT, 1)
    durable(engine)
    engine.abandon()
    engine = open_engine(tmp_path, segment_size=4096)
    assert contents(engine, b"q") == [b"a%d" % i for i in range(299, 99, -1)]
    engine.close()


def test_torn_journal_tail_is_cut_and_logged(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"first"])
    durable(engine)
    log.push(RIGHT, [b"second" * 10])
    engine.flush()
    engine.abandon()
    (wal,) = journals(tmp_path)
    os.truncate(wal, wal.stat().st_size - 7)
    logs = Logs()
    engine = open_engine(tmp_path, log=logs)
    assert contents(engine, b"q") == [b"first"]
    torn = [m for level, m in logs.lines if level == "warning"]
    assert len(torn) == 1 and "torn tail" in torn[0] and str(wal) in torn[0]
    push_record = framing.frame(20, bytes(9 + 4 + 60))  # queue id + side, value length, the value
    assert f"of {len(push_record) - 7} bytes" in torn[0]
    engine.close()


def test_atomic_block_is_one_record_lost_or_kept_whole(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    src, dst = engine.create(0, b"src", "list"), engine.create(0, b"dst", "list")
    src.push(RIGHT, [b"job1", b"job2"])
    dst.push(RIGHT, [b"done0"])
    durable(engine)
    with engine.atomic():
        (value,) = src.pop(LEFT, 1)
        dst.push(RIGHT, [value])
    engine.flush()
    engine.abandon()
    (wal,) = journals(tmp_path)
    os.truncate(wal, wal.stat().st_size - 1)  # tear the last record: the whole move must vanish
    engine = open_engine(tmp_path)
    assert contents(engine, b"src") == [b"job1", b"job2"]
    assert contents(engine, b"dst") == [b"done0"]
    engine.close()


def _corrupt(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))


def test_corruption_in_the_middle_of_the_journal_is_refused(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    log = engine.create(0, b"q", "list")
    for i in range(20):
        log.push(RIGHT, [b"value %d" % i])
        engine.flush()
    engine.abandon()
    (wal,) = journals(tmp_path)
    _corrupt(wal, wal.stat().st_size // 2)
    assert any(str(wal) in problem for problem in check_directory(str(tmp_path), REGISTRY))
    with pytest.raises(CorruptionError) as caught:
        open_engine(tmp_path)
    assert caught.value.path == str(wal) and 0 < caught.value.offset < wal.stat().st_size // 2 + 1
    assert str(wal) in str(caught.value)


def test_corruption_in_an_older_journal_is_refused(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"x" * 100, b"y" * 100])
    engine.flush()
    engine.begin_checkpoint()  # rotates; the crash comes before the manifest is written
    log.push(RIGHT, [b"z"])
    engine.flush()
    engine.abandon()
    older, _newer = journals(tmp_path)
    _corrupt(older, older.stat().st_size - 20)  # even at its end: only the last file may have a torn tail
    with pytest.raises(CorruptionError) as caught:
        open_engine(tmp_path)
    assert caught.value.path == str(older)
    assert any(str(older) in problem for problem in check_directory(str(tmp_path), REGISTRY))


def test_corrupt_segment_is_reported_by_check_and_on_read(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"%05d" % i for i in range(100)])
    engine.close()
    assert check_directory(str(tmp_path), REGISTRY) == []
    (segment,) = (tmp_path / "queues").rglob("*.seg")
    _corrupt(segment, segment.stat().st_size - 30)
    problems = check_directory(str(tmp_path), REGISTRY)
    assert problems and str(segment) in problems[0]
    engine = open_engine(tmp_path)  # a checkpointed segment is not rescanned at startup...
    with pytest.raises(CorruptionError) as caught:  # ...but its damage is never served
        engine.get(0, b"q").value.pop(RIGHT, 3)  # type: ignore[union-attr]
    assert caught.value.path == str(segment)
    engine.close()


def test_corrupt_manifest_is_refused(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    engine.create(0, b"q", "list").push(RIGHT, [b"v"])
    engine.close()
    _corrupt(tmp_path / "MANIFEST", 20)
    with pytest.raises(CorruptionError):
        open_engine(tmp_path)
    assert check_directory(str(tmp_path), REGISTRY)


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    open_engine(tmp_path).close()
    manifest = tmp_path / "MANIFEST"
    data = bytearray(manifest.read_bytes())
    data[6:8] = (framing.FORMAT_VERSION + 1).to_bytes(2, "little")
    manifest.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="newer"):
        open_engine(tmp_path)


def test_second_open_of_the_same_directory_is_refused(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    with pytest.raises(DirectoryLockedError):
        open_engine(tmp_path)
    engine.close()
    open_engine(tmp_path).close()


def test_segments_are_deleted_once_consumed(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=8192)
    log = engine.create(0, b"q", "list")
    for i in range(2000):
        log.push(LEFT, [b"m%06d" % i])
    durable(engine)
    engine.checkpoint()
    full = segment_bytes(tmp_path)
    assert full > 2000 * 10 and len(list((tmp_path / "queues").rglob("*.seg"))) > 3
    for i in range(1900):
        assert log.pop(RIGHT, 1) == [b"m%06d" % i]
    engine.checkpoint()
    assert segment_bytes(tmp_path) < full // 4
    log.pop(RIGHT, 100)
    engine.delete(0, b"q")
    engine.checkpoint()
    assert segment_bytes(tmp_path) == 0 and list((tmp_path / "queues").iterdir()) == []
    engine.close()


def test_del_and_flushall_give_space_back_after_a_checkpoint(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=8192, databases=4)
    for db in range(4):
        for k in range(5):
            engine.create(db, b"k%d" % k, "list").push(RIGHT, [b"x" * 100] * 200)
    engine.checkpoint()
    full = segment_bytes(tmp_path)
    assert engine.delete(0, b"k0") and not engine.delete(0, b"k0")
    assert segment_bytes(tmp_path) == full  # still needed by the durable manifest
    assert engine.checkpoint_due() is False or engine.stats()["disk_bytes"] > 0
    engine.checkpoint()
    assert segment_bytes(tmp_path) < full
    engine.flushall()
    engine.checkpoint()
    assert segment_bytes(tmp_path) == 0 and engine.dbsize(1) == 0
    engine.close()
    engine = open_engine(tmp_path, databases=4)
    assert all(engine.dbsize(db) == 0 for db in range(4))
    engine.close()


def test_checkpoint_due_after_enough_journal(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, checkpoint_bytes=10_000)
    log = engine.create(0, b"q", "list")
    assert not engine.checkpoint_due()
    log.push(RIGHT, [b"x" * 1000] * 11)
    engine.flush()
    assert engine.checkpoint_due()
    cp = engine.begin_checkpoint()
    assert not engine.checkpoint_due()
    worker = threading.Thread(target=engine.run_checkpoint, args=(cp,))
    worker.start()
    log.push(RIGHT, [b"during"])  # the loop keeps going while the worker syncs
    worker.join(30)
    engine.finish_checkpoint(cp)
    assert not engine.checkpoint_due() and len(journals(tmp_path)) == 1
    stats = engine.stats()
    assert stats["last_checkpoint_time"] > 0 and stats["policy"] == "always"
    engine.close()


def test_rename_move_swapdb_survive_replay(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    engine.create(0, b"a", "list").push(RIGHT, [b"1"])
    engine.create(0, b"b", "list").push(RIGHT, [b"2"])
    engine.rename(0, b"a", b"b")  # overwrites b
    assert engine.move(0, 1, b"b") and not engine.move(0, 1, b"missing")
    engine.swapdb(0, 1)
    engine.set_expire(0, b"b", 123)
    durable(engine)
    engine.abandon()
    engine = open_engine(tmp_path)
    assert list(engine.keys(0)) == [b"b"] and engine.dbsize(1) == 0
    assert contents(engine, b"b") == [b"1"] and engine.get(0, b"b").expire_ms == 123  # type: ignore[union-attr]
    engine.close()


class FaultyIO(FileIO):
    def __init__(self) -> None:
        self.fail_sync = False
        self.disk_full = False
        self.syncing = 0
        self.max_syncing = 0
        self.counter_lock = threading.Lock()

    def fdatasync(self, fd: int) -> None:
        if self.fail_sync:
            raise OSError(errno.EIO, "I/O error")
        with self.counter_lock:
            self.syncing += 1
            self.max_syncing = max(self.max_syncing, self.syncing)
        try:
            super().fdatasync(fd)
        finally:
            with self.counter_lock:
                self.syncing -= 1

    def pwrite(self, fd: int, data: bytes | memoryview, offset: int) -> None:
        if self.disk_full and len(data) > 30:
            super().pwrite(fd, bytes(data)[: len(data) // 2], offset)  # part of it lands, as with a real ENOSPC
            raise OSError(errno.ENOSPC, "No space left on device")
        super().pwrite(fd, data, offset)


def test_failed_fsync_disables_writes_until_restart(tmp_path: Path) -> None:
    io = FaultyIO()
    engine = open_engine(tmp_path, io=io)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"a"])
    durable(engine)
    log.push(RIGHT, [b"b"])
    io.fail_sync = True
    with pytest.raises(StorageWriteError):
        engine.sync(engine.flush())
    io.fail_sync = False
    assert engine.write_error and engine.stats()["last_write_status"] == engine.write_error
    with pytest.raises(StorageWriteError):
        log.push(RIGHT, [b"c"])
    with pytest.raises(StorageWriteError):
        engine.delete(0, b"q")
    assert list(log.range(0, -1)) == [b"a", b"b"]  # reads still work
    engine.close()
    engine = open_engine(tmp_path)
    assert contents(engine, b"q") == [b"a", b"b"]  # b reached the page cache: a process restart keeps it
    assert engine.stats()["last_write_status"] == "ok"
    engine.close()


def test_disk_full_while_copying_into_segments_changes_nothing(tmp_path: Path) -> None:
    """Pushes are written to the journal only; the copy into segment files (before a checkpoint, or for a middle
    operation) is where a full disk meets the segments."""
    io = FaultyIO()
    engine = open_engine(tmp_path, io=io)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"a"])
    engine.checkpoint()
    log.push(RIGHT, [b"x" * 100, b"y" * 100])
    durable(engine)
    before = segment_bytes(tmp_path)
    io.disk_full = True
    with pytest.raises(DiskFullError):
        engine.checkpoint()
    with pytest.raises(DiskFullError):
        log.set(1, b"z" * 100)
    assert segment_bytes(tmp_path) == before
    assert list(log.range(0, -1)) == [b"a", b"x" * 100, b"y" * 100]
    io.disk_full = False
    engine.checkpoint()
    assert segment_bytes(tmp_path) > before
    log.push(RIGHT, [b"b"])
    durable(engine)
    engine.abandon()
    engine = open_engine(tmp_path)
    assert contents(engine, b"q") == [b"a", b"x" * 100, b"y" * 100, b"b"]
    engine.close()


def test_disk_full_on_journal_flush_blocks_then_resumes(tmp_path: Path) -> None:
    io = FaultyIO()
    engine = open_engine(tmp_path, io=io)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"a" * 10] * 3)
    io.disk_full = True
    with pytest.raises(DiskFullError):
        engine.flush()
    with pytest.raises(DiskFullError):
        log.push(RIGHT, [b"refused"])
    io.disk_full = False
    durable(engine)  # the retry writes the kept buffer
    log.push(RIGHT, [b"b"])
    durable(engine)
    engine.abandon()
    engine = open_engine(tmp_path)
    assert contents(engine, b"q") == [b"a" * 10] * 3 + [b"b"]
    engine.close()


def test_maxdisk_refuses_growth_but_allows_pops(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, maxdisk=200_000)
    log = engine.create(0, b"q", "list")
    with pytest.raises(DiskFullError):
        for _ in range(1000):
            log.push(RIGHT, [b"x" * 1000])
    assert engine.stats()["disk_bytes"] <= 200_000
    assert len(log.pop(LEFT, 5)) == 5
    engine.close()


def test_one_sync_in_flight_and_writers_share_it(tmp_path: Path) -> None:
    io = FaultyIO()
    engine = open_engine(tmp_path, io=io)
    log = engine.create(0, b"q", "list")
    syncs_before = engine.stats()["syncs_total"]
    lsns = []
    for i in range(40):
        log.push(RIGHT, [b"%d" % i])
        lsns.append(engine.flush())
    threads = [threading.Thread(target=engine.sync, args=(lsn,)) for lsn in lsns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert engine.durable_lsn() >= lsns[-1]
    assert io.max_syncing == 1
    assert engine.stats()["syncs_total"] - syncs_before <= len(lsns)  # type: ignore[operator]
    engine.close()


def test_replay_reproduces_every_operation(tmp_path: Path) -> None:
    """Thousands of random operations, no checkpoint, then a crash: replay must rebuild the same lists."""
    import random

    rng = random.Random(7)
    engine = open_engine(tmp_path, segment_size=4096, checkpoint_bytes=1 << 30)
    keys = [b"a", b"b", b"c"]
    for key in keys:
        engine.create(0, key, "list").push(RIGHT, [b"seed"])
    for step in range(3000):
        log = engine.get(0, rng.choice(keys)).value  # type: ignore[union-attr]
        value = b"%d" % rng.randrange(20)
        action = rng.randrange(9)
        if action < 3:
            log.push(rng.choice([LEFT, RIGHT]), [value] * rng.randint(1, 3))
        elif action == 3 and len(log) > 1:
            log.pop(rng.choice([LEFT, RIGHT]), rng.randint(1, 2))
        elif action == 4:
            log.set(rng.randrange(-len(log), len(log)), value + b"!")
        elif action == 5:
            log.insert(value, b"ins%d" % step, rng.random() < 0.5)
        elif action == 6 and len(log) > 5:
            log.remove(rng.randint(-2, 2), value)
        elif action == 7 and len(log) > 30:
            log.trim(rng.randint(0, 3), rng.randint(-4, -1))
        elif action == 8:
            with engine.atomic():
                src, dst = rng.sample(keys, 2)
                moved = engine.get(0, src).value.pop(LEFT, 1)  # type: ignore[union-attr]
                engine.get(0, dst).value.push(RIGHT, moved)  # type: ignore[union-attr]
                if not len(engine.get(0, src).value):  # type: ignore[union-attr]
                    engine.get(0, src).value.push(RIGHT, [b"refill"])  # type: ignore[union-attr]
    live = {key: contents(engine, key) for key in keys}
    durable(engine)
    engine.abandon()
    engine = open_engine(tmp_path, segment_size=4096)
    assert {key: contents(engine, key) for key in keys} == live
    engine.close()


def test_server_metadata_survives_replay_and_checkpoints_apart_from_keys(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    engine.set_metadata({b"functions": b"code v1", b"other": b"x"})
    engine.set_metadata({b"other": None})
    durable(engine)
    engine.close()
    engine = open_engine(tmp_path)  # from the journal
    assert engine.metadata == {b"functions": b"code v1"}
    engine.flushall()  # keys only
    engine.checkpoint()
    engine.set_metadata({b"functions": b"code v2"})
    durable(engine)
    engine.abandon()  # as a crash: the checkpoint's manifest, then the journal after it
    engine = open_engine(tmp_path)
    assert engine.metadata == {b"functions": b"code v2"}
    engine.checkpoint()
    engine.close()
    engine = open_engine(tmp_path)  # from the manifest alone
    assert engine.metadata == {b"functions": b"code v2"}
    engine.set_metadata({b"functions": None})
    engine.checkpoint()
    engine.close()
    assert open_engine(tmp_path).metadata == {}
