"""Redis's long double arithmetic (INCRBYFLOAT, HINCRBYFLOAT): the C functions against their Python twins, which
emulate the 80-bit format in integers and must answer the same for any text. The C side is C's own long double
(strtold, x87 addition, printf "%.17Lf"), so agreement also checks the emulation against the machine."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import require_speedups
from respq.commands import floats

pytestmark = pytest.mark.timeout(300)


def c_twins():  # type: ignore[no-untyped-def]
    module = require_speedups()
    return module.ld_parse, module.ld_add, module.ld_is_finite, module.ld_format


def both(text: bytes) -> tuple[bytes | None, bytes | None]:
    """What each side makes of ``text``: its value printed as Redis prints it, or None when refused."""
    c_parse, _, _, c_format = c_twins()
    c_value, py_value = c_parse(text), floats.py_parse(text)
    return (
        None if c_value is None else c_format(c_value),
        None if py_value is None else floats.py_format(py_value),
    )


def sums(a: bytes, b: bytes) -> tuple[bytes | None, bytes | None]:
    c_parse, c_add, c_is_finite, c_format = c_twins()
    ca, cb, pa, pb = c_parse(a), c_parse(b), floats.py_parse(a), floats.py_parse(b)
    assert (ca is None, cb is None) == (pa is None, pb is None), (a, b)
    if ca is None or cb is None:
        return None, None
    c_total, py_total = c_add(ca, cb), floats.py_add(pa, pb)
    assert c_is_finite(c_total) == floats.py_is_finite(py_total), (a, b)
    if not c_is_finite(c_total):
        return None, None
    return c_format(c_total), floats.py_format(py_total)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (b"0.1", b"0.2", b"0.3"),  # a Python float says 0.30000000000000004
        (b"10.5", b"0.1", b"10.6"),
        (b"5.0e3", b"2.0e2", b"5200"),
        (b"-1.5", b"1.5", b"0"),
        (b"-0", b"-0", b"0"),
        (b"9223372036854775807", b"1", b"9223372036854775808"),  # exact in 64 bits of significand
        (b"0x1p-18", b"0", b"0.00000381469726562"),  # a tie at the 17th place: to even
        (b"0x3p-18", b"0", b"0.00001144409179688"),
        (b"1e-4940", b"0", b"0"),  # subnormal: accepted, prints as 0
        (b"-1e-20", b"0", b"0"),  # "-0.00000000000000000" is printed "0"
    ],
)
def test_known_sums(a: bytes, b: bytes, expected: bytes) -> None:
    assert sums(a, b) == (expected, expected)


@pytest.mark.parametrize(
    "text",
    [b"", b" 1", b"1 ", b"1e", b"nan", b"-nan", b"nan(1)", b"0x", b"0x.p1", b".", b"e5", b"1_0", b"1\x002",
     b"1e5000", b"1e-5000", b"1.18973149535723176515e4932", b"x" * 5119, b"1" * 5120],
)
def test_text_redis_refuses(text: bytes) -> None:
    assert both(text) == (None, None)


@pytest.mark.parametrize("text", [b"inf", b"-Infinity", b"+INF"])
def test_infinities_parse_and_are_not_finite(text: bytes) -> None:
    c_parse, _, c_is_finite, _ = c_twins()
    assert not c_is_finite(c_parse(text))
    assert not floats.py_is_finite(floats.py_parse(text))


def test_overflowing_sum_is_not_finite() -> None:
    assert sums(b"1.18e4932", b"1.18e4932") == (None, None)
    assert sums(b"inf", b"-inf") == (None, None)


_digits = st.text("0123456789", min_size=0, max_size=30)
_decimal = st.builds(
    lambda sign, whole, frac, point, exp: (
        sign + whole + (("." + frac) if point else "") + (f"e{exp}" if exp is not None else "")
    ).encode(),
    st.sampled_from(["", "-", "+"]),
    _digits,
    _digits,
    st.booleans(),
    st.none() | st.integers(-5000, 5000),
)
_hex = st.builds(
    lambda sign, mantissa, exp: f"{sign}0x{mantissa}p{exp}".encode(),
    st.sampled_from(["", "-"]),
    st.text("0123456789abcdefABCDEF.", min_size=1, max_size=20),
    st.integers(-16500, 16500),
)
_numbers = st.one_of(
    _decimal,
    _hex,
    st.floats(allow_nan=False).map(lambda f: repr(f).encode()),
    st.floats(allow_nan=False).map(lambda f: float.hex(f).encode()),
    st.binary(max_size=12),
)


@given(_numbers)
@example(b"1" + b"0" * 4931)
@example(b"0." + b"0" * 4950 + b"36")
def test_parsing_and_printing_agree(text: bytes) -> None:
    c_side, py_side = both(text)
    assert c_side == py_side


@given(_numbers, _numbers)
@example(b"2e308", b"inf")  # an infinity plus a value past a Python float's range
def test_sums_agree(a: bytes, b: bytes) -> None:
    c_side, py_side = sums(a, b)
    assert c_side == py_side
