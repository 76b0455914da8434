"""The shared write-ahead journal: one stream of logical operations for every queue, synced once per batch.

Mutations append framed records to an in-memory buffer; ``flush`` writes the buffer with one write and returns
the LSN (journal bytes ever written) that covers it; ``sync`` (from a worker thread) makes everything flushed so
far durable with one fdatasync, so writers arriving during a sync simply ride on the next one (group commit).
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence

from respq import speedups
from respq.histogram import SYNC_BATCH_BYTES, SYNC_SECONDS, Histogram
from respq.storage import framing
from respq.storage.errors import (
    CorruptionError,
    DiskFullError,
    StorageReadError,
    StorageWriteError,
    TornReference,
)
from respq.storage.fileio import FileIO

# Journal record types (logical operations). Values are part of the on-disk format: never renumber.
# The wall clock (unix ms, i64) when the records after it were appended (format 4): written before the first record
# of a batch at least CLOCK_MARK_MS after the previous one, so a list's values get their push time from the journal
# (to within that) at no cost per value. Journals of format 3 have none: their values' push times are unknown.
OP_CLOCK = 9
CLOCK_OP = struct.Struct("<q")
CLOCK_MARK_MS = 100
OP_CREATE = 10
OP_DELETE = 11
OP_EXPIRE = 12
OP_RENAME = 13
OP_FLUSHDB = 14
OP_FLUSHALL = 15
OP_SWAPDB = 16
OP_MOVE = 17
# A value type's settings from here on (type code, then the type's opaque payload): replay hands them to the type
# (ValueType.apply_settings) before the records that follow, which may depend on them (replay starts with the
# manifest's settings, or the type's defaults).
OP_TYPE_SETTINGS = 18
# Server metadata: opaque named blobs set or deleted together (Engine.set_metadata); storage never reads them.
OP_METADATA = 19
OP_BATCH = 30  # several operations that must survive a crash together (see Engine.atomic)
# The engine's own records. A value type's records (respq/types/*) take other numbers, checked by the registry.
ENGINE_OPS = frozenset(
    {
        OP_CREATE,
        OP_DELETE,
        OP_EXPIRE,
        OP_RENAME,
        OP_FLUSHDB,
        OP_FLUSHALL,
        OP_SWAPDB,
        OP_MOVE,
        OP_TYPE_SETTINGS,
        OP_METADATA,
        OP_BATCH,
        OP_CLOCK,
    }
)


def wall_ms() -> int:
    """The wall clock push times are read from (unix ms); a module function so a test can fix it."""
    return int(time.time() * 1000)

BATCH_ITEM = struct.Struct("<BI")
VALUE_LEN = struct.Struct("<I")
READ_BLOCK = 64 << 10  # bytes read from a journal file at once when serving values that live only there
# Values read together more than this far apart on average are read one by one (a list among thousands, settled
# before a checkpoint, has its values ~1 MB apart): a block per value would read the journal many times over.
SPARSE_GAP = 4 << 10
SHORTER_THAN_VALUE = "journal shorter than a value it holds"
# Records journaled inside an atomic block have no position until the block's record is appended (Engine.end_atomic),
# so values staying in the journal are read at a provisional one until then: STAGED + (payload index << 32) + offset
# (a payload is at most 4 GiB). Above every real position, and never written anywhere.
STAGED = 1 << 63
STAGED_SHIFT = 32
STAGED_MASK = (1 << STAGED_SHIFT) - 1


def py_encode_values(values: list[bytes] | tuple[bytes, ...]) -> bytes:
    parts: list[bytes] = []
    pack = VALUE_LEN.pack
    for value in values:
        parts += (pack(len(value)), value)
    return b"".join(parts)


encode_values = speedups.encode_values or py_encode_values  # the C twins, when built: the same results


MALFORMED_VALUES = "malformed value list"  # also the C twin's text (the tests compare them)


def py_decode_values(data: bytes | memoryview, start: int = 0) -> list[bytes]:
    """The values ``encode_values`` wrote, from ``start`` on; ValueError if they do not fill the data exactly."""
    values = []
    pos, end = start, len(data)
    if not 0 <= pos <= end:
        raise ValueError(MALFORMED_VALUES)
    while pos < end:
        if end - pos < VALUE_LEN.size:
            raise ValueError(MALFORMED_VALUES)
        (length,) = VALUE_LEN.unpack_from(data, pos)
        pos += VALUE_LEN.size
        if length > end - pos:
            raise ValueError(MALFORMED_VALUES)
        values.append(bytes(data[pos : pos + length]))
        pos += length
    return values


decode_values = speedups.decode_values or py_decode_values


def value_lengths(data: bytes | memoryview, pos: int) -> list[int]:
    """The lengths of the values ``encode_values`` wrote from ``pos`` on (without copying the values)."""
    lengths = []
    end = len(data)
    while pos < end:
        (length,) = VALUE_LEN.unpack_from(data, pos)
        lengths.append(length)
        pos += 4 + length
    return lengths


def encode_batch(ops: list[tuple[int, bytes]]) -> bytes:
    pack = BATCH_ITEM.pack
    if len(ops) == 2:  # a new key and its first write, the common batch: without a generator
        (first_op, first), (second_op, second) = ops
        return b"".join((pack(first_op, len(first)), first, pack(second_op, len(second)), second))
    return b"".join([part for op, payload in ops for part in (pack(op, len(payload)), payload)])


def decode_batch(data: bytes | memoryview) -> list[tuple[int, bytes]]:
    ops = []
    pos = 0
    while pos < len(data):
        op, length = BATCH_ITEM.unpack_from(data, pos)
        pos += BATCH_ITEM.size
        ops.append((op, bytes(data[pos : pos + length])))
        pos += length
    return ops


def journal_name(seq: int) -> str:
    return f"{seq:016x}.wal"


def parse_journal_name(name: str) -> int | None:
    stem, dot, ext = name.partition(".")
    if ext != "wal" or not dot or len(stem) != 16:
        return None
    try:
        return int(stem, 16)
    except ValueError:
        return None


class Journal:
    """The journal files of one data directory. Loop thread: append/flush/rotate. Worker thread: sync."""

    def __init__(self, io: FileIO, directory: str) -> None:
        self.io = io
        self.directory = directory
        self.buffer = bytearray()
        self.seq = -1
        self.fd = -1
        self.file_offset = 0  # bytes of the current file (header included)
        self.flushed_lsn = 0
        self.durable_lsn = 0
        self.blocked = False  # the last flush hit ENOSPC; its records are still in the buffer
        self.syncs_total = 0
        self.last_sync_us = 0
        self.sync_seconds = Histogram(SYNC_SECONDS)  # for the metrics endpoint
        self.sync_batch_bytes = Histogram(SYNC_BATCH_BYTES)
        self.sync_errors = 0
        self.last_sync_time = 0.0
        # Files not yet fully synced, oldest first: [fd, lsn at its end or None while current].
        self._unsynced: list[list[int | None]] = []
        # A new file's name is durable only once the directory is synced: an acknowledgement needs both.
        self._files_started = 0
        self._files_named_durably = 0
        self._state = threading.Lock()  # guards _unsynced, flushed_lsn as seen by the syncer
        self._sync_in_flight = threading.Lock()  # at most one fdatasync round at a time
        self.file_start_lsn = 0  # LSN of the current file's first record byte
        # (sequence number, start LSN, fd) of files replayed at start-up, until the next checkpoint settles their values
        self._readers: list[tuple[int, int, int]] = []
        self._read_block: tuple[int, bytes] = (0, b"")  # (LSN, bytes) last read from a file
        self.staged: list[bytes] = []  # payloads of the atomic block being gathered whose values are read (stage)
        # Called by ``sync`` before it syncs the journal: what journal records point at must be durable first. A
        # sync runs for it even with the journal durable already when ``before_sync_due`` says it has work.
        self.before_sync: Callable[[], None] | None = None
        self.before_sync_due: Callable[[], bool] = lambda: False
        # A failed fdatasync: the data it covered may be gone whatever a retry says, so every later sync fails too.
        self._sync_failed: OSError | None = None
        # OP_CLOCK records of the files values are read from (written or replayed): their LSNs and times, ascending.
        self.mark_lsns = array("Q")
        self.mark_times = array("q")
        self._last_mark_ms: int | None = None  # the time of the current file's last clock record (None: none yet)

    def path(self, seq: int) -> str:
        return os.path.join(self.directory, journal_name(seq))

    def start_file(self, seq: int, start_lsn: int) -> None:
        """Creates journal file ``seq`` (replacing a leftover) and makes it the one appended to."""
        path = self.path(seq)
        fd = self.io.open(path, create=True)
        self.io.truncate(fd, 0)
        header = framing.JOURNAL_HEADER.pack(framing.JOURNAL_MAGIC, framing.FORMAT_VERSION, seq, start_lsn)
        self.io.pwrite(fd, header, 0)
        with self._state:
            if self._unsynced:
                self._unsynced[-1][1] = self.flushed_lsn
            self._unsynced.append([fd, None])
            self._files_started += 1
            self.seq, self.fd, self.file_offset = seq, fd, len(header)
            self.flushed_lsn = self.file_start_lsn = start_lsn
        self._last_mark_ms = None  # every file's values get their time from a clock record of their own file

    def append(self, rtype: int, payload: bytes) -> int:
        """Buffers one record; returns the LSN of its first byte (where ``read`` finds it from now on)."""
        if not self.buffer:  # a batch's first record: the clock is read once per batch
            self._mark_clock()
        lsn = self.flushed_lsn + len(self.buffer)
        self.buffer += framing.frame(rtype, payload)
        return lsn

    def _mark_clock(self) -> None:
        now = wall_ms()
        last = self._last_mark_ms
        if last is not None and 0 <= now - last < CLOCK_MARK_MS:  # a clock set back writes a record at once
            return
        self._last_mark_ms = now
        self.add_mark(self.flushed_lsn + len(self.buffer), now)
        self.buffer += framing.frame(OP_CLOCK, CLOCK_OP.pack(now))

    def add_mark(self, lsn: int, ms: int) -> None:
        """Records that what follows ``lsn`` was appended at ``ms`` (replay calls it for each OP_CLOCK record)."""
        self.mark_lsns.append(lsn)
        self.mark_times.append(ms)

    def push_ms(self, lsn: int) -> int:
        """When the record holding ``lsn`` was appended (unix ms, to within CLOCK_MARK_MS and a loop pass), from the
        last clock record before it; 0 when unknown (a journal of format 3, or a provisional position)."""
        if lsn >= STAGED:
            return self.mark_times[-1] if self.mark_times else 0  # in the atomic block being gathered: now
        index = bisect_right(self.mark_lsns, lsn) - 1
        return self.mark_times[index] if index >= 0 else 0

    def trim_marks(self, lsn: int) -> None:
        """Forgets the clock records of files before ``lsn``: nothing reads values from them any more."""
        gone = bisect_left(self.mark_lsns, lsn)
        if gone:
            del self.mark_lsns[:gone], self.mark_times[:gone]

    def append_many(self, rtype: int, payloads: list[bytes]) -> int:
        """Buffers one record per payload, in order; returns the LSN of the first (each follows the one before)."""
        if not self.buffer:
            self._mark_clock()
        lsn = self.flushed_lsn + len(self.buffer)
        self.buffer += framing.frame_values(rtype, payloads)
        return lsn

    def stage(self, payload: bytes) -> int:
        """The provisional position of ``payload``'s first byte: ``read`` serves it from memory until the caller
        (the engine, when its atomic block ends) has moved every position it handed out to the record's own."""
        self.staged.append(payload)
        return STAGED + ((len(self.staged) - 1) << STAGED_SHIFT)

    def read(self, lsn: int, length: int, descending: bool = False) -> bytes:
        """``length`` bytes at ``lsn`` from the buffer, the current file or a file being replayed (loop thread).

        Journal bytes never change once written, so one cached block serves consumers reading recent pushes. A reader
        going to lower LSNs (``descending``: RPOP of right pushes) gets the block that ends at the value, not the one
        that starts there, or every read would miss it.
        """
        rel = lsn - self.flushed_lsn
        if rel >= 0:
            if lsn >= STAGED:
                rel = lsn - STAGED
                return self.staged[rel >> STAGED_SHIFT][rel & STAGED_MASK : (rel & STAGED_MASK) + length]
            return bytes(self.buffer[rel : rel + length])
        base, block = self._read_block
        if base <= lsn and lsn + length <= base + len(block):
            return block[lsn - base : lsn - base + length]
        if lsn >= self.file_start_lsn and self.fd >= 0:
            seq, fd, file_lsn = self.seq, self.fd, self.file_start_lsn
        else:
            seq, fd, file_lsn = self._reader_for(lsn)
        if descending:
            base = max(file_lsn, min(lsn, lsn + length - READ_BLOCK))  # a value longer than a block: from its start
            size = lsn + length - base
        else:
            base, size = lsn, max(length, min(READ_BLOCK, self.flushed_lsn - lsn))
        offset = base - file_lsn + framing.JOURNAL_HEADER.size
        try:
            block = self.io.pread(fd, size, offset)
        except OSError as error:
            raise StorageReadError(self.path(seq), offset, error) from error
        if len(block) < lsn - base + length:
            raise CorruptionError(self.path(seq), lsn - file_lsn, SHORTER_THAN_VALUE)
        self._read_block = (base, block)
        return block[lsn - base : lsn - base + length]

    def read_many(self, positions: Sequence[int], lengths: Sequence[int], descending: bool = False) -> list[bytes]:
        """``read`` of each (position, length), in one loop: values in the cached block are sliced out directly.

        ``positions`` ascend (descend when ``descending``). Values far apart on average in the current file are read
        each alone, in one ``pread_many`` call: a block per value would read the file many times over."""
        count = len(positions)
        if count > 1 and self.fd >= 0:
            first, last = (positions[-1], positions[0]) if descending else (positions[0], positions[-1])
            if (last - first) // (count - 1) > SPARSE_GAP and self.file_start_lsn <= first:
                end = last + (lengths[0] if descending else lengths[-1])
                if end <= self.flushed_lsn:
                    return self._read_scattered(positions, lengths)
        out: list[bytes] = []
        base, block = self._read_block
        end = base + len(block)
        for lsn, length in zip(positions, lengths, strict=True):
            if base <= lsn and lsn + length <= end:
                out.append(block[lsn - base : lsn - base + length])
            else:
                out.append(self.read(lsn, length, descending))
                base, block = self._read_block
                end = base + len(block)
        return out

    def _read_scattered(self, positions: Sequence[int], lengths: Sequence[int]) -> list[bytes]:
        """Values far apart in the current file's written part, each read alone in one ``pread_many`` call."""
        at = framing.JOURNAL_HEADER.size - self.file_start_lsn
        try:
            values = self.io.pread_many(self.fd, [lsn + at for lsn in positions], lengths)
        except OSError as error:
            raise StorageReadError(self.path(self.seq), positions[0] + at, error) from error
        if list(map(len, values)) != list(lengths):  # checked in C loops: this runs for every value settled
            for value, lsn, length in zip(values, positions, lengths, strict=True):
                if len(value) != length:
                    raise CorruptionError(self.path(self.seq), lsn - self.file_start_lsn, SHORTER_THAN_VALUE)
        return values

    def _reader_for(self, lsn: int) -> tuple[int, int, int]:
        """(sequence number, descriptor, first LSN) of the replayed file holding ``lsn``."""
        for seq, start_lsn, fd in reversed(self._readers):
            if start_lsn <= lsn:
                return seq, fd, start_lsn
        raise CorruptionError(self.directory, lsn, "no journal file holds this position")

    def keep_readable(self, seq: int, start_lsn: int) -> None:
        """Recovery: values replayed from file ``seq`` stay readable from it until ``drop_readers``."""
        self._readers.append((seq, start_lsn, self.io.open(self.path(seq), write=False)))

    def readable_files(self) -> list[tuple[int, int, int]]:
        """(sequence number, first LSN, end LSN) of every file values can be read from, oldest first: the files
        replayed at start-up (until the next checkpoint) and the current one, up to what has been written."""
        files = [seq_and_start for *seq_and_start, _ in self._readers]
        if self.fd >= 0:
            files.append([self.seq, self.file_start_lsn])
        ends = [start for _, start in files[1:]] + [self.flushed_lsn]
        return [(seq, start, end) for (seq, start), end in zip(files, ends, strict=True)]

    @property
    def open_files(self) -> int:
        """Descriptors the journal holds: files not yet fully synced and files replayed at start-up."""
        return len(self._unsynced) + len(self._readers)

    def drop_readers(self) -> None:
        for _, _, fd in self._readers:
            self.io.close(fd)
        self._readers.clear()
        self._read_block = (0, b"")

    @property
    def pending(self) -> int:
        return len(self.buffer)

    def flush(self) -> int:
        """Writes the buffer (one write) and returns the LSN covering everything flushed so far."""
        if not self.buffer:
            return self.flushed_lsn
        data = self.buffer
        try:
            self.io.pwrite(self.fd, data, self.file_offset)
        except OSError as error:
            # Cut what part of it landed so the file still ends on a record boundary; keep the buffer for a retry.
            try:
                self.io.truncate(self.fd, self.file_offset)
            except OSError:
                pass
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                self.blocked = True
                raise DiskFullError("no space left on device for the journal") from error
            raise StorageWriteError(f"journal write failed: {error}") from error
        self.blocked = False
        self.file_offset += len(data)
        with self._state:
            self.flushed_lsn += len(data)
        self.buffer = bytearray()
        return self.flushed_lsn

    def sync(self, lsn: int) -> None:
        """Worker thread: returns once everything up to ``lsn`` is on disk, and every journal file's name.

        A sync in flight may have taken work ``before_sync_due`` no longer shows (the stream files it is syncing):
        a caller returns without waiting only if none is due *and* no sync is running, tested in that order since
        a sync takes its work while holding the lock."""
        self._raise_if_failed()
        if (
            self.durable_lsn >= lsn
            and not self._unnamed_files()
            and not self.before_sync_due()
            and not self._sync_in_flight.locked()
        ):
            return
        with self._sync_in_flight:
            self._raise_if_failed()
            if self.durable_lsn >= lsn and not self._unnamed_files() and not self.before_sync_due():
                return  # the sync that just finished covered us
            try:
                self._sync_locked()
            except OSError as error:
                self._sync_failed = error
                self.sync_errors += 1
                raise

    def _raise_if_failed(self) -> None:
        failed = self._sync_failed
        if failed is not None:
            raise OSError(failed.errno, f"an earlier sync failed: {failed.strerror or failed}")

    def _sync_locked(self) -> None:
        with self._state:
            target = self.flushed_lsn
            files = [entry[0] for entry in self._unsynced]
            files_started = self._files_started
        started = time.perf_counter()
        if self.before_sync is not None:
            self.before_sync()
        # Nothing new in the journal (only stream files had bytes to sync): no journal flush for nothing. A new
        # file's header is not counted in the LSN, so a file not yet named durably is synced all the same.
        if target > self.durable_lsn or files_started > self._files_named_durably:
            for fd in files:
                assert fd is not None
                self.io.fdatasync(fd)
        if files_started > self._files_named_durably:
            self.io.fsync_dir(self.directory)
            self._files_named_durably = files_started
        elapsed = time.perf_counter() - started
        self.last_sync_us = int(elapsed * 1_000_000)
        self.last_sync_time = time.time()
        self.syncs_total += 1
        self.sync_seconds.observe(elapsed)
        self.sync_batch_bytes.observe(max(0, target - self.durable_lsn))
        with self._state:
            self.durable_lsn = max(self.durable_lsn, target)
            # Earlier files are now fully durable: their descriptors can go.
            while len(self._unsynced) > 1 and self._unsynced[0][1] is not None:
                end = self._unsynced[0][1]
                if end > target:
                    break
                fd = self._unsynced.pop(0)[0]
                assert fd is not None
                self.io.close(fd)

    def _unnamed_files(self) -> bool:
        """A file was started whose header and directory entry are not known to be durable yet."""
        return self._files_started > self._files_named_durably

    def retire_before(self, lsn: int) -> None:
        """A durable checkpoint covers everything before ``lsn``: older files need no sync any more."""
        if not self._sync_in_flight.acquire(blocking=False):
            return  # the running sync closes them once it completes
        try:
            with self._state:
                self.durable_lsn = max(self.durable_lsn, lsn)
                while len(self._unsynced) > 1 and (self._unsynced[0][1] or 0) <= lsn:
                    fd = self._unsynced.pop(0)[0]
                    assert fd is not None
                    self.io.close(fd)
        finally:
            self._sync_in_flight.release()

    def close(self) -> None:
        with self._sync_in_flight, self._state:
            for fd, _ in self._unsynced:
                assert fd is not None
                self.io.close(fd)
            self._unsynced.clear()
            self.fd = -1
        self.drop_readers()


class ReplayResult:
    __slots__ = ("cut_offset", "end_lsn", "torn_bytes", "torn_reference")

    def __init__(self, end_lsn: int, torn_bytes: int, torn_reference: str = "", cut_offset: int = 0) -> None:
        self.end_lsn = end_lsn
        self.torn_bytes = torn_bytes
        # Why replay stopped before a valid record (see TornReference), and that record's offset in the file: the
        # caller cuts the file there once the files after it are gone.
        self.torn_reference = torn_reference
        self.cut_offset = cut_offset


def replay_file(
    io: FileIO,
    path: str,
    *,
    seq: int,
    start_lsn: int | None,
    last: bool,
    apply: Callable[[int, bytes, int], None],
    cut_torn_tail: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Feeds every record of one journal file to ``apply(type, payload, LSN of the record)``.

    A bad record in the last file is a torn tail (cut, and its size returned) unless a valid record still ends
    at the end of the file: then it is damage in the middle, and like a bad record in any earlier file it raises
    CorruptionError instead of being skipped. A record ``apply`` finds naming stream entries a power cut tore
    (TornReference) ends the journal there, in any file: the caller drops the files after it, then cuts this one.
    """
    fd = io.open(path, write=cut_torn_tail)
    try:
        size = io.size(fd)
        header = io.pread(fd, framing.JOURNAL_HEADER.size, 0)
        if len(header) < framing.JOURNAL_HEADER.size:
            if last:  # created but its header never reached the disk
                if cut_torn_tail:
                    io.truncate(fd, 0)
                    if start_lsn is not None:
                        # Recovery starts a newer file next: this one must read back as a valid, empty journal.
                        magic, version = framing.JOURNAL_MAGIC, framing.FORMAT_VERSION
                        io.pwrite(fd, framing.JOURNAL_HEADER.pack(magic, version, seq, start_lsn), 0)
                    io.fdatasync(fd)
                return ReplayResult(start_lsn or 0, size)
            raise CorruptionError(path, 0, "journal header truncated")
        framing.check_prefix(header, framing.JOURNAL_MAGIC, path)
        _, _, found_seq, found_lsn = framing.JOURNAL_HEADER.unpack(header)
        if found_seq != seq:
            raise CorruptionError(path, 0, f"journal header names sequence {found_seq}, expected {seq}")
        if start_lsn is not None and found_lsn != start_lsn:
            raise CorruptionError(path, 0, f"journal starts at LSN {found_lsn}, expected {start_lsn}")
        end = framing.JOURNAL_HEADER.size
        next_report = end + (16 << 20)
        try:
            for offset, rtype, payload in framing.scan_file(lambda length, at: io.pread(fd, length, at), end, size):
                try:
                    apply(rtype, bytes(payload), found_lsn + offset - framing.JOURNAL_HEADER.size)
                except (ValueError, KeyError, IndexError, struct.error) as error:
                    raise CorruptionError(path, offset, f"cannot apply operation {rtype}: {error!r}") from None
                except TornReference as torn:
                    lsn = found_lsn + offset - framing.JOURNAL_HEADER.size
                    return ReplayResult(lsn, size - offset, str(torn), offset)
                end = offset + framing.OVERHEAD + len(payload)
                if progress is not None and end >= next_report:
                    progress(end, size)
                    next_report = end + (16 << 20)
        except framing.ScanError as error:
            if not last or record_ends_at(io, fd, size, error.offset):
                raise CorruptionError(path, error.offset, error.reason) from None
            if cut_torn_tail:
                # Durably: once recovery names a newer file, a tail coming back here would be damage mid-journal.
                io.truncate(fd, error.offset)
                io.fdatasync(fd)
            return ReplayResult(found_lsn + error.offset - framing.JOURNAL_HEADER.size, size - error.offset)
        return ReplayResult(found_lsn + end - framing.JOURNAL_HEADER.size, 0)
    finally:
        io.close(fd)


def record_ends_at(io: FileIO, fd: int, size: int, after: int) -> bool:
    """Whether a valid record starting past ``after`` ends exactly at ``size`` (so the damage is not a tail)."""
    tail = io.pread(fd, framing.TAIL_SIZE, size - framing.TAIL_SIZE) if size >= framing.TAIL_SIZE else b""
    if len(tail) < framing.TAIL_SIZE:
        return False
    (length,) = framing.TAIL.unpack(tail)
    start = size - framing.OVERHEAD - length
    if start <= after:
        return False
    data = io.pread(fd, size - start, start)
    try:
        framing.parse_backward(data, len(data), 0)
    except framing.FramingError:
        return False
    return True
