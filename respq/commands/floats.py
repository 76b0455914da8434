"""Redis's ``long double`` arithmetic: INCRBYFLOAT and HINCRBYFLOAT parse, add and print as Redis 7.0 does on x86-64.

Redis reads a number with ``strtold`` (util.c: string2ld), adds in C's ``long double`` (the x87 80-bit extended
format: a 64-bit significand, exponents down to -16382, subnormals below) and prints the sum with ``"%.17Lf"``
less its trailing zeros (ld2string, LD_STR_HUMAN). That is why ``SET k 0.1`` then ``INCRBYFLOAT k 0.2`` answers
``0.3`` there, where Python's float would give ``0.30000000000000004``.

With the C module built (respq/_speedups.c) the arithmetic runs in C's own long double. Without it, the Python
twins below emulate the same format exactly, in integers (``Fraction``): correctly rounded parsing of decimal and
hexadecimal text, round-half-even addition at 64 bits of significand with the same exponent range, and the exact
decimal expansion rounded half-even to 17 places, as glibc's printf does. The answers are the same; each call costs
tens of microseconds instead of one. tests/unit/test_floats.py compares the two on generated input.

A value is opaque (``LongDouble``): the C form's bytes, or the twin's ``Fraction`` (an infinity as a float). Use
only these functions on it.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from respq import speedups

LongDouble = Any  # what parse and add return; only these functions read it

MAX_CHARS = 5 * 1024  # Redis's buffer for a long double as text: longer text is not a number to it
_MANTISSA_BITS = 64
_MIN_EXPONENT = -16382  # of a normal value: 2**-16382 is the smallest
_QUANTUM_MIN = _MIN_EXPONENT - (_MANTISSA_BITS - 1)  # 2**-16445, the smallest subnormal
_OVERFLOW = 1 << 16384  # the first magnitude past the largest finite value
_INF = float("inf")
_LOG2_10 = 3.321928094887362
# What strtold consumes whole (C locale), signs and all; NaN is refused by string2ld, so not spelled here.
_NUMBER = re.compile(
    rb"([+-]?)(?:"
    rb"(inf(?:inity)?)"
    rb"|0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?"
    rb"|([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?"
    rb")",
    re.IGNORECASE,
)


def py_parse(text: bytes) -> LongDouble | None:
    """string2ld: the whole text is one number (no space before or after), not NaN, neither overflowing nor
    underflowing to zero; otherwise None."""
    if not 0 < len(text) < MAX_CHARS:
        return None
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    sign, infinity, hex_int, hex_frac, hex_exp, dec_int, dec_frac, dec_exp = match.groups()
    negative = sign == b"-"
    if infinity is not None:
        return -_INF if negative else _INF
    if hex_int is not None:
        digits = hex_int + (hex_frac or b"")
        if not digits:
            return None  # "0x" alone: strtold reads the 0 and stops at the x
        value = _scaled(int(digits, 16), 2, _decimal(hex_exp or b"0") - 4 * len(hex_frac or b""))
    else:
        digits = dec_int + (dec_frac or b"")
        if not digits:
            return None
        value = _scaled(_decimal(digits), 10, _decimal(dec_exp or b"0") - len(dec_frac or b""))
    if value is None:
        return None  # overflows, or a non-zero number rounding to zero: ERANGE, which string2ld refuses
    rounded = _round(value)
    if rounded is None or (value and not rounded):
        return None
    return -rounded if negative else rounded


def _scaled(mantissa: int, base: int, exponent: int) -> Fraction | None:
    """mantissa * base**exponent exactly, or None when it is surely past the long double's range either way (so
    that an exponent of thousands of digits never becomes a power of that size)."""
    if not mantissa:
        return Fraction(0)
    if abs(exponent) > 100_000:
        return None
    bits = mantissa.bit_length() + exponent * (1 if base == 2 else _LOG2_10)
    if not _QUANTUM_MIN - 64 < bits < 16384 + 64:
        return None
    return Fraction(mantissa * base**exponent) if exponent >= 0 else Fraction(mantissa, base**-exponent)


def _round(value: Fraction) -> Fraction | None:
    """``value`` rounded to the nearest long double (ties to even), or None when it overflows."""
    if not value:
        return Fraction(0)
    magnitude = abs(value)
    num, den = magnitude.numerator, magnitude.denominator
    exponent = num.bit_length() - den.bit_length()  # floor(log2) or one more
    if (num << max(0, -exponent)) < (den << max(0, exponent)):
        exponent -= 1
    quantum = max(exponent - (_MANTISSA_BITS - 1), _QUANTUM_MIN)
    if quantum >= 0:
        steps, rest = divmod(num, den << quantum)
        half = den << quantum
    else:
        steps, rest = divmod(num << -quantum, den)
        half = den
    if 2 * rest > half or (2 * rest == half and steps & 1):
        steps += 1
    rounded = Fraction(steps << quantum) if quantum >= 0 else Fraction(steps, 1 << -quantum)
    if rounded >= _OVERFLOW:
        return None
    return rounded if value > 0 else -rounded


def py_add(a: LongDouble, b: LongDouble) -> LongDouble:
    if type(a) is float:  # an infinity: plus a finite value it stays; plus the opposite one it is NaN
        return a + b if type(b) is float else a
    if type(b) is float:
        return b
    total = _round(a + b)
    if total is None:
        return _INF if a + b > 0 else -_INF
    return total


def py_is_finite(a: LongDouble) -> bool:
    return type(a) is not float


def py_format(a: LongDouble) -> bytes:
    """ld2string LD_STR_HUMAN: "%.17Lf" (the exact value rounded half-even to 17 places), trailing zeros and point
    removed, "-0" printed "0"."""
    if type(a) is float:
        return b"inf" if a > 0 else b"-inf"
    magnitude = abs(a) * 10**17
    steps, rest = divmod(magnitude.numerator, magnitude.denominator)
    if 2 * rest > magnitude.denominator or (2 * rest == magnitude.denominator and steps & 1):
        steps += 1
    whole, fraction = divmod(steps, 10**17)
    text = (_text_of(whole) + b".%017d" % fraction).rstrip(b"0").rstrip(b".")
    if a < 0 and text != b"0":
        text = b"-" + text
    return text


# Python refuses int <-> decimal text conversions past 4300 digits (a global setting): long ones go in pieces.
_PIECE = 4000


def _decimal(digits: bytes) -> int:
    if len(digits) <= _PIECE:
        return int(digits)
    sign, digits = (-1, digits[1:]) if digits[:1] == b"-" else (1, digits.lstrip(b"+"))
    value = 0
    for start in range(0, len(digits), _PIECE):
        piece = digits[start : start + _PIECE]
        value = value * 10 ** len(piece) + int(piece)
    return sign * value


def _text_of(number: int) -> bytes:
    if number < 10**_PIECE:
        return b"%d" % number
    high, low = divmod(number, 10**_PIECE)
    return _text_of(high) + (b"%d" % low).rjust(_PIECE, b"0")


parse = speedups.ld_parse or py_parse
add = speedups.ld_add or py_add
is_finite = speedups.ld_is_finite or py_is_finite
to_text = speedups.ld_format or py_format
