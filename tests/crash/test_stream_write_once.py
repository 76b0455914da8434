"""Stream entries are written once, to their segment, which the group commit syncs; the journal says where they are.

Each test drives the engine on a SimFS disk and cuts the power where the design has to be right: between the
segment's sync and the journal's, after a segment roll, with a stream deleted in the pass that added to it.
"""

from __future__ import annotations

import errno
import threading

import pytest

from respq.storage import CorruptionError, DiskFullError, Engine, StorageWriteError
from respq.storage.check import check_directory
from respq.storage.framing import OVERHEAD
from respq.storage.streamlog import MAX_ID, XADD_AT_RECORD, StreamLog, id_of
from tests.crash.simfs import SimFS

DATA = "/disk/respq"
QUEUES = f"{DATA}/queues"


class Logs(list):
    def __call__(self, level: str, message: str) -> None:
        self.append((level, message))

    def text(self) -> str:
        return "\n".join(message for _, message in self)


def setup() -> tuple[SimFS, Engine]:
    fs = SimFS()
    fs.make_durable_dir(DATA)
    return fs, reopen(fs)


def reopen(fs: SimFS, logs: Logs | None = None) -> Engine:
    return Engine.open(DATA, io=fs, segment_size=4096, log=logs if logs is not None else Logs())


def ack(engine: Engine) -> None:
    engine.sync(engine.flush())


def stream(engine: Engine, key: bytes = b"s") -> StreamLog:
    entry = engine.get(0, key)
    if entry is None:
        entry = engine.create_stream(0, key)
    assert isinstance(entry, StreamLog)
    return entry


def ids(engine: Engine, key: bytes = b"s") -> list[int]:
    entry = engine.get(0, key)
    return [] if entry is None else [i >> 64 for i, _ in entry.range(0, MAX_ID)]  # type: ignore[union-attr]


def files_under(fs: SimFS, path: str) -> list[str]:
    found = []
    for name in fs.listdir(path):
        child = f"{path}/{name}"
        try:
            found += files_under(fs, child)
        except NotADirectoryError:
            found.append(child)
    return found


def journal_bytes(fs: SimFS) -> int:
    return sum(len(fs.read_file(f"{DATA}/journal/{name}")) for name in fs.listdir(f"{DATA}/journal"))


def test_an_entry_is_written_to_its_segment_alone_and_survives_a_cut_once_acknowledged() -> None:
    fs, engine = setup()
    s = stream(engine)
    ack(engine)
    before = journal_bytes(fs)
    value = b"v" * 1000
    s.add(id_of(1, 0), [b"f", value])
    ack(engine)
    assert journal_bytes(fs) - before == XADD_AT_RECORD  # where the entry is (a new file), not the entry
    assert sum(value in fs.read_file(path) for path in files_under(fs, QUEUES)) == 1
    before = journal_bytes(fs)
    s.add(id_of(2, 0), [b"f", b"with the journal clean"])
    ack(engine)
    assert journal_bytes(fs) == before  # the newest operation: found at the end of the file, no record needed
    fs.power_cut()
    assert ids(reopen(fs)) == [1, 2]


def test_a_segment_the_sync_missed_ends_the_journal_at_the_record_naming_it() -> None:
    """Journal durable, segment not (the order a power cut may leave): the journal is cut there, with the records
    after it, which no reply can have covered; what was acknowledged before stays."""
    fs, engine = setup()
    s = stream(engine)
    s.add(id_of(1, 0), [b"f", b"acknowledged"])
    ack(engine)
    engine._journal.before_sync = lambda: None  # the journal alone reaches the disk
    s.add(id_of(2, 0), [b"f", b"torn"])
    engine.create_list(0, b"q").push(0, [b"after it"])
    ack(engine)
    fs.power_cut()
    logs = Logs()
    engine = reopen(fs, logs)
    assert ids(engine) == [1]
    assert engine.get(0, b"q") is None  # journaled after the torn entry: cut with it
    assert "journal ends at LSN" in logs.text() and "not on disk" not in logs.text()
    s = stream(engine)
    s.add(id_of(3, 0), [b"f", b"after recovery"])
    ack(engine)
    fs.power_cut()
    assert ids(reopen(fs)) == [1, 3]
    assert check_directory(DATA, io=fs) == []


def test_journal_files_after_a_torn_reference_are_dropped() -> None:
    fs, engine = setup()
    s = stream(engine)
    s.add(id_of(1, 0), [b"f", b"kept"])
    ack(engine)
    engine._journal.before_sync = lambda: None
    s.add(id_of(2, 0), [b"f", b"torn"])
    ack(engine)
    checkpoint = engine.begin_checkpoint()  # rotates the journal: a newer file follows the torn record
    engine.create_list(0, b"q").push(0, [b"in the next file"])
    ack(engine)
    del checkpoint  # the power goes before the checkpoint is made durable
    fs.power_cut()
    logs = Logs()
    engine = reopen(fs, logs)
    assert ids(engine) == [1] and engine.get(0, b"q") is None
    assert "dropped 1 later journal files" in logs.text()
    engine.close()
    engine = reopen(fs)  # and the cut stays cut
    assert ids(engine) == [1]


def test_damage_inside_an_entry_with_valid_entries_after_it_is_corruption_not_a_tail() -> None:
    fs, engine = setup()
    s = stream(engine)
    for ms in (1, 2, 3):
        s.add(id_of(ms, 0), [b"f", b"entry %d" % ms])
        ack(engine)
    engine.abandon()
    (path,) = files_under(fs, QUEUES)
    data = bytearray(fs.read_file(path))
    data[data.index(b"entry 2")] ^= 0xFF
    fs.write_file(path, bytes(data))
    with pytest.raises(CorruptionError, match="fails its checks"):
        reopen(fs)


def test_rolled_segments_created_after_the_checkpoint_are_found_and_tails_cut() -> None:
    """Files the manifest does not name hold entries the journal places in them. Past the last replayed entry of
    the stream's last file, entries appended with the journal clean (no XADD_AT record needed) are kept, those whose
    record was lost are cut, and a file no record names is deleted."""
    fs, engine = setup()
    s = stream(engine)
    engine.checkpoint()
    value = b"x" * 300
    for ms in range(1, 41):  # ~13 KiB: rolls 4 KiB segments a few times
        s.add(id_of(ms, 0), [b"f", value])
        ack(engine)
    assert len(s.files()) > 2
    # A crash between the segment write and the journal write of one pass: the entries that fit the last file were
    # appended with the journal clean (the newest operations: kept); then a file is started (its record is lost,
    # and so is the file) and a list pushed to; entries appended after that need their record (lost: cut).
    s.add_many([id_of(ms, 0) for ms in range(41, 61)], [[b"f", value]] * 20)
    engine.create_list(0, b"q").push(0, [b"journaled, never written"])
    engine._store.write_pending()
    engine.abandon()
    logs = Logs()
    engine = reopen(fs, logs)
    recovered = ids(engine)
    assert recovered[:40] == list(range(1, 41)) and 40 < len(recovered) < 60
    assert recovered == list(range(1, len(recovered) + 1))  # a first part of the run, nothing after it
    assert engine.get(0, b"q") is None
    assert "no journal record names" in logs.text()
    stream(engine).add(id_of(100, 0), [b"f", b"next"])
    ack(engine)
    engine.close()
    assert ids(reopen(fs)) == [*recovered, 100]
    assert check_directory(DATA, io=fs) == []


def test_entries_appended_after_a_lost_journal_record_are_cut() -> None:
    """An entry appended while the journal holds a record not yet durable is kept only through its own XADD_AT
    record: had the crash kept it without the record before it, recovery would not be a prefix of what happened."""
    fs, engine = setup()
    s = stream(engine)
    s.add(id_of(1, 0), [b"f", b"acknowledged"])
    ack(engine)
    engine.create_list(0, b"q").push(0, [b"lost"])
    s.add(id_of(2, 0), [b"f", b"after the lost push"])
    engine._store.write_pending()  # the segment bytes reach the file, the journal's never do
    engine.abandon()
    logs = Logs()
    engine = reopen(fs, logs)
    assert ids(engine) == [1] and engine.get(0, b"q") is None
    assert "cut" in logs.text() and "unacknowledged stream entries" in logs.text()
    assert check_directory(DATA, io=fs) == []


def test_a_stream_deleted_in_the_pass_that_added_to_it_still_replays() -> None:
    """The segment bytes a deleted stream's journal records name are still written and synced, so replay finds
    them before it replays the delete."""
    fs, engine = setup()
    s = stream(engine)
    s.add(id_of(1, 0), [b"f", b"a"])
    engine.delete(0, b"s")
    s = stream(engine, b"t")
    s.add(id_of(1, 0), [b"f", b"b"])
    ack(engine)
    fs.power_cut()
    engine = reopen(fs)
    assert engine.get(0, b"s") is None and ids(engine, b"t") == [1]


def test_a_refused_append_holds_back_the_acknowledgement_not_the_journal_order() -> None:
    """Entries journaled while their segment bytes wait in memory are acknowledged only once those are written and
    synced: the group commit refuses to run instead."""
    fs, engine = setup()
    s = stream(engine)
    s.add(id_of(1, 0), [b"f", b"first"])
    ack(engine)
    fs.faults.write_error, fs.faults.write_when = errno.ENOSPC, lambda path: path.endswith(".seg")
    s.add(id_of(2, 0), [b"f", b"waits"])
    with pytest.raises(DiskFullError):
        ack(engine)
    fs.power_cut()  # the power goes while it waits: it was never acknowledged, and recovery is clean
    engine = reopen(fs)
    assert ids(engine) == [1]
    s = stream(engine)
    s.add(id_of(2, 0), [b"f", b"waits"])
    with pytest.raises(DiskFullError):
        ack(engine)
    fs.faults.write_error = None
    ack(engine)
    fs.power_cut()
    assert ids(reopen(fs)) == [1, 2]


def test_group_reads_and_acknowledgements_are_journaled_as_ranges() -> None:
    fs, engine = setup()
    s = stream(engine)
    s.add_many([id_of(ms, 0) for ms in range(1, 201)], [[b"f", b"v"]] * 200)
    group = s.set_group(b"g", 0, 0)
    alice, _ = s.create_consumer(group, b"alice", 0)
    bob, _ = s.create_consumer(group, b"bob", 0)
    ack(engine)
    before = journal_bytes(fs)
    s.read_group(group, alice, group.last_id, 100, False, 5)
    s.read_group(group, bob, group.last_id, 100, False, 6)
    s.drop_pending(group, [id_of(ms, 0) for ms in range(1, 101)])  # alice's batch: a range
    s.drop_pending(group, [id_of(ms, 0) for ms in range(101, 151, 2)])  # every other one: IDs
    ack(engine)
    grown = journal_bytes(fs) - before
    assert grown < 25 * 16 + 400  # the odd IDs listed one by one, the rest as ranges
    expected = [(p.id, p.consumer.name, p.delivered, p.count) for p in group.iter_pending()]
    assert len(expected) == 75
    fs.power_cut()
    engine = reopen(fs)
    group = stream(engine).groups[b"g"]
    assert [(p.id, p.consumer.name, p.delivered, p.count) for p in group.iter_pending()] == expected
    assert group.last_id == id_of(200, 0)


def test_entries_are_not_copied_again_at_checkpoints() -> None:
    """Bytes written per entry over produce, consume and checkpoint cycles: the entry's record, and little else."""
    fs = SimFS()
    fs.make_durable_dir(DATA)
    engine = Engine.open(DATA, io=fs, segment_size=1 << 20, log=Logs())
    s = stream(engine)
    group = s.set_group(b"g", 0, 0)
    consumer, _ = s.create_consumer(group, b"c", 0)
    engine.checkpoint()
    value = b"m" * 100
    # Framing, the ID as a distance from its node's first (two bytes), the field and the value after their lengths.
    record = OVERHEAD + 2 + 1 + len(b"f") + 1 + len(value)
    written = fs.written
    for batch in range(20):
        start = batch * 100 + 1
        s.add_many([id_of(ms, 0) for ms in range(start, start + 100)], [[b"f", value]] * 100)
        read = s.read_group(group, consumer, group.last_id, 100, False, 0)
        s.drop_pending(group, [i for i, _ in read])
        ack(engine)
        if batch % 5 == 4:
            engine.checkpoint()
    per_entry = (fs.written - written) / 2000
    assert record <= per_entry < record * 1.05, per_entry


def test_an_append_the_journal_need_not_note_syncs_the_segment_alone() -> None:
    """The group commit flushes only what has new bytes: a pass that only appended to a stream costs one sync."""
    fs, engine = setup()
    s = stream(engine)
    s.add(id_of(1, 0), [b"f", b"first"])  # a new segment file: named in the journal
    ack(engine)
    syncs = fs.syncs
    s.add(id_of(2, 0), [b"f", b"second"])
    ack(engine)
    assert fs.syncs - syncs == 1
    fs.power_cut()
    assert ids(reopen(fs)) == [1, 2]


class GatedFS(SimFS):
    """Holds fdatasync of stream files until ``gate`` opens, as a slow disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def fdatasync(self, fd: int) -> None:
        _, path = self._file(fd)
        if self.gate is not None and "/queues/" in path:
            self.entered.set()
            assert self.gate.wait(30)
        super().fdatasync(fd)


def test_a_sync_arriving_while_another_syncs_stream_files_waits_for_it() -> None:
    """The running sync has taken the stream files it syncs: a second one (the loop's, while the sync thread's is
    in fdatasync) must not find nothing due and call the new entry durable before its file is."""
    fs = GatedFS()
    fs.make_durable_dir(DATA)
    engine = reopen(fs)
    s = stream(engine)
    s.add(id_of(1, 0), [b"f", b"a"])
    ack(engine)
    s.add(id_of(2, 0), [b"f", b"b"])  # the journal is clean: no record, the segment alone holds it
    target = engine.flush()
    fs.gate = threading.Event()
    first = threading.Thread(target=engine.sync, args=(target,), daemon=True)
    first.start()
    assert fs.entered.wait(30)
    second = threading.Thread(target=engine.sync, args=(engine.flush(),), daemon=True)
    second.start()
    second.join(0.5)  # bounded: it must still be waiting, for the other sync's fdatasync
    assert second.is_alive() and engine.durable_lsn() < target
    fs.gate.set()
    first.join(30)
    second.join(30)
    assert engine.durable_lsn() >= target
    fs.power_cut()
    assert ids(reopen(fs)) == [1, 2]


def test_stream_files_written_before_a_refused_journal_write_are_still_synced() -> None:
    fs, engine = setup()
    s = stream(engine)
    s.add(id_of(1, 0), [b"f", b"a"])
    ack(engine)
    engine.create_list(0, b"q")  # a journal record: the next entry is noted at once
    s.add(id_of(2, 0), [b"f", b"b"])
    fs.faults.write_error = errno.ENOSPC
    fs.faults.write_when = lambda path: "/journal/" in path
    with pytest.raises(DiskFullError):
        engine.flush()  # the entry reached its segment; the journal's write was refused
    fs.faults.write_error = None
    ack(engine)
    engine.create_list(0, b"later")
    ack(engine)
    fs.power_cut()
    engine = reopen(fs)
    assert ids(engine) == [1, 2] and engine.get(0, b"later") is not None


def test_a_failed_sync_fails_every_later_one() -> None:
    """After a failed fdatasync the data it covered may be gone whatever a retry reports: nothing it covered, and
    nothing after, is called durable."""
    fs, engine = setup()
    s = stream(engine)
    s.add(id_of(1, 0), [b"f", b"a"])
    target = engine.flush()
    fs.faults.fsync_error = errno.EIO
    fs.faults.fsync_when = lambda path: "/queues/" in path
    with pytest.raises(StorageWriteError):
        engine.sync(target)
    fs.faults.fsync_error = None
    with pytest.raises(StorageWriteError):
        engine.sync(target)
    assert engine.durable_lsn() < target
