"""The storage port held in memory (``storage memory``): the same catalog and value types as the disk engine, with
no journal, no checkpoints and no file at all.

``MemoryEngine`` is a second implementation of ``StorePort`` beside ``Engine``; the keyspace and the types talk to it
through the same port and do not know which one they have (``on_disk`` is False here: a type pushes values straight
into its segments, never into a journal to read them back from). ``MemoryStore`` gives the segment-store half of the
port: a segment is one ``bytearray`` holding framed records, so a message costs its bytes and its 13-byte frame, not
a Python object of its own. Nothing is durable: a restart starts empty, as a Redis started with ``--save ''
--appendonly no`` does.

``maxmemory`` counts the bytes held: segment bytes plus what values keep as objects (``inline_bytes``); over it, the
server refuses commands flagged ``denyoom`` with Redis's OOM error and evicts nothing (``over_maxmemory``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from respq.storage import framing
from respq.storage.errors import CorruptionError
from respq.storage.port import KeyListener, TypeRegistry, Value, ValueType

# Redis's quicklist nodes hold 8 KB: a segment this size keeps what a consumed queue holds on to as small (a file
# is freed once nothing in it is live), and a record bigger than that takes a segment of its own.
MEMORY_SEGMENT_SIZE = 8 << 10
MEMORY_PATH = "(memory)"  # where errors say a segment is: it has no path


class MemoryStore:
    """Segments as bytearrays of framed records (``framing``), read as ``SegmentStore`` reads its files."""

    shared_fid = 0  # no shared file: lists settle nothing (there is no journal to copy values out of)
    full = False

    def __init__(self, segment_size: int = MEMORY_SEGMENT_SIZE) -> None:
        self.segment_size = segment_size
        self.files: dict[int, bytearray] = {}  # live file id -> its records
        self.next_fid = 1
        self.live_bytes = 0

    def create(self, qid: int, *, commit: bool = False) -> int:
        fid = self.next_fid
        self.next_fid += 1
        self.files[fid] = bytearray()
        return fid

    def size(self, fid: int) -> int:
        return len(self.files[fid])

    def append(self, fid: int, data: bytes, *, commit: bool = False) -> int:
        segment = self.files[fid]
        offset = len(segment)
        segment += data
        self.live_bytes += len(data)
        return offset

    def kill(self, fid: int) -> None:
        self.live_bytes -= len(self.files.pop(fid))

    def is_shared(self, fid: int) -> bool:
        return False

    def write_pending(self, fid: int | None = None) -> None:
        return

    def read_forward(self, fid: int, offset: int, limit: int, want_value: bool = True) -> tuple[bytes | None, int]:
        segment = self.files[fid]
        values, after = framing.scan_records(segment, offset, limit, 1)
        if not values:
            self._corrupt(segment, offset, limit, True)
        return (values[0] if want_value else None), after

    def read_backward(self, fid: int, end: int, low: int, want_value: bool = True) -> tuple[bytes | None, int]:
        segment = self.files[fid]
        values, start = framing.scan_records_backward(segment, end, low, 1)
        if not values:
            self._corrupt(segment, end, low, False)
        return (values[0] if want_value else None), start

    def read_many_forward(self, fid: int, offset: int, limit: int, count: int) -> tuple[list[bytes], int]:
        segment = self.files[fid]
        values, after = framing.scan_records(segment, offset, limit, count)
        if not values:
            self._corrupt(segment, offset, limit, True)
        return values, after

    def read_many_backward(self, fid: int, end: int, low: int, count: int) -> tuple[list[bytes], int]:
        segment = self.files[fid]
        values, start = framing.scan_records_backward(segment, end, low, count)
        if not values:
            self._corrupt(segment, end, low, False)
        return values, start

    @staticmethod
    def _corrupt(segment: bytearray, at: int, bound: int, forward: bool) -> None:
        """A read that found no record where a value said one is: a bug, reported as the disk store reports it."""
        try:
            if forward:
                framing.parse_forward(segment, at, min(bound, len(segment)))
            else:
                framing.parse_backward(segment, at, bound)
            reason = "no record"
        except framing.FramingError as error:
            reason = error.reason
        raise CorruptionError(MEMORY_PATH, at, reason)


class MemoryEngine:
    """Every key in memory; the same public surface as ``Engine`` for the keyspace, the commands and the server."""

    on_disk = False  # the port: values are never read back from a journal or from files by path
    path = MEMORY_PATH
    appendfsync = "no"
    replaying = False
    write_error: str | None = None
    journal = None  # no journal: nothing reads it when ``on_disk`` is False

    def __init__(self, *, databases: int, maxmemory: int = 0, types: TypeRegistry, segment_size: int = 0) -> None:
        self.databases = databases
        self.types = types
        self.maxmemory = maxmemory
        self.maxdisk = 0  # no disk to fill
        self.inline_bytes = 0
        self.metadata: dict[bytes, bytes] = {}
        self.settings: dict[int, Any] = {}
        self.settings_unnoted: set[int] = set()
        for vtype in types:
            if vtype.default_settings is not None:
                self.settings[vtype.code] = vtype.parse_settings(vtype.default_settings)
        self.store = MemoryStore(segment_size or MEMORY_SEGMENT_SIZE)
        self.catalog: list[dict[bytes, Value]] = [{} for _ in range(databases)]
        self.key_listener: KeyListener | None = None  # told of keys added and removed (port.KeyListener)
        self.atomic_depth = 0
        self.journaled_values = 0
        self.outside_bytes = 0
        self._next_qid = 1

    @classmethod
    def open(
        cls,
        *,
        databases: int = 16,
        maxmemory: int = 0,
        types: TypeRegistry,
        type_settings: dict[str, bytes] | None = None,
        segment_size: int = 0,
    ) -> MemoryEngine:
        engine = cls(databases=databases, maxmemory=maxmemory, types=types, segment_size=segment_size)
        for name, payload in (type_settings or {}).items():
            engine.set_type_settings(name, payload)
        return engine

    # -- settings and metadata

    def set_type_settings(self, name: str, payload: bytes) -> None:
        vtype = self.types[name]
        if vtype.default_settings is None:
            raise ValueError(f"{name} has no settings")
        self.settings[vtype.code] = vtype.parse_settings(payload)

    def note_settings(self, vtype: ValueType) -> None:
        return

    def set_metadata(self, changes: dict[bytes, bytes | None]) -> None:
        for name, blob in changes.items():
            if blob is None:
                self.metadata.pop(name, None)
            else:
                self.metadata[name] = blob

    def close(self) -> None:
        return

    def abandon(self) -> None:
        return

    # -- catalog (as Engine's, without records: there is nothing to replay)

    def get(self, db: int, key: bytes) -> Value | None:
        return self.catalog[db].get(key)

    def peek(self, db: int, key: bytes) -> tuple[str, int | None] | None:
        entry = self.catalog[db].get(key)
        return None if entry is None else (entry.type, entry.expire_ms)

    def empty_keys(self, db: int) -> list[bytes]:
        return []  # only a crash leaves such keys behind

    def thaw_where(self, vtype: ValueType, test: Callable[[bytes], bool]) -> None:
        return  # nothing is ever cold: there are no checkpoints to freeze idle values at

    def keys(self, db: int) -> Iterator[bytes]:
        return iter(list(self.catalog[db]))

    def dbsize(self, db: int) -> int:
        return len(self.catalog[db])

    def create(self, db: int, key: bytes, type_name: str) -> Value:
        keyspace = self.catalog[db]
        if key in keyspace:
            raise KeyError(f"key {key!r} already exists in db {db}")
        qid = self._next_qid
        self._next_qid = qid + 1
        value = keyspace[key] = self.types.by_name[type_name].create(self, qid)
        if self.key_listener is not None:
            self.key_listener.key_added(db, key)
        return value

    def delete(self, db: int, key: bytes) -> bool:
        value = self.catalog[db].pop(key, None)
        if value is None:
            return False
        value.drop()
        if self.key_listener is not None:
            self.key_listener.key_removed(db, key)
        return True

    def rename(self, db: int, src: bytes, dst: bytes) -> None:
        keyspace = self.catalog[db]
        if src not in keyspace:
            raise KeyError(src)
        if src == dst:
            return
        entry = keyspace.pop(src)
        replaced = keyspace.pop(dst, None)
        if replaced is not None:
            replaced.drop()
        keyspace[dst] = entry
        if self.key_listener is not None:
            self.key_listener.key_removed(db, src)
            self.key_listener.key_added(db, dst)

    def set_expire(self, db: int, key: bytes, expire_ms: int | None) -> None:
        self.catalog[db][key].expire_ms = expire_ms

    def flushdb(self, db: int) -> None:
        keyspace, self.catalog[db] = self.catalog[db], {}
        for value in keyspace.values():
            value.drop()
        if self.key_listener is not None:
            self.key_listener.db_replaced(db)

    def flushall(self) -> None:
        for db in range(self.databases):
            self.flushdb(db)

    def swapdb(self, a: int, b: int) -> None:
        self.catalog[a], self.catalog[b] = self.catalog[b], self.catalog[a]
        if self.key_listener is not None:
            self.key_listener.db_replaced(a)
            self.key_listener.db_replaced(b)

    def move(self, src_db: int, dst_db: int, key: bytes) -> bool:
        if key not in self.catalog[src_db] or key in self.catalog[dst_db] or src_db == dst_db:
            return False
        self.catalog[dst_db][key] = self.catalog[src_db].pop(key)
        if self.key_listener is not None:
            self.key_listener.key_removed(src_db, key)
            self.key_listener.key_added(dst_db, key)
        return True

    def copy(self, src_db: int, src: bytes, dst_db: int, dst: bytes, *, replace: bool = False) -> Value:
        source = self.catalog[src_db].get(src)
        if source is None:
            raise KeyError(src)
        if (src_db, src) == (dst_db, dst) or (dst in self.catalog[dst_db] and not replace):
            raise KeyError(f"key {dst!r} already exists in db {dst_db}")
        qid = self._next_qid
        self._next_qid += 1
        with self.atomic():
            value = source.vtype.copy(self, source, qid)
        old = self.catalog[dst_db].pop(dst, None)
        if old is not None:
            old.drop()
        self.catalog[dst_db][dst] = value
        value.expire_ms = source.expire_ms
        if self.key_listener is not None:
            self.key_listener.key_added(dst_db, dst)
        return value

    # -- the write path of the port: nothing to journal, only the limit to enforce

    @contextmanager
    def atomic(self) -> Iterator[None]:
        self.atomic_depth += 1
        try:
            yield
        finally:
            self.atomic_depth -= 1

    def begin_atomic(self) -> None:
        self.atomic_depth += 1

    def end_atomic(self) -> None:
        self.atomic_depth -= 1

    def before_write(self, growth: int) -> None:
        return  # maxmemory is enforced before the command runs, on denyoom commands (over_maxmemory)

    def log(self, op: int, payload: bytes) -> None:
        return

    def log_many(self, op: int, payloads: list[bytes]) -> None:
        return

    def log_note(self, op: int, payload: bytes) -> None:
        return

    def log_at(self, op: int, payload: bytes) -> int:
        raise RuntimeError("no journal to read values back from (on_disk is False)")

    log_many_at = log_at  # type: ignore[assignment]

    def journal_clean(self) -> bool:
        return True

    def mark_settle(self, value: Value) -> None:
        return

    def unmark_settle(self, value: Value) -> None:
        return

    def mark_used(self, qid: int) -> None:
        return

    def unmark_used(self, qid: int) -> None:
        return

    def mark_note(self, value: Value) -> None:
        return

    def mark_changed(self, value: Value) -> None:
        return

    def notes_pending(self) -> dict[int, Value]:
        return {}

    def write_notes(self) -> None:
        return

    def appended_outside(self, nbytes: int) -> None:
        return

    def inline_changed(self, delta: int) -> None:
        self.inline_bytes += delta

    def pin_files(self, segments: list[int], journals: list[int]) -> None:
        return

    def unpin_files(self, segments: list[int], journals: list[int]) -> None:
        return

    def used_bytes(self) -> int:
        """What maxmemory is measured against: the bytes values hold (segments, and objects' data)."""
        return self.store.live_bytes + self.inline_bytes

    def over_maxmemory(self) -> bool:
        return 0 < self.maxmemory < self.store.live_bytes + self.inline_bytes

    # -- what the server's durability and checkpoint loops ask: there is nothing to make durable

    def flush(self) -> int:
        return 0

    def sync(self, lsn: int) -> None:
        return

    def pending_lsn(self) -> int:
        return 0

    def change_mark(self) -> int:
        return 0  # nothing journaled to count: callers treat every write as a change

    def flushed_lsn(self) -> int:
        return 0

    def durable_lsn(self) -> int:
        return 0

    @property
    def syncs_total(self) -> int:
        return 0

    def checkpoint_due(self) -> bool:
        return False

    def settle_some(self, budget: int) -> bool:
        return False

    def stats(self) -> dict[str, int | float | str]:
        figures: dict[str, int | float | str] = {}
        for vtype in self.types:
            figures.update(vtype.stats(v for db in self.catalog for v in db.values() if v.vtype is vtype))
        return {
            "storage": "memory",
            "memory_bytes": self.used_bytes(),
            "segments": len(self.store.files),
            "queues": sum(map(len, self.catalog)),
            **figures,
        }
