"""Offline verification of a data directory (``respq check DIR``): reports what recovery would refuse.

Reads only; never takes the lock and never repairs. A torn journal tail is not a problem (recovery cuts it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from respq.storage import framing, journal, manifest
from respq.storage.errors import CorruptionError, FormatError
from respq.storage.fileio import DEFAULT_IO, FileIO
from respq.storage.listlog import CHUNK, STATE_HEAD
from respq.storage.segments import QUEUES_DIR, queue_dir_name, segment_name
from respq.storage.streamlog import NODE
from respq.storage.streamlog import STATE_HEAD as STREAM_STATE_HEAD

STREAM_TYPE = 2


def check_directory(path: str, io: FileIO = DEFAULT_IO) -> list[str]:
    """Problems found in the data directory at ``path``; an empty list means it is clean."""
    problems: list[str] = []
    try:
        state = manifest.read(io, path)
    except (CorruptionError, FormatError) as error:
        return [str(error)]
    if state is None:
        state = manifest.ManifestData()
    for fid, (qid, size) in state.files.items():
        problems += _check_segment(io, os.path.join(path, QUEUES_DIR, queue_dir_name(qid), segment_name(fid)), size)
    for db, type_code, _, qid, key, blob in state.keys:
        if type_code == STREAM_TYPE:
            problems += _check_stream(io, path, state, db, key, qid, blob)
        else:
            problems += _check_chunks(io, path, state, db, key, qid, blob)
    problems += _check_journals(io, os.path.join(path, "journal"), state)
    return problems


PROGRESS_STEP = 1 << 20  # verify_segment reports progress at least this often (bytes)


class SegmentFault(Exception):
    """Why a segment file cannot be trusted up to its checkpointed length; ``offset`` is where (0 for the file)."""

    def __init__(self, path: str, offset: int, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset


def verify_segment(io: FileIO, path: str, size: int, step: int = PROGRESS_STEP) -> Iterator[int]:
    """Checks the header and every record's framing and CRC32C in the first ``size`` bytes of a segment file.

    A generator so a caller can pace itself: it yields the bytes verified so far about every ``step`` bytes (and
    keeps the file open in between), and raises SegmentFault at the first problem.
    """
    try:
        fd = io.open(path, write=False)
    except FileNotFoundError:
        raise SegmentFault(path, 0, f"{path}: segment file named by the manifest is missing") from None
    try:
        actual = io.size(fd)
        if actual < size:
            raise SegmentFault(path, actual, f"{path}: {actual} bytes, shorter than its checkpointed {size}")
        header = io.pread(fd, framing.SEGMENT_HEADER.size, 0)
        try:
            framing.check_prefix(header, framing.SEGMENT_MAGIC, path)
        except FormatError as error:
            raise SegmentFault(path, 0, str(error)) from None
        start = reported = framing.SEGMENT_HEADER.size
        try:
            for offset, _, _ in framing.scan_file(lambda n, at: io.pread(fd, n, at), start, size):
                if offset - reported >= step:
                    reported = offset
                    yield offset - start
        except framing.ScanError as error:
            raise SegmentFault(path, error.offset, str(CorruptionError(path, error.offset, error.reason))) from None
        yield max(0, size - start)
    finally:
        io.close(fd)


def _check_segment(io: FileIO, path: str, size: int) -> list[str]:
    try:
        for _ in verify_segment(io, path, size):
            pass
    except SegmentFault as fault:
        return [str(fault)]
    return []


def _check_chunks(
    io: FileIO, root: str, state: manifest.ManifestData, db: int, key: bytes, qid: int, blob: bytes
) -> list[str]:
    """Each chunk must cover exactly ``count`` whole records inside its (checkpointed) file."""
    problems = []
    _, _, count = STATE_HEAD.unpack_from(blob, 0)
    for index in range(count):
        fid, start, end, records, _ = CHUNK.unpack_from(blob, STATE_HEAD.size + index * CHUNK.size)
        where = f"db {db} key {key!r} chunk {index}"
        if fid not in state.files or end > state.files[fid][1] or start < framing.SEGMENT_HEADER.size:
            problems.append(f"{where}: refers to bytes the manifest does not hold")
            continue
        path = os.path.join(root, QUEUES_DIR, queue_dir_name(state.files[fid][0]), segment_name(fid))
        try:
            fd = io.open(path, write=False)
        except FileNotFoundError:
            continue  # already reported with the segment
        try:
            found = sum(1 for _ in framing.scan_file(lambda n, at, fd=fd: io.pread(fd, n, at), start, end))
        except framing.ScanError as error:
            problems.append(f"{where}: {CorruptionError(path, error.offset, error.reason)}")
            continue
        finally:
            io.close(fd)
        if found != records:
            problems.append(f"{where}: holds {found} records, the manifest says {records}")
    return problems


def _check_stream(
    io: FileIO, root: str, state: manifest.ManifestData, db: int, key: bytes, qid: int, blob: bytes
) -> list[str]:
    """Each node must cover whole records inside its file, at least as many as it has live entries."""
    problems = []
    node_count = STREAM_STATE_HEAD.unpack_from(blob, 0)[-2]
    pos = STREAM_STATE_HEAD.size
    for index in range(node_count):
        fid, start, end, _, live, *_, deleted = NODE.unpack_from(blob, pos)
        pos += NODE.size + 16 * deleted
        where = f"db {db} stream {key!r} node {index}"
        if fid not in state.files or end > state.files[fid][1] or start < framing.SEGMENT_HEADER.size:
            problems.append(f"{where}: refers to bytes the manifest does not hold")
            continue
        path = os.path.join(root, QUEUES_DIR, queue_dir_name(state.files[fid][0]), segment_name(fid))
        try:
            fd = io.open(path, write=False)
        except FileNotFoundError:
            continue  # already reported with the segment
        try:
            found = sum(1 for _ in framing.scan_file(lambda n, at, fd=fd: io.pread(fd, n, at), start, end))
        except framing.ScanError as error:
            problems.append(f"{where}: {CorruptionError(path, error.offset, error.reason)}")
            continue
        finally:
            io.close(fd)
        if found < live:
            problems.append(f"{where}: holds {found} records, fewer than its {live} live entries")
    return problems


def _check_journals(io: FileIO, directory: str, state: manifest.ManifestData) -> list[str]:
    try:
        names = io.listdir(directory)
    except FileNotFoundError:
        return []
    seqs = sorted(s for s in map(journal.parse_journal_name, names) if s is not None and s >= state.journal_seq)
    problems = []
    lsn: int | None = state.journal_lsn
    for index, seq in enumerate(seqs):
        path = os.path.join(directory, journal.journal_name(seq))
        if seq != state.journal_seq + index:
            problems.append(f"{path}: journal sequence has a gap before it")
            lsn = None
        try:
            result = journal.replay_file(
                io,
                path,
                seq=seq,
                start_lsn=lsn,
                last=index == len(seqs) - 1,
                apply=lambda _op, _payload, _lsn: None,
                cut_torn_tail=False,
            )
            lsn = result.end_lsn
        except (CorruptionError, FormatError) as error:
            problems.append(str(error))
            lsn = None
    return problems
