"""Errors raised by the storage engine. The server maps them to replies or to a refusal to start."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every storage failure."""


class CorruptionError(StorageError):
    """A record failed its framing or checksum somewhere it cannot be a torn tail: never skipped silently."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"corrupt data in {path} at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class StorageReadError(StorageError):
    """Reading a file failed (an I/O error): the command that needed the bytes fails with this; nothing is skipped."""

    def __init__(self, path: str, offset: int, error: OSError) -> None:
        super().__init__(f"reading {path} at offset {offset} failed: {error.strerror or error}")
        self.path = path
        self.offset = offset


class FormatError(StorageError):
    """A file has an unknown magic or a format version this build cannot read."""


class DirectoryLockedError(StorageError):
    """Another process holds the data directory."""


class StorageWriteError(StorageError):
    """An fsync failed earlier: the page cache may have dropped data, so no mutation is accepted until restart."""


class DiskFullError(StorageError):
    """The disk (or the configured ``maxdisk``) has no room for this mutation; nothing of it was applied."""


class TornReference(Exception):
    """Recovery: a journal record names stream entries its segment file does not hold whole, the way a power cut
    leaves the last unsynced appends. Nothing from that record on was acknowledged (the group commit syncs the
    segment before any reply), so recovery ends the journal there."""
