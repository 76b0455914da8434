"""Every system call the storage engine makes on files, behind one seam.

A crash test can pass its own ``FileIO`` (for example one that forgets unsynced writes) to ``Engine.open``;
nothing in the engine touches ``os`` for file data or metadata except through here.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence

from respq import speedups

# Linux reads at most MAX_RW_COUNT bytes per call (INT_MAX rounded down to a page: 0x7ffff000 with 4 KiB pages): a
# read that long and still short of what was asked is not the end of the file. Values and journal records can be
# longer when proto-max-bulk-len and client-query-buffer-limit allow it; read once, such a value failed as
# "journal shorter than a value it holds", and recovery took its record for a torn tail and cut it.
READ_CAP = (1 << 31) - (1 << 16)
_os_pread = os.pread


class FileIO:
    """Thin wrappers over POSIX calls. Descriptors are plain ints; paths are str."""

    def open(self, path: str, *, create: bool = False, write: bool = True) -> int:
        flags = (os.O_RDWR if write else os.O_RDONLY) | os.O_CLOEXEC
        if create:
            flags |= os.O_CREAT
        return os.open(path, flags, 0o644)

    def close(self, fd: int) -> None:
        os.close(fd)

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at ``offset``: fewer only at the end of the file."""
        data = _os_pread(fd, length, offset)
        if length > len(data) >= READ_CAP:
            return _read_on(fd, length, offset, data)
        return data

    def pread_many(self, fd: int, offsets: Sequence[int], lengths: Sequence[int]) -> list[bytes]:
        """``pread`` of each (offset, length), in one call (the reads loop in C with the accelerator module)."""
        return _pread_many(fd, offsets, lengths)

    def pwrite(self, fd: int, data: bytes | memoryview, offset: int) -> None:
        """Writes all of ``data``; a short write is continued, an error propagates (the caller truncates back)."""
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view = view[written:]
            offset += written

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def truncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def mkdir(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def lock(self, path: str) -> int | None:
        """An exclusive advisory lock held while the descriptor stays open; None if another process holds it.

        flock belongs to the open file description, so the kernel drops it when the process dies (even kill -9).
        """
        fd = self.open(path, create=True)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def disk_free(self, path: str) -> int:
        stat = os.statvfs(path)
        return stat.f_bavail * stat.f_frsize


DEFAULT_IO = FileIO()


def _read_on(fd: int, length: int, offset: int, data: bytes) -> bytes:
    """``data`` (read at ``offset``) followed by the rest of ``length`` bytes, up to the end of the file."""
    parts = [data]
    got = len(data)
    while got < length:
        more = _os_pread(fd, length - got, offset + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def py_pread_many(fd: int, offsets: Sequence[int], lengths: Sequence[int]) -> list[bytes]:
    """Each read may come back short at the end of the file (only there: the C twin loops as well)."""
    return [_read_on(fd, length, offset, b"") for offset, length in zip(offsets, lengths, strict=True)]


_pread_many = speedups.pread_many or py_pread_many
