"""Glob matching: a table of Redis's edge cases, a differential test against a step-by-step reference matcher,
and (when redis-server is installed) against KEYS on a real Redis."""

from __future__ import annotations

import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from respq.glob import MAX_STAR_NESTING, compile_glob, glob_match


def _as_signed(byte: int) -> int:
    return byte - 256 if byte > 127 else byte


def _lower(value: int) -> int:
    return value + 32 if 65 <= value <= 90 else value


def reference_match(pattern: bytes, text: bytes, nocase: bool = False) -> bool:
    """Walks pattern and text a byte at a time the way Redis's matcher does, recursing at each ``*``.

    Deliberately written as a cursor walk (not a translation) so that it checks the compiled matcher independently.
    """
    gave_up = [False]  # once the rest after a '*' failed everywhere, earlier stars cannot help

    def walk(p: int, s: int, depth: int) -> bool:
        if depth > MAX_STAR_NESTING:
            return False
        while p < len(pattern) and s < len(text):
            char = pattern[p]
            if char == ord("*"):
                while p + 1 < len(pattern) and pattern[p + 1] == ord("*"):
                    p += 1
                if p == len(pattern) - 1:
                    return True
                while s < len(text):
                    if walk(p + 1, s, depth + 1):
                        return True
                    if gave_up[0]:
                        return False
                    s += 1
                gave_up[0] = True
                return False
            if char == ord("?"):
                s += 1
            elif char == ord("["):
                p += 1
                negated = p < len(pattern) and pattern[p] == ord("^")
                if negated:
                    p += 1
                hit = False
                target = text[s]
                while True:
                    if p < len(pattern) and pattern[p] == ord("\\") and len(pattern) - p >= 2:
                        p += 1
                        hit = hit or pattern[p] == target
                    elif p < len(pattern) and pattern[p] == ord("]"):
                        break
                    elif p >= len(pattern):
                        p -= 1
                        break
                    elif len(pattern) - p >= 3 and pattern[p + 1] == ord("-"):
                        low, high, value = _as_signed(pattern[p]), _as_signed(pattern[p + 2]), _as_signed(target)
                        if low > high:
                            low, high = high, low
                        if nocase:
                            low, high, value = _lower(low), _lower(high), _lower(value)
                        p += 2
                        hit = hit or low <= value <= high
                    elif nocase:
                        hit = hit or _lower(pattern[p]) == _lower(target)
                    else:
                        hit = hit or pattern[p] == target
                    p += 1
                if negated:
                    hit = not hit
                if not hit:
                    return False
                s += 1
            else:
                if char == ord("\\") and len(pattern) - p >= 2:
                    p += 1
                expected, actual = pattern[p], text[s]
                if nocase:
                    expected, actual = _lower(expected), _lower(actual)
                if expected != actual:
                    return False
                s += 1
            p += 1
            if s == len(text):
                while p < len(pattern) and pattern[p] == ord("*"):
                    p += 1
                break
        return p == len(pattern) and s == len(text)

    return walk(0, 0, 0)


CASES: list[tuple[bytes, bytes, bool]] = [
    (b"", b"", True),
    (b"", b"a", False),
    (b"*", b"", False),  # Redis: an empty string only matches the empty pattern
    (b"**", b"", False),
    (b"*", b"anything", True),
    (b"a*", b"a", True),
    (b"a*", b"abc", True),
    (b"*c", b"abc", True),
    (b"a*c", b"ac", True),
    (b"a*c", b"abd", False),
    (b"a*?", b"a", False),
    (b"h?llo", b"hello", True),
    (b"h?llo", b"hllo", False),
    (b"h[ae]llo", b"hallo", True),
    (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hbllo", True),  # reversed range
    (b"[z-a]", b"m", True),
    (b"\\*", b"*", True),
    (b"\\*", b"a", False),
    (b"a\\", b"a\\", True),  # trailing backslash is literal
    (b"[\\]]", b"]", True),
    (b"[\\", b"\\", True),  # unterminated set holding a backslash
    (b"[abc", b"b", True),  # unterminated set
    (b"[abc", b"bc", False),
    (b"[", b"a", False),
    (b"[^", b"a", True),  # empty negated set: any byte
    (b"[]", b"]", False),  # ']' right after '[' closes an empty set
    (b"[]a]", b"]", False),
    (b"[^]", b"x", True),
    (b"[a-]", b"_", True),  # range ']'..'a', and the set never closes
    (b"[a-]", b"-", False),
    (b"[a-]x", b"x", True),  # 'x' is part of the set, not a literal after it
    (b"[a-\xff]", b"\xff", True),  # signed char: 0xff is -1
    (b"[a-\xff]", b"\x80", False),
    (b"[a-\xff]", b"\x00", True),
    (b"[\x80-\xff]", b"\x90", True),
    (b"a\x00b", b"a\x00b", True),  # binary safe
    (b"a?b", b"a\x00b", True),
    (b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", b"a" * 40, False),
    (b"*" + b"a*" * 40, b"a" * 40, True),
]

NOCASE_CASES: list[tuple[bytes, bytes, bool]] = [
    (b"MAXCLIENTS", b"maxclients", True),
    (b"max*", b"MAXMEMORY", True),
    (b"[A-Z]", b"q", True),
    (b"[a-z]", b"Q", True),
    (b"[Z-a]", b"z", False),  # swapped before folding: 'z'..'a' is empty
    (b"[A-z]", b"_", False),  # folded to 'a'..'z', which excludes '_'
    (b"[\\A]", b"a", False),  # an escaped byte in a set compares exactly
    (b"\\A", b"a", True),  # an escaped byte outside a set still folds
    (b"[^A]", b"a", False),
    (b"\xc9", b"\xe9", False),  # only ASCII folds
]


@pytest.mark.parametrize(("pattern", "text", "expected"), CASES)
def test_case_sensitive_table(pattern: bytes, text: bytes, expected: bool) -> None:
    assert glob_match(pattern, text) is expected
    assert reference_match(pattern, text) is expected


@pytest.mark.parametrize(("pattern", "text", "expected"), NOCASE_CASES)
def test_nocase_table(pattern: bytes, text: bytes, expected: bool) -> None:
    assert glob_match(pattern, text, nocase=True) is expected
    assert reference_match(pattern, text, nocase=True) is expected


def test_nesting_limit_gives_up_like_redis() -> None:
    text = b"a" * (MAX_STAR_NESTING + 5)
    within = b"*a" * MAX_STAR_NESTING
    beyond = b"*a" * (MAX_STAR_NESTING + 1)
    assert glob_match(within, text)
    assert not glob_match(beyond, text)
    # A trailing run of stars does not nest.
    assert glob_match(b"a*" * MAX_STAR_NESTING + b"*", text)


def test_pathological_pattern_is_fast() -> None:
    # Redis's regression for CVE-2022-36021; backtracking naively takes ages here.
    text = b"a" * 50_000
    started = time.monotonic()
    assert not glob_match(b"a*" * 20 + b"b", text)
    assert not glob_match(b"*?" * 500 + b"b", text)
    assert time.monotonic() - started < 5


def test_compiled_matchers_are_cached() -> None:
    assert compile_glob(b"user:*") is compile_glob(b"user:*")
    assert compile_glob(b"user:*") is not compile_glob(b"user:*", nocase=True)


GLOB_ALPHABET = [b"a", b"b", b"A", b"-", b"]", b"^", b"\\", b"*", b"?", b"[", b"\x00", b"\xe9", b"\xff", b"z"]
TEXT_ALPHABET = [b"a", b"b", b"A", b"B", b"-", b"]", b"^", b"\\", b"*", b"[", b"_", b"\x00", b"\xe9", b"\xff"]

patterns = st.lists(st.sampled_from(GLOB_ALPHABET), max_size=10).map(b"".join)
texts = st.lists(st.sampled_from(TEXT_ALPHABET), max_size=10).map(b"".join)


@given(pattern=patterns, text=texts, nocase=st.booleans())
@example(pattern=b"[a-]x", text=b"x", nocase=False)
@example(pattern=b"*[", text=b"a", nocase=False)
@example(pattern=b"[\\", text=b"\\", nocase=True)
def test_matches_reference(pattern: bytes, text: bytes, nocase: bool) -> None:
    assert glob_match(pattern, text, nocase) == reference_match(pattern, text, nocase)


@given(pattern=st.binary(max_size=8), text=st.binary(max_size=8))
def test_matches_reference_on_any_bytes(pattern: bytes, text: bytes) -> None:
    assert glob_match(pattern, text) == reference_match(pattern, text)


def test_same_answers_as_redis_keys(redis_oracle) -> None:  # type: ignore[no-untyped-def]
    """KEYS on a real redis-server agrees on every tricky pattern of the table (binary keys included)."""
    redis = pytest.importorskip("redis")
    client = redis.Redis(port=redis_oracle.port, db=11)
    keys = sorted({text for _, text, _ in CASES} | {b"abc", b"a*c", b"[x]", b"\\", b"-", b"\x7f"})
    try:
        client.flushdb()
        for key in keys:
            client.set(key, b"1")
        for pattern, _, _ in CASES:
            if pattern == b"*":
                continue  # KEYS short-cuts a bare '*' before matching
            expected = sorted(key for key in client.keys(pattern) if key in keys)
            assert sorted(key for key in keys if glob_match(pattern, key)) == expected, pattern
    finally:
        client.flushdb()
        client.close()
