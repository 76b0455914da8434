"""FUNCTION DUMP's payload, in Redis 7.0's format, so dumps move between respq and redis-server both ways.

A payload is, per library, the RDB opcode FUNCTION2 (245) and the library's code as an RDB string (length-prefixed,
LZF-compressed when longer than 20 bytes and that saves at least 4 bytes, as rdbSaveRawString does), then the RDB
version (10, two bytes little-endian) and the CRC-64 (Jones polynomial, as Redis's crc64) of all that, little-endian.
Reading also takes the FUNCTION opcode (246) of 7.0's release candidates and integer-encoded strings.
The pieces (CRC-64, LZF, RDB strings) are respq.rdb's, shared with DUMP/RESTORE.
"""

from __future__ import annotations

from respq import rdb

OPCODE_FUNCTION2 = 245
OPCODE_FUNCTION = 246  # 7.0-rc1/rc2: name, engine, description, code

BAD_PAYLOAD = rdb.BAD_PAYLOAD
NOT_A_FUNCTION = b"ERR given type is not a function"
BAD_TYPE = b"ERR can not read data type"
LOAD_FAILED = b"ERR Failed loading library payload"


class PayloadError(Exception):
    def __init__(self, message: bytes) -> None:
        super().__init__(message.decode())
        self.message = message


def function_payload(codes: list[bytes]) -> bytes:
    """Library code never takes the integer encoding (it starts "#!"): each is an RDB string after its opcode."""
    return rdb.payload(b"".join(bytes((OPCODE_FUNCTION2,)) + rdb.string(code) for code in codes))


def read_function_payload(payload: bytes) -> list[bytes]:
    """Each library's payload (header line and code) in a FUNCTION DUMP payload; PayloadError as Redis words it."""
    if not rdb.verify_payload(payload):
        raise PayloadError(BAD_PAYLOAD)
    # Reads may run into the footer, as Redis's rio over the whole buffer does.
    reader = rdb.Reader(payload)
    codes = []
    try:
        while len(payload) - reader.pos > 10:
            kind = reader.byte()
            if kind == OPCODE_FUNCTION2:
                codes.append(reader.string())
            elif kind == OPCODE_FUNCTION:
                name = reader.string()
                engine = reader.string()
                has_description = reader.length()
                if has_description:
                    reader.string()
                codes.append(b"#!%s name=%s\n%s" % (engine, name, reader.string()))
            else:
                raise PayloadError(NOT_A_FUNCTION)
    except rdb.FormatError:
        raise PayloadError(LOAD_FAILED) from None
    return codes
