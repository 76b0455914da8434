"""SORT and SORT_RO, as Redis 7.0's sort.c: a list's elements ordered by their own value or by other keys' (BY),
each answered as itself or as other keys' values (GET), optionally stored as a list (STORE).

Patterns name other keys by putting the element where the first ``*`` is (``weight_*``), or a hash field after
``->`` (``obj_*->age``); ``#`` (GET) is the element itself. A pattern key of another type than the one it is read
as (a string; a hash with ``->``) counts as missing, as in Redis. Strings are read through ``StringValue.data`` and
hash fields through ``HashValue.get``: those types' contracts.
"""

from __future__ import annotations

import math
import re
import sys
from fractions import Fraction
from typing import Any

from respq import errors
from respq.commands.args import parse_int
from respq.commands.context import Context
from respq.commands.table import command
from respq.errors import CommandError
from respq.types.lists.model import RIGHT, push_growth

G = "generic"
SORT_OPTIONS = ("BY", "LIMIT", "GET", "ASC", "DESC", "ALPHA", "STORE")
SORTABLE = ("list", "set", "zset")  # any other type is WRONGTYPE
STORE_BATCH = 1024  # values per push when STORE writes its list

# What C's strtod accepts (glibc, C numeric locale): leading white space, then a decimal or hexadecimal number,
# inf/infinity or nan; SORT wants nothing after it.
_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?(?:0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf(?:inity)?|nan(?:\([0-9a-z_]*\))?))",
    re.IGNORECASE,
)


def _c_string(data: bytes) -> bytes:
    """What C code sees of ``data`` when it reads it as a string: up to the first NUL."""
    end = data.find(0)
    return data if end < 0 else data[:end]


def strtod_score(data: bytes) -> float | None:
    """The score Redis's SORT computes from a value with strtod, or None where it reports the value as not a
    double: text left over, NaN, or a result out of range (overflow, or an underflow that loses precision)."""
    text = _c_string(data)
    if not text:
        return 0.0  # nothing converted, and nothing after it either
    match = _STRTOD.match(text)
    if match is None or match.end() != len(text):
        return None
    number = match.group(1)
    lower = number.lower().lstrip(b"+-")
    negative = number.startswith(b"-")
    if lower.startswith(b"nan"):
        return None
    if lower.startswith(b"inf"):
        return -math.inf if negative else math.inf
    try:
        value = float.fromhex(number.decode()) if lower.startswith(b"0x") else float(number)
    except OverflowError:
        return None
    if math.isinf(value):
        return None
    if abs(value) < sys.float_info.min and Fraction(value) != _exact(lower, negative):
        return None  # glibc reports ERANGE for a result that underflows inexactly
    return value


def _exact(lower: bytes, negative: bool) -> Fraction:
    """The exact value of a decimal or hexadecimal number's text (sign already stripped)."""
    if lower.startswith(b"0x"):
        mantissa, _, exponent = lower[2:].partition(b"p")
        whole, _, fraction = mantissa.partition(b".")
        digits = whole + fraction
        value = Fraction(int(digits or b"0", 16), 16 ** len(fraction)) * Fraction(2) ** int(exponent or b"0")
    else:
        mantissa, _, exponent = lower.partition(b"e")
        whole, _, fraction = mantissa.partition(b".")
        value = Fraction(int(whole + fraction or b"0"), 10 ** len(fraction)) * Fraction(10) ** int(exponent or b"0")
    return -value if negative else value


def lookup_by_pattern(ctx: Context, pattern: bytes, element: bytes) -> bytes | None:
    """The value ``pattern`` names for ``element`` (Redis's lookupKeyByPattern), None if it names nothing."""
    text = _c_string(pattern)
    if text == b"#":
        return element
    star = text.find(b"*")
    if star < 0:
        return None  # a fixed key would give every element the same value: Redis names nothing
    arrow = text.find(b"->", star + 1)
    field = pattern[arrow + 2 :] if arrow >= 0 and arrow + 2 < len(text) else None
    end = arrow if field is not None else len(pattern)
    key = pattern[:star] + element + pattern[star + 1 : end]
    entry = ctx.keyspace.lookup(ctx.client.db, key)
    if entry is None:
        return None
    if field is not None:
        return entry.get(field) if entry.type == "hash" else None
    return entry.data if entry.type == "string" else None


def _sort_keys(argv: list[bytes]) -> list[int]:
    """The sorted key and the last STORE key, skipping the arguments of LIMIT, GET and BY (Redis's
    sortGetKeys)."""
    store = None
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    while i < len(argv):
        word = argv[i].lower()
        if word in skip:
            i += skip[word]
        elif word == b"store" and i + 1 < len(argv):
            store = i + 1
        i += 1
    return [1] if store is None else [1, store]


def _sort(ctx: Context, argv: list[bytes], *, readonly: bool) -> Any:
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    by: bytes | None = None
    store: bytes | None = None
    gets: list[bytes] = []
    i = 2
    while i < len(argv):
        option = argv[i].lower()
        left = len(argv) - i - 1
        if option == b"asc":
            desc = False
        elif option == b"desc":
            desc = True
        elif option == b"alpha":
            alpha = True
        elif option == b"limit" and left >= 2:
            limit_start, limit_count = parse_int(argv[i + 1]), parse_int(argv[i + 2])
            i += 2
        elif option == b"store" and left >= 1 and not readonly:
            store = argv[i + 1]
            i += 1
        elif option == b"by" and left >= 1:
            by = argv[i + 1]
            dontsort = b"*" not in _c_string(by)  # a constant BY: nothing to sort by, the native order stays
            i += 1
        elif option == b"get" and left >= 1:
            gets.append(argv[i + 1])
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1

    db = ctx.client.db
    value = ctx.keyspace.lookup(db, argv[1])
    if value is not None and value.type not in SORTABLE:
        raise CommandError(errors.WRONGTYPE)
    length = len(value) if value is not None else 0
    if dontsort and value is not None and value.type == "set" and store is not None:
        # A set has no order of its own to keep: what is stored is sorted as bytes, as Redis does.
        dontsort, alpha, by = False, True, None

    # LIMIT as Redis clamps it.
    start = min(max(limit_start, 0), length)
    count = min(max(limit_count, -1), length)
    end = length - 1 if count < 0 else start + count - 1
    if start >= length:
        start, end = length - 1, length - 2
    end = min(end, length - 1)

    if dontsort:
        # A list's own order (reversed for DESC), only the range LIMIT selects.
        if value is None or end < start:
            elements: list[bytes] = []
        elif value.type == "set":  # its iteration order, DESC or not
            elements = list(value)[start : end + 1]
        elif desc:
            elements = list(value.range(length - 1 - end, length - 1 - start))[::-1]
        else:
            elements = list(value.range(start, end))
        start, end = 0, len(elements) - 1
    else:
        elements = list(value) if value is not None else []
        elements = _sorted(ctx, elements, by, alpha=alpha, desc=desc, store=store is not None)

    selected = elements[start : end + 1] if end >= start else []
    if store is None:
        if not gets:
            return selected
        return [lookup_by_pattern(ctx, pattern, element) for element in selected for pattern in gets]
    if gets:
        stored = [lookup_by_pattern(ctx, pattern, element) or b"" for element in selected for pattern in gets]
    else:
        stored = selected
    _store_list(ctx, store, stored)
    return len(stored)


def _sorted(
    ctx: Context, elements: list[bytes], by: bytes | None, *, alpha: bool, desc: bool, store: bool
) -> list[bytes]:
    """The elements in Redis's order. Redis's sort is stable here (glibc's qsort merges), as Python's is, so equal
    keys keep the list's order; DESC reverses the comparison, which a stable reverse sort does too."""
    weights = [lookup_by_pattern(ctx, by, element) for element in elements] if by is not None else elements
    if alpha:
        if by is None:
            # Elements compared whole when storing, else as C strings (strcoll in the C.UTF-8 locale: bytes).
            keys: list[Any] = elements if store else [_c_string(element) for element in elements]
        else:
            # A missing weight sorts first; present ones compare as the elements would.
            keys = [
                (0, b"") if weight is None else (1, weight if store else _c_string(weight)) for weight in weights
            ]
    else:
        keys = []
        for element, weight in zip(elements, weights, strict=True):
            score = 0.0 if weight is None else strtod_score(weight)
            if score is None:
                raise CommandError(errors.SORT_NOT_DOUBLE)
            keys.append((score, element))  # equal scores: the elements' bytes decide
    order = sorted(range(len(elements)), key=keys.__getitem__, reverse=desc)
    return [elements[index] for index in order]


def _store_list(ctx: Context, key: bytes, values: list[bytes]) -> None:
    """STORE: ``key`` becomes a list of ``values``, whatever it held (its expiry gone), or is deleted when there
    are none; one atomic block, so a crash keeps the old value or the whole new list."""
    keyspace, db = ctx.keyspace, ctx.client.db
    if not values:
        keyspace.delete(db, key)
        return
    engine = ctx.engine
    with engine.atomic():
        engine.before_write(push_growth(values) + len(key) + 64)  # refused before anything changes
        stored = keyspace.replace(db, key, "list")
        for index in range(0, len(values), STORE_BATCH):
            stored.push(RIGHT, values[index : index + STORE_BATCH])
    keyspace.signal_ready(db, key)  # clients blocked on the key are served from the new list


@command(
    "sort",
    -2,
    "write denyoom movablekeys",
    (1, 1, 1),
    group=G,
    options=SORT_OPTIONS,
    summary="Orders a list's elements by value or by other keys, and replies with them or stores them as a list.",
    since="1.0.0",
    complexity="O(N log N) in the elements, plus a lookup per element and pattern",
    acl=("@write", "@set", "@sortedset", "@list", "@slow", "@dangerous"),
    key_finder=_sort_keys,
)
def sort(ctx: Context, argv: list[bytes]) -> Any:
    return _sort(ctx, argv, readonly=False)


@command(
    "sort_ro",
    -2,
    "readonly movablekeys",
    (1, 1, 1),
    group=G,
    options=tuple(option for option in SORT_OPTIONS if option != "STORE"),
    summary="SORT without STORE, for read-only contexts.",
    since="7.0.0",
    complexity="O(N log N) in the elements, plus a lookup per element and pattern",
    acl=("@read", "@set", "@sortedset", "@list", "@slow", "@dangerous"),
    key_finder=lambda argv: [1],
)
def sort_ro(ctx: Context, argv: list[bytes]) -> Any:
    return _sort(ctx, argv, readonly=True)
