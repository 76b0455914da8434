"""Durable storage for respq: pure Python with blocking file I/O, no knowledge of RESP or of the event loop."""

from respq.storage.engine import Checkpoint, Engine, KeyEntry
from respq.storage.errors import (
    CorruptionError,
    DirectoryLockedError,
    DiskFullError,
    FormatError,
    StorageError,
    StorageReadError,
    StorageWriteError,
)
from respq.storage.listlog import LEFT, RIGHT, ListLog, Side

__all__ = [
    "LEFT",
    "RIGHT",
    "Checkpoint",
    "CorruptionError",
    "DirectoryLockedError",
    "DiskFullError",
    "Engine",
    "FormatError",
    "KeyEntry",
    "ListLog",
    "Side",
    "StorageError",
    "StorageReadError",
    "StorageWriteError",
]
