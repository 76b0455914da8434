"""Injected I/O faults through the storage seam: EIO, ENOSPC and a flipped byte, then the power goes out."""

from __future__ import annotations

import errno
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import start_respq
from respq.storage import CorruptionError, DiskFullError, Engine, StorageReadError, StorageWriteError
from respq.storage.check import check_directory
from respq.storage.framing import HEAD_SIZE, OVERHEAD, SEGMENT_HEADER
from respq.types import REGISTRY
from respq.types.lists import model as listlog
from respq.types.lists.model import LEFT, RIGHT
from respq.types.streams.model import MAX_ID, id_of
from tests.crash.pipeline import Pipeline
from tests.crash.simfs import SimFS

DATA = "/disk/respq"


class Logs(list):
    def __call__(self, level: str, message: str) -> None:
        self.append((level, message))


def setup(logs: Logs | None = None) -> tuple[SimFS, Engine]:
    fs = SimFS()
    fs.make_durable_dir(DATA)
    return fs, reopen(fs, logs)


def reopen(fs: SimFS, logs: Logs | None = None) -> Engine:
    return Engine.open(DATA, types=REGISTRY, io=fs, segment_size=4096, log=logs if logs is not None else Logs())


def push(engine: Engine, key: bytes, *values: bytes) -> None:
    entry = engine.get(0, key)
    (entry.value if entry is not None else engine.create(0, key, "list")).push(RIGHT, list(values))


def ack(engine: Engine) -> None:
    engine.sync(engine.flush())


def contents(engine: Engine, key: bytes) -> list[bytes]:
    entry = engine.get(0, key)
    return list(entry.value) if entry is not None else []


def in_journal(path: str) -> bool:
    return "/journal/" in path


def in_segment(path: str) -> bool:
    return path.endswith(".seg")


@pytest.mark.parametrize("where", [in_journal, in_segment], ids=["journal", "segment"])
def test_eio_on_write_stops_writes_until_restart_and_loses_nothing_acknowledged(where) -> None:  # type: ignore[no-untyped-def]
    logs = Logs()
    fs, engine = setup(logs)
    push(engine, b"q", b"a1", b"a2")
    ack(engine)
    fs.faults.write_error, fs.faults.write_when = errno.EIO, where
    with pytest.raises(StorageWriteError):
        push(engine, b"q", b"b1")
        engine.flush()
        engine.checkpoint()  # pushes reach the segment files when a checkpoint copies what is still queued
    assert engine.write_error is not None and "Input/output error" in engine.write_error
    assert engine.stats()["last_write_status"] == engine.write_error
    assert any(level == "warning" and "Input/output error" in message for level, message in logs)
    fs.faults.write_error = None  # the device recovers, but the page cache's state is unknown: still refused
    with pytest.raises(StorageWriteError):
        push(engine, b"q", b"c1")
    with pytest.raises(StorageWriteError):
        engine.flush()
    assert contents(engine, b"q")[:2] == [b"a1", b"a2"]  # reads are still served
    fs.power_cut()
    engine = reopen(fs)
    assert contents(engine, b"q")[:2] == [b"a1", b"a2"]
    assert b"c1" not in contents(engine, b"q")
    push(engine, b"q", b"after restart")
    ack(engine)


def test_eio_on_fsync_stops_writes_and_keeps_what_was_acknowledged() -> None:
    fs, engine = setup()
    push(engine, b"q", b"acknowledged")
    ack(engine)
    push(engine, b"q", b"never acknowledged")
    fs.faults.fsync_error = errno.EIO
    with pytest.raises(StorageWriteError):
        ack(engine)
    assert "fsync of the journal failed" in str(engine.write_error)
    assert "fsync of the journal failed" in str(engine.stats()["last_write_status"])
    fs.faults.fsync_error = None
    with pytest.raises(StorageWriteError):
        push(engine, b"q", b"refused")
    fs.power_cut()
    assert contents(reopen(fs), b"q")[:1] == [b"acknowledged"]


def test_enospc_on_the_journal_cuts_the_partial_record_serves_reads_and_resumes() -> None:
    fs, engine = setup()
    push(engine, b"q", b"acknowledged")
    ack(engine)
    journal_path = next(p for p in (f"{DATA}/journal/{n}" for n in fs.listdir(f"{DATA}/journal")) if p.endswith(".wal"))
    journal_size = len(fs.read_file(journal_path))
    fs.faults.write_error, fs.faults.write_when = errno.ENOSPC, in_journal
    push(engine, b"q", b"waits for space")
    with pytest.raises(DiskFullError):
        engine.flush()
    assert len(fs.read_file(journal_path)) == journal_size  # the half-written record was cut
    with pytest.raises(DiskFullError):
        push(engine, b"q", b"refused while full")
    assert contents(engine, b"q") == [b"acknowledged", b"waits for space"]  # reads served
    assert engine.write_error is None
    fs.faults.write_error = None  # space comes back
    ack(engine)
    push(engine, b"q", b"after")
    ack(engine)
    fs.power_cut()
    assert contents(reopen(fs), b"q") == [b"acknowledged", b"waits for space", b"after"]


def test_enospc_on_a_segment_changes_nothing_and_resumes() -> None:
    """Pushes reach segment files when a checkpoint (or a middle operation) copies what is still queued."""
    fs, engine = setup()
    push(engine, b"q", b"acknowledged")
    ack(engine)
    engine.checkpoint()
    push(engine, b"q", b"x" * 5000, b"y")
    ack(engine)
    fs.faults.write_error, fs.faults.write_when = errno.ENOSPC, in_segment
    with pytest.raises(DiskFullError):
        engine.checkpoint()  # rolls to a new segment, then fails
    with pytest.raises(DiskFullError):
        engine.get(0, b"q").value.set(0, b"z")  # type: ignore[union-attr]
    assert contents(engine, b"q") == [b"acknowledged", b"x" * 5000, b"y"]
    fs.faults.write_error = None
    push(engine, b"q", b"after")
    ack(engine)
    fs.power_cut()
    assert contents(reopen(fs), b"q") == [b"acknowledged", b"x" * 5000, b"y", b"after"]


def _stream_ids(engine: Engine, key: bytes) -> list[int]:
    entry = engine.get(0, key)
    return [stream_id for stream_id, _ in entry.value.range(0, MAX_ID)] if entry is not None else []  # type: ignore[union-attr]


def test_enospc_on_buffered_stream_entries_keeps_them_readable_refuses_writes_and_resumes() -> None:
    """Stream entries reach their segment when the loop pass flushes, and live only there: an entry whose bytes the
    disk refused is not acknowledged (its journal record waits with it) until space comes back."""
    fs, engine = setup()
    stream = engine.create(0, b"s", "stream")
    stream.add(id_of(1, 0), [b"f", b"acknowledged"])
    ack(engine)
    fs.faults.write_error, fs.faults.write_when = errno.ENOSPC, in_segment
    stream.add(id_of(2, 0), [b"f", b"buffered"])
    with pytest.raises(DiskFullError):
        ack(engine)  # the journal has room, the segment not: no acknowledgement while the entry is in memory alone
    assert _stream_ids(engine, b"s") == [id_of(1, 0), id_of(2, 0)]  # served from the buffer
    with pytest.raises(DiskFullError):
        stream.add(id_of(3, 0), [b"f", b"refused while full"])
    with pytest.raises(DiskFullError):
        engine.checkpoint()  # the files it would sync lack those bytes
    assert engine.write_error is None
    fs.faults.write_error = None  # space comes back
    ack(engine)  # the waiting entry is written, synced and acknowledged
    stream.add(id_of(3, 0), [b"f", b"after"])
    ack(engine)
    engine.checkpoint()
    stream.add(id_of(4, 0), [b"f", b"after the checkpoint"])
    ack(engine)
    fs.power_cut()
    assert _stream_ids(reopen(fs), b"s") == [id_of(ms, 0) for ms in (1, 2, 3, 4)]


def test_eio_on_buffered_stream_entries_disables_writes_and_keeps_the_acknowledged() -> None:
    fs, engine = setup()
    stream = engine.create(0, b"s", "stream")
    stream.add(id_of(1, 0), [b"f", b"acknowledged"])
    ack(engine)
    fs.faults.write_error, fs.faults.write_when = errno.EIO, in_segment
    stream.add(id_of(2, 0), [b"f", b"never acknowledged"])
    with pytest.raises(StorageWriteError):
        ack(engine)
    assert engine.write_error is not None and "Input/output error" in engine.write_error
    assert _stream_ids(engine, b"s") == [id_of(1, 0), id_of(2, 0)]  # reads are still served
    fs.faults.write_error = None
    with pytest.raises(StorageWriteError):
        stream.add(id_of(3, 0), [b"f", b"refused"])
    fs.power_cut()
    assert _stream_ids(reopen(fs), b"s") == [id_of(1, 0)]


def test_eio_on_a_read_fails_the_read_with_the_file_named_and_nothing_is_skipped() -> None:
    fs, engine = setup()
    push(engine, b"q", b"a", b"b", b"c")
    ack(engine)
    engine.checkpoint()  # the values are in the queue's segment now
    push(engine, b"j", b"in the journal")
    ack(engine)
    fs.faults.read_error, fs.faults.read_when = errno.EIO, in_segment
    log = engine.get(0, b"q").value  # type: ignore[union-attr]
    with pytest.raises(StorageReadError, match=r"reading .*\.seg at offset \d+ failed: Input/output error"):
        log.index(1)
    fs.faults.read_when = in_journal
    with pytest.raises(StorageReadError, match="Input/output error"):
        engine.get(0, b"j").value.index(0)  # type: ignore[union-attr]
    fs.faults.read_error = None  # the device recovers: everything is there, in order
    assert contents(engine, b"q") == [b"a", b"b", b"c"]
    assert contents(engine, b"j") == [b"in the journal"]
    fs.power_cut()
    engine = reopen(fs)  # j's value is now read from the journal file replayed at start-up: the error names it
    (replayed_seq, _, _), *_ = engine.journal.readable_files()
    fs.faults.read_error, fs.faults.read_when = errno.EIO, in_journal
    with pytest.raises(StorageReadError, match=re.escape(f"reading {engine.journal.path(replayed_seq)} at")):
        engine.get(0, b"j").value.index(0)  # type: ignore[union-attr]


def test_enospc_during_a_checkpoint_abandons_it_and_writes_resume() -> None:
    """The manifest cannot be written: the old checkpoint and journals still describe everything."""
    fs, engine = setup()
    push(engine, b"q", b"acknowledged")
    ack(engine)
    fs.faults.write_error, fs.faults.write_when = errno.ENOSPC, lambda path: path.endswith("MANIFEST.tmp")
    with pytest.raises(DiskFullError):
        engine.checkpoint()
    fs.faults.write_error = None
    assert engine.write_error is None
    push(engine, b"q", b"after")
    ack(engine)
    engine.checkpoint()
    push(engine, b"q", b"later")
    ack(engine)
    fs.power_cut()
    assert contents(reopen(fs), b"q") == [b"acknowledged", b"after", b"later"]


def flip_byte_in_old_segment(fs: SimFS, engine: Engine, record: int = 19) -> tuple[str, int]:
    """Corrupts a record (the 20th) of the queue's oldest segment after it was checkpointed."""
    engine.close()
    qdir = f"{DATA}/queues/{fs.listdir(DATA + '/queues')[0]}"
    path = f"{qdir}/{min(fs.listdir(qdir))}"
    data = bytearray(fs.read_file(path))
    record_offset = SEGMENT_HEADER.size + record * (OVERHEAD + 8)  # a record of 8-byte values
    data[record_offset + HEAD_SIZE + 3] ^= 0x40  # inside its payload: only the checksum can tell
    fs.write_file(path, bytes(data))
    return path, record_offset


def test_a_flipped_byte_in_an_old_segment_is_named_and_data_before_it_is_readable() -> None:
    fs, engine = setup()
    push(engine, b"q", *(b"m%07d" % i for i in range(100)))
    ack(engine)
    path, record_offset = flip_byte_in_old_segment(fs, engine)
    problems = check_directory(DATA, REGISTRY, io=fs)
    assert problems and f"{path} at offset {record_offset}: checksum mismatch" in problems[0]
    engine = reopen(fs)
    log = engine.get(0, b"q")
    assert log is not None
    assert log.value.pop(LEFT, 19) == [b"m%07d" % i for i in range(19)]
    with pytest.raises(CorruptionError) as raised:
        log.value.pop(LEFT, 1)
    assert raised.value.path == path and raised.value.offset == record_offset


def test_a_pop_that_meets_a_bad_record_half_way_takes_nothing() -> None:
    """The values read before the bad record are neither returned nor consumed: the error leaves the list as it was,
    in memory and on disk, whichever end is popped and whether values also live in the journal."""
    fs, engine = setup()
    push(engine, b"q", *(b"m%07d" % i for i in range(100)))
    ack(engine)
    path, record_offset = flip_byte_in_old_segment(fs, engine, record=90)
    engine = reopen(fs)
    push(engine, b"q", b"j1", b"j2")  # journal-resident values at the right end
    ack(engine)
    log = engine.get(0, b"q").value  # type: ignore[union-attr]
    with pytest.raises(CorruptionError) as raised:
        log.pop(RIGHT, 20)  # j2, j1, m99 .. m91, then record 90
    assert raised.value.path == path and raised.value.offset == record_offset + OVERHEAD + 8  # read back from its end
    assert len(log) == 102
    assert log.pop(RIGHT, 11) == [b"j2", b"j1", *(b"m%07d" % i for i in range(99, 90, -1))]
    assert log.pop(LEFT, 3) == [b"m0000000", b"m0000001", b"m0000002"]
    ack(engine)
    fs.power_cut()
    engine = reopen(fs)  # what was popped stays popped; nothing else went
    log = engine.get(0, b"q").value  # type: ignore[union-attr]
    assert len(log) == 88
    assert log.pop(LEFT, 87) == [b"m%07d" % i for i in range(3, 90)]


def test_respq_check_exit_status_on_a_clean_and_a_corrupted_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir, "--appendfsync", "always")
    try:
        pipe = Pipeline(server.port)
        replies, complete = pipe.run([("RPUSH", "q", *(b"m%07d" % i for i in range(100)))])
        assert complete and replies == [100]
        pipe.close()
        assert server.terminate() == 0  # a clean shutdown checkpoints: the values are in a segment
    finally:
        server.stop()
    check = [sys.executable, "-m", "respq", "check", str(data_dir)]
    clean = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    segment = next((data_dir / "queues").rglob("*.seg"))
    data = bytearray(segment.read_bytes())
    record_offset = SEGMENT_HEADER.size + 50 * (OVERHEAD + 8)
    data[record_offset + HEAD_SIZE + 3] ^= 0x01
    segment.write_bytes(bytes(data))
    damaged = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert damaged.returncode != 0
    assert f"{segment} at offset {record_offset}: checksum mismatch" in damaged.stdout


def test_lmove_refused_for_a_full_disk_keeps_the_element_in_the_source(tmp_path: Path) -> None:
    server = start_respq(tmp_path / "data", "--appendfsync", "always")
    try:
        pipe = Pipeline(server.port)
        replies, _ = pipe.run([("RPUSH", "src", "x", "y"), ("CONFIG", "SET", "maxdisk", "1")])
        assert replies[0] == 2
        replies, _ = pipe.run([("RPUSH", "new", "a"), ("LMOVE", "src", "dst", "LEFT", "RIGHT")])
        assert len(replies) == 2 and all(isinstance(reply, Exception) for reply in replies)
        replies, complete = pipe.run([("CONFIG", "SET", "maxdisk", "0"), ("LRANGE", "src", 0, -1), ("EXISTS", "dst")])
        assert complete and replies[1:] == [[b"x", b"y"], 0]
        assert server.alive()
    finally:
        server.stop()


def test_a_power_cut_after_pushes_behind_a_backlog_loses_nothing_acknowledged(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Pushes onto a long list write their segment copy at once, unsynced: the synced journal alone restores them."""
    monkeypatch.setattr(listlog, "BACKLOG_VALUES", 100)
    fs, engine = setup()
    push(engine, b"q", *(b"a%04d" % i for i in range(150)))
    ack(engine)
    engine.checkpoint()
    push(engine, b"q", *(b"b%04d" % i for i in range(300)))  # behind the backlog: segment copy plus journal record
    ack(engine)
    push(engine, b"q", b"unacknowledged")
    fs.power_cut()
    found = contents(reopen(fs), b"q")
    assert found[:450] == [b"a%04d" % i for i in range(150)] + [b"b%04d" % i for i in range(300)]
    assert found[450:] in ([], [b"unacknowledged"])


def test_respq_check_of_a_missing_directory_fails(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = subprocess.run(
        [sys.executable, "-m", "respq", "check", str(missing)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"{missing}: no such data directory"
    assert "no problems found" not in result.stdout
