"""The manifest: the durable checkpoint of the catalog and of every queue's chunk list.

Layout: file prefix (magic, version) then ONE framed record holding the whole state, so a torn or damaged
manifest is always detected. It is only ever replaced atomically (write temp, fsync, rename, fsync directory).
From format 3 on the keys are not in it: it names the catalog pages holding them (``pages.py``), with each page's
CRC, and maps databases to the slots the entries name. ``read`` reads and verifies those pages too, so its
``keys`` are every key whatever the version.
"""

from __future__ import annotations

import errno
import itertools
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from respq.storage import framing, pages
from respq.storage.errors import CorruptionError, DiskFullError
from respq.storage.fileio import FileIO

MANIFEST_NAME = "MANIFEST"
REC_MANIFEST = 40
HEAD = struct.Struct("<QQQQH")  # next file id, next queue id, first journal to replay, its LSN, databases
COUNT = struct.Struct("<Q")
FILE = struct.Struct("<QQQ")  # file id, queue id, checkpointed size
KEY = struct.Struct("<HBBqQII")  # db, type, has expiry, expiry ms, queue id, key length, state length
# After the keys, only when some type's settings are not its defaults (format 2; absent before): a count, then per
# type its code and payload length, then the payload: the settings journal replay from this checkpoint starts with.
SETTINGS = struct.Struct("<BI")  # type code, payload length; then the payload (the type's own encoding)
# Format 3: after HEAD the slot and pack counters, the files, the slots of databases whose slot is not their number
# (count, then pairs), the catalog pages, the settings section, then the server metadata section (both always
# present, maybe empty: a count, then per blob its name length, its length, the name and the blob; Engine.metadata,
# opaque to storage). No keys: they are in the pages.
HEAD3 = struct.Struct("<QQ")  # next slot, next pack
SLOT = struct.Struct("<HI")  # database, slot: only where they differ (a fresh directory has slot n for database n)
PAGE = struct.Struct("<QQQIII")  # first queue id, pack, offset, record length, CRC32C, entries
METADATA = struct.Struct("<HI")


@dataclass
class ManifestData:
    next_fid: int = 1
    next_qid: int = 1
    journal_seq: int = 0
    journal_lsn: int = 0
    databases: int = 16
    files: dict[int, tuple[int, int]] = field(default_factory=dict)  # file id -> (queue id, size)
    # (db, type code, expiry or None, queue id, key, type-specific state)
    keys: list[tuple[int, int, int | None, int, bytes, bytes]] = field(default_factory=list)
    settings: dict[int, bytes] = field(default_factory=dict)  # type code -> settings payload, where not the default
    version: int = framing.FORMAT_VERSION  # what the file said (read) or will say (encode: always the current)
    # Format 3 (empty in a manifest of an earlier version): database -> slot, the catalog pages, the counters.
    slots: list[int] = field(default_factory=list)
    pages: list[pages.PageRef] = field(default_factory=list)
    next_slot: int = 0
    next_pack: int = 1
    metadata: dict[bytes, bytes] = field(default_factory=dict)  # server metadata: name -> opaque blob


def encode(data: ManifestData) -> bytes:
    """The current format: the keys go in catalog pages (``pages.apply``), which ``data.pages`` names."""
    parts = [
        HEAD.pack(data.next_fid, data.next_qid, data.journal_seq, data.journal_lsn, data.databases),
        HEAD3.pack(data.next_slot, data.next_pack),
        COUNT.pack(len(data.files)),
    ]
    parts += [FILE.pack(fid, qid, size) for fid, (qid, size) in data.files.items()]
    if len(data.slots) != data.databases:
        raise ValueError("one slot per database")
    moved = [(db, slot) for db, slot in enumerate(data.slots) if slot != db]
    parts.append(COUNT.pack(len(moved)))
    parts += [SLOT.pack(db, slot) for db, slot in moved]
    parts.append(COUNT.pack(len(data.pages)))
    parts += [PAGE.pack(*ref) for ref in data.pages]
    parts.append(COUNT.pack(len(data.settings)))
    for type_code, settings in data.settings.items():
        parts += (SETTINGS.pack(type_code, len(settings)), settings)
    parts.append(COUNT.pack(len(data.metadata)))
    for name, blob in data.metadata.items():
        parts += (METADATA.pack(len(name), len(blob)), name, blob)
    prefix = framing.MANIFEST_HEADER.pack(framing.MANIFEST_MAGIC, framing.FORMAT_VERSION)
    return prefix + framing.frame(REC_MANIFEST, b"".join(parts))


def encode_v2(data: ManifestData) -> bytes:
    """A format 2 manifest (keys inline): what builds before catalog pages wrote; tests make such directories."""
    parts = [HEAD.pack(data.next_fid, data.next_qid, data.journal_seq, data.journal_lsn, data.databases)]
    parts.append(COUNT.pack(len(data.files)))
    parts += [FILE.pack(fid, qid, size) for fid, (qid, size) in data.files.items()]
    parts.append(COUNT.pack(len(data.keys)))
    for db, type_code, expire, qid, key, state in data.keys:
        parts += (
            KEY.pack(db, type_code, expire is not None, expire or 0, qid, len(key), len(state)),
            key,
            state,
        )
    if data.metadata:
        raise ValueError("format 2 has no server metadata")
    if data.settings:
        parts.append(COUNT.pack(len(data.settings)))
        for type_code, settings in data.settings.items():
            parts += (SETTINGS.pack(type_code, len(settings)), settings)
    payload = b"".join(parts)
    prefix = framing.MANIFEST_HEADER.pack(framing.MANIFEST_MAGIC, 2)
    return prefix + framing.frame(REC_MANIFEST, payload)


def decode(blob: bytes, path: str) -> ManifestData:
    """The manifest itself; for format 3, ``keys`` stays empty (``read`` fills it from the pages)."""
    version = framing.check_prefix(blob, framing.MANIFEST_MAGIC, path)
    pos = framing.MANIFEST_HEADER.size
    try:
        rtype, payload_start, end = framing.parse_forward(blob, pos, len(blob))
    except framing.FramingError as error:
        raise CorruptionError(path, pos, error.reason) from None
    if rtype != REC_MANIFEST or end != len(blob):
        raise CorruptionError(path, pos, "unexpected record layout")
    payload = memoryview(blob)[payload_start : end - framing.TAIL_SIZE]
    try:
        data = _decode_payload_v3(payload) if version >= 3 else _decode_payload(payload)
    except (struct.error, ValueError) as error:
        raise CorruptionError(path, pos, f"malformed manifest: {error}") from None
    data.version = version
    return data


def _decode_payload_v3(payload: memoryview) -> ManifestData:
    data = ManifestData()
    data.next_fid, data.next_qid, data.journal_seq, data.journal_lsn, data.databases = HEAD.unpack_from(payload)
    pos = HEAD.size
    data.next_slot, data.next_pack = HEAD3.unpack_from(payload, pos)
    pos += HEAD3.size
    (count,) = COUNT.unpack_from(payload, pos)
    pos += COUNT.size
    for _ in range(count):
        fid, qid, size = FILE.unpack_from(payload, pos)
        pos += FILE.size
        data.files[fid] = (qid, size)
    data.slots = list(range(data.databases))
    (count,) = COUNT.unpack_from(payload, pos)
    pos += COUNT.size
    for _ in range(count):
        db, slot = SLOT.unpack_from(payload, pos)
        pos += SLOT.size
        data.slots[db] = slot
    if len(set(data.slots)) != len(data.slots):
        raise ValueError("two databases share a slot")
    (count,) = COUNT.unpack_from(payload, pos)
    pos += COUNT.size
    for _ in range(count):
        data.pages.append(pages.PageRef(*PAGE.unpack_from(payload, pos)))
        pos += PAGE.size
    if any(a.lo >= b.lo for a, b in itertools.pairwise(data.pages)) or (data.pages and data.pages[0].lo):
        raise ValueError("catalog pages out of order")
    (count,) = COUNT.unpack_from(payload, pos)
    pos += COUNT.size
    for _ in range(count):
        type_code, length = SETTINGS.unpack_from(payload, pos)
        pos += SETTINGS.size
        if pos + length > len(payload):
            raise ValueError("settings past the end")
        data.settings[type_code] = bytes(payload[pos : pos + length])
        pos += length
    (count,) = COUNT.unpack_from(payload, pos)
    pos += COUNT.size
    for _ in range(count):
        name_length, length = METADATA.unpack_from(payload, pos)
        pos += METADATA.size
        if pos + name_length + length > len(payload):
            raise ValueError("metadata past the end")
        name = bytes(payload[pos : pos + name_length])
        pos += name_length
        data.metadata[name] = bytes(payload[pos : pos + length])
        pos += length
    if pos != len(payload):
        raise ValueError("trailing bytes")
    return data


def _decode_payload(payload: memoryview) -> ManifestData:
    data = ManifestData()
    data.next_fid, data.next_qid, data.journal_seq, data.journal_lsn, data.databases = HEAD.unpack_from(payload)
    pos = HEAD.size
    (count,) = COUNT.unpack_from(payload, pos)
    pos += COUNT.size
    for _ in range(count):
        fid, qid, size = FILE.unpack_from(payload, pos)
        pos += FILE.size
        data.files[fid] = (qid, size)
    (count,) = COUNT.unpack_from(payload, pos)
    pos += COUNT.size
    for _ in range(count):
        db, type_code, has_expire, expire, qid, key_length, state_length = KEY.unpack_from(payload, pos)
        pos += KEY.size
        key = bytes(payload[pos : pos + key_length])
        pos += key_length
        state = bytes(payload[pos : pos + state_length])
        pos += state_length
        data.keys.append((db, type_code, expire if has_expire else None, qid, key, state))
    if pos < len(payload):
        (count,) = COUNT.unpack_from(payload, pos)
        pos += COUNT.size
        for _ in range(count):
            type_code, length = SETTINGS.unpack_from(payload, pos)
            pos += SETTINGS.size
            if pos + length > len(payload):
                raise ValueError("settings past the end")
            data.settings[type_code] = bytes(payload[pos : pos + length])
            pos += length
    if pos != len(payload):
        raise ValueError("trailing bytes")
    return data


def read(io: FileIO, root: str, *, with_pages: bool = True) -> ManifestData | None:
    """The manifest, its ``keys`` read from its catalog pages (verified) unless ``with_pages`` is false."""
    path = os.path.join(root, MANIFEST_NAME)
    try:
        fd = io.open(path, write=False)
    except FileNotFoundError:
        return None
    try:
        blob = io.pread(fd, io.size(fd), 0)
    finally:
        io.close(fd)
    data = decode(blob, path)
    if data.version >= 3 and with_pages:
        data.keys += page_keys(data, pages.read_all(io, root, data.pages))
    return data


def page_keys(
    data: ManifestData, entries: Iterable[tuple[int, pages.Entry]]
) -> Iterator[tuple[int, int, int | None, int, bytes, bytes]]:
    """The keys of catalog page entries, as ``ManifestData.keys`` holds them (entries of a flushed database's old
    slot are dead: left out)."""
    slot_db = {slot: db for db, slot in enumerate(data.slots)}
    for qid, (slot, type_code, expire, key, state) in entries:
        db = slot_db.get(slot)
        if db is not None:
            yield db, type_code, expire, qid, key, state


def write(io: FileIO, root: str, blob: bytes) -> None:
    """Atomic replacement: a crash leaves either the old manifest or the new one, never a mix."""
    path = os.path.join(root, MANIFEST_NAME)
    temp = path + ".tmp"
    fd = io.open(temp, create=True)
    try:
        io.truncate(fd, 0)
        try:
            io.pwrite(fd, blob, 0)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                # Nothing is lost: the current manifest and its journals still describe everything.
                raise DiskFullError("no space left on device for the manifest") from error
            raise
        io.fdatasync(fd)
    finally:
        io.close(fd)
    io.rename(temp, path)
    io.fsync_dir(root)
