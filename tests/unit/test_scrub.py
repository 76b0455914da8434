"""The scrub walks the segments of the last checkpoint and tells real damage from files a checkpoint retired."""

from __future__ import annotations

import os
from pathlib import Path

from respq.storage import Engine, manifest
from respq.storage.check import check_directory
from respq.storage.fileio import DEFAULT_IO
from respq.storage.framing import HEAD_SIZE, OVERHEAD, SEGMENT_HEADER
from respq.storage.scrub import DONE, Scrub
from respq.types import REGISTRY
from respq.types.lists.model import RIGHT

VALUE = b"v" * 100
RECORD = OVERHEAD + len(VALUE)


def quiet(level: str, message: str) -> None:
    pass


def open_engine(root: Path) -> Engine:
    return Engine.open(str(root), types=REGISTRY, segment_size=4096, log=quiet)


def checkpointed_dir(root: Path) -> None:
    """Three queues of several 4 KiB segments each, all covered by the manifest (a clean close checkpoints)."""
    engine = open_engine(root)
    for key in (b"a", b"b", b"c"):
        engine.create(0, key, "list").push(RIGHT, [VALUE] * 120)
    engine.close()


def listed_segments(root: Path) -> dict[int, tuple[str, int]]:
    """File id -> (path, checkpointed size) of every segment the manifest lists."""
    state = manifest.read(DEFAULT_IO, str(root))
    assert state is not None
    return {fid: (next(str(p) for p in root.rglob(f"{fid:016x}.seg")), size) for fid, (_, size) in state.files.items()}


def run_to_end(scrub: Scrub, budget: int = 4096) -> list[str]:
    messages = []
    while scrub.running:
        messages += [fault.message for fault in scrub.step(budget)]
    return messages


def test_a_clean_directory_scrubs_every_checkpointed_byte(tmp_path: Path) -> None:
    checkpointed_dir(tmp_path)
    segments = listed_segments(tmp_path)
    scrub = Scrub(str(tmp_path))
    assert run_to_end(scrub) == []
    assert scrub.status == DONE and scrub.errors == 0 and scrub.last_fault is None
    assert scrub.bytes_verified == sum(size - SEGMENT_HEADER.size for _, size in segments.values())
    assert scrub.bytes_verified >= 3 * 120 * RECORD


def test_segments_a_checkpoint_retires_mid_scrub_are_skipped(tmp_path: Path) -> None:
    checkpointed_dir(tmp_path)
    before = listed_segments(tmp_path)
    engine = open_engine(tmp_path)
    try:
        scrub = Scrub(str(tmp_path))
        while scrub.bytes_verified == 0:  # under way: the manifest's file list is taken, the first file is open
            scrub.step(1)
        # Deleting queue c makes its files dead; the next checkpoint drops them from the manifest and unlinks them.
        assert engine.delete(0, b"c")
        engine.checkpoint()
        after = listed_segments(tmp_path)
        retired = set(before) - set(after)
        assert retired and all(not os.path.exists(before[fid][0]) for fid in retired)
        assert run_to_end(scrub) == []
        assert scrub.status == DONE and scrub.errors == 0
        assert scrub.bytes_verified < sum(size - SEGMENT_HEADER.size for _, size in before.values())
    finally:
        engine.close()


def test_a_listed_segment_that_is_missing_short_or_damaged_is_reported(tmp_path: Path) -> None:
    checkpointed_dir(tmp_path)
    segments = sorted(listed_segments(tmp_path).values())
    (missing, _), (short, short_size), (damaged, _) = segments[0], segments[1], segments[-1]
    os.unlink(missing)
    os.truncate(short, short_size - 1)
    data = bytearray(Path(damaged).read_bytes())
    record_offset = SEGMENT_HEADER.size + 2 * RECORD
    data[record_offset + HEAD_SIZE + 7] ^= 0x10
    Path(damaged).write_bytes(bytes(data))
    scrub = Scrub(str(tmp_path))
    messages = run_to_end(scrub)
    assert scrub.status == DONE and scrub.errors == 3
    assert messages == [
        f"{missing}: segment file named by the manifest is missing",
        f"{short}: {short_size - 1} bytes, shorter than its checkpointed {short_size}",
        f"corrupt data in {damaged} at offset {record_offset}: checksum mismatch",
    ]
    assert set(messages) <= set(check_directory(str(tmp_path), REGISTRY))  # the same words `respq check` prints
    assert scrub.last_fault is not None
    assert (scrub.last_fault.path, scrub.last_fault.offset) == (damaged, record_offset)


def test_stopping_closes_the_file_being_read(tmp_path: Path) -> None:
    checkpointed_dir(tmp_path)
    scrub = Scrub(str(tmp_path))
    while scrub.bytes_verified == 0:
        scrub.step(1)
    open_before = len(os.listdir("/proc/self/fd"))
    scrub.stop()
    assert scrub.status == "off" and not scrub.running
    assert len(os.listdir("/proc/self/fd")) == open_before - 1
    assert scrub.step(1 << 20) == []
