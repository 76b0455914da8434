"""Redis keyspace semantics over the storage engine: lazy and active expiry, type checks, WATCH and ready keys.

The engine owns what is durable (keys, types, expiry times, contents); this layer adds what Redis clients observe
around it.
"""

from __future__ import annotations

import heapq
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from respq import errors, speedups
from respq.errors import CommandError
from respq.glob import compile_glob
from respq.storage.catalog import CatalogEntry

if TYPE_CHECKING:
    from respq.blocking import BlockingRegistry
    from respq.client import Client
    from respq.cluster.slotindex import SlotIndex
    from respq.stats import Stats
    from respq.storage.engine import Engine

ACTIVE_EXPIRE_SAMPLE = 20  # keys sampled per database per sweep, as in Redis's active expire cycle
_EXPIRE_SLOT = CatalogEntry.expire_ms  # what read_many's C path reads to tell a key without expiry
_read_slots = speedups.read_slots


def now_ms() -> int:
    return int(time.time() * 1000)


class Keyspace:
    def __init__(self, engine: Engine, *, databases: int, stats: Stats, blocking: BlockingRegistry) -> None:
        """``stats`` counts the keys expiry deletes; ``blocking`` learns which keys became ready for its waiters."""
        self.engine = engine
        self.databases = databases
        self.stats = stats
        self.blocking = blocking
        self.watchers: dict[tuple[int, bytes], set[Client]] = {}
        # Cluster mode: keys of database 0 whose slot another node serves now. They stay on disk (removed only on
        # purpose, never by a map change), no command reaches them, and DBSIZE, KEYS, SCAN, RANDOMKEY and INFO
        # keyspace leave them out. Set by the server at each change of the slot map.
        self.hidden: set[bytes] = set()
        self.on_expired: Callable[[int, bytes], None] | None = None  # replication: replicas delete it too
        # Cluster mode: database 0's keys by hash slot, kept by the engine's key listener (None outside cluster mode).
        self.slot_index: SlotIndex | None = None
        # Keys with an expiry per database, for active expiry without scanning every key.
        self.volatile: list[set[bytes]] = [set() for _ in range(self.databases)]
        for db in range(self.databases):
            for key in engine.empty_keys(db):
                # A list whose first push was cut by a crash or a full disk: Redis never shows empty lists.
                engine.delete(db, key)
            for key in list(engine.keys(db)):
                found = engine.peek(db, key)  # lists loaded cold stay cold
                if found is not None and found[1] is not None:
                    self.volatile[db].add(key)

    # ---- lookups ------------------------------------------------------------------------------------------------
    def lookup(self, db: int, key: bytes) -> Any:
        """The key's entry (``.type``, ``.expire_ms``, ``.value``), or None if missing or expired."""
        entry = self.engine.get(db, key)
        if entry is not None and entry.expire_ms is not None and entry.expire_ms <= now_ms():
            self._expire(db, key)
            return None
        return entry

    def read_many(
        self, db: int, keys: list[bytes], kind: type, read: Callable[[Any], Any], slot: Any = None
    ) -> list[Any]:
        """``read(value)`` of each key whose value is a ``kind``; None for a key missing, expired or of another type
        (MGET). The common key, live with no expiry, costs one dict access and no call besides ``read``; a key
        with an expiry or a value held cold goes through ``lookup``. ``slot``: the ``kind``'s __slots__ member
        holding bytes (or a bytearray) that ``read`` returns as bytes: when every key is missing or such a value
        without expiry, one C call reads them all."""
        catalog = self.engine.catalog[db]
        if slot is not None and _read_slots is not None and type(keys) is list:
            found = _read_slots(catalog, keys, kind, slot, _EXPIRE_SLOT)
            if found is not None:
                return found
        get = catalog.get
        return [
            read(entry)
            if type(entry := get(key)) is kind and entry.expire_ms is None
            else None
            if entry is None
            else self._read_slow(db, key, kind, read)
            for key in keys
        ]

    def _read_slow(self, db: int, key: bytes, kind: type, read: Callable[[Any], Any]) -> Any:
        entry = self.lookup(db, key)
        return read(entry) if type(entry) is kind else None

    def typed(self, db: int, key: bytes, type_name: str) -> Any:
        """The key's value if it holds ``type_name``; None if missing; WRONGTYPE otherwise."""
        entry = self.engine.catalog[db].get(key)
        if entry is None:  # a missing key (a new hash, set...) in one dict access
            return None
        if type(entry) is bytes or entry.expire_ms is not None:  # cold, or may have expired: ``lookup`` decides
            entry = self.lookup(db, key)
            if entry is None:
                return None
        if entry.type != type_name:
            raise CommandError(errors.WRONGTYPE)
        return entry.value

    def exists(self, db: int, key: bytes) -> bool:
        return self.lookup(db, key) is not None

    def type_of(self, db: int, key: bytes) -> str | None:
        """The key's type name, None if missing or expired; a key iteration's check that leaves cold lists cold."""
        found = self.engine.peek(db, key)
        if found is None:
            return None
        if found[1] is not None and found[1] <= now_ms():
            self._expire(db, key)
            return None
        return found[0]

    def dbsize(self, db: int) -> int:
        size = self.engine.dbsize(db)
        return size - self.unserved_keys() if db == 0 and self.hidden else size

    def unserved_keys(self) -> int:
        """Cluster mode: how many keys of slots another node serves this node keeps (expiry may have removed some
        of those hidden at the map change)."""
        peek = self.engine.peek
        return sum(1 for key in self.hidden if peek(0, key) is not None)

    def _visible(self, db: int, keys: Iterable[bytes]) -> Iterable[bytes]:
        hidden = self.hidden
        return keys if db or not hidden else [key for key in keys if key not in hidden]

    def keys(self, db: int) -> Iterator[bytes]:
        """Live keys (expired ones are skipped, not deleted: iteration must not change the dict)."""
        now = now_ms()
        engine = self.engine
        for key in list(self._visible(db, engine.keys(db))):
            found = engine.peek(db, key)
            if found is not None and (found[1] is None or found[1] > now):
                yield key

    def matching_keys(self, db: int, pattern: bytes) -> list[bytes]:
        if pattern == b"*":
            return list(self.keys(db))
        match = compile_glob(pattern)
        return [key for key in self.keys(db) if match(key)]

    def scan(self, db: int, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """Visits keys in the order of a 32-bit hash; the cursor is the next hash value to visit, so every key present
        for the whole iteration is returned at least once however keys come and go. O(keys) per call."""
        pending = [(h, key) for key in self._visible(db, self.engine.keys(db)) if (h := zlib.crc32(key)) >= cursor]
        if len(pending) <= count:
            return 0, [key for _, key in sorted(pending)]
        batch = heapq.nsmallest(count, pending)
        last = batch[-1][0]
        # Keys sharing the last hash all go into this batch, since the next cursor starts past that hash.
        taken = {key for _, key in batch}
        batch += [(h, key) for h, key in pending if h == last and key not in taken]
        next_cursor = last + 1 if last + 1 < 1 << 32 else 0
        return next_cursor, [key for _, key in batch]

    def random_key(self, db: int) -> bytes | None:
        keys = list(self._visible(db, self.engine.keys(db)))
        while keys:
            key = keys.pop(random.randrange(len(keys)))
            if self.lookup(db, key) is not None:
                return key
        return None

    # ---- changes ------------------------------------------------------------------------------------------------
    def create(self, db: int, key: bytes, type_name: str) -> Any:
        return self.engine.create(db, key, type_name)

    def replace(self, db: int, key: bytes, type_name: str) -> Any:
        """A new empty value of ``type_name`` under ``key``, deleting whatever was there (expired or not): watchers
        fail, the key leaves the volatile set (a new value has no expiry), and clients blocked on the old value are
        signalled (stream group readers learn it is gone). Call it and the write that fills the value inside one
        ``engine.atomic()``, so that a crash never leaves the key empty or half-replaced."""
        engine = self.engine
        if engine.peek(db, key) is not None:
            engine.delete(db, key)
            self.volatile[db].discard(key)
            self.signal_ready(db, key)
        self.touch(db, key)
        return engine.create(db, key, type_name)

    def delete(self, db: int, key: bytes) -> bool:
        if self.lookup(db, key) is None:
            return False
        self.engine.delete(db, key)
        self.volatile[db].discard(key)
        self._removed(db, key)
        return True

    def delete_if_empty(self, db: int, key: bytes, value: Any) -> None:
        """Redis deletes a list when its last element goes."""
        if len(value) == 0:
            self.engine.delete(db, key)
            self.volatile[db].discard(key)

    def rename(self, db: int, src: bytes, dst: bytes) -> None:
        entry = self.lookup(db, src)
        assert entry is not None
        expire_ms = entry.expire_ms
        self.lookup(db, dst)  # lazily expire the destination first
        self.engine.rename(db, src, dst)
        self.volatile[db].discard(src)
        if expire_ms is not None:
            self.volatile[db].add(dst)
        else:
            self.volatile[db].discard(dst)
        self._removed(db, src)
        self._removed(db, dst)

    def copy(self, src_db: int, src: bytes, dst_db: int, dst: bytes, *, replace: bool) -> bool:
        """COPY: False if ``src`` is missing, or ``dst`` exists and not ``replace``. The copy keeps the expiry;
        clients watching ``dst`` fail, clients blocked on it are served."""
        if self.lookup(src_db, src) is None:
            return False
        existing = self.lookup(dst_db, dst) is not None  # an expired destination is gone first
        if existing and not replace:
            return False
        value = self.engine.copy(src_db, src, dst_db, dst, replace=existing)
        if value.expire_ms is not None:
            self.volatile[dst_db].add(dst)
        else:
            self.volatile[dst_db].discard(dst)
        self._removed(dst_db, dst)
        return True

    def move(self, src_db: int, key: bytes, dst_db: int) -> bool:
        """MOVE: False if ``key`` is missing in ``src_db`` or present in ``dst_db``. It keeps its expiry."""
        entry = self.lookup(src_db, key)
        if entry is None or self.lookup(dst_db, key) is not None:
            return False
        expire_ms = entry.expire_ms
        self.engine.move(src_db, dst_db, key)
        self.volatile[src_db].discard(key)
        if expire_ms is not None:
            self.volatile[dst_db].add(key)
        self._removed(src_db, key)
        self._removed(dst_db, key)
        return True

    def set_expire(self, db: int, key: bytes, expire_ms: int | None) -> None:
        if expire_ms is not None and expire_ms <= now_ms():
            # An expiry in the past deletes the key at once, as Redis does.
            self.engine.delete(db, key)
            self.volatile[db].discard(key)
            self._removed(db, key)
            return
        self.engine.set_expire(db, key, expire_ms)
        if expire_ms is None:
            self.volatile[db].discard(key)
        else:
            self.volatile[db].add(key)
        self.touch(db, key)

    def flushdb(self, db: int) -> None:
        self._touch_db(db)
        self.engine.flushdb(db)
        self.volatile[db].clear()
        self._signal_db(db)

    def flushall(self) -> None:
        for db in range(self.databases):
            self._touch_db(db)
        self.engine.flushall()
        for volatile in self.volatile:
            volatile.clear()
        for db in range(self.databases):
            self._signal_db(db)

    def swapdb(self, a: int, b: int) -> None:
        # A watched key present on either side changes: it appears, goes, or holds the other database's value.
        self._touch_db(a, b)
        self._touch_db(b, a)
        self.engine.swapdb(a, b)
        self.volatile[a], self.volatile[b] = self.volatile[b], self.volatile[a]
        # Clients blocked on keys of either database may now be served (or, reading a group of a stream now
        # gone, told so).
        self._signal_db(a)
        self._signal_db(b)

    def _expire(self, db: int, key: bytes) -> None:
        if self.on_expired is not None:
            self.on_expired(db, key)
        self.engine.delete(db, key)
        self.volatile[db].discard(key)
        self.stats.expired_keys += 1
        self._removed(db, key)

    def _removed(self, db: int, key: bytes) -> None:
        """A key was deleted or replaced: watchers fail, and blocked stream readers learn the key is gone."""
        self.touch(db, key)
        self.signal_ready(db, key)

    def _signal_db(self, db: int) -> None:
        for waiting_db, key in list(self.blocking.waiters):
            if waiting_db == db:
                self.signal_ready(db, key)

    def expire_some(self) -> None:
        """Active expiry: sample keys with a TTL in every database and delete the expired ones."""
        now = now_ms()
        for db, volatile in enumerate(self.volatile):
            if not volatile:
                continue
            sample = random.sample(list(volatile), min(ACTIVE_EXPIRE_SAMPLE, len(volatile)))
            for key in sample:
                found = self.engine.peek(db, key)
                if found is None or found[1] is None:
                    volatile.discard(key)
                elif found[1] <= now:
                    self._expire(db, key)

    # ---- WATCH and blocked clients ------------------------------------------------------------------------------
    def watch(self, client: Client, db: int, key: bytes) -> None:
        if (db, key) in client.watched:
            return
        client.watched.add((db, key))
        self.watchers.setdefault((db, key), set()).add(client)

    def adopt_watches(self, client: Client) -> None:
        """Keys ``client`` watched while the data was loading (recorded on the client alone) are watched here now."""
        for slot in client.watched:
            self.watchers.setdefault(slot, set()).add(client)

    def unwatch_all(self, client: Client) -> None:
        for slot in client.watched:
            clients = self.watchers.get(slot)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del self.watchers[slot]
        client.watched.clear()
        client.dirty_cas = False

    def touch(self, db: int, key: bytes) -> None:
        """A key changed: transactions watching it must fail."""
        clients = self.watchers.get((db, key))
        if clients:
            for client in clients:
                client.dirty_cas = True

    def _touch_db(self, db: int, other: int | None = None) -> None:
        """Watchers of keys of ``db`` that exist there (or in ``other``, about to take its place) fail."""
        peek = self.engine.peek
        for watched_db, key in list(self.watchers):
            if watched_db == db and (peek(db, key) is not None or (other is not None and peek(other, key) is not None)):
                self.touch(db, key)

    def signal_ready(self, db: int, key: bytes) -> None:
        """Elements arrived at key: blocked clients waiting on it are served after the current command."""
        self.blocking.signal(db, key)
