"""The storage engine: catalog of keys, shared journal, per-queue segment files, checkpoints and recovery.

Threading: everything runs on the server's loop thread except ``sync`` and ``run_checkpoint``, which the server
calls from worker threads (at most one of each at a time). See docs/storage.md for the design.
"""

from __future__ import annotations

import logging
import os
import resource
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from respq.storage import framing, journal, manifest
from respq.storage.catalog import CatalogEntry
from respq.storage.errors import (
    CorruptionError,
    DirectoryLockedError,
    DiskFullError,
    StorageError,
    StorageWriteError,
    TornReference,
)
from respq.storage.fileio import DEFAULT_IO, FileIO
from respq.storage.listlog import (
    BACKLOG_VALUES,
    COLD_HEAD,
    COLD_IN_JOURNAL,
    COLD_IN_SEGMENTS,
    ListLog,
    Side,
    cold_expire,
    cold_files,
    cold_kind,
    compact_shared,
    push_each,
    push_growth,
)
from respq.storage.segments import SegmentStore, parse_segment_name
from respq.storage.streamlog import (
    LISTPACK_MAX_SIZE,
    NODE_MAX_BYTES,
    NODE_MAX_ENTRIES,
    PEL_BYTES_PER_ENTRY,
    XADD_AT,
    StreamLog,
)

POLICIES = ("always", "everysec", "no")
TYPE_CODES = {"list": 1, "stream": 2}
JOURNAL_DIR = "journal"
LOCK_NAME = "LOCK"

CREATE_OP = struct.Struct("<HBQ")  # db, type, queue id; then the key
DB_OP = struct.Struct("<H")  # db; then the key (delete) or nothing (flushdb)
EXPIRE_OP = struct.Struct("<HBq")  # db, has expiry, expiry ms; then the key
RENAME_OP = struct.Struct("<HI")  # db, source length; then source and destination
STREAM_NODES_OP = struct.Struct("<qq")  # stream-node-max-entries, and the byte limit as set_stream_node_limits keeps it
TWO_DB_OP = struct.Struct("<HH")  # swapdb a b / move source destination (then the key)
# What settling one list costs beyond its values, in values: opening (often creating) its segment file.
SETTLE_LIST_COST = 50

_logger = logging.getLogger("respq.storage")


def _default_log(level: str, message: str) -> None:
    _logger.log(
        logging.getLevelName(level.upper()) if level.upper() in ("WARNING", "ERROR") else logging.INFO,
        message,
    )


def _unheld_refs() -> int:
    """What ``sys.getrefcount`` says of a dict's value held by a local variable and nothing else: the checkpoint's
    loop sees this count (plus one per shared file naming the list) for a list object only the catalog holds.
    Measured, not assumed: interpreters differ in whether the call's own argument counts."""
    catalog = {b"key": CatalogEntry()}
    entry = catalog[b"key"]
    return sys.getrefcount(entry)


UNHELD_REFS = _unheld_refs()
KeyEntry = ListLog | StreamLog  # a key's catalog entry is its list or stream itself (storage/catalog.py)


@dataclass
class Checkpoint:
    """What a checkpoint must make durable, captured at one instant on the loop thread."""

    manifest_blob: bytes
    journal_seq: int
    journal_lsn: int
    dirty_paths: list[str]
    dirty_fids: set[int]
    directories: list[str]
    dead: dict[int, tuple[int, int]]
    stream_bytes: int = 0  # stream entries appended since the previous checkpoint (see checkpoint_due)
    done: bool = False
    error: BaseException | None = field(default=None, repr=False)


class Engine:
    """All keys of one data directory. Create with ``Engine.open``."""

    def __init__(
        self,
        path: str,
        io: FileIO,
        lock_fd: int,
        *,
        appendfsync: str,
        databases: int,
        segment_size: int,
        max_open_files: int,
        checkpoint_bytes: int,
        maxdisk: int,
        log: Callable[[str, str], None],
        stream_node_max_entries: int = NODE_MAX_ENTRIES,
        stream_node_max_bytes: int = NODE_MAX_BYTES,
    ) -> None:
        if appendfsync not in POLICIES:
            raise ValueError(f"appendfsync must be one of {', '.join(POLICIES)}")
        self.path = path
        self.appendfsync = appendfsync
        self.databases = databases
        self.checkpoint_bytes = checkpoint_bytes
        self.maxdisk = maxdisk
        self.stream_node_entries = self.stream_node_bytes = 0
        # The limits replay would assume at this point of the journal (the manifest gives them at a checkpoint), and
        # whether the current ones are journaled: the first stream entry appended after a change journals them.
        self._journaled_stream_nodes = (NODE_MAX_ENTRIES, NODE_MAX_BYTES)
        self._stream_nodes_noted = False
        self.set_stream_node_limits(stream_node_max_entries, stream_node_max_bytes)
        self.write_error: str | None = None
        self._io = io
        self._lock_fd: int | None = lock_fd
        self._log_cb = log
        # Segment headers eat into the size: keep a floor so every segment holds at least a few records.
        self._store = SegmentStore(io, path, segment_size=max(segment_size, 4096), max_open_files=max_open_files)
        self._store.on_write_error = self._disable_writes
        self._journal = journal.Journal(io, os.path.join(path, JOURNAL_DIR))
        self._dbs: list[dict[bytes, KeyEntry | bytes]] = [{} for _ in range(databases)]  # bytes: a cold list
        # During recovery only: replayed records name queue ids. A list loaded cold is named by (db, key) until the
        # first record naming it turns it into an object (a replayed rename, move or swap does so first).
        self._by_qid: dict[int, KeyEntry | tuple[int, bytes]] | None = None
        self._resident: dict[int, ListLog] = {}  # lists holding values that live only in the journal
        # Lists pushed to since the last checkpoint: in use, so it leaves them objects (freezing a list that is
        # pushed to again at once costs a freeze and a thaw per list per checkpoint, for nothing).
        self._pushed: set[int] = set()
        # The keys settle_some still has to look at for cold entries holding a journal value, taken once the
        # resident lists are settled (per database; None until then, and again after each checkpoint).
        self._cold_scan: list[tuple[int, list[bytes]]] | None = None
        self.journaled_values = 0  # values ever pushed into the journal alone (paces settling ahead of checkpoints)
        self.stream_bytes = 0  # stream entries appended since the last checkpoint began: recovery would read them
        self._next_qid = 1
        self._replaying = False
        self._atomic_depth = 0
        self._batch: list[tuple[int, bytes]] = []
        self._checkpoint_running = False
        self._checkpoint_lsn = 0
        self._last_checkpoint_time = 0.0
        self._closed = False
        # Files open list snapshots still read (LRANGE replies being streamed): checkpoints leave them on disk.
        self._pinned_segments: Counter[int] = Counter()
        self._pinned_journals: Counter[int] = Counter()
        self._deferred_dead: dict[int, tuple[int, int]] = {}  # retired by a checkpoint while pinned
        self._deferred_bytes = 0
        # Stream files (and directories) written since the last sync, gathered by each flush: the sync makes them
        # durable before the journal records naming their entries (Journal.before_sync).
        self._commit_lock = threading.Lock()
        self._commit_paths: set[str] = set()
        self._commit_dirs: set[str] = set()
        self._journal.before_sync = self._sync_stream_files
        self._journal.before_sync_due = self._stream_files_due
        # Streams with entries appended since their last XADD_AT record (StreamLog._append), by queue id.
        self._unnoted: dict[int, StreamLog] = {}
        # What the server waits on is a position: journal bytes plus stream bytes ever appended, since an XADD may
        # write no journal record at all. (journal LSN, position) as of the last flush, and the durable position.
        self._stream_appended = 0
        self._flushed = (0, 0)
        self._durable = 0
        # During recovery only: (queue id, file id) -> size on disk of every stream file, and of every file no
        # manifest names, kept whole until replay has read the entries the journal says are in them.
        self._on_disk: dict[tuple[int, int], int] = {}
        self._whole_entries = False  # recovery replayed a journal of an earlier build (see _replaying_whole_entries)

    # -- opening and closing

    @classmethod
    def open(
        cls,
        path: str,
        *,
        appendfsync: str = "always",
        databases: int = 16,
        segment_size: int = 4 << 20,
        max_open_files: int = 256,
        checkpoint_bytes: int = 64 << 20,
        maxdisk: int = 0,
        log: Callable[[str, str], None] = _default_log,
        io: FileIO | None = None,
        stream_node_max_entries: int = NODE_MAX_ENTRIES,
        stream_node_max_bytes: int = NODE_MAX_BYTES,
    ) -> Engine:
        """Locks ``path`` (created if missing), recovers its contents and returns the engine. Blocking."""
        io = io or DEFAULT_IO
        io.mkdir(path)
        lock_fd = io.lock(os.path.join(path, LOCK_NAME))
        if lock_fd is None:
            raise DirectoryLockedError(f"{path} is in use by another process")
        try:
            engine = cls(
                path,
                io,
                lock_fd,
                appendfsync=appendfsync,
                databases=databases,
                segment_size=segment_size,
                max_open_files=max_open_files,
                checkpoint_bytes=checkpoint_bytes,
                maxdisk=maxdisk,
                log=log,
                stream_node_max_entries=stream_node_max_entries,
                stream_node_max_bytes=stream_node_max_bytes,
            )
            engine._recover()
        except BaseException:
            io.close(lock_fd)
            raise
        return engine

    def set_stream_node_limits(self, max_entries: int, max_bytes: int) -> None:
        """stream-node-max-entries and stream-node-max-bytes: when a stream entry starts a new listpack
        (StreamLog._place). As in Redis, a byte limit of 0, or one above what a listpack may hold, means that much."""
        self.stream_node_entries = max_entries
        self.stream_node_bytes = max_bytes if 0 < max_bytes <= LISTPACK_MAX_SIZE else LISTPACK_MAX_SIZE
        self._stream_nodes_noted = False

    def _note_stream_nodes(self) -> None:
        """Journals the limits ahead of the stream entries appended under them, unless replay would assume them."""
        limits = (self.stream_node_entries, self.stream_node_bytes)
        if not self._replaying and limits != self._journaled_stream_nodes:
            self._log(journal.OP_STREAM_NODES, STREAM_NODES_OP.pack(*limits))
            self._journaled_stream_nodes = limits
        self._stream_nodes_noted = True

    def close(self) -> None:
        """Clean shutdown: everything is checkpointed, so the next open replays nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.write_error is None and not self._checkpoint_running:
                self.checkpoint()
        finally:
            self._journal.close()
            self._store.close_all()
            if self._lock_fd is not None:
                self._io.close(self._lock_fd)
                self._lock_fd = None

    def abandon(self) -> None:
        """Drops descriptors and the lock as a crash would (crash tests); nothing more is written or synced."""
        self._closed = True
        self._journal.close()
        self._store.close_all()
        if self._lock_fd is not None:
            self._io.close(self._lock_fd)
            self._lock_fd = None

    # -- catalog

    def get(self, db: int, key: bytes) -> KeyEntry | None:
        entry = self._dbs[db].get(key)
        if type(entry) is bytes:  # a cold list: an object again from now on
            entry = self._dbs[db][key] = ListLog.thaw(self, entry)
            if self._by_qid is not None:
                self._by_qid[entry.qid] = entry
        return entry

    def peek(self, db: int, key: bytes) -> tuple[str, int | None] | None:
        """The key's type and expiry, without turning a cold list into objects (key iteration)."""
        entry = self._dbs[db].get(key)
        if entry is None:
            return None
        if type(entry) is bytes:
            return "list", cold_expire(entry)
        return entry.type, entry.expire_ms

    def empty_lists(self, db: int) -> list[bytes]:
        """Keys of lists holding nothing (left by a crash that cut their first push); a cold list never is one."""
        return [key for key, entry in self._dbs[db].items() if type(entry) is ListLog and not len(entry)]

    def _thaw_holding(self, fids: set[int]) -> None:
        """Cold lists holding a chunk of one of ``fids`` become objects."""
        for db, keyspace in enumerate(self._dbs):
            for key in [
                key
                for key, entry in keyspace.items()
                if type(entry) is bytes and cold_kind(entry) == COLD_IN_SEGMENTS and cold_files(entry) & fids
            ]:
                self.get(db, key)

    def keys(self, db: int) -> Iterator[bytes]:
        return iter(list(self._dbs[db]))

    def dbsize(self, db: int) -> int:
        return len(self._dbs[db])

    def create_list(self, db: int, key: bytes) -> ListLog:
        """A new empty list under ``key`` (which must not exist)."""
        self._before_write(len(key) + 64)
        qid = self._next_qid
        log = self._create(db, key, TYPE_CODES["list"], qid)
        self._log(journal.OP_CREATE, CREATE_OP.pack(db, TYPE_CODES["list"], qid) + key)
        return log  # type: ignore[return-value]

    def push_each(
        self, db: int, side: Side, pushes: list[tuple[bytes, list[bytes]]], *, checked: bool = False
    ) -> list[int] | None:
        """Pushes of ``(key, values)`` at ``side`` in order, creating missing lists (a key may come more than once):
        each list's length after its push. Expiry and types are the caller's: unless it has ``checked`` the keys
        (expired what was due, left out keys of other types), None, with nothing changed, when a key holds
        anything but a list without an expiry. Refused as a whole, before anything changes, for a full disk; pushes
        that also write segments (see ``_push_one_by_one``) may stop after some, returning fewer lengths."""
        keyspace = self._dbs[db]
        get = keyspace.get
        logs = [get(key) for key, _ in pushes]
        for log in logs:
            if type(log) is not ListLog or log.expire_ms is not None or log._length >= BACKLOG_VALUES:  # type: ignore[union-attr]
                break
        else:  # the common case, in one pass: every key an existing list, none a backlog or with an expiry
            if not self._atomic_depth:
                self._before_write(sum(push_growth(values) for _, values in pushes) if self.maxdisk else 0)
                return push_each(self, side, logs, [values for _, values in pushes])  # type: ignore[arg-type]
        if not all(type(log) is ListLog and log.expire_ms is None for log in logs):  # type: ignore[union-attr]
            for index, (key, _) in enumerate(pushes):
                log = logs[index]
                if type(log) is bytes:
                    log = logs[index] = self.get(db, key)
                if log is not None and not checked and (type(log) is not ListLog or log.expire_ms is not None):
                    return None
        if self._atomic_depth or any(log is not None and log._length >= BACKLOG_VALUES for log in logs):  # type: ignore[union-attr]
            return self._push_one_by_one(db, side, pushes)
        missing: list[bytes] = []
        if None in logs:
            missing = [key for key in dict.fromkeys(key for key, _ in pushes) if key not in keyspace]
        growth = 0
        if self.maxdisk:  # as create_list and ListLog.push count it
            growth = sum(len(key) + 64 for key in missing)
            growth += sum(push_growth(values) for _, values in pushes)
        self._before_write(growth)
        if missing:
            for key in missing:
                self.create_list(db, key)
            logs = [keyspace[key] for key, _ in pushes]
        lengths = push_each(self, side, logs, [values for _, values in pushes])  # type: ignore[arg-type]
        for key in missing:  # a new list holding one value stays cold until it is used again (idle queues)
            log = keyspace[key]
            if log._length == 1:  # type: ignore[union-attr]
                cold = log.freeze()  # type: ignore[union-attr]
                if cold is not None:
                    keyspace[key] = cold  # type: ignore[assignment]
                    self._pushed.discard(log.qid)  # type: ignore[union-attr]
        return lengths

    def _push_one_by_one(self, db: int, side: Side, pushes: list[tuple[bytes, list[bytes]]]) -> list[int]:
        """``push_each`` as separate pushes (inside an atomic block, or onto a backlog list, a push writes a segment
        too, which a full disk can refuse half-way): a storage failure ends the run before the call it hit, unless it
        is the first (then it is raised), and the lengths of the pushes done are returned."""
        lengths: list[int] = []
        for key, values in pushes:
            try:
                log = self.get(db, key)
                if log is None:
                    log = self.create_list(db, key)
                lengths.append(log.push(side, values))  # type: ignore[union-attr]
            except StorageError:
                if not lengths:
                    raise
                break
        return lengths

    def create_stream(self, db: int, key: bytes) -> StreamLog:
        """A new empty stream under ``key`` (which must not exist)."""
        self._before_write(len(key) + 64)
        qid = self._next_qid
        log = self._create(db, key, TYPE_CODES["stream"], qid)
        self._log(journal.OP_CREATE, CREATE_OP.pack(db, TYPE_CODES["stream"], qid) + key)
        return log  # type: ignore[return-value]

    def _create(self, db: int, key: bytes, type_code: int, qid: int) -> KeyEntry:
        if key in self._dbs[db]:
            raise KeyError(f"key {key!r} already exists in db {db}")
        log: ListLog | StreamLog
        if type_code == TYPE_CODES["list"]:
            log = ListLog(self, qid)
        elif type_code == TYPE_CODES["stream"]:
            log = StreamLog(self, qid)
        else:
            raise ValueError(f"unsupported key type {type_code}")
        self._dbs[db][key] = log
        if self._by_qid is not None:
            self._by_qid[qid] = log
        self._next_qid = max(self._next_qid, qid + 1)
        return log

    def delete(self, db: int, key: bytes) -> bool:
        if key not in self._dbs[db]:
            return False
        self._before_write(0)
        self._delete(db, key)
        self._log(journal.OP_DELETE, DB_OP.pack(db) + key)
        return True

    def _delete(self, db: int, key: bytes) -> None:
        self._drop(self._dbs[db].pop(key))

    def _drop(self, log: KeyEntry | bytes) -> None:
        if type(log) is bytes:
            log = ListLog.thaw(self, log)  # it lets go of its files like any list
        if self._by_qid is not None:
            self._by_qid.pop(log.qid, None)
        log._drop_all()

    def rename(self, db: int, src: bytes, dst: bytes) -> None:
        """Moves ``src`` to ``dst`` (replacing it); KeyError if ``src`` is missing."""
        if src not in self._dbs[db]:
            raise KeyError(src)
        if src == dst:
            return
        self._before_write(len(src) + len(dst))
        self._rename(db, src, dst)
        self._log(journal.OP_RENAME, RENAME_OP.pack(db, len(src)) + src + dst)

    def _rename(self, db: int, src: bytes, dst: bytes) -> None:
        keyspace = self._dbs[db]
        entry = keyspace.pop(src)
        replaced = keyspace.pop(dst, None)
        if replaced is not None:
            self._drop(replaced)
        keyspace[dst] = entry

    def set_expire(self, db: int, key: bytes, expire_ms: int | None) -> None:
        """Absolute unix time in ms, or None to persist; KeyError if ``key`` is missing."""
        if key not in self._dbs[db]:
            raise KeyError(key)
        self._before_write(0)
        self.get(db, key).expire_ms = expire_ms  # type: ignore[union-attr]
        self._log(journal.OP_EXPIRE, EXPIRE_OP.pack(db, expire_ms is not None, expire_ms or 0) + key)

    def flushdb(self, db: int) -> None:
        self._before_write(0)
        self._flushdb(db)
        self._log(journal.OP_FLUSHDB, DB_OP.pack(db))

    def _flushdb(self, db: int) -> None:
        keyspace, self._dbs[db] = self._dbs[db], {}
        for entry in keyspace.values():
            self._drop(entry)

    def flushall(self) -> None:
        self._before_write(0)
        for db in range(self.databases):
            self._flushdb(db)
        self._log(journal.OP_FLUSHALL, b"")

    def swapdb(self, a: int, b: int) -> None:
        self._before_write(0)
        self._dbs[a], self._dbs[b] = self._dbs[b], self._dbs[a]
        self._log(journal.OP_SWAPDB, TWO_DB_OP.pack(a, b))

    def move(self, src_db: int, dst_db: int, key: bytes) -> bool:
        """MOVE: False if ``key`` is missing in ``src_db`` or already present in ``dst_db``."""
        if key not in self._dbs[src_db] or key in self._dbs[dst_db] or src_db == dst_db:
            return False
        self._before_write(0)
        self._dbs[dst_db][key] = self._dbs[src_db].pop(key)
        self._log(journal.OP_MOVE, TWO_DB_OP.pack(src_db, dst_db) + key)
        return True

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Every operation inside becomes one journal record: after a crash all of them happened or none."""
        self._atomic_depth += 1
        try:
            yield
        finally:
            self._atomic_depth -= 1
            if not self._atomic_depth and self._batch:
                ops, self._batch = self._batch, []
                if len(ops) == 1:
                    self._journal.append(*ops[0])
                else:
                    self._journal.append(journal.OP_BATCH, journal.encode_batch(ops))

    # -- the write path shared by every mutation

    def _before_write(self, growth: int) -> None:
        """Refuses a mutation up front, before anything of it is applied."""
        if self._replaying:
            return
        if self.write_error is not None:
            raise StorageWriteError(f"writes are disabled until restart: {self.write_error}")
        if self._journal.blocked:
            self._flush_journal()  # still full: raises DiskFullError again
        if self._store.full:
            self._store.write_pending()  # likewise
        if self.maxdisk and growth and self._disk_used() + growth > self.maxdisk:
            raise DiskFullError("maxdisk reached")

    def _log(self, op: int, payload: bytes) -> None:
        if self._replaying:
            return
        if self._unnoted:
            self._note_appends()
        self._journal_record(op, payload)

    def _log_at(self, op: int, payload: bytes) -> int:
        """``_log`` outside atomic blocks and replay, returning the record's LSN (where its values can be read)."""
        if self._unnoted:
            self._note_appends()
        return self._journal.append(op, payload)

    def _log_many_at(self, op: int, payloads: list[bytes]) -> int:
        """``_log_at`` of each payload, in order, framed in one go; returns the first one's LSN."""
        if self._unnoted:
            self._note_appends()
        return self._journal.append_many(op, payloads)

    def _journal_record(self, op: int, payload: bytes) -> None:
        if self._atomic_depth:
            self._batch.append((op, payload))
        else:
            self._journal.append(op, payload)

    def _journal_clean(self) -> bool:
        """Everything journaled so far is durable, and nothing waits to be (see StreamLog._append)."""
        j = self._journal
        return not (j.buffer or self._atomic_depth or self._replaying or j.blocked) and j.durable_lsn >= j.flushed_lsn

    def _note_appends(self) -> None:
        """Journals where the stream entries appended since each stream's last XADD_AT record are, before any other
        record (replay must meet them first), at a checkpoint, when a file is started and inside atomic blocks. A
        pass of XADDs alone writes no journal record: its entries are synced in their segment and found there."""
        unnoted, self._unnoted = self._unnoted, {}
        for stream in unnoted.values():
            stream.write_note()

    def _log_many(self, op: int, payloads: list[bytes]) -> None:
        """``_log`` of each payload, in order, framed in one go."""
        if self._replaying:
            return
        if self._unnoted:
            self._note_appends()
        if self._atomic_depth:
            self._batch += [(op, payload) for payload in payloads]
        else:
            self._journal.append_many(op, payloads)

    # -- durability

    def flush(self) -> int:
        """Writes buffered segment bytes, then buffered journal records (one write per file), and returns the LSN
        that covers the records. Segment bytes the disk has no room for stay buffered: the journal holds their
        operations, reads are served from the buffer, and new writes are refused until they are written."""
        if self.write_error is not None:
            raise StorageWriteError(f"writes are disabled until restart: {self.write_error}")
        store = self._store
        try:
            store.write_pending()
        except DiskFullError:
            if store.owes_commit():
                raise  # stream entries live only in their segment: their journal records wait with them
        paths, dirs = store.take_commit()
        with self._commit_lock:  # owed a sync from now on, even if the journal's write below is refused
            self._commit_paths.update(paths)
            self._commit_dirs.update(dirs)
        journal_lsn = self._flush_journal()
        position = journal_lsn + self._stream_appended
        with self._commit_lock:
            self._flushed = (journal_lsn, position)
        return position

    def _stream_files_due(self) -> bool:
        with self._commit_lock:
            return bool(self._commit_paths or self._commit_dirs)

    def _sync_stream_files(self) -> None:
        """Sync thread, before the journal's fdatasync: the stream files flushed since the last sync, and the
        directories naming new ones (a missing one would leave its journal records pointing at nothing)."""
        with self._commit_lock:
            paths, dirs = self._commit_paths, self._commit_dirs
            self._commit_paths, self._commit_dirs = set(), set()
        io = self._io
        for path in paths:
            try:
                fd = io.open(path, write=False)
            except FileNotFoundError:
                continue  # deleted after a durable checkpoint stopped needing it
            try:
                io.fdatasync(fd)
            finally:
                io.close(fd)
        for directory in dirs:
            try:
                io.fsync_dir(directory)
            except FileNotFoundError:
                continue

    def _flush_journal(self) -> int:
        try:
            return self._journal.flush()
        except StorageWriteError as error:
            self._disable_writes(str(error))
            raise

    def _disable_writes(self, reason: str) -> None:
        """After an I/O error other than a full disk the file's state is unknown: only a restart re-reads it."""
        if self.write_error is None:
            self.write_error = reason
            self._log_cb("warning", f"writes disabled until restart: {reason}")

    # Positions (``flush``'s result, what ``sync`` takes): journal bytes plus stream bytes ever appended.

    def durable_lsn(self) -> int:
        return self._durable

    def flushed_lsn(self) -> int:
        return self._flushed[1]

    def pending_lsn(self) -> int:
        """The position that will cover every mutation made so far, once flushed (no I/O)."""
        return self._journal.flushed_lsn + self._journal.pending + self._stream_appended

    def sync(self, lsn: int) -> None:
        """Worker thread: returns when everything up to position ``lsn`` (from ``flush``) is on disk. A failure
        disables writes for good."""
        with self._commit_lock:
            journal_lsn, position = self._flushed
        try:
            self._journal.sync(journal_lsn)
        except OSError as error:
            self.write_error = f"fsync of the journal failed: {error}"
            raise StorageWriteError(self.write_error) from error
        with self._commit_lock:
            self._durable = max(self._durable, position)

    @property
    def syncs_total(self) -> int:
        return self._journal.syncs_total

    def checkpoint_due(self) -> bool:
        if self._checkpoint_running or self.write_error is not None:
            return False
        dead_bytes = self._store.dead_bytes - self._deferred_bytes  # a checkpoint cannot delete pinned files
        # The journal names stream entries rather than holding them: recovery reads those back as well.
        replayed = self._journal_bytes() + self.stream_bytes
        return replayed >= self.checkpoint_bytes or dead_bytes >= self.checkpoint_bytes

    def begin_checkpoint(self) -> Checkpoint:
        """Loop thread: rotates the journal and captures the state it must make durable (O(queues + chunks))."""
        if self._checkpoint_running:
            raise StorageError("a checkpoint is already running")
        if self._atomic_depth:
            raise StorageError("cannot checkpoint inside an atomic block")
        compact_shared(self)
        self._settle_all()
        self._note_appends()  # in the file being closed: if this checkpoint fails, replay needs them before the next
        self._store.write_pending()  # the checkpoint syncs the files: what they must hold has to be in them
        self._journal.drop_readers()  # files replayed at start-up: nothing refers to them any more
        self.flush()
        lsn = self._journal.flushed_lsn
        seq = self._journal.seq + 1
        self._journal.start_file(seq, lsn)
        blob = self._manifest_blob(seq, lsn)
        dirty_fids = set(self._store.dirty)
        dirty, directories, dead = self._store.take_snapshot_sets()
        directories.append(self._journal.directory)
        self._checkpoint_running = True
        stream_bytes, self.stream_bytes = self.stream_bytes, 0
        return Checkpoint(blob, seq, lsn, dirty, dirty_fids, directories, dead, stream_bytes)

    def settle_some(self, budget: int) -> bool:
        """Copies about ``budget`` journal-resident values into segments, ahead of a checkpoint, so that
        ``begin_checkpoint`` (which settles whatever is left at once) stays short. True while more remain."""
        while self._resident and budget > 0:
            qid, log = next(iter(self._resident.items()))
            before = len(log)
            if not log.settle(budget):
                return True  # the budget ran out inside this list; it stays registered
            budget -= before + SETTLE_LIST_COST
            self._resident.pop(qid, None)
        if budget > 0 and self._cold_scan is None:
            self._cold_scan = [(db, list(keyspace)) for db, keyspace in enumerate(self._dbs) if keyspace]
        while budget > 0 and self._cold_scan:
            db, keys = self._cold_scan[-1]
            if not keys:
                self._cold_scan.pop()
                continue
            budget -= 1 + SETTLE_LIST_COST * self._settle_cold(db, keys.pop())
        return bool(self._resident) or bool(self._cold_scan)

    def _settle_all(self) -> None:
        while self._resident:
            next(iter(self._resident.values())).settle()  # unregisters itself once done
        for db, keyspace in enumerate(self._dbs):
            for key in [key for key, e in keyspace.items() if type(e) is bytes and cold_kind(e) == COLD_IN_JOURNAL]:
                self._settle_cold(db, key)
        self._cold_scan = None

    def _settle_cold(self, db: int, key: bytes) -> bool:
        """If ``key`` is a cold list holding a journal value, copies it to a segment, the list staying cold (one
        list at a time, so that a burst of them never costs their objects all at once); True if it was."""
        keyspace = self._dbs[db]
        entry = keyspace.get(key)
        if type(entry) is not bytes or cold_kind(entry) != COLD_IN_JOURNAL:
            return False
        log = self.get(db, key)
        log.settle()  # type: ignore[union-attr]
        keyspace[key] = log.freeze() or log  # type: ignore[union-attr]
        return True

    def run_checkpoint(self, cp: Checkpoint) -> None:
        """Worker thread: syncs dirtied segments and directories, then replaces the manifest atomically."""
        io = self._io
        try:
            # The journal file begin_checkpoint rotated away from may end in unsynced records; once the new file's
            # name is durable (the directory sync below) that tail must be too, or recovery finds a gap before it.
            self._journal.sync(cp.journal_lsn)
            for path in cp.dirty_paths:
                fd = io.open(path, write=False)
                try:
                    io.fdatasync(fd)
                finally:
                    io.close(fd)
            for directory in cp.directories:
                io.fsync_dir(directory)
            manifest.write(io, self.path, cp.manifest_blob)
        except OSError as error:
            cp.error = error
            self.write_error = f"checkpoint failed: {error}"
            raise StorageWriteError(self.write_error) from error
        cp.done = True

    def finish_checkpoint(self, cp: Checkpoint) -> None:
        """Loop thread: with the manifest durable, drops what it no longer needs (old journals, dead segments)."""
        self._checkpoint_running = False
        if not cp.done:
            # Nothing was released: the old manifest and journals still describe everything.
            self._store.dead.update(cp.dead)
            self._store.dirty |= {fid for fid in cp.dirty_fids if fid in self._store.files}
            self._store.new_dirs.update(cp.directories)
            self.stream_bytes += cp.stream_bytes
            return
        dead = cp.dead
        if self._pinned_segments:
            dead = {}
            for fid, entry in cp.dead.items():
                if fid in self._pinned_segments:
                    self._deferred_dead[fid] = entry
                    self._deferred_bytes += entry[1]
                else:
                    dead[fid] = entry
        for qid in self._store.remove_dead(dead):
            try:
                self._io.rmdir(self._store.queue_dir(qid))  # the queue is gone, or holds no segment file now
            except OSError:
                pass  # it still has files (or files that died after this checkpoint began, or pinned ones)
        for name in self._io.listdir(self._journal.directory):
            seq = journal.parse_journal_name(name)
            if seq is not None and seq < cp.journal_seq and seq not in self._pinned_journals:
                self._io.unlink(os.path.join(self._journal.directory, name))  # a pinned one goes at a later one
        self._journal.retire_before(cp.journal_lsn)
        self._checkpoint_lsn = cp.journal_lsn
        self._last_checkpoint_time = time.time()

    def _pin_files(self, segments: list[int], journals: list[int]) -> None:
        """A list snapshot reads these files until it is closed: no checkpoint may delete them meanwhile."""
        self._pinned_segments.update(segments)
        self._pinned_journals.update(journals)

    def _unpin_files(self, segments: list[int], journals: list[int]) -> None:
        """A snapshot is closed. Files a checkpoint retired meanwhile are dead again: the next checkpoint deletes
        them (no manifest names them, and a restart deletes files the manifest does not name anyway)."""
        self._pinned_segments.subtract(segments)
        self._pinned_journals.subtract(journals)
        for fid in set(segments):
            if self._pinned_segments[fid] <= 0:
                del self._pinned_segments[fid]
                entry = self._deferred_dead.pop(fid, None)
                if entry is not None:
                    self._deferred_bytes -= entry[1]
                    self._store.dead[fid] = entry
        for seq in set(journals):
            if self._pinned_journals[seq] <= 0:
                del self._pinned_journals[seq]

    def checkpoint(self) -> None:
        """All three checkpoint steps on the calling thread (startup, shutdown, tests)."""
        cp = self.begin_checkpoint()
        try:
            self.run_checkpoint(cp)
        finally:
            self.finish_checkpoint(cp)

    def _manifest_blob(self, journal_seq: int, journal_lsn: int) -> bytes:
        data = manifest.ManifestData(
            next_fid=self._store.next_fid,
            next_qid=self._next_qid,
            journal_seq=journal_seq,
            journal_lsn=journal_lsn,
            databases=self.databases,
            files={fid: (entry[0], entry[1]) for fid, entry in self._store.files.items()},
        )
        if self._journaled_stream_nodes != (NODE_MAX_ENTRIES, NODE_MAX_BYTES):
            data.stream_nodes = self._journaled_stream_nodes  # what replay from the new journal file starts with
        # Every settled list nobody pushed to since the last checkpoint becomes a cold entry (its manifest state and
        # a head): lists used before the next checkpoint turn into objects again, the others cost their bytes
        # alone. Only a list object no one holds but the catalog (and the shared files naming it) is replaced, so
        # the change is never seen.
        cold_list = TYPE_CODES["list"]
        pushed, self._pushed = self._pushed, set()
        for db, keyspace in enumerate(self._dbs):
            for key in list(keyspace):
                entry = keyspace[key]
                if (
                    type(entry) is ListLog
                    and entry.qid not in pushed
                    and sys.getrefcount(entry) <= UNHELD_REFS + len(entry._shared_bytes())
                ):
                    entry = keyspace[key] = entry.freeze() or entry
                if type(entry) is bytes:
                    assert cold_kind(entry) == COLD_IN_SEGMENTS, "a journal value left unsettled"
                    _, qid, _ = COLD_HEAD.unpack_from(entry)
                    data.keys.append((db, cold_list, cold_expire(entry), qid, key, entry[COLD_HEAD.size :]))
                else:
                    data.keys.append((db, TYPE_CODES[entry.type], entry.expire_ms, entry.qid, key, entry.dump()))
        return manifest.encode(data)

    # -- recovery

    def _recover(self) -> None:
        started = time.monotonic()
        state = manifest.read(self._io, self.path)
        self._by_qid = {}
        if state is not None:
            self._load_manifest(state)
        self._reconcile_segments()
        first_seq = state.journal_seq if state is not None else 0
        lsn = state.journal_lsn if state is not None else 0
        configured = (self.stream_node_entries, self.stream_node_bytes)
        if state is not None and state.stream_nodes is not None:
            self.stream_node_entries, self.stream_node_bytes = state.stream_nodes
        else:
            self.stream_node_entries, self.stream_node_bytes = NODE_MAX_ENTRIES, NODE_MAX_BYTES
        replayed = self._replay_journals(first_seq, lsn)
        for (qid, fid), size in self._on_disk.items():
            stream = self._by_qid.get(qid)
            if type(stream) is StreamLog and stream._fid == fid:
                stream.recover_tail(size)  # appended under the limits the last file ends with
        # What replay of the journal so far ends with: later appends journal the configured limits if they differ.
        self._journaled_stream_nodes = (self.stream_node_entries, self.stream_node_bytes)
        self.stream_node_entries, self.stream_node_bytes = configured
        self._stream_nodes_noted = False
        self._cut_stream_tails()
        self._store.drop_unreferenced_shared()
        queues = len(self._by_qid)
        self._by_qid = None
        self._store.write_pending()
        self._checkpoint_lsn = lsn
        if state is None or self._whole_entries:
            self.checkpoint()  # a first start: write the manifest; or retire an earlier build's journal
        else:
            # Writes go to a new journal file; the replayed ones are durable already and stay, read by the pushes
            # replayed from them, until the next checkpoint settles those and retires the files. So a restart
            # after a crash costs the replay alone, however many queues it touched.
            self._journal.start_file(self._journal.seq + 1, self._journal.flushed_lsn)
            self._note_appends()  # entries found at the end of stream files: later records follow them
        self._log_cb(
            "notice",
            f"storage ready: {queues} queues, {replayed} journal bytes replayed in {time.monotonic() - started:.3f}s",
        )

    def _load_manifest(self, state: manifest.ManifestData) -> None:
        store = self._store
        store.next_fid = state.next_fid
        self._next_qid = state.next_qid
        for fid, (qid, size) in state.files.items():
            store.files[fid] = [qid, size]
            store.live_bytes += size
        for db, type_code, expire, qid, key, blob in state.keys:
            if db >= self.databases:
                raise StorageError(f"the data holds keys in db {db} but only {self.databases} databases are set")
            log: ListLog | StreamLog
            if type_code == TYPE_CODES["list"]:
                cold = ListLog.cold_from_state(self, qid, expire, blob)
                if cold is not None:  # objects only for the lists the journal names, when replay gets to them
                    self._dbs[db][key] = cold
                    self._by_qid[qid] = (db, key)
                    continue
                log = ListLog.load(self, qid, blob)
            elif type_code == TYPE_CODES["stream"]:
                log = StreamLog.load(self, qid, blob)
            else:
                raise StorageError(f"key type {type_code} is not supported by this build")
            log.expire_ms = expire
            self._dbs[db][key] = log
            assert self._by_qid is not None
            self._by_qid[qid] = log

    def _reconcile_segments(self) -> None:
        """Cuts list segment files back to their checkpointed size and deletes the ones the manifest does not know.

        Journal replay then re-appends exactly what followed the checkpoint, to the same files. Stream files, and
        files the manifest does not name (a stream's, created after it, perhaps), stay whole: their entries were
        written once, there, and replay reads them back (``_appended_records``); ``_cut_stream_tails`` settles
        them afterwards.
        """
        io, store = self._io, self._store
        assert self._by_qid is not None
        io.mkdir(store.root)
        seen: set[int] = set()
        self._on_disk = {}
        for dir_name in io.listdir(store.root):
            qdir = os.path.join(store.root, dir_name)
            try:
                names = io.listdir(qdir)
            except NotADirectoryError:
                continue
            qid = _parse_queue_dir_name(dir_name)
            owner = self._by_qid.get(qid) if qid is not None else None
            for name in names:
                fid = parse_segment_name(name)
                path = os.path.join(qdir, name)
                known = store.files.get(fid) if fid is not None else None
                if known is None or known[0] != qid:
                    if fid is None or not qid or (owner is not None and not isinstance(owner, StreamLog)):
                        io.unlink(path)  # not a segment, or a list's (or shared): replay recreates what it needs
                    else:
                        fd = io.open(path, write=False)
                        try:
                            self._on_disk[(qid, fid)] = io.size(fd)
                        finally:
                            io.close(fd)
                    continue
                seen.add(fid)  # type: ignore[arg-type]
                fd = io.open(path)
                try:
                    actual = io.size(fd)
                    if actual < known[1]:
                        raise CorruptionError(path, actual, f"segment is shorter than its checkpointed {known[1]}")
                    header = io.pread(fd, framing.SEGMENT_HEADER.size, 0)
                    framing.check_prefix(header, framing.SEGMENT_MAGIC, path)
                    if isinstance(owner, StreamLog):
                        self._on_disk[(known[0], fid)] = actual  # type: ignore[index]
                    elif actual > known[1]:
                        io.truncate(fd, known[1])
                        store.dirty.add(fid)  # type: ignore[arg-type]
                finally:
                    io.close(fd)
            if not io.listdir(qdir):
                io.rmdir(qdir)
        for fid, (qid, _) in store.files.items():
            if fid not in seen:
                raise CorruptionError(store.path(qid, fid), 0, "segment file named by the manifest is missing")

    def _appended_records(self, qid: int, fid: int, offset: int, length: int, count: int) -> list[bytes]:
        """Recovery: the payloads of the ``count`` records (``length`` bytes) a journaled XADD appended at ``offset``
        of stream file ``fid``. Raises TornReference when a power cut kept them from the disk, whole or in part
        (the file, its header or its tail), and CorruptionError when they are damaged with valid records after."""
        io, store = self._io, self._store
        path = store.path(qid, fid)
        known = store.files.get(fid)
        if known is not None and known[0] != qid:
            raise ValueError(f"segment file {fid} belongs to queue {known[0]}, not {qid}")
        size = self._on_disk.get((qid, fid))
        if size is None:
            raise TornReference(f"{path}, named by the journal, is not on disk")
        if offset + length > size:
            raise TornReference(f"{path} ends at byte {size}, inside entries the journal places at {offset}")
        fd = store._fd(fid) if known is not None else io.open(path, write=False)
        try:
            if known is None:
                header = io.pread(fd, framing.SEGMENT_HEADER.size, 0)
                if len(header) < framing.SEGMENT_HEADER.size or not header.startswith(framing.SEGMENT_MAGIC):
                    raise TornReference(f"{path} has no header")
                if framing.SEGMENT_HEADER.unpack(header)[2:] != (qid, fid):
                    raise CorruptionError(path, 0, f"segment header does not name queue {qid} and file {fid}")
            data = io.pread(fd, length, offset)
            payloads, end = framing.scan_records(data, 0, length, count)
            if len(payloads) == count and end == length:
                return payloads
            if journal.record_ends_at(io, fd, size, offset + end):
                raise CorruptionError(path, offset + end, "a stream entry the journal names fails its checks")
        finally:
            if known is None:
                io.close(fd)
        raise TornReference(f"{path}: the entries the journal places at {offset} are torn")

    def _tail_records(self, qid: int, fid: int, start: int, size: int) -> list[bytes]:
        """Recovery: the payloads of the whole records from ``start`` to the first bad one in stream file ``fid`` (of
        ``size`` bytes on disk). A bad record with valid ones after it to the end of the file is corruption."""
        io, store = self._io, self._store
        fd = store._fd(fid)
        data = io.pread(fd, size - start, start)
        payloads, end = framing.scan_records(data, 0, len(data), len(data))
        if end < len(data) and journal.record_ends_at(io, fd, size, start + end):
            raise CorruptionError(store.path(qid, fid), start + end, "a stream entry fails its checks")
        return payloads

    def _replaying_whole_entries(self) -> None:
        """Recovery met an XADD record holding its entry: a journal of the build before entries were written once.
        That build's recovery cut segment files back to their checkpointed sizes and deleted the files the manifest
        did not name, then replay wrote entries again; the bytes past those sizes are its copies, not entries to
        find at the end. So do as it did, once, and end this recovery with a checkpoint (see ``_recover``): a later
        recovery must not cut entries appended after this one."""
        if self._whole_entries:
            return
        self._whole_entries = True
        store = self._store
        for (qid, fid), size in self._on_disk.items():
            known = store.files.get(fid)
            if known is None or known[0] != qid:
                self._io.unlink(store.path(qid, fid))  # replay recreates it if it rolls to that file again
            elif size > known[1]:
                store.cut(fid, known[1])
        self._on_disk = {}

    def _cut_stream_tails(self) -> None:
        """After replay: stream files end where their last replayed entry does (what follows was never
        acknowledged: its journal record did not survive), and files no replayed record named go."""
        io, store = self._io, self._store
        assert self._by_qid is not None
        for (qid, fid), size in self._on_disk.items():
            known = store.files.get(fid)
            path = store.path(qid, fid)
            if store.dead.get(fid, (None,))[0] == qid:
                continue  # replay deleted its entries: it goes after the next checkpoint, like any dead file
            if known is None or known[0] != qid:
                io.unlink(path)
                self._log_cb("notice", f"deleted {path}: no journal record names its entries")
                try:
                    io.rmdir(store.queue_dir(qid))
                except OSError:
                    pass  # it holds other files
            elif size > known[1] and type(self._by_qid.get(qid)) is StreamLog:
                store.cut(fid, known[1])
                self._log_cb("notice", f"cut {size - known[1]} bytes of unacknowledged stream entries from {path}")
        self._on_disk = {}

    def _replay_journals(self, first_seq: int, lsn: int) -> int:
        io = self._io
        directory = self._journal.directory
        io.mkdir(directory)
        seqs = sorted(s for s in map(journal.parse_journal_name, io.listdir(directory)) if s is not None)
        for seq in seqs:
            if seq < first_seq:
                io.unlink(os.path.join(directory, journal.journal_name(seq)))
        seqs = [s for s in seqs if s >= first_seq]
        for index, seq in enumerate(seqs):
            if seq != first_seq + index:
                missing = journal.journal_name(first_seq + index)
                raise CorruptionError(os.path.join(directory, missing), 0, "journal file missing from the sequence")
        start_lsn = lsn
        self._replaying = True
        # Replay touches every queue written since the checkpoint in journal order: with the normal descriptor cap,
        # thousands of queues would reopen their segment files over and over. Recovery may hold more for a moment.
        normal_cap = self._store.max_open_files
        self._store.max_open_files = max(normal_cap, _recovery_descriptor_cap())
        try:
            for index, seq in enumerate(seqs):
                path = os.path.join(directory, journal.journal_name(seq))
                self._journal.keep_readable(seq, lsn)  # replayed pushes are read from where they are
                result = journal.replay_file(
                    io,
                    path,
                    seq=seq,
                    start_lsn=lsn,
                    last=index == len(seqs) - 1,
                    apply=self._apply_record,
                    progress=lambda done, total, path=path: self._log_cb(
                        "notice", f"replaying {path}: {done >> 20} of {total >> 20} MiB"
                    ),
                )
                lsn = result.end_lsn
                if result.torn_reference:
                    self._end_journal_at(seqs[index + 1 :], path, result)
                    seqs = seqs[: index + 1]
                    break
                if result.torn_bytes:
                    self._log_cb("warning", f"cut a torn tail of {result.torn_bytes} bytes from the journal {path}")
        finally:
            self._replaying = False
            self._store.max_open_files = normal_cap
            self._store.trim_open_files()
        self._journal.seq = seqs[-1] if seqs else first_seq - 1
        self._journal.flushed_lsn = self._journal.durable_lsn = lsn
        return lsn - start_lsn

    def _end_journal_at(self, later: list[int], path: str, result: journal.ReplayResult) -> None:
        """A record of ``path`` names stream entries a power cut tore: nothing from it on was acknowledged. The files
        after it go first (durably), so that a cut during this leaves no gap before them, then ``path`` is cut."""
        io = self._io
        directory = self._journal.directory
        for seq in later:
            io.unlink(os.path.join(directory, journal.journal_name(seq)))
        if later:
            io.fsync_dir(directory)
        fd = io.open(path)
        try:
            io.truncate(fd, result.cut_offset)
            io.fdatasync(fd)
        finally:
            io.close(fd)
        self._log_cb(
            "warning",
            f"journal ends at LSN {result.end_lsn} ({result.torn_reference}): cut {result.torn_bytes} bytes from "
            f"{path} and dropped {len(later)} later journal files, none of it acknowledged",
        )

    def _apply_record(self, op: int, payload: bytes, lsn: int) -> None:
        # Everything up to the end of this record is readable from its file now (replayed pushes point there).
        self._journal.flushed_lsn = lsn + framing.OVERHEAD + len(payload)
        self._apply(op, payload, lsn)

    def _apply(self, op: int, payload: bytes, record_lsn: int | None) -> None:
        """Re-executes one journaled operation through the same code as the live call."""
        if op == journal.OP_BATCH:
            ops = journal.decode_batch(payload)
            for inner_op, inner_payload in ops:
                if inner_op == journal.OP_XADD_AT:  # all of the batch or none: a torn entry stops it up front
                    qid, fid, offset, length, count = XADD_AT.unpack(inner_payload)
                    self._appended_records(qid, fid, offset, length, count)
            for inner_op, inner_payload in ops:
                self._apply(inner_op, inner_payload, None)
        elif op >= journal.OP_PUSH:
            (qid,) = struct.unpack_from("<Q", payload)
            assert self._by_qid is not None
            entry = self._by_qid[qid]
            if type(entry) is tuple:
                entry = self.get(*entry)
            entry._replay(op, payload, record_lsn)  # type: ignore[union-attr]
        elif op == journal.OP_CREATE:
            db, type_code, qid = CREATE_OP.unpack_from(payload)
            self._create(db, payload[CREATE_OP.size :], type_code, qid)
        elif op == journal.OP_DELETE:
            (db,) = DB_OP.unpack_from(payload)
            self._delete(db, payload[DB_OP.size :])
        elif op == journal.OP_EXPIRE:
            db, has_expire, expire = EXPIRE_OP.unpack_from(payload)
            self.get(db, payload[EXPIRE_OP.size :]).expire_ms = expire if has_expire else None  # type: ignore[union-attr]
        elif op == journal.OP_RENAME:
            db, src_length = RENAME_OP.unpack_from(payload)
            src = payload[RENAME_OP.size : RENAME_OP.size + src_length]
            self.get(db, src)  # a cold list is named by its key until replay makes it an object: before it moves
            self._rename(db, src, payload[RENAME_OP.size + src_length :])
        elif op == journal.OP_FLUSHDB:
            self._flushdb(DB_OP.unpack(payload)[0])
        elif op == journal.OP_FLUSHALL:
            for db in range(self.databases):
                self._flushdb(db)
        elif op == journal.OP_SWAPDB:
            a, b = TWO_DB_OP.unpack(payload)
            for db in (a, b):
                for key in [key for key, entry in self._dbs[db].items() if type(entry) is bytes]:
                    self.get(db, key)
            self._dbs[a], self._dbs[b] = self._dbs[b], self._dbs[a]
        elif op == journal.OP_STREAM_NODES:
            self.stream_node_entries, self.stream_node_bytes = STREAM_NODES_OP.unpack(payload)
        elif op == journal.OP_MOVE:
            src_db, dst_db = TWO_DB_OP.unpack_from(payload)
            self.get(src_db, payload[TWO_DB_OP.size :])
            self._dbs[dst_db][payload[TWO_DB_OP.size :]] = self._dbs[src_db].pop(payload[TWO_DB_OP.size :])
        else:
            raise ValueError(f"unknown journal operation {op}")

    # -- accounting

    def _journal_bytes(self) -> int:
        return self._journal.flushed_lsn + self._journal.pending - self._checkpoint_lsn

    def _disk_used(self) -> int:
        return self._store.live_bytes + self._store.dead_bytes + self._journal_bytes()

    def stats(self) -> dict[str, int | float | str]:
        j = self._journal
        logs = (log for keyspace in self._dbs for log in keyspace.values())
        pending = sum(log.pending_total() for log in logs if isinstance(log, StreamLog))
        return {
            "policy": self.appendfsync,
            "disk_bytes": self._disk_used(),
            "journal_bytes": self._journal_bytes(),
            "segments": len(self._store.files) + len(self._store.dead) + len(self._deferred_dead),
            "queues": sum(map(len, self._dbs)),
            "open_fds": self._store.open_files + len(j._unsynced) + len(j._readers) + (self._lock_fd is not None),
            "last_sync_us": j.last_sync_us,
            "last_sync_time": j.last_sync_time,
            "syncs_total": j.syncs_total,
            "last_checkpoint_time": self._last_checkpoint_time,
            "last_write_status": "ok" if self.write_error is None else self.write_error,
            "stream_pending_entries": pending,
            "stream_pel_bytes_per_entry": PEL_BYTES_PER_ENTRY,
        }


def _parse_queue_dir_name(name: str) -> int | None:
    if len(name) != 16:
        return None
    try:
        return int(name, 16)
    except ValueError:
        return None


def _recovery_descriptor_cap() -> int:
    """Descriptors recovery may keep open: half the process's limit, at most 8192."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(64, min(8192, soft // 2))
