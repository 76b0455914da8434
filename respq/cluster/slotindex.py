"""Cluster mode's keys by hash slot (database 0, the only one): COUNTKEYSINSLOT and GETKEYSINSLOT without a scan,
and the keys of the slots another node serves. Kept by the store's key listener, which every key that appears or
leaves passes through (commands, expiry, RENAME, RESTORE, FLUSHALL), so it cannot drift from the catalog."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from respq.cluster.keyslot import SLOTS, key_slot


class KeySource(Protocol):
    key_listener: object

    def keys(self, db: int) -> Iterator[bytes]: ...


# A slot's keys are a list up to this many (a list of n keys costs about 8n bytes over 56, a set eight times that:
# 100k idle queues spread over the 16384 slots cost ~20 bytes a key, not ~110); a set past it, so that removing a key
# of a slot holding many (hash tags put a tenant's every queue in one slot) stays O(1).
SMALL = 32


class SlotIndex:
    """Per slot, its keys (a slot's count is their number). A slot's keys are made with its first key and dropped
    with its last, so an idle node costs one list of 16384 pointers plus about 8 bytes a key."""

    __slots__ = ("_slots", "_source")

    def __init__(self, source: KeySource) -> None:
        """Reads ``source``'s keys of database 0 and listens to it from then on."""
        self._source = source
        self._slots: list[list[bytes] | set[bytes] | None] = [None] * SLOTS
        self.db_replaced(0)
        source.key_listener = self

    def key_added(self, db: int, key: bytes) -> None:
        if db == 0:
            slot = key_slot(key)
            keys = self._slots[slot]
            if keys is None:
                self._slots[slot] = [key]
            elif type(keys) is set:
                keys.add(key)
            elif key not in keys:  # a key replaced in place (RENAME over it, COPY ... REPLACE) is told again
                if len(keys) < SMALL:
                    keys.append(key)  # type: ignore[union-attr]
                else:
                    self._slots[slot] = {*keys, key}

    def key_removed(self, db: int, key: bytes) -> None:
        if db == 0:
            slot = key_slot(key)
            keys = self._slots[slot]
            if keys is None or key not in keys:
                return
            keys.remove(key)
            if not keys:
                self._slots[slot] = None
            elif type(keys) is set and len(keys) <= SMALL // 2:  # halfway back: a slot hovering at SMALL stays set
                self._slots[slot] = list(keys)

    def db_replaced(self, db: int) -> None:
        if db == 0:
            self._slots = [None] * SLOTS
            for key in self._source.keys(0):
                self.key_added(0, key)

    def count(self, slot: int) -> int:
        keys = self._slots[slot]
        return 0 if keys is None else len(keys)

    def keys(self, slot: int) -> list[bytes] | set[bytes]:
        """The slot's keys, expired ones included (the store still holds them); do not change what it returns."""
        return self._slots[slot] or []

    def keys_of(self, slots: Iterable[int]) -> set[bytes]:
        found: set[bytes] = set()
        for slot in slots:
            keys = self._slots[slot]
            if keys is not None:
                found.update(keys)
        return found

    def snapshot(self) -> dict[int, set[bytes]]:
        """Every non-empty slot's keys (tests compare it with a scan)."""
        return {slot: set(keys) for slot, keys in enumerate(self._slots) if keys}
