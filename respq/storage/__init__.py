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

__all__ = [
    "Checkpoint",
    "CorruptionError",
    "DirectoryLockedError",
    "DiskFullError",
    "Engine",
    "FormatError",
    "KeyEntry",
    "StorageError",
    "StorageReadError",
    "StorageWriteError",
]
