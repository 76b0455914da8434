"""Catalog pages: the keys of a checkpoint, written incrementally (format 3).

Every key's catalog entry (its db slot, type, expiry, queue id, key and type-specific state) lives in exactly one
*page*: the page whose queue-id range holds the key's queue id. A page is one framed record (type 41, CRC32C) in
a *pack* file, ``catalog/<pack:016x>.cat``, and each checkpoint writes the pages it changed into one new pack, so
a checkpoint costs the keys changed since the previous one plus their pages' neighbours, not the whole catalog.
The manifest names every page (its first queue id, pack, offset, length, CRC and entry count). Packs are written
once and never changed; a pack is deleted after the first durable manifest that names none of its pages, and the
live pages of a pack less than a quarter live are copied into the new pack, so packs stay within 4x of the live
catalog plus the newest.

Queue ids grow with every new key, so keys created together share pages: a queue workload that creates and deletes
jobs rewrites the newest pages and drops the emptied old ones. A key keeps its queue id through RENAME, MOVE and
SWAPDB, so those rewrite its page alone (MOVE) or nothing but the slot table (SWAPDB). An entry names its
database through a *slot* (the manifest maps databases to slots): SWAPDB swaps two slots, FLUSHDB gives the
database a new slot (the entries of the old one are dropped as their pages are rewritten: every page is, at that
checkpoint), FLUSHALL drops every page.

Storage only: nothing here knows a value type; states are opaque bytes.
"""

from __future__ import annotations

import bisect
import errno
import os
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from respq.storage import framing
from respq.storage.errors import CorruptionError, DiskFullError, FormatError
from respq.storage.fileio import FileIO

CATALOG_DIR = "catalog"
CATALOG_MAGIC = b"RQCAT\x00"
PACK_HEADER = struct.Struct("<6sHQ")  # magic, version, pack id
REC_PAGE = 41
PAGE_BYTES = 64 << 10  # a page holding more than this is split
SMALL_PAGE = PAGE_BYTES // 4  # two neighbouring pages below this are merged when one of them is rewritten
WRITE_BYTES = 1 << 20  # a pack is written this much at a time
SPARSE_PACK = 4  # a pack whose live pages take less than 1/SPARSE_PACK of it is copied out
COUNT = struct.Struct("<I")
ENTRY = struct.Struct("<IBBqQII")  # slot, type code, has expiry, expiry ms, queue id, key length, state length

# (slot, type code, expiry or None, key, state), by queue id; None in a change set deletes the queue id's entry.
Entry = tuple[int, int, "int | None", bytes, bytes]
# A change's state may instead be what ``Value.capture`` gave: a function giving the bytes, which the
# checkpoint's worker thread calls.
Change = tuple[int, int, "int | None", bytes, "bytes | Callable[[], bytes]"]


class PageRef(NamedTuple):
    lo: int  # the page holds queue ids from lo up to the next page's lo
    pack: int
    offset: int
    length: int  # the framed record's bytes
    crc: int  # its CRC32C, as the record header says
    count: int  # entries


def pack_name(pack: int) -> str:
    return f"{pack:016x}.cat"


def parse_pack_name(name: str) -> int | None:
    if len(name) != 20 or not name.endswith(".cat"):
        return None
    try:
        return int(name[:16], 16)
    except ValueError:
        return None


def pack_path(root: str, pack: int) -> str:
    return os.path.join(root, CATALOG_DIR, pack_name(pack))


def encode_page(entries: dict[int, Entry]) -> bytes:
    parts = [COUNT.pack(len(entries))]
    for qid in sorted(entries):
        slot, type_code, expire, key, state = entries[qid]
        parts += (
            ENTRY.pack(slot, type_code, expire is not None, expire or 0, qid, len(key), len(state)),
            key,
            state,
        )
    return b"".join(parts)


def decode_page(payload: bytes | memoryview) -> dict[int, Entry]:
    (count,) = COUNT.unpack_from(payload)
    pos = COUNT.size
    entries: dict[int, Entry] = {}
    for _ in range(count):
        slot, type_code, has_expire, expire, qid, key_length, state_length = ENTRY.unpack_from(payload, pos)
        pos += ENTRY.size
        key = bytes(payload[pos : pos + key_length])
        pos += key_length
        state = bytes(payload[pos : pos + state_length])
        pos += state_length
        if len(key) != key_length or len(state) != state_length:
            raise ValueError("entry past the end of the page")
        entries[qid] = (slot, type_code, expire if has_expire else None, key, state)
    if pos != len(payload):
        raise ValueError("trailing bytes")
    return entries


def read_page(io: FileIO, root: str, ref: PageRef, fd: int | None = None) -> dict[int, Entry]:
    """The entries of one page, verified (framing, CRC32C, the CRC and length the manifest names); raises
    CorruptionError naming the pack and offset."""
    path = pack_path(root, ref.pack)
    own = fd is None
    if own:
        try:
            fd = io.open(path, write=False)
        except FileNotFoundError:
            raise CorruptionError(path, 0, "catalog pack named by the manifest is missing") from None
    assert fd is not None
    try:
        data = io.pread(fd, ref.length, ref.offset)
    finally:
        if own:
            io.close(fd)
    try:
        rtype, payload_start, end = framing.parse_forward(data, 0, len(data))
    except framing.FramingError as error:
        raise CorruptionError(path, ref.offset, f"catalog page: {error.reason}") from None
    _, _, crc = framing.HEAD.unpack_from(data)
    if rtype != REC_PAGE or end != ref.length or crc != ref.crc:
        raise CorruptionError(path, ref.offset, "catalog page is not the one the manifest names")
    try:
        entries = decode_page(memoryview(data)[payload_start : end - framing.TAIL_SIZE])
    except (struct.error, ValueError) as error:
        raise CorruptionError(path, ref.offset, f"malformed catalog page: {error}") from None
    if len(entries) != ref.count:
        found = len(entries)
        raise CorruptionError(path, ref.offset, f"catalog page holds {found} entries, the manifest says {ref.count}")
    return entries


def check_pack_header(io: FileIO, path: str, pack: int) -> None:
    """Refuses a pack of a newer format version (FormatError) or one whose header is not its own."""
    fd = io.open(path, write=False)
    try:
        header = io.pread(fd, PACK_HEADER.size, 0)
    finally:
        io.close(fd)
    framing.check_prefix(header, CATALOG_MAGIC, path)
    if len(header) < PACK_HEADER.size or PACK_HEADER.unpack(header)[2] != pack:
        raise FormatError(f"{path}: catalog pack header does not name pack {pack}")


@dataclass
class CatalogUpdate:
    """What one checkpoint changes in the catalog, captured on the loop thread; ``apply`` runs in the worker."""

    pages: list[PageRef]  # the table as the previous checkpoint left it
    packs: dict[int, int]  # pack id -> its size, for every pack a page of ``pages`` is in
    changes: dict[int, Change | None]
    live_slots: set[int]
    pack: int  # the id of the pack this checkpoint writes (if it writes any page)
    drop_all: bool = False  # FLUSHALL: no entry of ``pages`` is live
    rewrite_all: bool = False  # FLUSHDB: every page may hold entries of a dead slot
    # Results, set by ``apply``.
    new_pages: list[PageRef] = field(default_factory=list)
    new_packs: dict[int, int] = field(default_factory=dict)
    written: int = 0


def apply(io: FileIO, root: str, update: CatalogUpdate) -> None:
    """Worker thread: writes the changed pages (and those copied out of sparse packs) into a new pack, synced with
    its directory, and computes the new page table. Reads the old pages it rewrites (verifying them)."""
    pages = [] if update.drop_all else list(update.pages)
    changes = update.changes
    # Which pages to rewrite: those the changes fall in, those of sparse packs, all after a FLUSHDB.
    touched: dict[int, dict[int, Change | None]] = {}
    los = [ref.lo for ref in pages]
    for qid, entry in changes.items():
        index = max(0, bisect.bisect_right(los, qid) - 1)
        touched.setdefault(index, {})[qid] = entry
    if update.rewrite_all:
        for index in range(len(pages)):
            touched.setdefault(index, {})
    live_in: dict[int, int] = {}
    for ref in pages:
        live_in[ref.pack] = live_in.get(ref.pack, 0) + ref.length
    sparse = {
        pack
        for pack, size in update.packs.items()
        if live_in.get(pack, 0) * SPARSE_PACK < size - PACK_HEADER.size
    }
    for index, ref in enumerate(pages):
        if ref.pack in sparse:
            touched.setdefault(index, {})
    # Merge a small touched page with a small next page, so that emptied ranges do not leave many tiny pages.
    for index in sorted(touched):
        if 0 <= index < len(pages) - 1 and pages[index].length < SMALL_PAGE and pages[index + 1].length < SMALL_PAGE:
            touched.setdefault(index + 1, {})
    out: list[tuple[int, bytes, int]] = []  # (lo, payload, count) of the pages written, in order
    new_table: list[PageRef | tuple[int, bytes, int]] = []
    fds: dict[int, int] = {}
    try:
        pending: dict[int, Entry] | None = None  # entries of a small page waiting to join the next one
        pending_lo = 0
        indexes = range(len(pages)) if pages else range(0)
        if not pages and touched:
            indexes = range(1)  # no page yet: the changes make the first one, from queue id 0
        for index in indexes:
            if index not in touched and pending is None:
                new_table.append(pages[index])
                continue
            time.sleep(0)  # a page at a time: the loop thread waiting for the GIL takes it now, not in 5 ms
            if index < len(pages):
                ref = pages[index]
                lo = ref.lo
                fd = fds.get(ref.pack)
                if fd is None:
                    fd = fds[ref.pack] = io.open(pack_path(root, ref.pack), write=False)
                entries = read_page(io, root, ref, fd)
            else:
                lo, entries = 0, {}
            for qid, entry in touched.get(index, {}).items():
                if entry is None:
                    entries.pop(qid, None)
                elif callable(state := entry[4]):
                    entries[qid] = (*entry[:4], state())
                else:
                    entries[qid] = entry  # type: ignore[assignment]
            entries = {qid: e for qid, e in entries.items() if e[0] in update.live_slots}
            if pending is not None:
                pending.update(entries)
                entries, lo = pending, pending_lo
                pending = None
            if not entries:
                continue  # an empty page goes: the page before covers its range
            chunks = _split(entries)
            last = index == len(pages) - 1 or not pages
            if len(chunks) == 1 and not last and _size(chunks[0]) < SMALL_PAGE and (index + 1) in touched:
                pending, pending_lo = chunks[0], lo
                continue
            for n, chunk in enumerate(chunks):
                chunk_lo = lo if n == 0 else min(chunk)
                payload = encode_page(chunk)
                out.append((chunk_lo, payload, len(chunk)))
                new_table.append((chunk_lo, payload, len(chunk)))
        if pending is not None:
            payload = encode_page(pending)
            out.append((pending_lo, payload, len(pending)))
            new_table.append((pending_lo, payload, len(pending)))
    finally:
        for fd in fds.values():
            io.close(fd)
    kept = {ref.pack for ref in new_table if isinstance(ref, PageRef)}
    new_packs = {pack: size for pack, size in update.packs.items() if pack in kept}
    refs: dict[int, PageRef] = {}
    if out:
        refs = _write_pack(io, root, update.pack, out)
        update.written = sum(ref.length for ref in refs.values()) + PACK_HEADER.size
        new_packs[update.pack] = update.written
    table: list[PageRef] = []
    for item in new_table:
        table.append(item if isinstance(item, PageRef) else refs[id(item[1])])
    if table and table[0].lo != 0:
        table[0] = PageRef(0, *table[0][1:])  # the first page starts at queue id 0 (the one before it went)
    update.new_pages = table
    update.new_packs = new_packs


def _size(entries: dict[int, Entry]) -> int:
    return sum(ENTRY.size + len(e[3]) + len(e[4]) for e in entries.values())


def _split(entries: dict[int, Entry]) -> list[dict[int, Entry]]:
    """The entries in queue-id order, cut into pages of at most PAGE_BYTES (at least one entry each)."""
    chunks: list[dict[int, Entry]] = []
    chunk: dict[int, Entry] = {}
    size = 0
    for qid in sorted(entries):
        entry = entries[qid]
        grows = ENTRY.size + len(entry[3]) + len(entry[4])
        if chunk and size + grows > PAGE_BYTES:
            chunks.append(chunk)
            chunk, size = {}, 0
        chunk[qid] = entry
        size += grows
    if chunk:
        chunks.append(chunk)
    return chunks


def _write_pack(io: FileIO, root: str, pack: int, pages: Iterable[tuple[int, bytes, int]]) -> dict[int, PageRef]:
    """Writes the pages into a new pack file, syncs it and its directory; their refs, by id of the payload. Written
    about a MiB at a time, never joined whole: copying tens of MB at once would hold the GIL from the loop thread."""
    directory = os.path.join(root, CATALOG_DIR)
    io.mkdir(directory)
    path = pack_path(root, pack)
    refs: dict[int, PageRef] = {}
    fd = io.open(path, create=True)
    try:
        io.truncate(fd, 0)
        parts = [PACK_HEADER.pack(CATALOG_MAGIC, framing.FORMAT_VERSION, pack)]
        written = 0
        offset = size = PACK_HEADER.size
        try:
            for lo, payload, count in pages:
                record = framing.frame(REC_PAGE, payload)
                _, _, crc = framing.HEAD.unpack_from(record)
                refs[id(payload)] = PageRef(lo, pack, offset, len(record), crc, count)
                parts.append(record)
                offset += len(record)
                size += len(record)
                if size >= WRITE_BYTES:
                    io.pwrite(fd, b"".join(parts), written)
                    written, parts, size = offset, [], 0
            if parts:
                io.pwrite(fd, b"".join(parts), written)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                # Nothing is lost: the current manifest, its pages and its journals still describe everything.
                io.close(fd)
                fd = -1
                io.unlink(path)
                raise DiskFullError("no space left on device for the catalog pages") from error
            raise
        io.fdatasync(fd)
    finally:
        if fd >= 0:
            io.close(fd)
    io.fsync_dir(directory)
    return refs


def read_all(io: FileIO, root: str, pages: list[PageRef]) -> Iterable[tuple[int, Entry]]:
    """(queue id, entry) of every page, in order, verified."""
    fds: dict[int, int] = {}
    try:
        for ref in pages:
            fd = fds.get(ref.pack)
            if fd is None:
                path = pack_path(root, ref.pack)
                try:
                    fd = fds[ref.pack] = io.open(path, write=False)
                except FileNotFoundError:
                    raise CorruptionError(path, 0, "catalog pack named by the manifest is missing") from None
            yield from read_page(io, root, ref, fd).items()
    finally:
        for fd in fds.values():
            io.close(fd)
