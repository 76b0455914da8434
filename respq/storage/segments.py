"""Per-queue segment files: creation, appends, cached reads, an LRU of descriptors, and liveness.

Segment files are append-only within a process: a byte once written is never rewritten, so a cached block of a
file stays valid for the life of the file. List files are synced only at checkpoints (the journal holds their
values until then). Stream files hold the only copy of their entries (the journal names where they are), so the
group commit syncs the ones appended to since it last ran, and the directories of the ones created: see
``take_commit``. Small appends are buffered per file and written by ``write_pending`` once per loop pass (the
engine's flush), one ``pwrite`` per file instead of one per stream entry; reads of buffered bytes are served from
the buffer. A file is unlinked only after a durable manifest stops referring to it, because replay after a crash
may still need it.
"""

from __future__ import annotations

import errno
import os
from collections import OrderedDict
from collections.abc import Callable

from respq.storage import framing
from respq.storage.errors import CorruptionError, DiskFullError, StorageReadError, StorageWriteError
from respq.storage.fileio import FileIO

SEGMENT_SIZE = 4 << 20  # default size at which a segment file rolls (the segment-size directive's default too)
READ_AHEAD = 64 << 10
CACHED_BLOCKS = 32  # files with a read-ahead block kept: bounds that memory at 2 MiB however many queues exist
# Appends at least this large are written at once; smaller ones are buffered until the pass ends, up to this much
# per file and four times as much in all (settling thousands of small lists at a checkpoint stays bounded).
PENDING_LIMIT = 64 << 10
PENDING_TOTAL_LIMIT = 4 * PENDING_LIMIT
QUEUES_DIR = "queues"
# Owner of the shared files: a list settling a few values at a checkpoint appends them to the current shared file
# instead of a file of its own, so thousands of small lists cost a few files (and fsyncs), not one each.
SHARED_QID = 0


def queue_dir_name(qid: int) -> str:
    return f"{qid:016x}"


def segment_name(fid: int) -> str:
    return f"{fid:016x}.seg"


def parse_segment_name(name: str) -> int | None:
    stem, dot, ext = name.partition(".")
    if ext != "seg" or not dot or len(stem) != 16:
        return None
    try:
        return int(stem, 16)
    except ValueError:
        return None


class SegmentStore:
    """All segment files of one data directory (loop thread only, except the paths handed to checkpoints)."""

    def __init__(self, io: FileIO, root: str, *, segment_size: int, max_open_files: int) -> None:
        self.io = io
        self.on_write_error: Callable[[str], None] | None = None  # told of failures other than a full disk
        self.root = os.path.join(root, QUEUES_DIR)
        self.segment_size = segment_size
        self.max_open_files = max(1, max_open_files)
        self.files: dict[int, list[int]] = {}  # live file id -> [queue id, size]
        self.next_fid = 1
        # Recovery: ids of the files on disk that journal records may name (streams' files created after the
        # checkpoint). Replay gives none of them to a file it creates: it may create list files the live run did
        # not (list files are named by no record), and a later record naming the id would find it taken.
        self.reserved: set[int] = set()
        self.dirty: set[int] = set()  # written since the last checkpoint snapshot
        self.new_dirs: set[str] = set()  # directories with entries created since the last snapshot
        # file id -> (queue id, size): unreferenced, waiting for a durable checkpoint before being unlinked
        self.dead: dict[int, tuple[int, int]] = {}
        self.dead_bytes = 0
        self.live_bytes = 0
        self._fds: OrderedDict[int, int] = OrderedDict()
        self._blocks: OrderedDict[int, tuple[int, bytes]] = OrderedDict()
        self._pending: dict[int, tuple[int, bytearray]] = {}  # file id -> (offset, appended bytes not yet written)
        self._pending_bytes = 0
        self.full = False  # the last write of buffered bytes found the disk full: they are still buffered
        # shared file id -> {queue id: list} of the lists with a chunk in it; the file dies when none is left
        self.shared_refs: dict[int, dict[int, object]] = {}
        # Cold lists (kept as bytes by the engine) are counted, not named: shared file -> [lists, bytes they hold].
        self.shared_cold: dict[int, list[int]] = {}
        self.shared_fid = 0  # the shared file appended to (0: none yet)
        # Files whose appends the group commit makes durable (stream files), by path, since the last take_commit;
        # and the directories in which such files were created.
        self._commit: dict[int, str] = {}
        self._commit_dirs: set[str] = set()

    # -- paths and descriptors

    def queue_dir(self, qid: int) -> str:
        return os.path.join(self.root, queue_dir_name(qid))

    def path(self, qid: int, fid: int) -> str:
        return os.path.join(self.root, queue_dir_name(qid), segment_name(fid))

    def fd(self, fid: int) -> int:
        fd = self._fds.get(fid)
        if fd is not None:
            self._fds.move_to_end(fid)
            return fd
        entry = self.files.get(fid)
        fd = self.io.open(self.path(entry[0], fid) if entry is not None else self._commit[fid])
        self._remember_fd(fid, fd)
        return fd

    def _remember_fd(self, fid: int, fd: int) -> None:
        self._fds[fid] = fd
        self.trim_open_files()

    def trim_open_files(self) -> None:
        """Closes the least recently used descriptors beyond the cap."""
        while len(self._fds) > self.max_open_files:
            _, old = self._fds.popitem(last=False)
            self.io.close(old)

    def _forget(self, fid: int) -> None:
        if fid in self._commit:
            return  # its appends are still owed to the group commit: take_commit forgets it
        pending = self._pending.pop(fid, None)  # nothing refers to the file any more: its new bytes are moot
        if pending is not None:
            self._pending_bytes -= len(pending[1])
            self.full = self.full and bool(self._pending)
        fd = self._fds.pop(fid, None)
        if fd is not None:
            self.io.close(fd)
        self._blocks.pop(fid, None)

    @property
    def open_files(self) -> int:
        return len(self._fds)

    def close_all(self) -> None:
        for fd in self._fds.values():
            self.io.close(fd)
        self._fds.clear()
        self._blocks.clear()

    # -- writing

    def create(self, qid: int, *, commit: bool = False) -> int:
        """A new empty segment file for queue ``qid``; its id comes from the counter the manifest records. With
        ``commit``, the group commit makes its name durable (and syncs what is appended to it)."""
        fid = self.next_fid
        while fid in self.reserved:
            fid += 1
        qdir = self.queue_dir(qid)
        path = os.path.join(qdir, segment_name(fid))
        try:
            fd = self.io.open(path, create=True)
        except FileNotFoundError:
            self.io.mkdir(qdir)
            self.new_dirs.add(self.root)
            if commit:
                self._commit_dirs.add(self.root)
            fd = self.io.open(path, create=True)
        header = framing.SEGMENT_HEADER.pack(framing.SEGMENT_MAGIC, framing.FORMAT_VERSION, qid, fid)
        try:
            self.io.truncate(fd, 0)  # a leftover from a crashed run must not leak stale bytes
            self.io.pwrite(fd, header, 0)
        except OSError as error:
            self.io.close(fd)
            self.io.unlink(path)
            raise self._failure(error) from error
        self.next_fid = fid + 1
        self.files[fid] = [qid, len(header)]
        self.live_bytes += len(header)
        self.dirty.add(fid)
        self.new_dirs.add(qdir)
        if commit:
            self._commit_dirs.add(qdir)
            self._commit[fid] = path
        self._remember_fd(fid, fd)
        return fid

    def append_shared(self, data: bytes) -> tuple[int, int]:
        """Appends ``data`` (at most a ``segment_size``'s worth) to the current shared file, starting a new one when
        it would not fit whole; returns (file id, offset)."""
        fid = self.shared_fid
        if fid == 0 or self.files[fid][1] + len(data) > self.segment_size:
            fid = self.create(SHARED_QID)
            self.shared_refs[fid] = {}
            old, self.shared_fid = self.shared_fid, fid
            if old and self._unheld(old):
                self.kill(old)
        return fid, self.append(fid, data)

    def is_shared(self, fid: int) -> bool:
        entry = self.files.get(fid)
        return entry is not None and entry[0] == SHARED_QID

    def drop_unreferenced_shared(self) -> None:
        """After recovery: shared files no list refers to any more are dead."""
        for fid, (qid, _) in list(self.files.items()):
            if qid == SHARED_QID and self._unheld(fid) and fid != self.shared_fid:
                self.kill(fid)

    def ref_shared(self, fid: int, qid: int, owner: object) -> None:
        self.shared_refs.setdefault(fid, {})[qid] = owner

    def unref_shared(self, fid: int, qid: int) -> None:
        """List ``qid`` holds no chunk of shared file ``fid`` any more; the file dies with its last list."""
        refs = self.shared_refs.get(fid)
        if refs is None:
            return
        refs.pop(qid, None)
        if self._unheld(fid) and fid != self.shared_fid:
            self.kill(fid)

    def _unheld(self, fid: int) -> bool:
        """No list, object or cold entry, holds a chunk of shared file ``fid``."""
        return not self.shared_refs.get(fid) and fid not in self.shared_cold

    def freeze_shared(self, fid: int, qid: int, held: int) -> None:
        """List ``qid``, holding ``held`` bytes of shared file ``fid``, becomes a cold entry: counted, not named."""
        self.shared_refs[fid].pop(qid, None)
        self.count_cold(fid, held)

    def count_cold(self, fid: int, held: int) -> None:
        """One more cold list holds ``held`` bytes of shared file ``fid``."""
        cold = self.shared_cold.setdefault(fid, [0, 0])
        cold[0] += 1
        cold[1] += held

    def thaw_shared(self, fid: int, held: int) -> None:
        """A cold list holding ``held`` bytes of ``fid`` is an object again (``ref_shared`` names it)."""
        cold = self.shared_cold[fid]
        cold[0] -= 1
        cold[1] -= held
        if not cold[0]:
            del self.shared_cold[fid]

    def size(self, fid: int) -> int:
        return self.files[fid][1]

    def append(self, fid: int, data: bytes, *, commit: bool = False) -> int:
        """Appends ``data`` and returns the offset it starts at. A small append is buffered (see ``write_pending``);
        a failure to write raises, with the file and the buffer as they were before this call. With ``commit``,
        the group commit syncs it."""
        entry = self.files[fid]
        if commit and fid not in self._commit:
            self._commit[fid] = self.path(entry[0], fid)
        offset = entry[1]
        pending = self._pending.get(fid)
        if pending is not None and len(pending[1]) + len(data) > PENDING_LIMIT:
            self.write_pending(fid)
            pending = None
        if self._pending_bytes + len(data) > PENDING_TOTAL_LIMIT:
            self.write_pending()
            pending = None
        if len(data) >= PENDING_LIMIT:
            self._write(fid, data, offset)
        else:
            if pending is None:
                self._pending[fid] = (offset, bytearray(data))
            else:
                pending[1].extend(data)
            self._pending_bytes += len(data)
        entry[1] = offset + len(data)
        self.live_bytes += len(data)
        self.dirty.add(fid)
        return offset

    def _write(self, fid: int, data: bytes | bytearray, offset: int) -> None:
        fd = self.fd(fid)
        try:
            self.io.pwrite(fd, data, offset)
        except OSError as error:
            try:
                self.io.truncate(fd, offset)  # the file ends on a record boundary again
            except OSError:
                pass
            self._blocks.pop(fid, None)
            raise self._failure(error) from error

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def write_pending(self, fid: int | None = None) -> None:
        """Writes the buffered appends of ``fid`` (or of every file), one ``pwrite`` per file. What fails to be
        written stays buffered, reads are still served from it, and the error is raised: a full disk sets ``full``
        until a later call writes everything."""
        for pending_fid in list(self._pending) if fid is None else [fid]:
            if pending_fid not in self._pending:
                continue
            offset, data = self._pending[pending_fid]
            try:
                self._write(pending_fid, data, offset)
            except DiskFullError:
                self.full = True
                raise
            del self._pending[pending_fid]
            self._pending_bytes -= len(data)
        if not self._pending:
            self.full = False

    def owes_commit(self) -> bool:
        """Bytes the group commit must make durable are still buffered (a full disk refused them)."""
        return any(fid in self._commit for fid in self._pending)

    def take_commit(self) -> tuple[list[str], list[str]]:
        """After ``write_pending``: the files appended to and directories entered since the last call, for the group
        commit to sync before the journal records naming them count as durable."""
        paths, dirs = list(self._commit.values()), sorted(self._commit_dirs)
        gone = [fid for fid in self._commit if fid not in self.files]
        self._commit, self._commit_dirs = {}, set()
        for fid in gone:  # killed while its appends were owed: nothing reads it any more
            self._forget(fid)
        return paths, dirs

    def adopt(self, qid: int, fid: int) -> None:
        """Recovery: stream file ``fid``, created after the checkpoint and named by the journal, joins the store
        holding its header alone (``extend`` then accounts for the records replay finds in it)."""
        self.files[fid] = [qid, framing.SEGMENT_HEADER.size]
        self.live_bytes += framing.SEGMENT_HEADER.size
        self.next_fid = max(self.next_fid, fid + 1)
        self.dirty.add(fid)
        self.new_dirs.add(self.queue_dir(qid))

    def extend(self, fid: int, length: int) -> None:
        """Recovery: ``length`` bytes already in the file past its known size are records of its stream now."""
        self.files[fid][1] += length
        self.live_bytes += length
        self.dirty.add(fid)

    def cut(self, fid: int, size: int) -> None:
        """Recovery: the file ends at ``size`` (its known size) again; bytes past it were read, never counted."""
        fd = self.fd(fid)
        try:
            self.io.truncate(fd, size)
        except OSError as error:
            raise self._failure(error) from error
        self._blocks.pop(fid, None)
        self.dirty.add(fid)

    def kill(self, fid: int) -> None:
        """No chunk and no active pointer refers to ``fid`` any more: delete it after the next durable checkpoint."""
        qid, size = self.files.pop(fid)
        self.shared_refs.pop(fid, None)
        self.shared_cold.pop(fid, None)
        self.live_bytes -= size
        self.dead[fid] = (qid, size)
        self.dead_bytes += size
        self.dirty.discard(fid)
        self._forget(fid)

    def _failure(self, error: OSError) -> Exception:
        failure = _write_failure(error)
        if isinstance(failure, StorageWriteError) and self.on_write_error is not None:
            self.on_write_error(str(failure))
        return failure

    # -- reading

    def _block(self, fid: int, offset: int, length: int, backward: bool) -> tuple[bytes, int]:
        """Bytes holding [offset, offset+length), with the file offset of their first byte."""
        cached = self._blocks.get(fid)
        if cached is not None:
            base, data = cached
            if base <= offset and offset + length <= base + len(data):
                return data, base
        pending = self._pending.get(fid)
        if pending is not None and offset >= pending[0]:
            # A record is appended whole, so one starting in the buffer lies entirely in it. The copy stays valid
            # after the buffer is written (the bytes in the file are the same).
            start, data = pending[0], bytes(pending[1])
            self._remember_block(fid, start, data)
            return data, start
        if backward:
            start = min(offset, max(0, offset + length - READ_AHEAD))
            size = offset + length - start
        else:
            start, size = offset, max(length, READ_AHEAD)
        try:
            data = self.io.pread(self.fd(fid), size, start)
        except OSError as error:
            raise StorageReadError(self.path(self.files[fid][0], fid), start, error) from error
        self._remember_block(fid, start, data)
        return data, start

    def _remember_block(self, fid: int, start: int, data: bytes) -> None:
        self._blocks[fid] = (start, data)
        self._blocks.move_to_end(fid)
        if len(self._blocks) > CACHED_BLOCKS:
            self._blocks.popitem(last=False)

    def read_forward(self, fid: int, offset: int, limit: int, want_value: bool = True) -> tuple[bytes | None, int]:
        """The value of the record starting at ``offset`` (within ``limit``) and the offset after it."""
        data, base = self._block(fid, offset, framing.HEAD_SIZE, False)
        rel = offset - base
        if rel + framing.HEAD_SIZE <= len(data):
            (length,) = framing.TAIL.unpack_from(data, rel)
            if rel + length + framing.OVERHEAD > len(data) and offset + length + framing.OVERHEAD <= limit:
                data, base = self._block(fid, offset, length + framing.OVERHEAD, False)
                rel = offset - base
        try:
            _, payload_start, end = framing.parse_forward(data, rel, min(len(data), limit - base))
        except framing.FramingError as error:
            raise CorruptionError(self.path(self.files[fid][0], fid), offset, error.reason) from None
        value = data[payload_start : end - framing.TAIL_SIZE] if want_value else None
        return value, base + end

    def read_many_forward(self, fid: int, offset: int, limit: int, count: int) -> tuple[list[bytes], int]:
        """The values of up to ``count`` (at least one) consecutive records from ``offset`` (within ``limit``) and the
        offset after them: those the cached block holds whole, checked in one call."""
        data, base = self._block(fid, offset, framing.HEAD_SIZE, False)
        values, after = framing.scan_records(data, offset - base, limit - base, count)
        if values:
            return values, base + after
        value, after = self.read_forward(fid, offset, limit)  # a record past the block, or one that fails a check
        return [value], after  # type: ignore[list-item]

    def read_many_backward(self, fid: int, end: int, low: int, count: int) -> tuple[list[bytes], int]:
        """The values of up to ``count`` (at least one) consecutive records ending at ``end`` (not before ``low``),
        the last first, and the offset the last one read starts at: those the cached block holds whole, checked in
        one call."""
        data, base = self._block(fid, end - framing.TAIL_SIZE, framing.TAIL_SIZE, True)
        values, start = framing.scan_records_backward(data, end - base, max(0, low - base), count)
        if values:
            return values, base + start
        value, start = self.read_backward(fid, end, low)  # a record reaching past the block, or a bad one
        return [value], start  # type: ignore[list-item]

    def read_backward(self, fid: int, end: int, low: int, want_value: bool = True) -> tuple[bytes | None, int]:
        """The value of the record ending at ``end`` (not before ``low``) and the offset it starts at."""
        data, base = self._block(fid, end - framing.TAIL_SIZE, framing.TAIL_SIZE, True)
        (length,) = framing.TAIL.unpack_from(data, end - framing.TAIL_SIZE - base)
        start = end - length - framing.OVERHEAD
        if start < base and start >= low:
            data, base = self._block(fid, start, end - start, True)
        try:
            _, payload_start, rec_start = framing.parse_backward(data, end - base, max(0, low - base))
        except framing.FramingError as error:
            raise CorruptionError(self.path(self.files[fid][0], fid), end, error.reason) from None
        value = data[payload_start : end - base - framing.TAIL_SIZE] if want_value else None
        return value, base + rec_start

    # -- checkpoint support

    def take_snapshot_sets(self) -> tuple[list[str], list[str], dict[int, tuple[int, int]]]:
        """Paths to sync, directories to sync and dead files, as of now; later changes go to the next checkpoint."""
        dirty = [self.path(self.files[fid][0], fid) for fid in self.dirty if fid in self.files]
        dirs = sorted(self.new_dirs)
        dead = self.dead
        self.dirty, self.new_dirs, self.dead = set(), set(), {}
        return dirty, dirs, dead

    def remove_dead(self, dead: dict[int, tuple[int, int]]) -> set[int]:
        """Unlinks files a durable manifest no longer refers to; returns the queues that lost files."""
        queues = set()
        for fid, (qid, size) in dead.items():
            try:
                self.io.unlink(self.path(qid, fid))
            except FileNotFoundError:
                pass
            self.dead_bytes -= size
            queues.add(qid)
        return queues


def _write_failure(error: OSError) -> Exception:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError("no space left on device")
    return StorageWriteError(f"write failed: {error}")
