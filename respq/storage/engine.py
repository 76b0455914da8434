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
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from respq.storage import framing, journal, manifest, pages
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
from respq.storage.port import KeyListener, SegmentRecovery, TypeRegistry, Value, ValueType
from respq.storage.segments import SEGMENT_SIZE, SegmentStore, parse_segment_name

POLICIES = ("always", "everysec", "no")
JOURNAL_DIR = "journal"
LOCK_NAME = "LOCK"

CREATE_OP = struct.Struct("<HBQ")  # db, type, queue id; then the key
DB_OP = struct.Struct("<H")  # db; then the key (delete) or nothing (flushdb)
EXPIRE_OP = struct.Struct("<HBq")  # db, has expiry, expiry ms; then the key
RENAME_OP = struct.Struct("<HI")  # db, source length; then source and destination
SETTINGS_OP = struct.Struct("<B")  # type code; then the type's settings payload (ValueType.parse_settings)
TWO_DB_OP = struct.Struct("<HH")  # swapdb a b / move source destination (then the key)
QID = struct.Struct("<Q")  # every type's journal record starts with the queue id of the value it changes
_record_qid = QID.unpack_from
# What settling one value costs beyond its values, in values: opening (often creating) its segment file.
SETTLE_VALUE_COST = 50
# settle_some captures changed catalog entries ahead of a checkpoint until no more than this many are left.
CAPTURE_AT_CHECKPOINT = 1000

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
KeyEntry = Value  # a key's catalog entry is its value itself (storage/catalog.py)


@dataclass
class Checkpoint:
    """What a checkpoint must make durable, captured at one instant on the loop thread."""

    manifest: manifest.ManifestData  # all but its pages, which run_checkpoint writes first (``catalog``)
    catalog: pages.CatalogUpdate
    full: bool  # the catalog was written whole (a manifest of an earlier format was loaded)
    journal_seq: int
    journal_lsn: int
    dirty_paths: list[str]
    dirty_fids: set[int]
    directories: list[str]
    dead: dict[int, tuple[int, int]]
    outside_bytes: int = 0  # bytes written outside the journal since the previous checkpoint (see checkpoint_due)
    retired_journals: list[str] = field(default_factory=list)  # deleted by run_checkpoint once the manifest is durable
    done: bool = False
    error: BaseException | None = field(default=None, repr=False)


class Engine:
    """All keys of one data directory. Create with ``Engine.open``."""

    on_disk = True  # the port (storage/port.py): values may be read back from the journal and from files by path

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
        maxmemory: int = 0,
        log: Callable[[str, str], None],
        types: TypeRegistry,
    ) -> None:
        if appendfsync not in POLICIES:
            raise ValueError(f"appendfsync must be one of {', '.join(POLICIES)}")
        self.path = path
        self.appendfsync = appendfsync
        self.databases = databases
        self.checkpoint_bytes = checkpoint_bytes
        self.maxdisk = maxdisk
        # Bytes values hold in memory (strings, hashes: ``inline_changed``), and the limit the server refuses
        # commands flagged denyoom over (0 = none); the engine itself never refuses on it.
        self.inline_bytes = 0
        self.maxmemory = maxmemory
        # Server metadata: opaque named blobs the layers above keep here (set_metadata), journaled and checkpointed
        # like data, independent of keys (FLUSHALL leaves them).
        self.metadata: dict[bytes, bytes] = {}
        self.write_error: str | None = None
        self.types = types
        # Per type with settings (type code ->): the payload in force and what the type made of it (values read
        # ``settings``); what replay would assume at this point of the journal (the manifest gives it at a
        # checkpoint); and the types whose payload in force may differ from that: the type calls ``note_settings``
        # before its first record that depends on them, which journals them if so.
        self._settings_payloads: dict[int, bytes] = {}
        self.settings: dict[int, Any] = {}
        self._journaled_settings: dict[int, bytes] = {}
        self.settings_unnoted: set[int] = set()
        for vtype in types:
            if vtype.default_settings is not None:
                self._apply_settings(vtype, vtype.default_settings)
                self._journaled_settings[vtype.code] = vtype.default_settings
        self.io = io
        self._lock_fd: int | None = lock_fd
        self._log_cb = log
        # Segment headers eat into the size: keep a floor so every segment holds at least a few records.
        self.store = SegmentStore(io, path, segment_size=max(segment_size, 4096), max_open_files=max_open_files)
        self.store.on_write_error = self._disable_writes
        self.journal = journal.Journal(io, os.path.join(path, JOURNAL_DIR))
        # Per database: key -> its value, or bytes for a cold value (a type's compact form of a value nobody uses).
        self.catalog: list[dict[bytes, KeyEntry | bytes]] = [{} for _ in range(databases)]
        self.key_listener: KeyListener | None = None  # told of keys added and removed (port.KeyListener)
        # During recovery only: replayed records name queue ids. A value loaded cold is named by (db, key) until the
        # first record naming it turns it into an object (a replayed rename, move or swap does so first).
        self._by_qid: dict[int, KeyEntry | tuple[int, bytes]] | None = None
        self._settle_due: dict[int, Value] = {}  # values holding data that lives only in the journal (mark_settle)
        # Values used since the last checkpoint: it leaves them objects (freezing a value that is used again at once
        # costs a freeze and a thaw per value per checkpoint, for nothing).
        self._used: set[int] = set()
        self.journaled_values = 0  # values ever pushed into the journal alone (paces settling ahead of checkpoints)
        self.outside_bytes = 0  # bytes written outside the journal since the last checkpoint began: recovery reads them
        self._next_qid = 1
        self.replaying = False
        self.atomic_depth = 0
        self._batch: list[tuple[int, bytes]] = []
        # Arrays of journal positions holding provisional ones (log_staged), moved when the atomic block ends.
        self._staged_positions: dict[int, array[int]] = {}
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
        self.journal.before_sync = self._sync_commit_files
        self.journal.before_sync_due = self._commit_files_due
        # Values whose state must be journaled before any other record (mark_note), by queue id.
        self._notes: dict[int, Value] = {}
        # What the server waits on is a position: journal bytes plus bytes ever appended outside it, since a write
        # may journal no record at all. (journal LSN, position) as of the last flush, and the durable position.
        self._outside_appended = 0
        self._flushed = (0, 0)
        self._durable = 0
        # During recovery only: (queue id, file id) -> size on disk of every file kept whole (SegmentRecovery), and
        # of every file no manifest names, until replay has read the entries the journal says are in them.
        self._on_disk: dict[tuple[int, int], int] = {}
        self._whole_entries = False  # recovery replayed a journal of an earlier build (see replaying_whole_entries)
        # The catalog pages (pages.py). Entries name their database through a slot (SWAPDB swaps two, FLUSHDB
        # gives the database a new one); the table and the packs holding it, as the last checkpoint left them.
        self._slots = list(range(databases))
        self._next_slot = databases
        self._pages: list[pages.PageRef] = []
        self._packs: dict[int, int] = {}  # pack id -> size
        self._next_pack = 1
        # What changed since the last checkpoint, by queue id (-> its key where the change said it: created, renamed,
        # moved): every journaled change of a value names one, and the engine's own operations know theirs. A
        # checkpoint writes the entries of these alone (deleted ones as removals). ``_keys_of`` finds the key of a
        # queue id for the objects a checkpoint left (cold entries change only as objects again); ``_warm``: those
        # of types with cold forms (what a checkpoint may freeze). A key made cold at once costs one entry here.
        self._dirty: dict[int, bytes | None] = {}
        self._keys_of: dict[int, bytes] = {}
        self._warm: set[int] = set()
        self._captured: dict[int, pages.Entry | None] = {}  # entries captured ahead of a checkpoint (settle_some)
        self._catalog_all = False  # the next checkpoint writes every key (after loading an earlier format)
        self._drop_all = False  # FLUSHALL since the last checkpoint: no page holds a live entry
        self._rewrite_all = False  # FLUSHDB since the last checkpoint: any page may hold dead entries
        self.catalog_written = 0  # bytes of catalog pages the last checkpoint wrote

    # -- opening and closing

    @classmethod
    def open(
        cls,
        path: str,
        *,
        appendfsync: str = "always",
        databases: int = 16,
        segment_size: int = SEGMENT_SIZE,
        max_open_files: int = 256,
        checkpoint_bytes: int = 64 << 20,
        maxdisk: int = 0,
        maxmemory: int = 0,
        log: Callable[[str, str], None] = _default_log,
        io: FileIO | None = None,
        lock_fd: int | None = None,
        types: TypeRegistry,
        type_settings: dict[str, bytes] | None = None,
    ) -> Engine:
        """Locks ``path`` (created if missing) unless the caller holds its lock already (``lock_fd``, from
        lock_directory, which the engine then owns), recovers its contents and returns the engine. Blocking.
        ``type_settings``: type name -> settings payload in force from now on (``set_type_settings``)."""
        io = io or DEFAULT_IO
        if lock_fd is None:
            io.mkdir(path)
            lock_fd = cls.lock_directory(path, io)
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
                maxmemory=maxmemory,
                log=log,
                types=types,
            )
            engine._recover()
            for name, payload in (type_settings or {}).items():
                engine.set_type_settings(name, payload)
        except BaseException:
            io.close(lock_fd)
            raise
        return engine

    @staticmethod
    def lock_directory(path: str, io: FileIO | None = None) -> int:
        """Takes the lock of the existing directory ``path``: held while the returned descriptor stays open. Raises
        DirectoryLockedError when another process holds it, OSError when the lock file cannot be opened."""
        lock_fd = (io or DEFAULT_IO).lock(os.path.join(path, LOCK_NAME))
        if lock_fd is None:
            raise DirectoryLockedError(f"{path} is in use by another process")
        return lock_fd

    def set_type_settings(self, name: str, payload: bytes) -> None:
        """Puts a type's settings (its own payload, ``ValueType.parse_settings``) in force for what comes next.
        Journaled lazily: the type's ``note_settings`` before its first record that depends on them."""
        vtype = self.types[name]
        if vtype.default_settings is None:
            raise ValueError(f"{name} has no settings")
        self._apply_settings(vtype, payload)
        self.settings_unnoted.add(vtype.code)

    def _apply_settings(self, vtype: ValueType, payload: bytes) -> None:
        self.settings[vtype.code] = vtype.parse_settings(payload)
        self._settings_payloads[vtype.code] = payload

    def note_settings(self, vtype: ValueType) -> None:
        """Journals the type's settings ahead of the records made under them, unless replay would assume them."""
        code = vtype.code
        payload = self._settings_payloads[code]
        if not self.replaying and payload != self._journaled_settings[code]:
            self._log_own(journal.OP_TYPE_SETTINGS, SETTINGS_OP.pack(code) + payload)
            self._journaled_settings[code] = payload
        self.settings_unnoted.discard(code)

    def set_metadata(self, changes: dict[bytes, bytes | None]) -> None:
        """Sets (a blob) or deletes (None) server metadata blobs by name, all of them in one journal record."""
        self.before_write(sum(len(name) + len(blob or b"") for name, blob in changes.items()))
        self._set_metadata(changes)
        values = []
        for name, blob in changes.items():
            values += (name, b"\x00" if blob is None else b"\x01" + blob)
        self.log(journal.OP_METADATA, journal.encode_values(values))

    def _set_metadata(self, changes: dict[bytes, bytes | None]) -> None:
        for name, blob in changes.items():
            if blob is None:
                self.metadata.pop(name, None)
            else:
                self.metadata[name] = blob

    def close(self) -> None:
        """Clean shutdown: everything is checkpointed, so the next open replays nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.write_error is None and not self._checkpoint_running:
                self.checkpoint()
        finally:
            self.journal.close()
            self.store.close_all()
            if self._lock_fd is not None:
                self.io.close(self._lock_fd)
                self._lock_fd = None

    def abandon(self) -> None:
        """Drops descriptors and the lock as a crash would (crash tests); nothing more is written or synced."""
        self._closed = True
        self.journal.close()
        self.store.close_all()
        if self._lock_fd is not None:
            self.io.close(self._lock_fd)
            self._lock_fd = None

    # -- catalog

    def get(self, db: int, key: bytes) -> KeyEntry | None:
        entry = self.catalog[db].get(key)
        if type(entry) is bytes:  # a cold value: an object again from now on
            entry = self.catalog[db][key] = self.types.of_cold(entry).thaw(self, entry)
            self._keys_of[entry.qid] = key
            self._warm.add(entry.qid)
            if self._by_qid is not None:
                self._by_qid[entry.qid] = entry
        return entry  # type: ignore[return-value]

    def peek(self, db: int, key: bytes) -> tuple[str, int | None] | None:
        """The key's type and expiry, without turning a cold value into objects (key iteration)."""
        entry = self.catalog[db].get(key)
        if entry is None:
            return None
        if type(entry) is bytes:
            vtype = self.types.of_cold(entry)
            return vtype.name, vtype.cold_expire(entry)
        return entry.type, entry.expire_ms  # type: ignore[union-attr]

    def empty_keys(self, db: int) -> list[bytes]:
        """Keys of values that Redis would have deleted with their last element, holding nothing (left by a crash
        that cut their first write); a cold value never is one."""
        return [
            key
            for key, entry in self.catalog[db].items()
            if type(entry) is not bytes and entry.vtype.deletes_when_empty and not len(entry)  # type: ignore[union-attr, arg-type]
        ]

    def thaw_where(self, vtype: ValueType, test: Callable[[bytes], bool]) -> None:
        """Cold values of ``vtype`` for which ``test`` holds become objects."""
        for db, keyspace in enumerate(self.catalog):
            for key in [
                key
                for key, entry in keyspace.items()
                if type(entry) is bytes and self.types.of_cold(entry) is vtype and test(entry)
            ]:
                self.get(db, key)

    def keys(self, db: int) -> Iterator[bytes]:
        return iter(list(self.catalog[db]))

    def dbsize(self, db: int) -> int:
        return len(self.catalog[db])

    def create(self, db: int, key: bytes, type_name: str) -> KeyEntry:
        """A new empty value of type ``type_name`` under ``key`` (which must not exist)."""
        vtype = self.types.by_name[type_name]
        self.before_write(len(key) + 64)
        qid = self._next_qid
        value = self._create(db, key, vtype, qid)
        self._log_own(journal.OP_CREATE, CREATE_OP.pack(db, vtype.code, qid) + key)
        return value

    def _create(self, db: int, key: bytes, vtype: ValueType, qid: int) -> KeyEntry:
        keyspace = self.catalog[db]
        if key in keyspace:
            raise KeyError(f"key {key!r} already exists in db {db}")
        value = keyspace[key] = vtype.create(self, qid)
        self._dirty[qid] = key  # _register's, inline: every new key comes this way
        if self.key_listener is not None:
            self.key_listener.key_added(db, key)
        if self._by_qid is not None:
            self._by_qid[qid] = value
        if qid >= self._next_qid:
            self._next_qid = qid + 1
        return value

    def delete(self, db: int, key: bytes) -> bool:
        if key not in self.catalog[db]:
            return False
        self.before_write(0)
        self._delete(db, key)
        self._log_own(journal.OP_DELETE, DB_OP.pack(db) + key)
        return True

    def _delete(self, db: int, key: bytes) -> None:
        self._drop(self.catalog[db].pop(key))
        if self.key_listener is not None:
            self.key_listener.key_removed(db, key)

    def _drop(self, value: KeyEntry | bytes, *, track: bool = True) -> None:
        if type(value) is bytes:
            value = self.types.of_cold(value).thaw(self, value)  # it lets go of its files like any value
        qid = value.qid  # type: ignore[union-attr]
        self._keys_of.pop(qid, None)
        self._warm.discard(qid)
        if track:
            self._dirty[qid] = None
        if self._by_qid is not None:
            self._by_qid.pop(value.qid, None)  # type: ignore[union-attr]
        value.drop()  # type: ignore[union-attr]

    def rename(self, db: int, src: bytes, dst: bytes) -> None:
        """Moves ``src`` to ``dst`` (replacing it); KeyError if ``src`` is missing."""
        if src not in self.catalog[db]:
            raise KeyError(src)
        if src == dst:
            return
        self.before_write(len(src) + len(dst))
        self._rename(db, src, dst)
        self._log_own(journal.OP_RENAME, RENAME_OP.pack(db, len(src)) + src + dst)

    def _rename(self, db: int, src: bytes, dst: bytes) -> None:
        keyspace = self.catalog[db]
        entry = keyspace.pop(src)
        replaced = keyspace.pop(dst, None)
        if replaced is not None:
            self._drop(replaced)
        keyspace[dst] = entry
        self._moved(entry, dst)
        if self.key_listener is not None:
            self.key_listener.key_removed(db, src)
            self.key_listener.key_added(db, dst)

    def set_expire(self, db: int, key: bytes, expire_ms: int | None) -> None:
        """Absolute unix time in ms, or None to persist; KeyError if ``key`` is missing."""
        if key not in self.catalog[db]:
            raise KeyError(key)
        self.before_write(0)
        self._set_expire(db, key, expire_ms)
        self._log_own(journal.OP_EXPIRE, EXPIRE_OP.pack(db, expire_ms is not None, expire_ms or 0) + key)

    def _set_expire(self, db: int, key: bytes, expire_ms: int | None) -> None:
        entry = self.get(db, key)
        entry.expire_ms = expire_ms  # type: ignore[union-attr]
        self._dirty.setdefault(entry.qid)  # type: ignore[union-attr]

    def _register(self, qid: int, key: bytes) -> None:
        """A new value in the catalog (the checkpoint that writes it finds it by its key from then on)."""
        self._dirty[qid] = key

    def _qid_of(self, entry: KeyEntry | bytes) -> int:
        if type(entry) is bytes:
            return self.types.of_cold(entry).cold_state(entry)[0]
        return entry.qid  # type: ignore[union-attr]

    def _moved(self, entry: KeyEntry | bytes, key: bytes) -> None:
        """``entry`` is now under ``key`` (RENAME, MOVE): its catalog entry changes."""
        qid = self._qid_of(entry)
        if qid in self._keys_of:
            self._keys_of[qid] = key
        self._dirty[qid] = key

    def flushdb(self, db: int) -> None:
        self.before_write(0)
        self._flushdb(db)
        self._log_own(journal.OP_FLUSHDB, DB_OP.pack(db))

    def _flushdb(self, db: int) -> None:
        keyspace, self.catalog[db] = self.catalog[db], {}
        for entry in keyspace.values():
            self._drop(entry, track=False)
        # A new slot: the pages' entries of the old one are dead, dropped as the next checkpoint rewrites them.
        self._slots[db] = self._next_slot
        self._next_slot += 1
        self._rewrite_all = True
        if self.key_listener is not None:
            self.key_listener.db_replaced(db)

    def _flushall(self) -> None:
        for db in range(self.databases):
            self._flushdb(db)
        self._drop_all = True  # nothing in any page is live: the next checkpoint starts the table afresh
        self._dirty = {}
        self._captured = {}

    def flushall(self) -> None:
        self.before_write(0)
        self._flushall()
        self._log_own(journal.OP_FLUSHALL, b"")

    def swapdb(self, a: int, b: int) -> None:
        self.before_write(0)
        self._swapdb(a, b)
        self._log_own(journal.OP_SWAPDB, TWO_DB_OP.pack(a, b))

    def _swapdb(self, a: int, b: int) -> None:
        self.catalog[a], self.catalog[b] = self.catalog[b], self.catalog[a]
        self._slots[a], self._slots[b] = self._slots[b], self._slots[a]  # the pages stay as they are
        if self.key_listener is not None:
            self.key_listener.db_replaced(a)
            self.key_listener.db_replaced(b)

    def move(self, src_db: int, dst_db: int, key: bytes) -> bool:
        """MOVE: False if ``key`` is missing in ``src_db`` or already present in ``dst_db``."""
        if key not in self.catalog[src_db] or key in self.catalog[dst_db] or src_db == dst_db:
            return False
        self.before_write(0)
        self._move(src_db, dst_db, key)
        self._log_own(journal.OP_MOVE, TWO_DB_OP.pack(src_db, dst_db) + key)
        return True

    def _move(self, src_db: int, dst_db: int, key: bytes) -> None:
        entry = self.catalog[dst_db][key] = self.catalog[src_db].pop(key)
        self._moved(entry, key)
        if self.key_listener is not None:
            self.key_listener.key_removed(src_db, key)
            self.key_listener.key_added(dst_db, key)

    def copy(self, src_db: int, src: bytes, dst_db: int, dst: bytes, *, replace: bool = False) -> KeyEntry:
        """COPY: a new value under ``dst`` with the contents and expiry of ``src``, replacing what ``dst`` holds
        if ``replace`` (else it must not exist). One batch record: the old ``dst`` deleted, the CREATE of a new
        queue id, the records its type journals to fill it, its expiry; a crash keeps all of it or none. The old
        ``dst`` goes only once the copy is made: a copy that fails leaves everything as it was."""
        source = self.get(src_db, src)
        if source is None:
            raise KeyError(src)
        if (src_db, src) == (dst_db, dst) or (dst in self.catalog[dst_db] and not replace):
            raise KeyError(f"key {dst!r} already exists in db {dst_db}")
        vtype = source.vtype
        self.before_write(len(dst) + 64)
        qid = self._next_qid
        self._next_qid += 1
        with self.atomic():
            if self._notes:
                self.write_notes()  # other values' notes stay in the batch whatever becomes of the copy
            mark = len(self._batch)
            try:
                value = vtype.copy(self, source, qid)
            except BaseException:
                del self._batch[mark:]
                raise
            # The records filling the copy follow its CREATE (and the old key's DELETE) in the batch.
            head = []
            if dst in self.catalog[dst_db]:
                self._delete(dst_db, dst)
                head.append((journal.OP_DELETE, DB_OP.pack(dst_db) + dst))
            head.append((journal.OP_CREATE, CREATE_OP.pack(dst_db, vtype.code, qid) + dst))
            self._batch[mark:mark] = head
            self.catalog[dst_db][dst] = value
            self._register(qid, dst)
            if self.key_listener is not None:
                self.key_listener.key_added(dst_db, dst)
            if source.expire_ms is not None:
                value.expire_ms = source.expire_ms
                self._log_own(journal.OP_EXPIRE, EXPIRE_OP.pack(dst_db, True, source.expire_ms) + dst)
        return value

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Every operation inside becomes one journal record: after a crash all of them happened or none."""
        self.atomic_depth += 1
        try:
            yield
        finally:
            self.end_atomic()

    def begin_atomic(self) -> None:
        """``atomic`` without the context manager's cost, for a hot caller: ``end_atomic`` must follow (finally)."""
        self.atomic_depth += 1

    def end_atomic(self) -> None:
        self.atomic_depth -= 1
        if not self.atomic_depth and self._batch:
            ops, self._batch = self._batch, []
            if len(ops) == 1:
                lsn = self.journal.append(*ops[0])
            else:
                lsn = self.journal.append(journal.OP_BATCH, journal.encode_batch(ops))
            if self._staged_positions:
                self._place_staged(ops, lsn)
        elif not self.atomic_depth and self._staged_positions:
            self._place_staged([], 0)  # the staged records were dropped with their value (a COPY that failed)

    def log_staged(self, op: int, payload: bytes, positions: array[int]) -> int:
        """``log`` inside an atomic block of a record whose values stay in the journal: returns a provisional
        record LSN (``journal.read`` serves positions after it from memory), and when the block ends moves every
        provisional position in ``positions`` (an array of journal positions, to which they were appended last:
        its suffix) to where the block's record holds the bytes. The record itself is the same as ``log``'s."""
        self._staged_positions[id(positions)] = positions
        position = self.journal.stage(payload) - framing.HEAD_SIZE
        self.log(op, payload)
        return position

    def _place_staged(self, ops: list[tuple[int, bytes]], lsn: int) -> None:
        """Moves the provisional positions of the block just journaled at ``lsn`` (its ``ops``) to their own."""
        staged, self.journal.staged = self.journal.staged, []
        arrays, self._staged_positions = self._staged_positions, {}
        at = {}  # id of a payload -> LSN of its first byte, laid out as end_atomic framed them
        position = lsn + framing.HEAD_SIZE
        if len(ops) == 1:
            at[id(ops[0][1])] = position
        else:
            item = journal.BATCH_ITEM.size
            for _, payload in ops:
                at[id(payload)] = position + item
                position += item + len(payload)
        # A payload missing from the block went with the value holding it: its positions are never read again.
        bases = [at.get(id(payload), -1) for payload in staged]
        shift, mask, staged_base = journal.STAGED_SHIFT, journal.STAGED_MASK, journal.STAGED
        for positions in arrays.values():
            index = len(positions) - 1
            while index >= 0 and positions[index] >= staged_base:
                rel = positions[index] - staged_base
                base = bases[rel >> shift]
                if base >= 0:
                    positions[index] = base + (rel & mask)
                index -= 1

    # -- the write path shared by every mutation (the port: see storage/port.py)

    def before_write(self, growth: int) -> None:
        """Refuses a mutation up front, before anything of it is applied."""
        if self.replaying:
            return
        if self.write_error is not None:
            raise StorageWriteError(f"writes are disabled until restart: {self.write_error}")
        if self.journal.blocked:
            self._flush_journal()  # still full: raises DiskFullError again
        if self.store.full:
            self.store.write_pending()  # likewise
        if self.maxdisk and growth and self._disk_used() + growth > self.maxdisk:
            raise DiskFullError("maxdisk reached")

    # A type's records start with the queue id of the value they change: the catalog entry it marks changed.

    def log(self, op: int, payload: bytes) -> None:
        """Journals one record (a no-op while replaying; gathered into one record inside ``atomic``)."""
        if self.replaying:
            return
        self._dirty.setdefault(_record_qid(payload)[0])
        if self._notes:
            self.write_notes()
        if self.atomic_depth:  # the body of _log_own, inline: this is every write's path
            self._batch.append((op, payload))
        else:
            self.journal.append(op, payload)

    def _log_own(self, op: int, payload: bytes) -> None:
        """``log`` of the engine's own records (they name keys, not queue ids: the caller marks what changed)."""
        if self.replaying:
            return
        if self._notes:
            self.write_notes()
        if self.atomic_depth:
            self._batch.append((op, payload))
        else:
            self.journal.append(op, payload)

    def log_at(self, op: int, payload: bytes) -> int:
        """``log`` outside atomic blocks and replay, returning the record's LSN (where its values can be read)."""
        self._dirty.setdefault(_record_qid(payload)[0])
        if self._notes:
            self.write_notes()
        return self.journal.append(op, payload)

    def log_many_at(self, op: int, payloads: list[bytes]) -> int:
        """``log_at`` of each payload, in order, framed in one go; returns the first one's LSN."""
        setdefault = self._dirty.setdefault
        for payload in payloads:
            setdefault(_record_qid(payload)[0])
        if self._notes:
            self.write_notes()
        return self.journal.append_many(op, payloads)

    def log_note(self, op: int, payload: bytes) -> None:
        """Journals a record without writing pending notes first (what ``write_note`` of a value uses)."""
        self._dirty.setdefault(_record_qid(payload)[0])
        if self.atomic_depth:
            self._batch.append((op, payload))
        else:
            self.journal.append(op, payload)

    def mark_changed(self, value: Value) -> None:
        """``value`` changed its checkpointed state without a journal record (data settled or moved between
        files, entries appended outside the journal, times not journaled): the next checkpoint writes it."""
        self._dirty.setdefault(value.qid)

    def log_many(self, op: int, payloads: list[bytes]) -> None:
        """``log`` of each payload, in order, framed in one go."""
        if self.replaying:
            return
        setdefault = self._dirty.setdefault
        for payload in payloads:
            setdefault(_record_qid(payload)[0])
        if self._notes:
            self.write_notes()
        if self.atomic_depth:
            self._batch += [(op, payload) for payload in payloads]
        else:
            self.journal.append_many(op, payloads)

    def journal_clean(self) -> bool:
        """Everything journaled so far is durable, and nothing waits to be."""
        j = self.journal
        return not (j.buffer or self.atomic_depth or self.replaying or j.blocked) and j.durable_lsn >= j.flushed_lsn

    def mark_note(self, value: Value) -> None:
        """``value.write_note()`` must journal its state before any other record (replay must meet it first), at a
        checkpoint and when a file is started (stream entries written to their segment alone)."""
        self._notes[value.qid] = value

    def notes_pending(self) -> dict[int, Value]:
        return self._notes

    def write_notes(self) -> None:
        notes, self._notes = self._notes, {}
        for value in notes.values():
            value.write_note()  # type: ignore[attr-defined]

    def appended_outside(self, nbytes: int) -> None:
        """``nbytes`` were written to a segment file that the group commit syncs before the journal (not replaying:
        a position a reply may wait on); recovery reads them back, so they count towards a checkpoint."""
        self.outside_bytes += nbytes
        if not self.replaying:
            self._outside_appended += nbytes

    def recovered_outside(self, nbytes: int) -> None:
        """Recovery found ``nbytes`` written outside the journal that no record names (they count towards the next
        checkpoint like any such bytes)."""
        self.outside_bytes += nbytes

    def inline_changed(self, delta: int) -> None:
        """A value holds ``delta`` more bytes in memory (fewer if negative): live, loaded or replayed alike."""
        self.inline_bytes += delta

    def over_maxmemory(self) -> bool:
        """Values hold more memory than ``maxmemory`` allows (commands that may add data are refused)."""
        return 0 < self.maxmemory < self.inline_bytes

    def mark_settle(self, value: Value) -> None:
        """``value`` holds data living in the journal alone: ``value.settle(budget)`` copies it out before the next
        checkpoint retires that journal."""
        self._settle_due[value.qid] = value

    def unmark_settle(self, value: Value) -> None:
        self._settle_due.pop(value.qid, None)

    def mark_used(self, qid: int) -> None:
        """The value was used since the last checkpoint: the next one leaves it an object."""
        self._used.add(qid)

    def unmark_used(self, qid: int) -> None:
        self._used.discard(qid)

    # -- durability

    def flush(self) -> int:
        """Writes buffered segment bytes, then buffered journal records (one write per file), and returns the LSN
        that covers the records. Segment bytes the disk has no room for stay buffered: the journal holds their
        operations, reads are served from the buffer, and new writes are refused until they are written."""
        if self.write_error is not None:
            raise StorageWriteError(f"writes are disabled until restart: {self.write_error}")
        store = self.store
        try:
            store.write_pending()
        except DiskFullError:
            if store.owes_commit():
                raise  # data written outside the journal lives only in its segment: its journal records wait with it
        paths, dirs = store.take_commit()
        with self._commit_lock:  # owed a sync from now on, even if the journal's write below is refused
            self._commit_paths.update(paths)
            self._commit_dirs.update(dirs)
        journal_lsn = self._flush_journal()
        position = journal_lsn + self._outside_appended
        with self._commit_lock:
            self._flushed = (journal_lsn, position)
        return position

    def _commit_files_due(self) -> bool:
        with self._commit_lock:
            return bool(self._commit_paths or self._commit_dirs)

    def _sync_commit_files(self) -> None:
        """Sync thread, before the journal's fdatasync: the files written outside the journal (stream entries) since
        the last sync, and the directories naming new ones (a missing one would leave its journal records pointing
        at nothing)."""
        with self._commit_lock:
            paths, dirs = self._commit_paths, self._commit_dirs
            self._commit_paths, self._commit_dirs = set(), set()
        io = self.io
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
            return self.journal.flush()
        except StorageWriteError as error:
            self._disable_writes(str(error))
            raise

    def _disable_writes(self, reason: str) -> None:
        """After an I/O error other than a full disk the file's state is unknown: only a restart re-reads it."""
        if self.write_error is None:
            self.write_error = reason
            self._log_cb("warning", f"writes disabled until restart: {reason}")

    # Positions (``flush``'s result, what ``sync`` takes): journal bytes plus bytes ever appended outside it.

    def durable_lsn(self) -> int:
        return self._durable

    def flushed_lsn(self) -> int:
        return self._flushed[1]

    def pending_lsn(self) -> int:
        """The position that will cover every mutation made so far, once flushed (no I/O)."""
        return self.journal.flushed_lsn + self.journal.pending + self._outside_appended

    def change_mark(self) -> int:
        """A number that grows with every mutation, inside atomic blocks too (whose records are gathered until the
        block ends): a caller compares two to learn whether something changed in between."""
        return self.journal.flushed_lsn + self.journal.pending + self._outside_appended + len(self._batch)

    def sync(self, lsn: int) -> None:
        """Worker thread: returns when everything up to position ``lsn`` (from ``flush``) is on disk. A failure
        disables writes for good."""
        with self._commit_lock:
            journal_lsn, position = self._flushed
        try:
            self.journal.sync(journal_lsn)
        except OSError as error:
            self.write_error = f"fsync of the journal failed: {error}"
            raise StorageWriteError(self.write_error) from error
        with self._commit_lock:
            self._durable = max(self._durable, position)

    @property
    def syncs_total(self) -> int:
        return self.journal.syncs_total

    def checkpoint_due(self) -> bool:
        if self._checkpoint_running or self.write_error is not None:
            return False
        dead_bytes = self.store.dead_bytes - self._deferred_bytes  # a checkpoint cannot delete pinned files
        # The journal names data written outside it (stream entries): recovery reads those back as well.
        replayed = self._journal_bytes() + self.outside_bytes
        return replayed >= self.checkpoint_bytes or dead_bytes >= self.checkpoint_bytes

    def begin_checkpoint(self) -> Checkpoint:
        """Loop thread: rotates the journal and captures the state it must make durable (O(queues + chunks))."""
        if self._checkpoint_running:
            raise StorageError("a checkpoint is already running")
        if self.atomic_depth:
            raise StorageError("cannot checkpoint inside an atomic block")
        for vtype in self.types:
            vtype.before_checkpoint(self)
        self._settle_all()
        self.write_notes()  # in the file being closed: if this checkpoint fails, replay needs them before the next
        self.store.write_pending()  # the checkpoint syncs the files: what they must hold has to be in them
        self.journal.drop_readers()  # files replayed at start-up: nothing refers to them any more
        self.flush()
        lsn = self.journal.flushed_lsn
        seq = self.journal.seq + 1
        self.journal.start_file(seq, lsn)
        self.journal.trim_marks(lsn)
        data, update, full = self._capture_catalog(seq, lsn)
        dirty_fids = set(self.store.dirty)
        dirty, directories, dead = self.store.take_snapshot_sets()
        directories.append(self.journal.directory)
        self._checkpoint_running = True
        outside_bytes, self.outside_bytes = self.outside_bytes, 0
        # The journal files before the new one: once settled, nothing reads them but a snapshot that pinned one
        # already (a value read from the journal is one pushed since the last rotation), so the set is known now.
        retired = []
        for name in self.io.listdir(self.journal.directory):
            old = journal.parse_journal_name(name)
            if old is not None and old < seq and old not in self._pinned_journals:
                retired.append(os.path.join(self.journal.directory, name))
        return Checkpoint(
            data, update, full, seq, lsn, dirty, dirty_fids, directories, dead, outside_bytes, retired
        )

    def settle_some(self, budget: int) -> bool:
        """Copies about ``budget`` values living in the journal alone into segments, ahead of a checkpoint, so that
        ``begin_checkpoint`` (which settles whatever is left at once) stays short. True while more remain."""
        due = self._settle_due
        while due and budget > 0:
            qid, value = next(iter(due.items()))
            before = len(value)  # type: ignore[arg-type]
            self._dirty.setdefault(qid)
            if not value.settle(budget):  # type: ignore[attr-defined]
                return True  # the budget ran out inside this value; it stays marked
            budget -= before + SETTLE_VALUE_COST
            due.pop(qid, None)
        # Then the entries of changed values, so that begin_checkpoint captures few: one changed again after this
        # is marked again and captured again. A cold value holding journal data (a new one: it is among the
        # changed) is settled first, staying cold.
        settled = False
        while budget > 0 and self._dirty and not due:
            qid, key = self._dirty.popitem()
            entry = self._capture(qid, key)
            if entry is False:
                found = self._find(qid, key)
                if found is not None and self._settle_cold(found[0], found[1]):
                    budget -= SETTLE_VALUE_COST
                    settled = True
                    entry = self._capture(qid, key)
            if entry is False:  # its data is still in the journal: begin_checkpoint settles and captures it
                self._dirty[qid] = key
                break
            self._captured[qid] = entry  # type: ignore[assignment]
            # A state dumped here costs the loop its size; a snapshot the worker thread dumps, next to nothing.
            budget -= 1 + (0 if not entry or callable(state := entry[4]) else len(state) >> 10)  # type: ignore[index]
        # More to do: values to settle, or more changed entries than begin_checkpoint should capture at once.
        return bool(due) or len(self._dirty) > CAPTURE_AT_CHECKPOINT or (settled and budget <= 0 and bool(self._dirty))

    def _settle_all(self) -> None:
        while self._settle_due:
            value = next(iter(self._settle_due.values()))
            self._dirty.setdefault(value.qid)
            value.settle()  # type: ignore[attr-defined]  # unmarks itself once done
        if self.types.with_cold:
            for qid, key in list(self._dirty.items()):  # a cold value holding journal data is a new one
                found = self._find(qid, key)
                if found is not None:
                    self._settle_cold(*found)

    def _find(self, qid: int, key: bytes | None = None) -> tuple[int, bytes, KeyEntry | bytes] | None:
        """(db, key, entry) of the value with queue id ``qid`` (under ``key`` if given, else as ``_keys_of`` says);
        None if it is gone."""
        if key is None:
            key = self._keys_of.get(qid)
            if key is None:
                return None
        for db, keyspace in enumerate(self.catalog):
            entry = keyspace.get(key)
            if entry is not None and (entry.qid if type(entry) is not bytes else self._qid_of(entry)) == qid:  # type: ignore[union-attr]
                return db, key, entry
        return None

    def _capture(self, qid: int, key: bytes | None) -> pages.Entry | bool | None:
        """The catalog entry of queue id ``qid`` (changed under ``key``, if it said) as it is now: None if the key
        is gone, False if its value holds data that must be settled first."""
        found = self._find(qid, key)
        if found is None:
            self._keys_of.pop(qid, None)
            return None
        db, key, entry = found
        if type(entry) is bytes:
            vtype = self.types.of_cold(entry)
            if vtype.cold_needs_settle(entry):
                return False
            self._keys_of.pop(qid, None)  # cold: it changes only as an object again, which get() registers
            self._warm.discard(qid)
            return self._slots[db], vtype.code, vtype.cold_expire(entry), key, vtype.cold_state(entry)[1]
        if qid in self._settle_due:
            return False
        self._keys_of[qid] = key  # later changes name its queue id alone
        vtype = entry.vtype  # type: ignore[union-attr]
        if vtype.cold_kinds:
            self._warm.add(qid)
        return self._slots[db], vtype.code, entry.expire_ms, key, entry.capture()  # type: ignore[union-attr]

    def _settle_cold(self, db: int, key: bytes, *_: object) -> bool:
        """If ``key`` is a cold value holding data in the journal alone, copies it to a segment, the value staying
        cold (one at a time, so that a burst of them never costs their objects all at once); True if it was."""
        keyspace = self.catalog[db]
        entry = keyspace.get(key)
        if type(entry) is not bytes or not self.types.of_cold(entry).cold_needs_settle(entry):
            return False
        value = self.get(db, key)  # already marked changed: only a value made since the last checkpoint is one
        value.settle()  # type: ignore[union-attr]
        cold = value.freeze()  # type: ignore[union-attr]
        if cold is not None:
            keyspace[key] = cold
            self._warm.discard(value.qid)  # type: ignore[union-attr]
        return True

    def run_checkpoint(self, cp: Checkpoint) -> None:
        """Worker thread: syncs dirtied segments and directories, then replaces the manifest atomically."""
        io = self.io
        try:
            # The journal file begin_checkpoint rotated away from may end in unsynced records; once the new file's
            # name is durable (the directory sync below) that tail must be too, or recovery finds a gap before it.
            self.journal.sync(cp.journal_lsn)
            for path in cp.dirty_paths:
                fd = io.open(path, write=False)
                try:
                    io.fdatasync(fd)
                finally:
                    io.close(fd)
            for directory in cp.directories:
                io.fsync_dir(directory)
            pages.apply(io, self.path, cp.catalog)  # the pages first, durably: the manifest names them
            cp.manifest.pages = cp.catalog.new_pages
            manifest.write(io, self.path, manifest.encode(cp.manifest))
            # The packs no page is in any more go now, here: unlinking a large file takes milliseconds.
            for pack in set(cp.catalog.packs) - set(cp.catalog.new_packs):
                try:
                    io.unlink(pages.pack_path(self.path, pack))
                except OSError:
                    pass  # named by no manifest: recovery deletes it
            # And the journal files it replaces, their descriptors closed first: a file's blocks are freed when its
            # last reference goes, 25-40 ms for a 64 MiB journal here, which finish_checkpoint held the loop for.
            self.journal.retire_before(cp.journal_lsn)
            for path in cp.retired_journals:
                try:
                    io.unlink(path)
                except OSError:
                    pass  # finish_checkpoint's sweep, or recovery, deletes it
        except OSError as error:
            cp.error = error
            self.write_error = f"checkpoint failed: {error}"
            raise StorageWriteError(self.write_error) from error
        cp.done = True

    def finish_checkpoint(self, cp: Checkpoint) -> None:
        """Loop thread: with the manifest durable, drops what it no longer needs (old journals, dead segments)."""
        self._checkpoint_running = False
        if not cp.done:
            # Nothing was released: the old manifest and journals still describe everything. The changes it would
            # have written are written by the next one (as they are then); a pack it wrote is named by nothing.
            for qid, entry in cp.catalog.changes.items():
                if qid not in self._dirty:  # a change since names the key as it is now
                    self._dirty[qid] = entry[3] if entry else None
            self._drop_all |= cp.catalog.drop_all
            self._rewrite_all |= cp.catalog.rewrite_all
            self._catalog_all |= cp.full
            try:
                self.io.unlink(pages.pack_path(self.path, cp.catalog.pack))
            except FileNotFoundError:
                pass
            self.store.dead.update(cp.dead)
            self.store.dirty |= {fid for fid in cp.dirty_fids if fid in self.store.files}
            self.store.new_dirs.update(cp.directories)
            self.outside_bytes += cp.outside_bytes
            return
        update = cp.catalog
        self._pages = update.new_pages
        self._packs = update.new_packs  # run_checkpoint deleted the others once the manifest was durable
        self.catalog_written = update.written
        dead = cp.dead
        if self._pinned_segments:
            dead = {}
            for fid, entry in cp.dead.items():
                if fid in self._pinned_segments:
                    self._deferred_dead[fid] = entry
                    self._deferred_bytes += entry[1]
                else:
                    dead[fid] = entry
        for qid in self.store.remove_dead(dead):
            try:
                self.io.rmdir(self.store.queue_dir(qid))  # the queue is gone, or holds no segment file now
            except OSError:
                pass  # it still has files (or files that died after this checkpoint began, or pinned ones)
        for name in self.io.listdir(self.journal.directory):
            seq = journal.parse_journal_name(name)
            if seq is not None and seq < cp.journal_seq and seq not in self._pinned_journals:
                self.io.unlink(os.path.join(self.journal.directory, name))  # a pinned one goes at a later one
        self.journal.retire_before(cp.journal_lsn)
        self._checkpoint_lsn = cp.journal_lsn
        self._last_checkpoint_time = time.time()

    def pin_files(self, segments: list[int], journals: list[int]) -> None:
        """A snapshot (of a list) reads these files until it is closed: no checkpoint may delete them meanwhile."""
        self._pinned_segments.update(segments)
        self._pinned_journals.update(journals)

    def unpin_files(self, segments: list[int], journals: list[int]) -> None:
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
                    self.store.dead[fid] = entry
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

    def _capture_catalog(
        self, journal_seq: int, journal_lsn: int
    ) -> tuple[manifest.ManifestData, pages.CatalogUpdate, bool]:
        """Loop thread, at the journal's rotation: the manifest (but its pages) and the catalog entries changed since
        the last checkpoint (O(changed): those captured ahead by ``settle_some`` and changed since are taken again)."""
        data = manifest.ManifestData(
            next_fid=self.store.next_fid,
            next_qid=self._next_qid,
            journal_seq=journal_seq,
            journal_lsn=journal_lsn,
            databases=self.databases,
            files={fid: (entry[0], entry[1]) for fid, entry in self.store.files.items()},
            slots=list(self._slots),
            next_slot=self._next_slot,
            metadata=dict(self.metadata),
        )
        for vtype in self.types:  # what replay from the new journal file starts with, where not the default
            payload = self._journaled_settings.get(vtype.code)
            if payload is not None and payload != vtype.default_settings:
                data.settings[vtype.code] = payload
        full = self._catalog_all
        changes, self._captured = self._captured, {}
        if full:
            changes = {}
            of_cold = self.types.of_cold
            for db, keyspace in enumerate(self.catalog):
                slot = self._slots[db]
                for key, entry in keyspace.items():
                    if type(entry) is bytes:
                        vtype = of_cold(entry)
                        qid, state = vtype.cold_state(entry)
                        changes[qid] = (slot, vtype.code, vtype.cold_expire(entry), key, state)
                    else:
                        changes[entry.qid] = (slot, entry.vtype.code, entry.expire_ms, key, entry.capture())  # type: ignore[union-attr]
                        self._keys_of[entry.qid] = key  # type: ignore[union-attr]
                        if entry.vtype.cold_kinds:  # type: ignore[union-attr]
                            self._warm.add(entry.qid)  # type: ignore[union-attr]
            self._dirty = {}
        for qid, key in self._dirty.items():
            entry = self._capture(qid, key)
            assert entry is not False, "a value left unsettled"
            changes[qid] = entry  # type: ignore[assignment]
        self._dirty = {}
        self._freeze_idle()
        update = pages.CatalogUpdate(
            pages=[] if full else self._pages,
            packs=dict(self._packs),
            changes=changes,
            live_slots=set(self._slots),
            pack=self._next_pack,
            drop_all=self._drop_all or full,
            rewrite_all=self._rewrite_all,
        )
        self._next_pack += 1
        data.next_pack = self._next_pack
        self._catalog_all = self._drop_all = self._rewrite_all = False
        return data, update, full

    def _freeze_idle(self) -> None:
        """Every settled value of a type with cold forms that nobody used since the last checkpoint becomes a cold
        entry (its manifest state and a head): values used before the next checkpoint turn into objects again, the
        others cost their bytes alone. Only an object no one holds but the catalog (and what its type keeps naming
        it: ``held_refs``) is replaced, so the change is never seen. Its catalog entry is the same either way."""
        used, self._used = self._used, set()
        for qid in list(self._warm):
            found = self._find(qid)
            if found is None or type(found[2]) is bytes:
                self._warm.discard(qid)
                if found is not None:
                    del self._keys_of[qid]
                continue
            if qid in used:
                continue
            db, key, entry = found
            del found
            if sys.getrefcount(entry) <= UNHELD_REFS + entry.held_refs():  # type: ignore[union-attr]
                cold = entry.freeze()  # type: ignore[union-attr]
                if cold is not None:
                    self.catalog[db][key] = cold
                    self._warm.discard(qid)
                    del self._keys_of[qid]

    @property
    def catalog_pages(self) -> list[pages.PageRef]:
        """The catalog pages the last durable checkpoint names."""
        return list(self._pages)

    # -- recovery

    def _recover(self) -> None:
        started = time.monotonic()
        state = manifest.read(self.io, self.path)
        self._by_qid = {}
        if state is not None:
            self._load_manifest(state)
        self._refuse_newer_journals()
        unnamed_packs = self._reconcile_packs(state)
        self._reconcile_segments()
        for pack in unnamed_packs:  # a checkpoint's pages whose manifest never became durable
            self.io.unlink(pages.pack_path(self.path, pack))
        first_seq = state.journal_seq if state is not None else 0
        lsn = state.journal_lsn if state is not None else 0
        # Replay starts with the settings the manifest names (the defaults elsewhere) and meets their changes.
        configured = dict(self._settings_payloads)
        for code, payload in (state.settings if state is not None else {}).items():
            vtype = self.types.by_code.get(code)
            if vtype is None or vtype.default_settings is None:
                raise StorageError(f"settings of key type {code}, which this build does not support")
            try:
                self._apply_settings(vtype, payload)
            except ValueError as error:
                raise StorageError(f"{vtype.name} settings in the manifest: {error}") from None
        self.store.reserved = {fid for _, fid in self._on_disk}
        try:
            replayed = self._replay_journals(first_seq, lsn)
        finally:
            self.store.reserved = set()
        for (qid, fid), size in self._on_disk.items():
            value = self._by_qid.get(qid)
            if isinstance(value, Value) and value.vtype.segment_recovery is SegmentRecovery.KEEP_WHOLE:
                self._dirty.setdefault(qid)
                value.recover_tail(fid, size)  # type: ignore[attr-defined]  # under the settings replay ends with
        # What replay of the journal so far ends with; later records journal the configured settings if they differ.
        self._journaled_settings = dict(self._settings_payloads)
        for code, payload in configured.items():
            self._apply_settings(self.types.by_code[code], payload)
        self.settings_unnoted = set(configured)
        self._cut_unnamed_tails()
        self.store.drop_unreferenced_shared()
        queues = len(self._by_qid)
        self._by_qid = None
        self.store.write_pending()
        self._checkpoint_lsn = lsn
        if state is None or self._whole_entries:
            self.checkpoint()  # a first start: write the manifest; or retire an earlier build's journal
        else:
            # Writes go to a new journal file; the replayed ones are durable already and stay, read by the pushes
            # replayed from them, until the next checkpoint settles those and retires the files. So a restart
            # after a crash costs the replay alone, however many queues it touched.
            self.journal.start_file(self.journal.seq + 1, self.journal.flushed_lsn)
            self.write_notes()  # data found at the end of files kept whole: later records follow it
        self._log_cb(
            "notice",
            f"storage ready: {queues} queues, {replayed} journal bytes replayed in {time.monotonic() - started:.3f}s",
        )

    def _reconcile_packs(self, state: manifest.ManifestData | None) -> list[int]:
        """Recovery, before anything changes: every catalog pack's header (none of a newer format version), the sizes
        of those the manifest names, and the ones it does not name (to delete once nothing is refused)."""
        io = self.io
        directory = os.path.join(self.path, pages.CATALOG_DIR)
        try:
            names = io.listdir(directory)
        except FileNotFoundError:
            return []
        named = {ref.pack for ref in state.pages} if state is not None else set()
        unnamed = []
        for name in names:
            pack = pages.parse_pack_name(name)
            if pack is None:
                continue
            path = os.path.join(directory, name)
            fd = io.open(path, write=False)
            try:
                size = io.size(fd)
                header = io.pread(fd, framing.FILE_PREFIX.size, 0)
            finally:
                io.close(fd)
            framing.refuse_newer(header, pages.CATALOG_MAGIC, path)
            if pack in named:
                self._packs[pack] = size
            else:
                unnamed.append(pack)
        return unnamed

    def _load_manifest(self, state: manifest.ManifestData) -> None:
        store = self.store
        store.next_fid = state.next_fid
        self._next_qid = state.next_qid
        if state.version < 3:
            self._catalog_all = True  # keys inline: the first checkpoint writes them all into pages
        else:
            self._pages = list(state.pages)
            self._next_pack = state.next_pack
            self._next_slot = max(state.next_slot, self.databases)
            for db, slot in enumerate(state.slots[: self.databases]):
                self._slots[db] = slot
            for db in range(len(state.slots), self.databases):  # more databases configured than written
                self._slots[db] = self._next_slot
                self._next_slot += 1
        self.metadata = dict(state.metadata)
        for fid, (qid, size) in state.files.items():
            store.files[fid] = [qid, size]
            store.live_bytes += size
        for db, type_code, expire, qid, key, blob in state.keys:
            if db >= self.databases:
                raise StorageError(f"the data holds keys in db {db} but only {self.databases} databases are set")
            vtype = self.types.by_code.get(type_code)
            if vtype is None:
                raise StorageError(f"key type {type_code} is not supported by this build")
            assert self._by_qid is not None
            cold = vtype.load_cold(self, qid, expire, blob)
            if cold is not None:  # objects only for the values the journal names, when replay gets to them
                self.catalog[db][key] = cold
                self._by_qid[qid] = (db, key)
                continue
            value = vtype.load(self, qid, blob)
            value.expire_ms = expire
            self.catalog[db][key] = value
            self._by_qid[qid] = value
            self._keys_of[qid] = key
            if vtype.cold_kinds:
                self._warm.add(qid)

    def _refuse_newer_journals(self) -> None:
        """Recovery, before anything changes: a journal file of a newer format version than this build's (as a later
        build starts at open) is refused, not replayed or deleted."""
        io, directory = self.io, self.journal.directory
        try:
            names = io.listdir(directory)
        except FileNotFoundError:
            return
        for name in names:
            if journal.parse_journal_name(name) is None:
                continue
            path = os.path.join(directory, name)
            fd = io.open(path, write=False)
            try:
                header = io.pread(fd, framing.FILE_PREFIX.size, 0)
            finally:
                io.close(fd)
            framing.refuse_newer(header, framing.JOURNAL_MAGIC, path)

    def _reconcile_segments(self) -> None:
        """Cuts list segment files back to their checkpointed size and deletes the ones the manifest does not know.

        Journal replay then re-appends exactly what followed the checkpoint, to the same files. Files of types that
        keep them whole (streams: ``SegmentRecovery.KEEP_WHOLE``), and files the manifest does not name (a stream's,
        created after it, perhaps), stay whole: their entries were written once, there, and replay reads them back
        (``appended_records``); ``_cut_unnamed_tails`` settles them afterwards.
        """
        io, store = self.io, self.store
        assert self._by_qid is not None
        io.mkdir(store.root)
        found, seen = self._scan_segments()
        for fid, (qid, _) in store.files.items():
            if fid not in seen:
                raise CorruptionError(store.path(qid, fid), 0, "segment file named by the manifest is missing")
        self._on_disk = {}
        for qdir, qid, files in found:
            owner = self._by_qid.get(qid) if qid is not None else None
            keep_whole = owner is not None and self._recovery_of(owner) is SegmentRecovery.KEEP_WHOLE
            for path, fid, size in files:
                known = store.files.get(fid) if fid is not None else None
                if known is None or known[0] != qid:
                    if fid is None or not qid or (owner is not None and not keep_whole):
                        io.unlink(path)  # not a segment, or a list's (or shared): replay recreates what it needs
                    else:
                        self._on_disk[(qid, fid)] = size
                    continue
                if keep_whole:
                    self._on_disk[(qid, fid)] = size  # type: ignore[index]
                elif size > known[1]:
                    fd = io.open(path)
                    try:
                        io.truncate(fd, known[1])
                    finally:
                        io.close(fd)
                    store.dirty.add(fid)  # type: ignore[arg-type]
            if not io.listdir(qdir):
                io.rmdir(qdir)

    def _scan_segments(self) -> tuple[list[tuple[str, int | None, list[tuple[str, int | None, int]]]], set[int]]:
        """Every queue directory (path, queue id) with its files (path, file id, size), and the manifest's files
        found among them: every header is read first, so that recovery refuses before it changes anything. A file
        the manifest lists must be a segment this build reads, at least as long as the checkpoint says; any other
        must not be of a newer format version (recovery would delete it, or read a stream's entries from it)."""
        io, store = self.io, self.store
        found: list[tuple[str, int | None, list[tuple[str, int | None, int]]]] = []
        listed: set[int] = set()
        for dir_name in io.listdir(store.root):
            qdir = os.path.join(store.root, dir_name)
            try:
                names = io.listdir(qdir)
            except NotADirectoryError:
                continue
            qid = _parse_queue_dir_name(dir_name)
            files: list[tuple[str, int | None, int]] = []
            for name in names:
                fid = parse_segment_name(name)
                path = os.path.join(qdir, name)
                if fid is None:
                    files.append((path, None, 0))
                    continue
                fd = io.open(path, write=False)
                try:
                    size = io.size(fd)
                    header = io.pread(fd, framing.SEGMENT_HEADER.size, 0)
                finally:
                    io.close(fd)
                known = store.files.get(fid)
                if known is not None and known[0] == qid:
                    if size < known[1]:
                        raise CorruptionError(path, size, f"segment is shorter than its checkpointed {known[1]}")
                    framing.check_prefix(header, framing.SEGMENT_MAGIC, path)
                    listed.add(fid)
                else:
                    framing.refuse_newer(header, framing.SEGMENT_MAGIC, path)
                files.append((path, fid, size))
            found.append((qdir, qid, files))
        return found, listed

    def _type_of(self, owner: KeyEntry | tuple[int, bytes]) -> ValueType:
        if type(owner) is tuple:  # a cold value, named by its key
            db, key = owner
            return self.types.of_cold(self.catalog[db][key])  # type: ignore[arg-type]
        return owner.vtype  # type: ignore[union-attr]

    def _recovery_of(self, owner: KeyEntry | tuple[int, bytes]) -> SegmentRecovery:
        return self._type_of(owner).segment_recovery

    def appended_records(self, qid: int, fid: int, offset: int, length: int, count: int) -> list[bytes]:
        """Recovery: the payloads of the ``count`` records (``length`` bytes) a journaled XADD appended at ``offset``
        of stream file ``fid``. Raises TornReference when a power cut kept them from the disk, whole or in part
        (the file, its header or its tail), and CorruptionError when they are damaged with valid records after."""
        io, store = self.io, self.store
        path = store.path(qid, fid)
        size = self._on_disk.get((qid, fid))
        if size is None:  # its id was not reserved: replay may have given it to another file
            raise TornReference(f"{path}, named by the journal, is not on disk")
        known = store.files.get(fid)
        if known is not None and known[0] != qid:
            raise ValueError(f"segment file {fid} belongs to queue {known[0]}, not {qid}")
        if offset + length > size:
            raise TornReference(f"{path} ends at byte {size}, inside entries the journal places at {offset}")
        fd = store.fd(fid) if known is not None else io.open(path, write=False)
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

    def tail_records(self, qid: int, fid: int, start: int, size: int) -> list[bytes]:
        """Recovery: the payloads of the whole records from ``start`` to the first bad one in stream file ``fid`` (of
        ``size`` bytes on disk). A bad record with valid ones after it to the end of the file is corruption."""
        io, store = self.io, self.store
        fd = store.fd(fid)
        data = io.pread(fd, size - start, start)
        payloads, end = framing.scan_records(data, 0, len(data), len(data))
        if end < len(data) and journal.record_ends_at(io, fd, size, start + end):
            raise CorruptionError(store.path(qid, fid), start + end, "a stream entry fails its checks")
        return payloads

    def replaying_whole_entries(self) -> None:
        """Recovery met an XADD record holding its entry: a journal of the build before entries were written once.
        That build's recovery cut segment files back to their checkpointed sizes and deleted the files the manifest
        did not name, then replay wrote entries again; the bytes past those sizes are its copies, not entries to
        find at the end. So do as it did, once, and end this recovery with a checkpoint (see ``_recover``): a later
        recovery must not cut entries appended after this one."""
        if self._whole_entries:
            return
        self._whole_entries = True
        store = self.store
        store.reserved = set()  # the files go or are cut: replay recreates them as that build did
        for (qid, fid), size in self._on_disk.items():
            known = store.files.get(fid)
            if known is None or known[0] != qid:
                self.io.unlink(store.path(qid, fid))  # replay recreates it if it rolls to that file again
            elif size > known[1]:
                store.cut(fid, known[1])
        self._on_disk = {}

    def _cut_unnamed_tails(self) -> None:
        """After replay: files kept whole end where their last replayed entry does (what follows was never
        acknowledged: its journal record did not survive), and files no replayed record named go."""
        io, store = self.io, self.store
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
            elif size > known[1] and (owner := self._by_qid.get(qid)) is not None:
                vtype = self._type_of(owner)
                if vtype.segment_recovery is SegmentRecovery.KEEP_WHOLE:
                    store.cut(fid, known[1])
                    cut = size - known[1]
                    self._log_cb("notice", f"cut {cut} bytes of unacknowledged {vtype.name} entries from {path}")
        self._on_disk = {}

    def _replay_journals(self, first_seq: int, lsn: int) -> int:
        io = self.io
        directory = self.journal.directory
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
        self.replaying = True
        # Replay touches every queue written since the checkpoint in journal order: with the normal descriptor cap,
        # thousands of queues would reopen their segment files over and over. Recovery may hold more for a moment.
        normal_cap = self.store.max_open_files
        self.store.max_open_files = max(normal_cap, _recovery_descriptor_cap())
        try:
            for index, seq in enumerate(seqs):
                path = os.path.join(directory, journal.journal_name(seq))
                self.journal.keep_readable(seq, lsn)  # replayed pushes are read from where they are
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
            self.replaying = False
            self.store.max_open_files = normal_cap
            self.store.trim_open_files()
        self.journal.seq = seqs[-1] if seqs else first_seq - 1
        self.journal.flushed_lsn = self.journal.durable_lsn = lsn
        return lsn - start_lsn

    def _end_journal_at(self, later: list[int], path: str, result: journal.ReplayResult) -> None:
        """A record of ``path`` names stream entries a power cut tore: nothing from it on was acknowledged. The files
        after it go first (durably), so that a cut during this leaves no gap before them, then ``path`` is cut."""
        io = self.io
        directory = self.journal.directory
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
        self.journal.flushed_lsn = lsn + framing.OVERHEAD + len(payload)
        self._apply(op, payload, lsn)

    def _apply(self, op: int, payload: bytes, record_lsn: int | None) -> None:
        """Re-executes one journaled operation through the same code as the live call."""
        if op == journal.OP_BATCH:
            ops = journal.decode_batch(payload)
            by_op = self.types.by_op
            for inner_op, inner_payload in ops:  # all of the batch or none: torn data stops it up front
                vtype = by_op.get(inner_op)
                if vtype is not None:
                    vtype.precheck(self, inner_op, inner_payload)
            # Each operation is applied as a record of its own whose payload sits where the batch holds it (a list's
            # pushes stay journal runs there, as live: no segment file per push on replay either).
            position = None if record_lsn is None else record_lsn + framing.HEAD_SIZE
            item = journal.BATCH_ITEM.size
            for inner_op, inner_payload in ops:
                if position is None:
                    self._apply(inner_op, inner_payload, None)
                else:
                    self._apply(inner_op, inner_payload, position + item - framing.HEAD_SIZE)
                    position += item + len(inner_payload)
        elif op in self.types.by_op:  # a type's record: it starts with the queue id
            (qid,) = struct.unpack_from("<Q", payload)
            assert self._by_qid is not None
            entry = self._by_qid[qid]
            if type(entry) is tuple:
                entry = self.get(*entry)
            self._dirty.setdefault(qid)
            entry.replay(op, payload, record_lsn)  # type: ignore[union-attr]
        elif op == journal.OP_CREATE:
            db, type_code, qid = CREATE_OP.unpack_from(payload)
            vtype = self.types.by_code.get(type_code)
            if vtype is None:
                raise StorageError(f"key type {type_code} is not supported by this build")
            self._create(db, payload[CREATE_OP.size :], vtype, qid)
        elif op == journal.OP_DELETE:
            (db,) = DB_OP.unpack_from(payload)
            self._delete(db, payload[DB_OP.size :])
        elif op == journal.OP_EXPIRE:
            db, has_expire, expire = EXPIRE_OP.unpack_from(payload)
            self._set_expire(db, payload[EXPIRE_OP.size :], expire if has_expire else None)
        elif op == journal.OP_RENAME:
            db, src_length = RENAME_OP.unpack_from(payload)
            src = payload[RENAME_OP.size : RENAME_OP.size + src_length]
            self.get(db, src)  # a cold list is named by its key until replay makes it an object: before it moves
            self._rename(db, src, payload[RENAME_OP.size + src_length :])
        elif op == journal.OP_FLUSHDB:
            self._flushdb(DB_OP.unpack(payload)[0])
        elif op == journal.OP_FLUSHALL:
            self._flushall()
        elif op == journal.OP_SWAPDB:
            a, b = TWO_DB_OP.unpack(payload)
            for db in (a, b):
                for key in [key for key, entry in self.catalog[db].items() if type(entry) is bytes]:
                    self.get(db, key)
            self._swapdb(a, b)
        elif op == journal.OP_TYPE_SETTINGS:
            (code,) = SETTINGS_OP.unpack_from(payload)
            vtype = self.types.by_code.get(code)
            if vtype is None or vtype.default_settings is None:
                raise StorageError(f"settings of key type {code}, which this build does not support")
            self._apply_settings(vtype, payload[SETTINGS_OP.size :])
        elif op == journal.OP_METADATA:
            values = journal.decode_values(payload)
            pairs = zip(values[0::2], values[1::2], strict=True)
            self._set_metadata({name: blob[1:] if blob[:1] == b"\x01" else None for name, blob in pairs})
        elif op == journal.OP_CLOCK:
            if record_lsn is not None:
                self.journal.add_mark(record_lsn, journal.CLOCK_OP.unpack(payload)[0])
        elif op == journal.OP_MOVE:
            src_db, dst_db = TWO_DB_OP.unpack_from(payload)
            self.get(src_db, payload[TWO_DB_OP.size :])
            self._move(src_db, dst_db, payload[TWO_DB_OP.size :])
        else:
            raise ValueError(f"unknown journal operation {op}")

    # -- accounting

    def _journal_bytes(self) -> int:
        return self.journal.flushed_lsn + self.journal.pending - self._checkpoint_lsn

    def _disk_used(self) -> int:
        return self.store.live_bytes + self.store.dead_bytes + self._journal_bytes()

    def disk_bytes(self) -> int:
        """Bytes the data directory's segments and journal take (cheap: no pass over the values)."""
        return self._disk_used()

    def open_files(self) -> int:
        return self.store.open_files + self.journal.open_files + (self._lock_fd is not None)

    def stats(self) -> dict[str, int | float | str]:
        j = self.journal
        figures: dict[str, int | float | str] = {}
        for vtype in self.types:
            values = (v for db in self.catalog for v in db.values() if type(v) is not bytes and v.vtype is vtype)  # type: ignore[union-attr]
            figures.update(vtype.stats(values))  # type: ignore[arg-type]
        return {
            "policy": self.appendfsync,
            "disk_bytes": self._disk_used(),
            "journal_bytes": self._journal_bytes(),
            "segments": len(self.store.files) + len(self.store.dead) + len(self._deferred_dead),
            "queues": sum(map(len, self.catalog)),
            "open_fds": self.store.open_files + j.open_files + (self._lock_fd is not None),
            "last_sync_us": j.last_sync_us,
            "last_sync_time": j.last_sync_time,
            "syncs_total": j.syncs_total,
            "last_checkpoint_time": self._last_checkpoint_time,
            "last_write_status": "ok" if self.write_error is None else self.write_error,
            **figures,
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
