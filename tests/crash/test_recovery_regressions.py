"""Power-cut orderings the campaign found losing data or refusing to start, pinned down one by one."""

from __future__ import annotations

from collections.abc import Callable

from respq.storage import Engine
from respq.storage.check import check_directory
from respq.types import REGISTRY
from respq.types.lists.model import RIGHT
from tests.crash.simfs import SimFS, SimulatedCrash

DATA = "/disk/respq"
JOURNAL = DATA + "/journal"


def fresh_disk() -> SimFS:
    fs = SimFS()
    fs.make_durable_dir(DATA)
    return fs


def open_engine(fs: SimFS) -> Engine:
    return Engine.open(DATA, types=REGISTRY, io=fs, segment_size=4096, log=lambda _level, _message: None)


def push_and_ack(engine: Engine, key: bytes, *values: bytes) -> None:
    entry = engine.get(0, key)
    (entry.value if entry is not None else engine.create(0, key, "list")).push(RIGHT, list(values))
    engine.sync(engine.flush())


def contents(engine: Engine, key: bytes) -> list[bytes]:
    entry = engine.get(0, key)
    return list(entry.value) if entry is not None else []


def last_journal(fs: SimFS) -> str:
    return f"{JOURNAL}/{max(name for name in fs.listdir(JOURNAL) if name.endswith('.wal'))}"


def cut_during(fs: SimFS, action: Callable[[], object], when: Callable[[str, str], bool]) -> None:
    fs.crash_before = when
    try:
        action()
    except SimulatedCrash:
        pass
    else:
        raise AssertionError("the scheduled power cut never came")
    fs.power_cut()


def before_manifest_rename(call: str, path: str) -> bool:
    return call == "rename" and path.endswith("/MANIFEST")


def before_journal_dir_sync(call: str, path: str) -> bool:
    return call == "fsync_dir" and path == JOURNAL


def recover_then_write_and_cut_power(fs: SimFS) -> list[bytes]:
    """Recovery starts a newer journal file; the first acknowledged write names it durably. The power fails just
    before that directory sync, and again after the write was acknowledged: what recovery cut must stay cut."""
    cut_during(fs, lambda: push_and_ack(open_engine(fs), b"q", b"unacknowledged"), before_journal_dir_sync)
    engine = open_engine(fs)
    push_and_ack(engine, b"q", b"after recovery")
    engine.abandon()
    fs.power_cut()
    return contents(open_engine(fs), b"q")


def test_a_write_acknowledged_into_a_new_journal_file_survives_before_the_checkpoint_ends() -> None:
    """The journal file a checkpoint starts is named durably only by a directory sync: the ack must wait for it."""
    fs = fresh_disk()
    engine = open_engine(fs)
    engine.begin_checkpoint()  # rotates the journal; the worker step that syncs directories has not run yet
    push_and_ack(engine, b"q", b"acknowledged")
    fs.power_cut()
    assert contents(open_engine(fs), b"q") == [b"acknowledged"]


def test_unsynced_records_before_a_journal_rotation_cannot_break_recovery() -> None:
    """The rotated-away file's unsynced tail must be durable before the new file's name is."""
    fs = fresh_disk()
    engine = open_engine(fs)
    push_and_ack(engine, b"q", b"acknowledged")
    engine.get(0, b"q").value.push(RIGHT, [b"unacknowledged"])  # type: ignore[union-attr]
    checkpoint = engine.begin_checkpoint()  # flushes it into the old file, unsynced
    new_file = last_journal(fs)
    fs.write_file(new_file, fs.read_file(new_file))  # the kernel may write the new file's header back on its own
    cut_during(fs, lambda: engine.run_checkpoint(checkpoint), before_manifest_rename)
    recovered = contents(open_engine(fs), b"q")
    assert recovered[:1] == [b"acknowledged"]


def test_a_cut_torn_tail_stays_cut_when_power_fails_during_recovery() -> None:
    """Recovery cuts a torn tail and then names a newer journal file: the cut must be durable first."""
    fs = fresh_disk()
    engine = open_engine(fs)
    push_and_ack(engine, b"q", b"acknowledged")
    engine.abandon()
    path = last_journal(fs)
    fs.write_file(path, fs.read_file(path) + b"\x07torn record")
    assert recover_then_write_and_cut_power(fs) == [b"acknowledged", b"after recovery"]
    assert check_directory(DATA, REGISTRY, io=fs) == []


def test_a_journal_file_whose_header_never_reached_the_disk_stays_harmless() -> None:
    """A last file with a torn header is emptied; once recovery names a newer one it must still read as valid."""
    fs = fresh_disk()
    engine = open_engine(fs)
    push_and_ack(engine, b"q", b"acknowledged")
    engine.abandon()
    path = last_journal(fs)
    next_seq = int(path.rsplit("/", 1)[1].split(".")[0], 16) + 1
    fs.close(fs.open(f"{JOURNAL}/{next_seq:016x}.wal", create=True))
    fs.write_file(f"{JOURNAL}/{next_seq:016x}.wal", b"RQW")
    fs.fsync_dir(JOURNAL)
    assert recover_then_write_and_cut_power(fs) == [b"acknowledged", b"after recovery"]
    assert check_directory(DATA, REGISTRY, io=fs) == []


def test_a_checkpoint_without_new_writes_still_syncs_the_journal_header_it_names() -> None:
    """Two checkpoints in a row with no writes between: the first one's journal file must not be left unnamed."""
    fs = fresh_disk()
    engine = open_engine(fs)
    push_and_ack(engine, b"q", b"acknowledged")
    engine.checkpoint()
    checkpoint = engine.begin_checkpoint()
    cut_during(fs, lambda: engine.run_checkpoint(checkpoint), before_manifest_rename)
    assert contents(open_engine(fs), b"q") == [b"acknowledged"]
