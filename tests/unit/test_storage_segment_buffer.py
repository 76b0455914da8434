"""Small segment appends are buffered per file and written once per flush; reads see them before they are written."""

from __future__ import annotations

from pathlib import Path

from respq.storage import Engine
from respq.storage.fileio import FileIO
from respq.storage.segments import PENDING_LIMIT, PENDING_TOTAL_LIMIT
from respq.types import REGISTRY
from respq.types.streams.model import MAX_ID, id_of


class CountingIO(FileIO):
    """Counts pwrite calls and bytes per kind of file (segment or journal)."""

    def __init__(self) -> None:
        self.paths: dict[int, str] = {}
        self.segment_writes = 0

    def open(self, path: str, *, create: bool = False, write: bool = True) -> int:
        fd = super().open(path, create=create, write=write)
        self.paths[fd] = path
        return fd

    def pwrite(self, fd: int, data: bytes | memoryview, offset: int) -> None:
        if self.paths.get(fd, "").endswith(".seg") and offset > 0:  # offset 0: a new file's header
            self.segment_writes += 1
        super().pwrite(fd, data, offset)


def _open(path: Path, io: CountingIO) -> Engine:
    return Engine.open(str(path), types=REGISTRY, io=io, segment_size=4 << 20, log=lambda *_: None)


def _entry(ms: int) -> list[bytes]:
    return [b"f", b"value-%d" % ms]


def test_entries_added_in_one_pass_reach_their_segment_in_one_write(tmp_path: Path) -> None:
    io = CountingIO()
    engine = _open(tmp_path, io)
    stream = engine.create(0, b"s", "stream")
    for ms in range(1, 201):
        stream.add(id_of(ms, 0), _entry(ms))
    assert io.segment_writes == 0
    # Read before the write: served from the buffer.
    assert stream.range(id_of(200, 0), MAX_ID) == [(id_of(200, 0), _entry(200))]
    assert stream.range(0, MAX_ID, 1, reverse=True) == [(id_of(200, 0), _entry(200))]
    engine.flush()
    assert io.segment_writes == 1
    assert engine.store.pending_bytes == 0
    engine.close()
    reopened = Engine.open(str(tmp_path), types=REGISTRY, segment_size=4 << 20, log=lambda *_: None)
    entries = reopened.get(0, b"s").value.range(0, MAX_ID)  # type: ignore[union-attr]
    assert entries == [(id_of(ms, 0), _entry(ms)) for ms in range(1, 201)]
    reopened.close()


def test_buffered_bytes_are_bounded_per_file_and_in_all(tmp_path: Path) -> None:
    io = CountingIO()
    engine = _open(tmp_path, io)
    stream = engine.create(0, b"s", "stream")
    big = b"x" * 1000
    count = 3 * PENDING_LIMIT // len(big)
    for ms in range(1, count + 1):
        stream.add(id_of(ms, 0), [b"f", big])
        assert engine.store.pending_bytes <= PENDING_LIMIT
    assert io.segment_writes >= 2  # the file's buffer was written each time it was full
    streams = [engine.create(0, b"s%d" % index, "stream") for index in range(8)]
    for ms in range(1, 101):
        for other in streams:
            other.add(id_of(ms, 0), [b"f", big])
            assert engine.store.pending_bytes <= PENDING_TOTAL_LIMIT
    engine.flush()
    written = io.segment_writes
    stream.add(id_of(count + 1, 0), [b"f", b"y" * PENDING_LIMIT])  # too large to buffer: written at once
    assert io.segment_writes == written + 1
    assert engine.store.pending_bytes == 0
    assert stream.range(id_of(count + 1, 0), MAX_ID)[0][1] == [b"f", b"y" * PENDING_LIMIT]
    engine.close()
