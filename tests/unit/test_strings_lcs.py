"""LCS: the C function (respq/_speedups.c: lcs) against its Python twin (py_lcs), and both against the definition:
the same length, subsequence and ranges, in the order Redis's walk back emits them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from conftest import require_speedups
from respq.types.strings.commands import py_lcs

_texts = st.binary(max_size=40) | st.text("ACGU", max_size=60).map(str.encode)


def _is_subsequence(small: bytes, big: bytes) -> bool:
    it = iter(big)
    return all(byte in it for byte in small)


def test_redis_documentation_example() -> None:
    # LCS ohmytext mynewtext IDX MINMATCHLEN 0 WITHMATCHLEN, as Redis answers it
    expected = (6, b"mytext", [(4, 7, 5, 8, 4), (2, 3, 0, 1, 2)])
    assert py_lcs(b"ohmytext", b"mynewtext") == expected
    assert require_speedups().lcs(b"ohmytext", b"mynewtext") == expected


@given(_texts, _texts)
def test_c_and_python_agree(a: bytes, b: bytes) -> None:
    found = py_lcs(a, b)
    assert require_speedups().lcs(a, b) == found
    length, text, ranges = found
    assert len(text) == length and _is_subsequence(text, a) and _is_subsequence(text, b)
    for a_start, a_end, b_start, b_end, matched in ranges:
        assert a[a_start : a_end + 1] == b[b_start : b_end + 1]
        assert matched == a_end - a_start + 1
