"""FUNCTION DUMP's payload, in Redis 7.0's format, so dumps move between respq and redis-server both ways.

A payload is, per library, the RDB opcode FUNCTION2 (245) and the library's code as an RDB string (length-prefixed,
LZF-compressed when longer than 20 bytes and that saves at least 4 bytes, as rdbSaveRawString does), then the RDB
version (10, two bytes little-endian) and the CRC-64 (Jones polynomial, as Redis's crc64) of all that, little-endian.
Reading also takes the FUNCTION opcode (246) of 7.0's release candidates and integer-encoded strings.
The LZF compressor follows liblzf 3.6 as Redis configures it (HLOG 16, VERY_FAST), so dumps are byte-identical.
"""

from __future__ import annotations

import struct
from functools import cache

RDB_VERSION = 10
OPCODE_FUNCTION2 = 245
OPCODE_FUNCTION = 246  # 7.0-rc1/rc2: name, engine, description, code
_ENCVAL = 3
_ENC_INT8, _ENC_INT16, _ENC_INT32, _ENC_LZF = 0, 1, 2, 3

BAD_PAYLOAD = b"ERR DUMP payload version or checksum are wrong"
NOT_A_FUNCTION = b"ERR given type is not a function"
BAD_TYPE = b"ERR can not read data type"
LOAD_FAILED = b"ERR Failed loading library payload"


class PayloadError(Exception):
    def __init__(self, message: bytes) -> None:
        super().__init__(message.decode())
        self.message = message


# ---- CRC-64 (Redis's crc64: Jones polynomial, reflected, initial value 0) ----------------------------------------
@cache
def _crc_table() -> tuple[int, ...]:
    poly = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9 reflected
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


def crc64(data: bytes, crc: int = 0) -> int:
    table = _crc_table()
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


# ---- LZF ---------------------------------------------------------------------------------------------------------
_HLOG = 16
_HSIZE = 1 << _HLOG
_MAX_LIT = 1 << 5
_MAX_OFF = 1 << 13
_MAX_REF = (1 << 8) + (1 << 3)


def _idx(h: int) -> int:
    return ((h >> (3 * 8 - _HLOG)) - h * 5) & (_HSIZE - 1)


def lzf_compress(data: bytes, out_len: int) -> bytes | None:
    """liblzf's lzf_compress into at most ``out_len`` bytes; None where it returns 0 (no room)."""
    in_len = len(data)
    if not in_len or not out_len:
        return None
    htab = [0] * _HSIZE  # positions + 0 (a slot of 0 is empty: position 0 is never a reference)
    out = bytearray(out_len + 3)
    ip, op, in_end, out_end = 0, 1, in_len, out_len
    lit = 0
    hval = (data[0] << 8) | data[1] if in_len > 1 else 0
    while ip < in_end - 2:
        hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
        slot = _idx(hval)
        ref = htab[slot] or None
        htab[slot] = ip
        if (
            ref is not None
            and (off := ip - ref - 1) < _MAX_OFF
            and ref > 0
            and data[ref + 2] == data[ip + 2]
            and data[ref] == data[ip]
            and data[ref + 1] == data[ip + 1]
        ):
            length = 2
            maxlen = min(in_end - ip - length, _MAX_REF)
            if op + 4 >= out_end and op - (not lit) + 4 >= out_end:
                return None
            out[op - lit - 1] = (lit - 1) & 0xFF
            op -= not lit
            stopped = False
            if maxlen > 16:
                for _ in range(16):
                    length += 1
                    if data[ref + length] != data[ip + length]:
                        stopped = True
                        break
            if not stopped:
                while True:
                    length += 1
                    if not (length < maxlen and data[ref + length] == data[ip + length]):
                        break
            length -= 2
            ip += 1
            if length < 7:
                out[op] = ((off >> 8) + (length << 5)) & 0xFF
                op += 1
            else:
                out[op] = ((off >> 8) + (7 << 5)) & 0xFF
                out[op + 1] = (length - 7) & 0xFF
                op += 2
            out[op] = off & 0xFF
            op += 1
            lit = 0
            op += 1
            ip += length + 1
            if ip >= in_end - 2:
                break
            ip -= 2
            hval = (data[ip] << 8) | data[ip + 1]
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            htab[_idx(hval)] = ip
            ip += 1
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            htab[_idx(hval)] = ip
            ip += 1
        else:
            if op >= out_end:
                return None
            lit += 1
            out[op] = data[ip]
            op += 1
            ip += 1
            if lit == _MAX_LIT:
                out[op - lit - 1] = lit - 1
                lit = 0
                op += 1
    if op + 3 > out_end:
        return None
    while ip < in_end:
        lit += 1
        out[op] = data[ip]
        op += 1
        ip += 1
        if lit == _MAX_LIT:
            out[op - lit - 1] = lit - 1
            lit = 0
            op += 1
    out[op - lit - 1] = (lit - 1) & 0xFF
    op -= not lit
    return bytes(out[:op])


def lzf_decompress(data: bytes, expected: int) -> bytes:
    out = bytearray()
    ip, end = 0, len(data)
    while ip < end:
        ctrl = data[ip]
        ip += 1
        if ctrl < 32:
            run = ctrl + 1
            if ip + run > end:
                raise PayloadError(LOAD_FAILED)
            out += data[ip : ip + run]
            ip += run
            continue
        length = ctrl >> 5
        if length == 7:
            if ip >= end:
                raise PayloadError(LOAD_FAILED)
            length += data[ip]
            ip += 1
        if ip >= end:
            raise PayloadError(LOAD_FAILED)
        ref = len(out) - ((ctrl & 0x1F) << 8) - 1 - data[ip]
        ip += 1
        if ref < 0:
            raise PayloadError(LOAD_FAILED)
        for i in range(length + 2):
            out.append(out[ref + i])
    if len(out) != expected:
        raise PayloadError(LOAD_FAILED)
    return bytes(out)


# ---- RDB strings -------------------------------------------------------------------------------------------------
def _length(n: int) -> bytes:
    if n < 1 << 6:
        return bytes((n,))
    if n < 1 << 14:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + struct.pack(">I", n)
    return b"\x81" + struct.pack(">Q", n)


def rdb_string(data: bytes) -> bytes:
    """rdbSaveRawString with rdbcompression on (library code never takes the integer encoding: it starts "#!")."""
    if len(data) > 20:
        compressed = lzf_compress(data, len(data) - 4)
        if compressed is not None:
            return bytes(((_ENCVAL << 6) | _ENC_LZF,)) + _length(len(compressed)) + _length(len(data)) + compressed
    return _length(len(data)) + data


def function_payload(codes: list[bytes]) -> bytes:
    body = b"".join(bytes((OPCODE_FUNCTION2,)) + rdb_string(code) for code in codes)
    body += struct.pack("<H", RDB_VERSION)
    return body + struct.pack("<Q", crc64(body))


class _Reader:
    def __init__(self, data: bytes, end: int) -> None:
        self.data = data
        self.pos = 0
        self.end = end  # reads may run into the footer, as Redis's rio over the whole buffer does

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PayloadError(LOAD_FAILED)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def length(self) -> tuple[int, bool]:
        first = self.take(1)[0]
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.take(1)[0], False
        if kind == _ENCVAL:
            return first & 0x3F, True
        if first == 0x80:
            return struct.unpack(">I", self.take(4))[0], False
        if first == 0x81:
            return struct.unpack(">Q", self.take(8))[0], False
        raise PayloadError(LOAD_FAILED)

    def string(self) -> bytes:
        n, encoded = self.length()
        if not encoded:
            return self.take(n)
        if n == _ENC_INT8:
            return b"%d" % struct.unpack("<b", self.take(1))[0]
        if n == _ENC_INT16:
            return b"%d" % struct.unpack("<h", self.take(2))[0]
        if n == _ENC_INT32:
            return b"%d" % struct.unpack("<i", self.take(4))[0]
        if n == _ENC_LZF:
            compressed, _ = self.length()
            size, _ = self.length()
            return lzf_decompress(self.take(compressed), size)
        raise PayloadError(LOAD_FAILED)


def read_function_payload(payload: bytes) -> list[bytes]:
    """Each library's payload (header line and code) in a FUNCTION DUMP payload; PayloadError as Redis words it."""
    if len(payload) < 10:
        raise PayloadError(BAD_PAYLOAD)
    (version,) = struct.unpack_from("<H", payload, len(payload) - 10)
    if version > RDB_VERSION or struct.unpack_from("<Q", payload, len(payload) - 8)[0] != crc64(payload[:-8]):
        raise PayloadError(BAD_PAYLOAD)
    reader = _Reader(payload, len(payload) - 10)
    codes = []
    while len(payload) - reader.pos > 10:
        kind = reader.take(1)[0]
        if kind == OPCODE_FUNCTION2:
            codes.append(reader.string())
        elif kind == OPCODE_FUNCTION:
            name = reader.string()
            engine = reader.string()
            has_description, _ = reader.length()
            if has_description:
                reader.string()
            codes.append(b"#!%s name=%s\n%s" % (engine, name, reader.string()))
        else:
            raise PayloadError(NOT_A_FUNCTION)
    return codes
