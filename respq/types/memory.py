"""What Redis 7.0 would allocate for a value, for MEMORY USAGE: jemalloc's size classes, sds strings and listpack
encodings, as Redis's ``objectComputeSize`` adds them up. respq's own memory per key is far smaller (values live
on disk); the figure answers the question a Redis user asks of a key: how big is it.
"""

from __future__ import annotations

import re

ROBJ = 16  # sizeof(robj)
DICT_ENTRY = 24  # sizeof(dictEntry): one per key in the keyspace, one more in the expires table
LISTPACK_EMPTY = 7  # header (total bytes, element count) and the end byte
_LISTPACK_INT = re.compile(rb"0|-?[1-9][0-9]*")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def malloc_size(size: int) -> int:
    """The usable size jemalloc 5 gives a request of ``size`` bytes: its size class (four per doubling)."""
    if size <= 8:
        return 8
    if size <= 128:
        return (size + 15) & ~15
    step = 1 << ((size - 1).bit_length() - 3)
    return (size + step - 1) // step * step


def sds_size(length: int, *, grown: bool = False) -> int:
    """The allocation of an sds string of ``length`` bytes (header by length class, the bytes, a NUL). A ``grown``
    string never has the 1-byte header of the shortest class (sds growth skips it)."""
    if length < 32 and not grown:
        header = 1
    elif length < 256:
        header = 3
    elif length < 65536:
        header = 5
    elif length < 1 << 32:
        header = 9
    else:
        header = 17
    return malloc_size(header + length + 1)


def listpack_int(value: bytes) -> int | None:
    """The integer a listpack stores ``value`` as (canonical decimal within int64), or None: stored as a string."""
    if len(value) > 20 or _LISTPACK_INT.fullmatch(value) is None:
        return None
    number = int(value)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def listpack_entry(value: bytes) -> int:
    """Bytes one element takes in a listpack: its encoding and data, then its back length."""
    number = listpack_int(value)
    if number is not None:
        encoded = listpack_int_size(number)
    else:
        size = len(value)
        encoded = 1 + size if size < 64 else 2 + size if size < 4096 else 5 + size
    return encoded + _backlen(encoded)


def listpack_int_size(number: int) -> int:
    """Encoding and data bytes of an integer element (without its back length)."""
    if 0 <= number <= 127:
        return 1
    if -4096 <= number <= 4095:
        return 2
    if -32768 <= number <= 32767:
        return 3
    if -8388608 <= number <= 8388607:
        return 4
    if -(1 << 31) <= number < 1 << 31:
        return 5
    return 9


def listpack_int_entry(number: int) -> int:
    encoded = listpack_int_size(number)
    return encoded + _backlen(encoded)


def _backlen(encoded: int) -> int:
    if encoded <= 127:
        return 1
    if encoded < 16383:
        return 2
    if encoded < 2097151:
        return 3
    if encoded < 268435455:
        return 4
    return 5


def key_usage(key: bytes) -> int:
    """What MEMORY USAGE adds to the value's size for its key: the key's sds and its dictionary entry (not the
    expires table's: Redis leaves it out)."""
    return sds_size(len(key)) + DICT_ENTRY
