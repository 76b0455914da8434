"""Argument parsing shared by every command: integers, floats and timeouts with Redis's rules and error texts."""

from __future__ import annotations

import math
import re

from respq import errors
from respq.errors import CommandError

_INTEGER = re.compile(rb"-?[1-9][0-9]{0,19}|0")
_LLONG_MIN, _LLONG_MAX = -(1 << 63), (1 << 63) - 1
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


def parse_nonnegative(arg: bytes, error: bytes = errors.MUST_BE_POSITIVE) -> int:
    value = parse_int(arg)
    if value < 0:
        raise CommandError(error)
    return value


def parse_float(arg: bytes, error: bytes = errors.NOT_FLOAT) -> float:
    if _FLOAT.fullmatch(arg) is None:
        raise CommandError(error)
    return float(arg)


def parse_timeout(arg: bytes) -> float | None:
    """Blocking timeout in seconds (integer or float); None for 0, which waits forever."""
    if _FLOAT.fullmatch(arg) is None:
        raise CommandError(errors.TIMEOUT_NOT_FLOAT)
    seconds = float(arg)
    if math.isinf(seconds) or math.isnan(seconds):
        raise CommandError(errors.TIMEOUT_NOT_FLOAT)
    if seconds < 0:
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    if seconds * 1000 > _LLONG_MAX // 2:
        raise CommandError(errors.TIMEOUT_OUT_OF_RANGE)
    return seconds if seconds > 0 else None


def parse_db_index(arg: bytes, databases: int) -> int:
    index = try_int(arg)
    if index is None or not -(1 << 31) <= index < 1 << 31:
        raise CommandError(errors.NOT_INTEGER)
    if not 0 <= index < databases:
        raise CommandError(errors.DB_INDEX_OUT_OF_RANGE)
    return index


def upper(arg: bytes) -> bytes:
    return arg.upper()
