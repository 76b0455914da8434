"""Every system call the storage engine makes on files, behind one seam.

A crash test can pass its own ``FileIO`` (for example one that forgets unsynced writes) to ``Engine.open``;
nothing in the engine touches ``os`` for file data or metadata except through here.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence

from respq import speedups


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
        return os.pread(fd, length, offset)

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


def py_pread_many(fd: int, offsets: Sequence[int], lengths: Sequence[int]) -> list[bytes]:
    """Each read may come back short at the end of the file, as ``os.pread`` does."""
    return [os.pread(fd, length, offset) for offset, length in zip(offsets, lengths, strict=True)]


_pread_many = speedups.pread_many or py_pread_many
