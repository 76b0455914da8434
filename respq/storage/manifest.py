"""The manifest: the durable checkpoint of the catalog and of every queue's chunk list.

Layout: file prefix (magic, version) then ONE framed record holding the whole state, so a torn or damaged
manifest is always detected. It is only ever replaced atomically (write temp, fsync, rename, fsync directory).
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass, field

from respq.storage import framing
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
# After the settings, only when there is server metadata (format 3; the settings count is then written even when 0):
# a count, then per blob its name length, its length, the name and the blob (Engine.metadata: opaque to storage).
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
    metadata: dict[bytes, bytes] = field(default_factory=dict)  # server metadata: name -> opaque blob


def encode(data: ManifestData) -> bytes:
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
    if data.settings or data.metadata:
        parts.append(COUNT.pack(len(data.settings)))
        for type_code, settings in data.settings.items():
            parts += (SETTINGS.pack(type_code, len(settings)), settings)
    if data.metadata:
        parts.append(COUNT.pack(len(data.metadata)))
        for name, blob in data.metadata.items():
            parts += (METADATA.pack(len(name), len(blob)), name, blob)
    payload = b"".join(parts)
    prefix = framing.MANIFEST_HEADER.pack(framing.MANIFEST_MAGIC, framing.FORMAT_VERSION)
    return prefix + framing.frame(REC_MANIFEST, payload)


def decode(blob: bytes, path: str) -> ManifestData:
    framing.check_prefix(blob, framing.MANIFEST_MAGIC, path)
    pos = framing.MANIFEST_HEADER.size
    try:
        rtype, payload_start, end = framing.parse_forward(blob, pos, len(blob))
    except framing.FramingError as error:
        raise CorruptionError(path, pos, error.reason) from None
    if rtype != REC_MANIFEST or end != len(blob):
        raise CorruptionError(path, pos, "unexpected record layout")
    payload = memoryview(blob)[payload_start : end - framing.TAIL_SIZE]
    try:
        return _decode_payload(payload)
    except (struct.error, ValueError) as error:
        raise CorruptionError(path, pos, f"malformed manifest: {error}") from None


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
    if pos < len(payload):
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


def read(io: FileIO, root: str) -> ManifestData | None:
    path = os.path.join(root, MANIFEST_NAME)
    try:
        fd = io.open(path, write=False)
    except FileNotFoundError:
        return None
    try:
        blob = io.pread(fd, io.size(fd), 0)
    finally:
        io.close(fd)
    return decode(blob, path)


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
