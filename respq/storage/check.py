"""Offline verification of a data directory (``respq check DIR``): reports what recovery would refuse.

Reads only; never takes the lock and never repairs. A torn journal tail is not a problem (recovery cuts it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from respq.storage import framing, journal, manifest, pages
from respq.storage.errors import CorruptionError, FormatError
from respq.storage.fileio import DEFAULT_IO, FileIO
from respq.storage.port import TypeRegistry
from respq.storage.segments import QUEUES_DIR, parse_segment_name, queue_dir_name, segment_name


def check_directory(path: str, types: TypeRegistry, io: FileIO = DEFAULT_IO) -> list[str]:
    """Problems found in the data directory at ``path``, holding values of ``types``; an empty list means it is
    clean."""
    problems: list[str] = []
    try:
        state = manifest.read(io, path, with_pages=False)
    except (CorruptionError, FormatError) as error:
        return [str(error)]
    if state is None:
        state = manifest.ManifestData()
    for ref in state.pages:  # each page on its own: a damaged one is reported, the others still checked
        try:
            state.keys += manifest.page_keys(state, pages.read_page(io, path, ref).items())
        except CorruptionError as error:
            problems.append(str(error))
    for fid, (qid, size) in state.files.items():
        problems += _check_segment(io, os.path.join(path, QUEUES_DIR, queue_dir_name(qid), segment_name(fid)), size)
    for db, type_code, _, _, key, blob in state.keys:
        vtype = types.by_code.get(type_code)
        if vtype is None:
            problems.append(f"db {db} key {key!r}: key type {type_code} is not supported by this build")
            continue
        where = f"db {db} {vtype.name} {key!r}"
        for label, fid, start, end, records, exact in vtype.spans(blob):
            problem = _check_span(io, path, state, fid, start, end, records, exact)
            if problem:
                problems.append(f"{where} {label}: {problem}")
    for type_code, payload in state.settings.items():
        vtype = types.by_code.get(type_code)
        if vtype is None or vtype.default_settings is None:
            problems.append(f"settings of key type {type_code}, which this build does not support")
            continue
        try:
            vtype.parse_settings(payload)
        except ValueError as error:
            problems.append(f"{vtype.name} settings: malformed ({error})")
    problems += _check_journals(io, os.path.join(path, "journal"), state)
    problems += _check_unlisted_versions(io, path, state)
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


def _check_span(
    io: FileIO, root: str, state: manifest.ManifestData, fid: int, start: int, end: int, records: int, exact: bool
) -> str:
    """What is wrong with a value's span of records [start, end) of file ``fid``: it must lie inside what the
    manifest holds and hold exactly (``exact``) or at least ``records`` whole records; "" if nothing."""
    if fid not in state.files or end > state.files[fid][1] or start < framing.SEGMENT_HEADER.size:
        return "refers to bytes the manifest does not hold"
    path = os.path.join(root, QUEUES_DIR, queue_dir_name(state.files[fid][0]), segment_name(fid))
    try:
        fd = io.open(path, write=False)
    except FileNotFoundError:
        return ""  # already reported with the segment
    try:
        found = sum(1 for _ in framing.scan_file(lambda n, at: io.pread(fd, n, at), start, end))
    except framing.ScanError as error:
        return str(CorruptionError(path, error.offset, error.reason))
    finally:
        io.close(fd)
    if exact and found != records:
        return f"holds {found} records, the manifest says {records}"
    if not exact and found < records:
        return f"holds {found} records, fewer than its {records} live entries"
    return ""


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


def _check_unlisted_versions(io: FileIO, root: str, state: manifest.ManifestData) -> list[str]:
    """Files the checks above do not read, which recovery reads or deletes all the same (segment files created after
    the checkpoint, journal files it retired, catalog packs), must not be of a newer format version either."""
    problems: list[str] = []
    listed = {(queue_dir_name(qid), segment_name(fid)) for fid, (qid, _) in state.files.items()}
    queues = os.path.join(root, QUEUES_DIR)
    for dir_name in _names(io, queues):
        try:
            names = io.listdir(os.path.join(queues, dir_name))
        except NotADirectoryError:
            continue
        for name in names:
            if (dir_name, name) not in listed and parse_segment_name(name) is not None:
                problems += _newer_version(io, os.path.join(queues, dir_name, name), framing.SEGMENT_MAGIC)
    directory = os.path.join(root, pages.CATALOG_DIR)
    for name in _names(io, directory):
        if pages.parse_pack_name(name) is not None:
            problems += _newer_version(io, os.path.join(directory, name), pages.CATALOG_MAGIC)
    directory = os.path.join(root, "journal")
    for name in _names(io, directory):
        seq = journal.parse_journal_name(name)
        if seq is not None and seq < state.journal_seq:
            problems += _newer_version(io, os.path.join(directory, name), framing.JOURNAL_MAGIC)
    return problems


def _names(io: FileIO, directory: str) -> list[str]:
    try:
        return io.listdir(directory)
    except FileNotFoundError:
        return []


def _newer_version(io: FileIO, path: str, magic: bytes) -> list[str]:
    fd = io.open(path, write=False)
    try:
        header = io.pread(fd, framing.FILE_PREFIX.size, 0)
    finally:
        io.close(fd)
    try:
        framing.refuse_newer(header, magic, path)
    except FormatError as error:
        return [str(error)]
    return []
