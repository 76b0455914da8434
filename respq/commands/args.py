"""Argument parsing shared by every command: integers, floats and timeouts with Redis's rules and error texts."""

from __future__ import annotations

import math
import re

from respq import errors
from respq.errors import CommandError

_INTEGER = re.compile(rb"-?[1-9][0-9]{0,19}|0")
_LLONG_MIN, _LLONG_MAX = -(1 << 63), (1 << 63) - 1
MAX_WAIT_MS = 100 * 365 * 86400 * 1000  # a century: "forever" for any client
# strtold-compatible: optional sign, digits with optional fraction and exponent, or inf/infinity (no spaces, no hex).
_FLOAT = re.compile(rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?)", re.IGNORECASE)


def try_int(arg: bytes) -> int | None:
    """A 64-bit signed integer in Redis's strict form (no sign '+', no leading zeros, no spaces), else None."""
    if _INTEGER.fullmatch(arg) is None:
        return None
    value = int(arg)
    return value if _LLONG_MIN <= value <= _LLONG_MAX else None


def parse_int(arg: bytes, error: bytes = errors.NOT_INTEGER) -> int:
    value = try_int(arg)
    if value is None:
        raise CommandError(error)
    return value


def strtod_prefix(arg: bytes) -> float:
    """Like C's strtod: the longest leading number, 0.0 when there is none (DEBUG SLEEP accepts anything)."""
    match = _FLOAT.match(arg)
    return float(match.group()) if match else 0.0


def parse_timeout(arg: bytes) -> float | None:
    """Blocking timeout in seconds (integer or float); None for 0, which waits forever."""
    if _FLOAT.fullmatch(arg) is None:
        raise CommandError(errors.TIMEOUT_NOT_FLOAT)
    seconds = float(arg)
    if math.isnan(seconds):
        raise CommandError(errors.TIMEOUT_NOT_FLOAT)
    # inf is accepted as a float and then overflows the millisecond conversion, as in Redis.
    return _checked_timeout_ms(seconds * 1000) / 1000 or None


def parse_timeout_ms(arg: bytes) -> int:
    """A timeout in whole milliseconds (CLIENT PAUSE, XREAD BLOCK); 0 stays 0."""
    milliseconds = try_int(arg)
    if milliseconds is None:
        raise CommandError(errors.TIMEOUT_NOT_INTEGER)
    return int(_checked_timeout_ms(milliseconds))


def _checked_timeout_ms(milliseconds: float) -> float:
    # Redis converts to a 64-bit integer first: values past its range wrap to negative ("timeout is negative").
    if not 0 <= milliseconds < 2**63:
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    # Deadlines beyond any real wait are kept finite and far away, as Redis's own clock arithmetic does.
    return min(milliseconds, MAX_WAIT_MS)


def parse_int32(arg: bytes, error: bytes) -> int:
    """A C int; anything else (not a number, or out of 32-bit range) gets ``error``."""
    value = try_int(arg)
    if value is None or not -(1 << 31) <= value < 1 << 31:
        raise CommandError(error)
    return value


def parse_db_index(arg: bytes, databases: int) -> int:
    index = parse_int(arg)
    if not -(1 << 31) <= index < 1 << 31:
        raise CommandError(errors.NOT_INT32)
    if not 0 <= index < databases:
        raise CommandError(errors.DB_INDEX_OUT_OF_RANGE)
    return index


def upper(arg: bytes) -> bytes:
    return arg.upper()
