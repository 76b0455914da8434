"""An in-memory filesystem behind the storage engine's I/O seam that can lose power.

It keeps two views of everything: what the running process sees, and what would be on the platter after a power
cut. File contents become durable on ``fdatasync``; a directory's entries (creations, renames, unlinks, and the
subdirectories made in it) become durable only when that directory is fsynced, as POSIX promises and no more.
``power_cut`` throws the volatile view away, optionally keeping a random prefix of unsynced appends (a torn write)
and a garbage tail, as a real disk may. Faults (EIO, ENOSPC) and a crash at the N-th mutating call are injected
through the same methods, so the engine under test cannot tell it is not talking to the kernel.
"""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from respq.storage.fileio import FileIO


class SimulatedCrash(BaseException):
    """The power went out during this call (a BaseException so no ``except OSError`` in the engine swallows it)."""


class File:
    __slots__ = ("data", "durable")

    def __init__(self) -> None:
        self.data = bytearray()
        self.durable = b""


@dataclass(eq=False)
class Directory:
    entries: dict[str, File | Directory] = field(default_factory=dict)
    durable: dict[str, File | Directory] = field(default_factory=dict)


@dataclass
class Faults:
    """Failures to inject: each predicate sees the path of the file being written or synced."""

    write_error: int | None = None  # errno raised by pwrite (EIO, ENOSPC)
    write_when: Callable[[str], bool] = lambda _path: True
    partial_write: bool = True  # an ENOSPC/EIO write lands partly before it fails, as the kernel may do
    fsync_error: int | None = None
    fsync_when: Callable[[str], bool] = lambda _path: True
    read_error: int | None = None  # errno raised by pread (EIO)
    read_when: Callable[[str], bool] = lambda _path: True


@dataclass
class CutReport:
    files: int = 0
    torn_files: int = 0
    lost_bytes: int = 0
    lost_entries: int = 0


class SimFS(FileIO):
    """A FileIO that lives in memory. Paths are absolute; ``/`` always exists and is durable."""

    def __init__(self, *, honour_sync: bool = True) -> None:
        self.root = Directory()
        self.honour_sync = honour_sync  # False: the control that proves a skipped sync loses data
        self.faults = Faults()
        self._fds: dict[int, tuple[File, str]] = {}
        self._next_fd = 3
        self._locks: set[str] = set()
        self._lock_fds: dict[int, str] = {}
        self.crash_after: int | None = None  # mutating calls left before the power goes out
        self.crash_before: Callable[[str, str], bool] | None = None  # (call, path): cut the power before it
        self.crashed = False
        self.mutations = 0
        self.syncs = 0
        self.written = 0  # bytes pwrite has been asked to write, as /proc/PID/io would count them (roughly)

    # -- crash scheduling

    def _mutating(self, call: str, path: str) -> None:
        """Counts one call that changes state; raises SimulatedCrash when the scheduled moment comes."""
        if self.crashed:
            raise SimulatedCrash("the power is already out")
        if self.crash_before is not None and self.crash_before(call, path):
            self.crashed = True
            raise SimulatedCrash(f"power cut before {call} {path}")
        self.mutations += 1
        if self.crash_after is not None:
            if self.crash_after <= 0:
                self.crashed = True
                raise SimulatedCrash(f"power cut at mutating call {self.mutations}")
            self.crash_after -= 1

    # -- path resolution

    def _split(self, path: str) -> tuple[Directory, str]:
        parts = [p for p in os.path.normpath(path).split("/") if p]
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "is the root", path)
        node: File | Directory = self.root
        for part in parts[:-1]:
            if not isinstance(node, Directory) or part not in node.entries:
                raise FileNotFoundError(errno.ENOENT, "no such directory", path)
            node = node.entries[part]
        if not isinstance(node, Directory):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        return node, parts[-1]

    def _lookup(self, path: str) -> File | Directory:
        if os.path.normpath(path) == "/":
            return self.root
        parent, name = self._split(path)
        if name not in parent.entries:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        return parent.entries[name]

    def _file(self, fd: int) -> tuple[File, str]:
        try:
            return self._fds[fd]
        except KeyError:
            raise OSError(errno.EBADF, "bad file descriptor") from None

    # -- FileIO

    def open(self, path: str, *, create: bool = False, write: bool = True) -> int:
        if self.crashed:
            raise SimulatedCrash("the power is already out")
        parent, name = self._split(path)
        node = parent.entries.get(name)
        if node is None:
            if not create:
                raise FileNotFoundError(errno.ENOENT, "no such file", path)
            self._mutating("create", path)
            node = parent.entries[name] = File()
        if isinstance(node, Directory):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        fd = self._next_fd
        self._next_fd += 1
        self._fds[fd] = (node, path)
        return fd

    def close(self, fd: int) -> None:
        self._fds.pop(fd, None)
        held = self._lock_fds.pop(fd, None)
        if held is not None:
            self._locks.discard(held)

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        node, path = self._file(fd)
        faults = self.faults
        if faults.read_error is not None and faults.read_when(path):
            raise OSError(faults.read_error, os.strerror(faults.read_error), path)
        return bytes(node.data[offset : offset + length])

    def pread_many(self, fd: int, offsets: Sequence[int], lengths: Sequence[int]) -> list[bytes]:
        return [self.pread(fd, length, offset) for offset, length in zip(offsets, lengths, strict=True)]

    def pwrite(self, fd: int, data: bytes | memoryview, offset: int) -> None:
        node, path = self._file(fd)
        data = bytes(data)
        faults = self.faults
        if faults.write_error is not None and faults.write_when(path):
            if faults.partial_write and len(data) > 1:
                self._write_at(node, data[: len(data) // 2], offset)
            raise OSError(faults.write_error, os.strerror(faults.write_error), path)
        if self.crash_after is not None and self.crash_after <= 0 and not self.crashed and len(data) > 1:
            # The power goes out in the middle of this write: part of it may have reached the page cache.
            self._write_at(node, data[: len(data) // 2], offset)
        self._mutating("pwrite", path)
        self._write_at(node, data, offset)
        self.written += len(data)

    @staticmethod
    def _write_at(node: File, data: bytes, offset: int) -> None:
        if offset > len(node.data):
            node.data += bytes(offset - len(node.data))
        node.data[offset : offset + len(data)] = data

    def size(self, fd: int) -> int:
        return len(self._file(fd)[0].data)

    def truncate(self, fd: int, length: int) -> None:
        node, path = self._file(fd)
        self._mutating("truncate", path)
        if length < len(node.data):
            del node.data[length:]
        else:
            node.data += bytes(length - len(node.data))

    def fdatasync(self, fd: int) -> None:
        node, path = self._file(fd)
        faults = self.faults
        if faults.fsync_error is not None and faults.fsync_when(path):
            raise OSError(faults.fsync_error, os.strerror(faults.fsync_error), path)
        self._mutating("fdatasync", path)
        self.syncs += 1
        if self.honour_sync:
            node.durable = bytes(node.data)

    def fsync_dir(self, path: str) -> None:
        node = self._lookup(path)
        if not isinstance(node, Directory):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        faults = self.faults
        if faults.fsync_error is not None and faults.fsync_when(path):
            raise OSError(faults.fsync_error, os.strerror(faults.fsync_error), path)
        self._mutating("fsync_dir", path)
        self.syncs += 1
        if self.honour_sync:
            node.durable = dict(node.entries)

    def rename(self, src: str, dst: str) -> None:
        src_parent, src_name = self._split(src)
        dst_parent, dst_name = self._split(dst)
        if src_name not in src_parent.entries:
            raise FileNotFoundError(errno.ENOENT, "no such file", src)
        self._mutating("rename", dst)
        dst_parent.entries[dst_name] = src_parent.entries.pop(src_name)

    def unlink(self, path: str) -> None:
        parent, name = self._split(path)
        node = parent.entries.get(name)
        if node is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        if isinstance(node, Directory):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        self._mutating("unlink", path)
        del parent.entries[name]

    def listdir(self, path: str) -> list[str]:
        node = self._lookup(path)
        if not isinstance(node, Directory):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        return list(node.entries)

    def mkdir(self, path: str) -> None:
        node: Directory = self.root
        for part in (p for p in os.path.normpath(path).split("/") if p):
            child = node.entries.get(part)
            if child is None:
                self._mutating("mkdir", path)
                child = node.entries[part] = Directory()
            if not isinstance(child, Directory):
                raise FileExistsError(errno.EEXIST, "a file is in the way", path)
            node = child

    def rmdir(self, path: str) -> None:
        parent, name = self._split(path)
        node = parent.entries.get(name)
        if not isinstance(node, Directory):
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        if node.entries:
            raise OSError(errno.ENOTEMPTY, "directory not empty", path)
        self._mutating("rmdir", path)
        del parent.entries[name]

    def exists(self, path: str) -> bool:
        try:
            self._lookup(path)
        except OSError:
            return False
        return True

    def lock(self, path: str) -> int | None:
        key = os.path.normpath(path)
        if key in self._locks:
            return None
        fd = self.open(path, create=True)
        self._locks.add(key)
        self._lock_fds[fd] = key
        return fd

    def disk_free(self, path: str) -> int:
        return 1 << 40

    # -- test helpers

    def make_durable_dir(self, path: str) -> None:
        """A directory that exists before the engine starts (a mount point, or made by the operator)."""
        self.mkdir(path)
        node: Directory = self.root
        for part in (p for p in os.path.normpath(path).split("/") if p):
            node.durable[part] = node.entries[part]
            node = node.entries[part]  # type: ignore[assignment]

    def read_file(self, path: str) -> bytes:
        node = self._lookup(path)
        assert isinstance(node, File)
        return bytes(node.data)

    def write_file(self, path: str, data: bytes) -> None:
        """Replaces the contents durably (a test corrupting the disk behind the engine's back)."""
        node = self._lookup(path)
        assert isinstance(node, File)
        node.data = bytearray(data)
        node.durable = bytes(data)

    def power_cut(self, rng: random.Random | None = None, *, torn: bool = True, garbage: bool = True) -> CutReport:
        """Everything not durable is gone; with ``rng``, unsynced appends may survive in part, plus garbage.

        After the cut the process's descriptors and locks are gone, and the surviving view is the durable one.
        """
        report = CutReport()
        self._fds.clear()
        self._lock_fds.clear()
        self._locks.clear()
        self.crash_after = None
        self.crash_before = None
        self.crashed = False
        seen: set[int] = set()

        def restore(directory: Directory) -> None:
            report.lost_entries += len(set(directory.entries) ^ set(directory.durable))
            directory.entries = dict(directory.durable)
            for node in directory.entries.values():
                if id(node) in seen:
                    continue  # a hard link cannot happen here, but a rename may leave one node under two old names
                seen.add(id(node))
                if isinstance(node, Directory):
                    restore(node)
                else:
                    report.files += 1
                    report.lost_bytes += self._cut_file(node, rng if torn else None, garbage, report)

        restore(self.root)
        return report

    @staticmethod
    def _cut_file(node: File, rng: random.Random | None, garbage: bool, report: CutReport) -> int:
        current, durable = bytes(node.data), node.durable
        result = bytearray(durable)
        extra = len(current) - len(durable)
        if rng is not None and extra > 0 and current.startswith(durable) and rng.random() < 0.5:
            # Some of the unsynced appends reached the disk, in order, up to an arbitrary byte.
            result += current[len(durable) : len(durable) + rng.randint(0, extra)]
            report.torn_files += 1
        # A size extended by unsynced appends before their data blocks were written reads back as junk (only past
        # real content: a never-synced file's header is not simulated as garbage, see docs/durability.md).
        if rng is not None and garbage and extra > 0 and len(result) >= 64 and rng.random() < 0.1:
            result += rng.randbytes(rng.randint(1, 64)) if rng.random() < 0.5 else bytes(rng.randint(1, 64))
        node.data = bytearray(result)
        node.durable = bytes(result)
        return max(0, len(current) - len(result))
