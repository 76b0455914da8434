"""Redis glob matching (KEYS, SCAN MATCH, PSUBSCRIBE, PUBSUB CHANNELS, CONFIG GET), byte for byte.

Semantics follow Redis 7.0's ``stringmatchlen`` as Debian 12 ships it (with the CVE-2024-31228 nesting limit):

* ``*`` any run of bytes, ``?`` one byte, ``\\x`` the byte ``x`` (a trailing ``\\`` is a literal backslash).
* ``[...]`` one byte from a set; ``[^...]`` negates. Inside, ``\\x`` is ``x`` compared case-sensitively
  even in nocase mode, ``a-z`` is a range whose ends may come in either order, and a ``]`` only closes
  the set when it is not the end of a range: ``[a-]`` is the range ``]``..``a`` and the set goes on. An
  unterminated ``[`` runs to the end of the pattern.
* Bytes compare as C's signed ``char``: a range through bytes >= 0x80 wraps below 0x00 (``[a-\\xff]`` holds
  0xff and 0x00..0x61 but not 0x80). Only ASCII letters fold in nocase mode.
* An empty string matches only the empty pattern, so ``*`` does not match ``b""``. KEYS and SCAN special-case
  a pattern of exactly ``*`` before matching; callers that want that must do the same.
* A pattern with more than 1000 ``*`` runs before its last byte matches nothing: Redis gives up at that depth.

Patterns compile to ``re`` programs. Each ``*`` becomes an atomic lazy scan to the next fixed-width piece:
the leftmost place for every piece is always a right one for glob patterns, and committing to it keeps
matching O(len(text) * len(pattern)) where plain backtracking would be exponential.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

# Redis stops descending after this many nested ``*`` and reports no match.
MAX_STAR_NESTING = 1000
_COMPILED_CACHE_SIZE = 1024

Matcher = Callable[[bytes], bool]


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 128 else byte


def _fold(value: int) -> int:
    # C's tolower() in the "C" locale: only A-Z move; negative (high) bytes stay as they are.
    return value + 32 if 65 <= value <= 90 else value


def _parse_set(pattern: bytes, start: int, nocase: bool) -> tuple[frozenset[int], int]:
    """Parses the set opening at ``pattern[start]``; returns the bytes it matches and the index after it."""
    end = len(pattern)
    i = start + 1
    negate = i < end and pattern[i] == ord("^")
    if negate:
        i += 1
    members: set[int] = set()
    while i < end:
        char = pattern[i]
        if char == ord("\\") and end - i >= 2:
            members.add(pattern[i + 1])
            i += 2
            continue
        if char == ord("]"):
            i += 1
            break
        if end - i >= 3 and pattern[i + 1] == ord("-"):
            low, high = _signed(char), _signed(pattern[i + 2])
            if low > high:
                low, high = high, low
            if nocase:
                low, high = _fold(low), _fold(high)
            for byte in range(256):
                value = _fold(_signed(byte)) if nocase else _signed(byte)
                if low <= value <= high:
                    members.add(byte)
            i += 3
            continue
        members.add(char)
        if nocase:
            members.update(byte for byte in range(256) if _fold(byte) == _fold(char))
        i += 1
    if negate:
        return frozenset(range(256)) - members, i
    return frozenset(members), i


def _byte_class(members: frozenset[int]) -> bytes:
    if not members:
        return b"(?!)"
    if len(members) == 256:
        return b"[\\x00-\\xff]"
    parts: list[bytes] = []
    ordered = sorted(members)
    run_start = previous = ordered[0]
    for byte in [*ordered[1:], -1]:
        if byte == previous + 1:
            previous = byte
            continue
        if run_start == previous:
            parts.append(b"\\x%02x" % run_start)
        else:
            parts.append(b"\\x%02x-\\x%02x" % (run_start, previous))
        run_start = previous = byte
    return b"[" + b"".join(parts) + b"]"


def _literal(byte: int, nocase: bool) -> bytes:
    if nocase and (65 <= byte <= 90 or 97 <= byte <= 122):
        return _byte_class(frozenset({byte | 0x20, byte & ~0x20}))
    return re.escape(bytes([byte]))


def _tokenize(pattern: bytes, nocase: bool) -> list[bytes | None]:
    """The pattern as one-byte regex atoms, with None for each run of ``*``."""
    tokens: list[bytes | None] = []
    i, end = 0, len(pattern)
    while i < end:
        char = pattern[i]
        if char == ord("*"):
            if not tokens or tokens[-1] is not None:
                tokens.append(None)
            i += 1
        elif char == ord("?"):
            tokens.append(b"[\\x00-\\xff]")
            i += 1
        elif char == ord("["):
            members, i = _parse_set(pattern, i, nocase)
            tokens.append(_byte_class(members))
        elif char == ord("\\") and end - i >= 2:
            tokens.append(_literal(pattern[i + 1], nocase))
            i += 2
        else:
            tokens.append(_literal(char, nocase))
            i += 1
    return tokens


def _build(pattern: bytes, nocase: bool) -> Matcher:
    if not pattern:
        return lambda text: not text
    tokens = _tokenize(pattern, nocase)
    inner_stars = sum(1 for token in tokens[:-1] if token is None)
    if inner_stars > MAX_STAR_NESTING:
        return lambda text: False
    if tokens == [None]:
        return lambda text: bool(text)
    # Split into fixed-width pieces around the stars: head *piece* ... *tail.
    pieces: list[list[bytes]] = [[]]
    for token in tokens:
        if token is None:
            pieces.append([])
        else:
            pieces[-1].append(token)
    if len(pieces) == 1:
        source = b"".join(pieces[0])
    else:
        middle = b"".join(b"(?>.*?" + b"".join(piece) + b")" for piece in pieces[1:-1])
        source = b"".join(pieces[0]) + middle + b".*" + b"".join(pieces[-1])
    program = re.compile(source, re.DOTALL)
    fullmatch = program.fullmatch
    return lambda text: bool(text) and fullmatch(text) is not None


@lru_cache(maxsize=_COMPILED_CACHE_SIZE)
def compile_glob(pattern: bytes, nocase: bool = False) -> Matcher:
    """A predicate telling whether a byte string matches ``pattern``; compiled programs are cached."""
    return _build(bytes(pattern), nocase)


def glob_match(pattern: bytes, text: bytes, nocase: bool = False) -> bool:
    return compile_glob(pattern, nocase)(text)
