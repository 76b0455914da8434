"""What the engine's catalog holds for a key: the list or stream itself, with the key's expiry."""

from __future__ import annotations


class CatalogEntry:
    """Base of ListLog and StreamLog: ``type``, ``expire_ms`` and ``value`` (the object itself). One object per key
    instead of an entry pointing at its value saves 56 bytes per queue."""

    __slots__ = ("expire_ms",)
    type: str  # "list" or "stream", set by the subclass

    def __init__(self) -> None:
        self.expire_ms: int | None = None  # absolute unix time in ms

    @property
    def value(self) -> CatalogEntry:
        return self
