"""Sorted set commands with Redis 7.0 semantics (t_zset.c) over the in-memory, journaled ZSetValue."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from respq import errors
from respq.blocking import Block
from respq.commands.args import parse_int, parse_timeout
from respq.commands.context import Context
from respq.commands.keys import parse_scan_cursor, parse_scan_options
from respq.commands.table import Handler, RunHandler, SpreadHandler, command, run_of
from respq.errors import CommandError
from respq.glob import compile_glob
from respq.replies import NULL_ARRAY, ErrorReply
from respq.storage.errors import StorageError
from respq.types.hashes.errors import COUNT_OUT_OF_RANGE, WITHVALUES_COUNT_OUT_OF_RANGE
from respq.types.lists.commands import numkeys_positions
from respq.types.lists.errors import COUNT_NOT_POSITIVE, NUMKEYS_NOT_POSITIVE
from respq.types.zsets.errors import (
    GT_LT_NX,
    INCR_ONE_PAIR,
    LIMIT_NEEDS_BY,
    LIMIT_NEGATIVE,
    MIN_MAX_NOT_FLOAT,
    MIN_MAX_NOT_LEX,
    NO_INPUT_KEY,
    SCORE_NAN,
    WEIGHT_NOT_FLOAT,
    WITHSCORES_BYLEX,
    XX_AND_NX,
)
from respq.types.zsets.model import format_score, new_zset, store_zset

if TYPE_CHECKING:
    from respq.types.zsets.model import ZSetValue

G = "sorted-set"
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
Pairs = list[tuple[bytes, float]]  # (member, score)
Items = list[tuple[float, bytes]]  # (score, member), as the index holds them

# What C's strtod reads (glibc, C locale): a decimal or hexadecimal number, inf/infinity or nan.
_STRTOD = re.compile(
    rb"([+-]?)(?:0x([0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(p[+-]?[0-9]+)?|([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?"
    rb"|(inf(?:inity)?)|(nan(?:\([0-9a-z_]*\))?))",
    re.IGNORECASE,
)
_SPACE = b" \t\n\v\f\r"
# Plain decimals too short to overflow or underflow: read by float() alone (the common case, kept fast).
_PLAIN = re.compile(rb"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")
_INFINITIES = {b"-inf": -math.inf, b"+inf": math.inf, b"inf": math.inf}


def _strtod(text: bytes) -> tuple[float, bool] | None:
    """The whole ``text`` read as strtod reads a number: (value, out of range), or None when it is not one number.
    Out of range: overflowing to an infinity, or a non-zero number underflowing to zero. NaN is returned as such."""
    match = _STRTOD.fullmatch(text)
    if match is None:
        return None
    sign, hex_digits, _, digits, _, infinity, nan = match.groups()
    negative = sign == b"-"
    if nan is not None:
        return math.nan, False
    if infinity is not None:
        return (-math.inf if negative else math.inf), False
    if hex_digits is not None:
        try:
            value = float.fromhex(text.decode())
        except OverflowError:
            return (-math.inf if negative else math.inf), True
        nonzero = hex_digits.strip(b"0.") != b""
    else:
        value = float(text)
        nonzero = digits.strip(b"0.") != b""
        if math.isinf(value):
            return value, True
    return value, value == 0 and nonzero


def parse_score(arg: bytes, error: bytes = errors.NOT_A_FLOAT) -> float:
    """string2d: a score, increment or weight (no space around it, not NaN, within a double's range)."""
    if _PLAIN.fullmatch(arg):
        return float(arg)
    if not arg or arg[0] in _SPACE:
        raise CommandError(error)
    read = _strtod(arg)
    if read is None or read[1] or math.isnan(read[0]):
        raise CommandError(error)
    return read[0]


def _c_string(data: bytes) -> bytes:
    end = data.find(0)
    return data if end < 0 else data[:end]


def _bound(arg: bytes) -> tuple[float, bool]:
    """A score range bound as zslParseRange reads it: ``(`` for exclusive, then what strtod reads of the C
    string (leading space allowed, out-of-range values saturating, nothing at all read as 0), not NaN."""
    if _PLAIN.fullmatch(arg):
        return float(arg), False
    infinity = _INFINITIES.get(arg)
    if infinity is not None:
        return infinity, False
    exclusive = arg[:1] == b"("
    text = _c_string(arg[1:] if exclusive else arg)
    if not text:
        return 0.0, exclusive
    stripped = text.lstrip(_SPACE)
    read = _strtod(stripped) if stripped else None
    if read is None or math.isnan(read[0]):
        raise CommandError(MIN_MAX_NOT_FLOAT)
    return read[0], exclusive


def _score_range(low: bytes, high: bytes) -> tuple[float, bool, float, bool]:
    low_value, low_ex = _bound(low)
    high_value, high_ex = _bound(high)
    return low_value, low_ex, high_value, high_ex


def _lex_item(arg: bytes) -> tuple[bytes | None, bool, int]:
    """(bound, exclusive, which): which is -1 for ``-``, 1 for ``+``, 0 for a ``(``/``[`` bound."""
    first = arg[:1]
    if first in (b"+", b"-"):
        if arg[1:2] not in (b"", b"\x00"):
            raise CommandError(MIN_MAX_NOT_LEX)
        return None, True, 1 if first == b"+" else -1
    if first == b"(":
        return arg[1:], True, 0
    if first == b"[":
        return arg[1:], False, 0
    raise CommandError(MIN_MAX_NOT_LEX)


def _lex_range(value: ZSetValue, low_arg: bytes, high_arg: bytes, reverse: bool = False) -> tuple[int, int]:
    """Ranks [start, stop) of a lex range; empty when the range is (a ``+`` low or ``-`` high bound included)."""
    low, low_ex, low_kind = _lex_item(low_arg)
    high, high_ex, high_kind = _lex_item(high_arg)
    if low_kind == 1 or high_kind == -1 or (low_kind == high_kind == 0 and low is not None and high is not None and (
            low > high or (low == high and (low_ex or high_ex)))):
        return 0, 0  # a range that is always empty, as Redis checks first
    return value.lex_bounds(low, low_ex, high, high_ex, reverse)


def _lex_parse(low_arg: bytes, high_arg: bytes) -> None:
    _lex_item(low_arg)
    _lex_item(high_arg)


def _get(ctx: Context, key: bytes) -> ZSetValue | None:
    return ctx.keyspace.typed(ctx.client.db, key, "zset")  # type: ignore[no-any-return]


def _limits(ctx: Context) -> tuple[int, int]:
    """zset-max-listpack-entries and zset-max-listpack-value as configured now (they decide the encoding)."""
    values = ctx.config.values
    return values["zset-max-listpack-entries"], values["zset-max-listpack-value"]


def _set_scores(ctx: Context, key: bytes, value: ZSetValue | None, pairs: Pairs) -> None:
    """Sets the scores, creating the sorted set if missing; signals the key (blocked pops may be served)."""
    if not pairs:
        return
    db = ctx.client.db
    if value is None:
        new_zset(ctx.engine, db, key, pairs, *_limits(ctx))
    else:
        value.set_scores(pairs, *_limits(ctx))
    ctx.keyspace.touch(db, key)
    ctx.keyspace.signal_ready(db, key)


def _remove(ctx: Context, key: bytes, value: ZSetValue, members: list[bytes]) -> None:
    """Removes members known present; the key goes with its last member (one record for the whole change)."""
    if not members:
        return
    db = ctx.client.db
    if len(dict.fromkeys(members)) >= len(value):
        ctx.keyspace.delete(db, key)
    else:
        value.remove(members)
        ctx.keyspace.touch(db, key)


def _store(ctx: Context, dst: bytes, pairs: Pairs) -> int:
    """A STORE form's result: ``dst`` becomes a sorted set of ``pairs`` (whatever it held, its expiry gone), or is
    deleted when there are none; one atomic block, so a crash keeps the old value or the whole new one."""
    keyspace, db = ctx.keyspace, ctx.client.db
    if not pairs:
        keyspace.delete(db, dst)
        return 0
    engine = ctx.engine
    with engine.atomic():
        if engine.maxdisk:  # refused before the old value goes
            engine.before_write(len(dst) + 64 + sum(len(member) + 16 for member, _ in pairs))
        stored = keyspace.replace(db, dst, "zset")
        store_zset(engine, stored, pairs, *_limits(ctx))
    keyspace.signal_ready(db, dst)
    return len(pairs)


def _with_scores(ctx: Context, items: Items) -> list[Any]:
    """Members and scores: flat in RESP2, [member, score] pairs in RESP3."""
    if ctx.client.protocol == 2:
        return [item for score, member in items for item in (member, score)]
    return [[member, score] for score, member in items]


# ---- ZADD, ZINCRBY, ZREM --------------------------------------------------------------------------------------
_ZADD_FLAGS = {b"nx", b"xx", b"ch", b"incr", b"gt", b"lt"}


def _zadd(ctx: Context, argv: list[bytes], incr: bool) -> Any:
    if len(argv) == 4 and not incr and argv[2].lower() not in _ZADD_FLAGS:  # one pair, no option: the common case
        score = parse_score(argv[2])
        key, member = argv[1], argv[3]
        value = _get(ctx, key)
        current = None if value is None else value.scores.get(member)
        if current is None or current != score:
            _set_scores(ctx, key, value, [(member, score)])
        return int(current is None)
    flags: set[bytes] = set()
    at = 2
    while at < len(argv) and (flag := argv[at].lower()) in _ZADD_FLAGS:  # ZINCRBY too: "ZINCRBY k nx m" is a
        flags.add(flag)  # syntax error in Redis, its increment read as an option
        at += 1
    incr = incr or b"incr" in flags
    nx, xx, gt, lt = (flag in flags for flag in (b"nx", b"xx", b"gt", b"lt"))
    elements = len(argv) - at
    if elements % 2 or not elements:
        raise CommandError(errors.SYNTAX)
    if nx and xx:
        raise CommandError(XX_AND_NX)
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError(GT_LT_NX)
    if incr and elements > 2:
        raise CommandError(INCR_ONE_PAIR)
    given = [(argv[i + 1], parse_score(argv[i])) for i in range(at, len(argv), 2)]
    key = argv[1]
    value = _get(ctx, key)
    if value is None and xx:
        return None if incr else 0
    held = value.scores if value is not None else {}
    pending: dict[bytes, float] = {}  # this command's scores so far, for members given twice
    added = updated = processed = 0
    score = 0.0
    for member, score in given:
        current = pending.get(member, held.get(member))
        if current is None:
            if xx:
                continue
            added += 1
        else:
            if nx:
                continue
            if incr:
                score += current
                if math.isnan(score):
                    raise CommandError(SCORE_NAN)  # a single pair: nothing was changed before it
            if (lt and score >= current) or (gt and score <= current):
                continue
            if score != current:
                updated += 1
        processed += 1
        if current is None or score != current:  # an equal score writes nothing (a WATCH stays intact)
            pending[member] = score
    _set_scores(ctx, key, value, list(pending.items()))
    if incr:
        return score if processed else None
    return added + updated if b"ch" in flags else added


@command(
    "zadd",
    -4,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    options=("NX", "XX", "GT", "LT", "CH", "INCR"),
    summary="Adds members to a sorted set or updates their scores, creating the key if needed.",
    since="1.2.0",
    complexity="O(log(N)) per member added or updated",
)
def zadd(ctx: Context, argv: list[bytes]) -> Any:
    return _zadd(ctx, argv, False)


@command(
    "zincrby",
    4,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Adds an increment to a member's score (a missing member counts as 0); replies with the new score.",
    since="1.2.0",
    complexity="O(log(N))",
)
def zincrby(ctx: Context, argv: list[bytes]) -> Any:
    return _zadd(ctx, argv, True)


@command(
    "zrem",
    -3,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Removes members from a sorted set, and the key with its last member; replies how many were removed.",
    since="1.2.0",
    complexity="O(M*log(N)) for M members removed",
)
def zrem(ctx: Context, argv: list[bytes]) -> Any:
    key = argv[1]
    value = _get(ctx, key)
    if value is None:
        return 0
    scores = value.scores
    present = [member for member in dict.fromkeys(argv[2:]) if member in scores]
    _remove(ctx, key, value, present)
    return len(present)


# ---- reads of one member ---------------------------------------------------------------------------------------
@command(
    "zscore",
    3,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with a member's score, or null.",
    since="1.2.0",
)
def zscore(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return None if value is None else value.scores.get(argv[2])


@command(
    "zmscore",
    -3,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with the scores of the given members (null for each missing one).",
    since="6.2.0",
    complexity="O(N) in the members given",
)
def zmscore(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    if value is None:
        return [None] * (len(argv) - 2)
    get = value.scores.get
    return [get(member) for member in argv[2:]]


@command(
    "zcard",
    2,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with the number of members of a sorted set.",
    since="1.2.0",
)
def zcard(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return 0 if value is None else len(value)


def _rank(ctx: Context, argv: list[bytes], reverse: bool) -> Any:
    value = _get(ctx, argv[1])
    if value is None:
        return None
    rank = value.rank(argv[2])
    if rank is None:
        return None
    return len(value) - 1 - rank if reverse else rank


@command(
    "zrank",
    3,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with a member's rank, lowest score first, or null.",
    since="2.0.0",
    complexity="O(log(N))",
)
def zrank(ctx: Context, argv: list[bytes]) -> Any:
    return _rank(ctx, argv, False)


@command(
    "zrevrank",
    3,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with a member's rank, highest score first, or null.",
    since="2.0.0",
    complexity="O(log(N))",
)
def zrevrank(ctx: Context, argv: list[bytes]) -> Any:
    return _rank(ctx, argv, True)


@command(
    "zcount",
    4,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Counts the members whose scores are within a range.",
    since="2.0.0",
    complexity="O(log(N))",
)
def zcount(ctx: Context, argv: list[bytes]) -> Any:
    bounds = _score_range(argv[2], argv[3])
    value = _get(ctx, argv[1])
    if value is None:
        return 0
    start, stop = value.score_bounds(*bounds)
    return stop - start


@command(
    "zlexcount",
    4,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Counts the members within a lexicographical range (of a sorted set whose scores are all equal).",
    since="2.8.9",
    complexity="O(log(N))",
)
def zlexcount(ctx: Context, argv: list[bytes]) -> Any:
    _lex_parse(argv[2], argv[3])
    value = _get(ctx, argv[1])
    if value is None:
        return 0
    start, stop = _lex_range(value, argv[2], argv[3])
    return stop - start


# ---- ranges ----------------------------------------------------------------------------------------------------
RANK, SCORE, LEX = "rank", "score", "lex"


def _select(value: ZSetValue, start: int, stop: int, reverse: bool, offset: int, limit: int) -> Items:
    """The members of ranks [start, stop) in the range's direction, after LIMIT's offset and count as Redis walks
    them (a negative offset selects nothing, a negative count everything)."""
    if offset < 0 or (offset > 0 and offset >= len(value)):
        return []
    available = stop - start - offset
    if available <= 0:
        return []
    take = available if limit < 0 else min(limit, available)
    if reverse:
        high = stop - offset
        return value.by_rank(high - take, high, reverse=True)
    return value.by_rank(start + offset, start + offset + take)


def _zrange(
    ctx: Context, argv: list[bytes], at: int, *, store: bytes | None = None, kind: str | None = None,
    reverse: bool | None = None,
) -> Any:
    """ZRANGE and its older forms and ZRANGESTORE (zrangeGenericCommand): ``kind`` and ``reverse`` given by the
    older forms, else read from the options; ``store`` the destination of ZRANGESTORE."""
    withscores = False
    offset, limit = 0, -1
    i = at + 3
    while i < len(argv):
        option = argv[i].lower()
        left = len(argv) - i - 1
        if store is None and option == b"withscores":
            withscores = True
        elif option == b"limit" and left >= 2:
            offset, limit = parse_int(argv[i + 1]), parse_int(argv[i + 2])
            i += 2
        elif reverse is None and option == b"rev":
            reverse = True
        elif kind is None and option == b"bylex":
            kind = LEX
        elif kind is None and option == b"byscore":
            kind = SCORE
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    reverse = bool(reverse)
    kind = kind or RANK
    if limit != -1 and kind == RANK:  # as Redis: LIMIT 0 -1 passes
        raise CommandError(LIMIT_NEEDS_BY)
    if withscores and kind == LEX:
        raise CommandError(WITHSCORES_BYLEX)
    low_arg, high_arg = argv[at + 1], argv[at + 2]
    if reverse and kind != RANK:
        low_arg, high_arg = high_arg, low_arg
    if kind == RANK:
        first, last = parse_int(low_arg), parse_int(high_arg)
    elif kind == SCORE:
        bounds = _score_range(low_arg, high_arg)
    else:
        _lex_parse(low_arg, high_arg)
    value = _get(ctx, argv[at])
    items: Items = []
    if value is not None:
        if kind == RANK:
            length = len(value)
            if first < 0:
                first += length
            if last < 0:
                last += length
            first = max(first, 0)
            if first <= last and first < length:
                last = min(last, length - 1)
                if reverse:
                    items = value.by_rank(length - 1 - last, length - first, reverse=True)
                else:
                    items = value.by_rank(first, last + 1)
        else:
            if kind == SCORE:
                start, stop = value.score_bounds(*bounds)
            else:
                start, stop = _lex_range(value, low_arg, high_arg, reverse)
            items = _select(value, start, stop, reverse, offset, limit)
    if store is not None:
        return _store(ctx, store, [(member, score) for score, member in items])
    if withscores:
        return _with_scores(ctx, items)
    return [member for _, member in items]


_RANGE_OPTIONS = ("BYSCORE", "BYLEX", "REV", "LIMIT", "WITHSCORES")


@command(
    "zrange",
    -4,
    "readonly",
    (1, 1, 1),
    group=G,
    options=_RANGE_OPTIONS,
    summary="Replies with members in a range of ranks, scores (BYSCORE) or members (BYLEX), in either order.",
    since="1.2.0",
    complexity="O(log(N)+M) with M the members replied",
)
def zrange(ctx: Context, argv: list[bytes]) -> Any:
    return _zrange(ctx, argv, 1)


@command(
    "zrangestore",
    -5,
    "write denyoom",
    (1, 2, 1),
    group=G,
    options=("BYSCORE", "BYLEX", "REV", "LIMIT"),
    summary="Stores a range of a sorted set (as ZRANGE selects it) as another sorted set; replies its size.",
    since="6.2.0",
    complexity="O(log(N)+M) with M the members stored",
)
def zrangestore(ctx: Context, argv: list[bytes]) -> Any:
    return _zrange(ctx, argv, 2, store=argv[1])


@command(
    "zrangebyscore",
    -4,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("WITHSCORES", "LIMIT"),
    summary="Replies with the members whose scores are within a range, lowest first (ZRANGE BYSCORE).",
    since="1.0.5",
    complexity="O(log(N)+M) with M the members replied",
)
def zrangebyscore(ctx: Context, argv: list[bytes]) -> Any:
    return _zrange(ctx, argv, 1, kind=SCORE, reverse=False)


@command(
    "zrevrangebyscore",
    -4,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("WITHSCORES", "LIMIT"),
    summary="Replies with the members whose scores are within a range, highest first (ZRANGE BYSCORE REV).",
    since="2.2.0",
    complexity="O(log(N)+M) with M the members replied",
)
def zrevrangebyscore(ctx: Context, argv: list[bytes]) -> Any:
    return _zrange(ctx, argv, 1, kind=SCORE, reverse=True)


@command(
    "zrangebylex",
    -4,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("LIMIT",),
    summary="Replies with the members within a lexicographical range (ZRANGE BYLEX).",
    since="2.8.9",
    complexity="O(log(N)+M) with M the members replied",
)
def zrangebylex(ctx: Context, argv: list[bytes]) -> Any:
    return _zrange(ctx, argv, 1, kind=LEX, reverse=False)


@command(
    "zrevrangebylex",
    -4,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("LIMIT",),
    summary="Replies with the members within a lexicographical range, in reverse order (ZRANGE BYLEX REV).",
    since="2.8.9",
    complexity="O(log(N)+M) with M the members replied",
)
def zrevrangebylex(ctx: Context, argv: list[bytes]) -> Any:
    return _zrange(ctx, argv, 1, kind=LEX, reverse=True)


@command(
    "zrevrange",
    -4,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("WITHSCORES",),
    summary="Replies with the members in a range of ranks, highest score first (ZRANGE REV).",
    since="1.2.0",
    complexity="O(log(N)+M) with M the members replied",
)
def zrevrange(ctx: Context, argv: list[bytes]) -> Any:
    return _zrange(ctx, argv, 1, kind=RANK, reverse=True)


# ---- ZREMRANGEBY* ----------------------------------------------------------------------------------------------
def _remrange(ctx: Context, argv: list[bytes], kind: str) -> Any:
    if kind == RANK:
        first, last = parse_int(argv[2]), parse_int(argv[3])
    elif kind == SCORE:
        bounds = _score_range(argv[2], argv[3])
    else:
        _lex_parse(argv[2], argv[3])
    key = argv[1]
    value = _get(ctx, key)
    if value is None:
        return 0
    if kind == RANK:
        length = len(value)
        if first < 0:
            first += length
        if last < 0:
            last += length
        first = max(first, 0)
        if first > last or first >= length:
            return 0
        start, stop = first, min(last, length - 1) + 1
    elif kind == SCORE:
        start, stop = value.score_bounds(*bounds)
    else:
        start, stop = _lex_range(value, argv[2], argv[3])
    members = [member for _, member in value.by_rank(start, stop)]
    _remove(ctx, key, value, members)
    return len(members)


@command(
    "zremrangebyrank",
    4,
    "write",
    (1, 1, 1),
    group=G,
    summary="Removes the members in a range of ranks; replies how many.",
    since="2.0.0",
    complexity="O(log(N)+M) with M the members removed",
)
def zremrangebyrank(ctx: Context, argv: list[bytes]) -> Any:
    return _remrange(ctx, argv, RANK)


@command(
    "zremrangebyscore",
    4,
    "write",
    (1, 1, 1),
    group=G,
    summary="Removes the members whose scores are within a range; replies how many.",
    since="1.2.0",
    complexity="O(log(N)+M) with M the members removed",
)
def zremrangebyscore(ctx: Context, argv: list[bytes]) -> Any:
    return _remrange(ctx, argv, SCORE)


@command(
    "zremrangebylex",
    4,
    "write",
    (1, 1, 1),
    group=G,
    summary="Removes the members within a lexicographical range; replies how many.",
    since="2.8.9",
    complexity="O(log(N)+M) with M the members removed",
)
def zremrangebylex(ctx: Context, argv: list[bytes]) -> Any:
    return _remrange(ctx, argv, LEX)


# ---- ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD ------------------------------------------------------
UNION, INTER, DIFF = "union", "inter", "diff"


class SetOpInput:
    """One input of a set operation: a sorted set, a set (every member scored 1) or a missing key (empty)."""

    __slots__ = ("value", "weight")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.weight = 1.0

    def __len__(self) -> int:
        return 0 if self.value is None else len(self.value)

    def items(self) -> list[tuple[bytes, float]]:
        value = self.value
        if value is None:
            return []
        if value.type == "zset":
            return [(member, score) for score, member in value.index]
        return [(member, 1.0) for member in value]

    def find(self, member: bytes) -> float | None:
        value = self.value
        if value is None:
            return None
        if value.type == "zset":
            return value.scores.get(member)  # type: ignore[no-any-return]
        return 1.0 if member in value else None


def _aggregate(how: bytes) -> Callable[[float, float], float]:
    if how == b"min":
        return lambda target, value: value if value < target else target
    if how == b"max":
        return lambda target, value: value if value > target else target

    def add(target: float, value: float) -> float:
        total = target + value
        return 0.0 if math.isnan(total) else total

    return add


def _setop(ctx: Context, argv: list[bytes], at: int, op: str, *, store: bytes | None = None,
           card_only: bool = False) -> Any:
    """zunionInterDiffGenericCommand: ``numkeys`` at argv[at], then the keys, then the options."""
    setnum = parse_int(argv[at])
    if setnum < 1:
        raise CommandError(NO_INPUT_KEY % argv[0].lower())
    if setnum > len(argv) - at - 1:
        raise CommandError(errors.SYNTAX)
    keyspace, db = ctx.keyspace, ctx.client.db
    sources = []
    for key in argv[at + 1 : at + 1 + setnum]:
        value = keyspace.lookup(db, key)
        if value is not None and value.type not in ("zset", "set"):
            raise CommandError(errors.WRONGTYPE)
        sources.append(SetOpInput(value))
    aggregate = b"sum"
    withscores = False
    limit = 0
    j = at + 1 + setnum
    while j < len(argv):
        option = argv[j].lower()
        remaining = len(argv) - j
        if op != DIFF and not card_only and remaining >= setnum + 1 and option == b"weights":
            for index, source in enumerate(sources):
                source.weight = parse_score(argv[j + 1 + index], WEIGHT_NOT_FLOAT)
            j += 1 + setnum
        elif op != DIFF and not card_only and remaining >= 2 and option == b"aggregate":
            aggregate = argv[j + 1].lower()
            if aggregate not in (b"sum", b"min", b"max"):
                raise CommandError(errors.SYNTAX)
            j += 2
        elif store is None and not card_only and option == b"withscores":
            withscores = True
            j += 1
        elif card_only and remaining >= 2 and option == b"limit":
            limit = parse_int(argv[j + 1], LIMIT_NEGATIVE)
            if limit < 0:
                raise CommandError(LIMIT_NEGATIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    combine = _aggregate(aggregate)
    result: dict[bytes, float] = {}
    if op == INTER:
        sources.sort(key=len)  # smallest first, as Redis orders them (a stable sort, as glibc's qsort is here)
        first, rest = sources[0], sources[1:]
        cardinality = 0
        if len(first):
            for member, own in first.items():
                score = first.weight * own
                if math.isnan(score):
                    score = 0.0
                for source in rest:
                    found = own if source.value is first.value else source.find(member)
                    if found is None:
                        break
                    score = combine(score, found * source.weight)
                else:
                    if card_only:
                        cardinality += 1
                        if limit and cardinality >= limit:
                            break
                    else:
                        result[member] = score
        if card_only:
            return cardinality
    elif op == UNION:
        sources.sort(key=len)
        for source in sources:
            weight = source.weight
            for member, own in source.items():
                score = weight * own
                if math.isnan(score):
                    score = 0.0
                current = result.get(member)
                result[member] = score if current is None else combine(current, score)
    else:
        first, rest = sources[0], sources[1:]
        for member, own in first.items():
            if not any(source.find(member) is not None for source in rest):
                result[member] = own
    if store is not None:
        return _store(ctx, store, list(result.items()))
    items = sorted((score, member) for member, score in result.items())
    if withscores:
        return _with_scores(ctx, items)
    return [member for _, member in items]


def _numkeys_at(at: int) -> Callable[[list[bytes]], list[int]]:
    return lambda argv: numkeys_positions(argv, at)


def _store_keys(argv: list[bytes]) -> list[int]:
    return [1, *numkeys_positions(argv, 2)]


_SETOP_OPTIONS = ("WEIGHTS", "AGGREGATE")


@command(
    "zunionstore",
    -4,
    "write denyoom movablekeys",
    (1, 1, 1),
    group=G,
    key_finder=_store_keys,
    options=_SETOP_OPTIONS,
    summary="Stores the union of sorted sets (and sets) as a sorted set; replies its size.",
    since="2.0.0",
    complexity="O(N)+O(M log(M)): N the inputs' sizes, M the result's",
)
def zunionstore(ctx: Context, argv: list[bytes]) -> Any:
    return _setop(ctx, argv, 2, UNION, store=argv[1])


@command(
    "zinterstore",
    -4,
    "write denyoom movablekeys",
    (1, 1, 1),
    group=G,
    key_finder=_store_keys,
    options=_SETOP_OPTIONS,
    summary="Stores the intersection of sorted sets (and sets) as a sorted set; replies its size.",
    since="2.0.0",
    complexity="O(N*K)+O(M*log(M)): N the smallest input's size, K the inputs, M the result's size",
)
def zinterstore(ctx: Context, argv: list[bytes]) -> Any:
    return _setop(ctx, argv, 2, INTER, store=argv[1])


@command(
    "zdiffstore",
    -4,
    "write denyoom movablekeys",
    (1, 1, 1),
    group=G,
    key_finder=_store_keys,
    summary="Stores the members of the first sorted set not in the others as a sorted set; replies its size.",
    since="6.2.0",
    complexity="O(L + (N-K)log(N)) in the worst case",
)
def zdiffstore(ctx: Context, argv: list[bytes]) -> Any:
    return _setop(ctx, argv, 2, DIFF, store=argv[1])


@command(
    "zunion",
    -3,
    "readonly movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=_numkeys_at(1),
    options=(*_SETOP_OPTIONS, "WITHSCORES"),
    summary="Replies with the union of sorted sets (and sets).",
    since="6.2.0",
    complexity="O(N)+O(M*log(M)): N the inputs' sizes, M the result's",
)
def zunion(ctx: Context, argv: list[bytes]) -> Any:
    return _setop(ctx, argv, 1, UNION)


@command(
    "zinter",
    -3,
    "readonly movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=_numkeys_at(1),
    options=(*_SETOP_OPTIONS, "WITHSCORES"),
    summary="Replies with the intersection of sorted sets (and sets).",
    since="6.2.0",
    complexity="O(N*K)+O(M*log(M)): N the smallest input's size, K the inputs, M the result's size",
)
def zinter(ctx: Context, argv: list[bytes]) -> Any:
    return _setop(ctx, argv, 1, INTER)


@command(
    "zdiff",
    -3,
    "readonly movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=_numkeys_at(1),
    options=("WITHSCORES",),
    summary="Replies with the members of the first sorted set not in the others.",
    since="6.2.0",
    complexity="O(L + (N-K)log(N)) in the worst case",
)
def zdiff(ctx: Context, argv: list[bytes]) -> Any:
    return _setop(ctx, argv, 1, DIFF)


@command(
    "zintercard",
    -3,
    "readonly movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=_numkeys_at(1),
    options=("LIMIT",),
    summary="Replies with the size of the intersection of sorted sets (and sets), counting up to LIMIT.",
    since="7.0.0",
    complexity="O(N*K) in the worst case: N the smallest input's size, K the inputs",
)
def zintercard(ctx: Context, argv: list[bytes]) -> Any:
    return _setop(ctx, argv, 1, INTER, card_only=True)


# ---- pops ------------------------------------------------------------------------------------------------------
def _pop(ctx: Context, key: bytes, value: ZSetValue, count: int, highest: bool) -> Items:
    length = len(value)
    if count < length:
        taken = value.pop(count, highest)
        ctx.keyspace.touch(ctx.client.db, key)
        return taken
    taken = value.by_rank(0, length, reverse=highest)
    ctx.keyspace.delete(ctx.client.db, key)  # the key goes with its last member: one record for the whole change
    return taken


def _zpop(ctx: Context, argv: list[bytes], highest: bool) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    count = None
    if len(argv) == 3:
        count = parse_int(argv[2], errors.MUST_BE_POSITIVE)
        if count < 0:
            raise CommandError(errors.MUST_BE_POSITIVE)
    key = argv[1]
    value = _get(ctx, key)
    if value is None or count == 0:
        return []
    taken = _pop(ctx, key, value, 1 if count is None else count, highest)
    if count is not None and ctx.client.protocol > 2:
        return [[member, score] for score, member in taken]
    return [item for score, member in taken for item in (member, score)]


@command(
    "zpopmin",
    -2,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Removes and replies with the members of lowest scores (one, or up to a count).",
    since="5.0.0",
    complexity="O(log(N)*M) with M the members popped",
)
def zpopmin(ctx: Context, argv: list[bytes]) -> Any:
    return _zpop(ctx, argv, False)


@command(
    "zpopmax",
    -2,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Removes and replies with the members of highest scores (one, or up to a count).",
    since="5.0.0",
    complexity="O(log(N)*M) with M the members popped",
)
def zpopmax(ctx: Context, argv: list[bytes]) -> Any:
    return _zpop(ctx, argv, True)


def _parse_mpop(argv: list[bytes], at: int) -> tuple[list[bytes], bool, int]:
    """ZMPOP/BZMPOP arguments from ``numkeys`` at argv[at]: keys, MAX, count."""
    numkeys = parse_int(argv[at], NUMKEYS_NOT_POSITIVE)
    if numkeys < 1:
        raise CommandError(NUMKEYS_NOT_POSITIVE)
    where = at + numkeys + 1
    if where >= len(argv):
        raise CommandError(errors.SYNTAX)
    side = argv[where].lower()
    if side not in (b"min", b"max"):
        raise CommandError(errors.SYNTAX)
    count = -1
    j = where + 1
    while j < len(argv):
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            count = parse_int(argv[j + 1], COUNT_NOT_POSITIVE)
            if count < 1:
                raise CommandError(COUNT_NOT_POSITIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    return argv[at + 1 : where], side == b"max", max(count, 1)


def _mpop_from(ctx: Context, keys: list[bytes], highest: bool, count: int) -> Any:
    """The first sorted set among ``keys`` popped: [key, [[member, score], ...]], or None when all are missing
    (WRONGTYPE for the first key of another type)."""
    for key in keys:
        value = _get(ctx, key)
        if value is not None:
            taken = _pop(ctx, key, value, count, highest)
            return [key, [[member, score] for score, member in taken]]
    return None


@command(
    "zmpop",
    -4,
    "write movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=_numkeys_at(1),
    options=("MIN", "MAX", "COUNT"),
    summary="Pops members of lowest (MIN) or highest (MAX) scores from the first non-empty sorted set given.",
    since="7.0.0",
    complexity="O(K)+O(M*log(N)): K keys checked, M members popped",
)
def zmpop(ctx: Context, argv: list[bytes]) -> Any:
    keys, highest, count = _parse_mpop(argv, 1)
    reply = _mpop_from(ctx, keys, highest, count)
    return NULL_ARRAY if reply is None else reply


# ---- blocking pops ---------------------------------------------------------------------------------------------
def _safe(ctx: Context, function: Callable[[bytes], Any], key: bytes) -> Any:
    """A waiter's turn after ``key`` was signalled: served from a sorted set only (a key holding another type by
    then leaves it waiting, as in Redis)."""
    entry = ctx.keyspace.lookup(ctx.client.db, key)
    if entry is None or entry.type != "zset" or not len(entry):
        return None
    try:
        return function(key)
    except CommandError as error:
        return ErrorReply(error.message)


def _bzpop(ctx: Context, argv: list[bytes], highest: bool) -> Any:
    timeout = parse_timeout(argv[-1])
    keys = argv[1:-1]

    def pop_from(key: bytes) -> Any:
        value = _get(ctx, key)
        if value is None:
            return None
        score, member = _pop(ctx, key, value, 1, highest)[0]
        return [key, member, score]

    for key in keys:
        if _get(ctx, key) is not None:  # WRONGTYPE on the first key of another type, as Redis checks in order
            return pop_from(key)
    return Block(keys, timeout, lambda key: _safe(ctx, pop_from, key), NULL_ARRAY)


@command(
    "bzpopmin",
    -3,
    "write noscript blocking fast",
    (1, -2, 1),
    group=G,
    summary="Pops the member of lowest score from the first non-empty sorted set given, waiting while all are empty.",
    since="5.0.0",
    complexity="O(log(N))",
)
def bzpopmin(ctx: Context, argv: list[bytes]) -> Any:
    return _bzpop(ctx, argv, False)


@command(
    "bzpopmax",
    -3,
    "write noscript blocking fast",
    (1, -2, 1),
    group=G,
    summary="Pops the member of highest score from the first non-empty sorted set given, waiting while all are "
    "empty.",
    since="5.0.0",
    complexity="O(log(N))",
)
def bzpopmax(ctx: Context, argv: list[bytes]) -> Any:
    return _bzpop(ctx, argv, True)


@command(
    "bzmpop",
    -5,
    "write blocking movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=_numkeys_at(2),
    options=("MIN", "MAX", "COUNT"),
    summary="Pops members as ZMPOP does, waiting while every sorted set given is empty.",
    since="7.0.0",
    complexity="O(K)+O(M*log(N)): K keys checked, M members popped",
)
def bzmpop(ctx: Context, argv: list[bytes]) -> Any:
    keys, highest, count = _parse_mpop(argv, 2)
    timeout = parse_timeout(argv[1])
    reply = _mpop_from(ctx, keys, highest, count)
    if reply is not None:
        return reply
    return Block(keys, timeout, lambda key: _safe(ctx, lambda k: _mpop_from(ctx, [k], highest, count), key),
                 NULL_ARRAY)


# ---- random members, scan --------------------------------------------------------------------------------------
@command(
    "zrandmember",
    -2,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("WITHSCORES",),
    summary="Replies with random members (distinct for a positive count, repeating for a negative one).",
    since="6.2.0",
    complexity="O(N) in the count",
)
def zrandmember(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        value = _get(ctx, argv[1])
        if value is None:
            return None
        return value.index[random.randrange(len(value))][1]
    count = parse_int(argv[2])
    if count == _LONG_MIN:
        raise CommandError(COUNT_OUT_OF_RANGE)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withscores"):
        raise CommandError(errors.SYNTAX)
    withscores = len(argv) == 4
    if withscores and not -(_LONG_MAX // 2) <= count <= _LONG_MAX // 2:
        raise CommandError(WITHVALUES_COUNT_OUT_OF_RANGE)
    value = _get(ctx, argv[1])
    if value is None or count == 0:
        return []
    index = value.index
    size = len(index)
    if count < 0 or count == 1:
        chosen: Items = [index[random.randrange(size)] for _ in range(abs(count))]
    elif count >= size:
        chosen = list(reversed(index))  # the whole set, highest first: Redis iterates from the tail here
    else:
        chosen = [index[rank] for rank in random.sample(range(size), count)]
    if withscores:
        return _with_scores(ctx, chosen)
    return [member for _, member in chosen]


@command(
    "zscan",
    -3,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("MATCH", "COUNT"),
    summary="Walks the members and scores of a sorted set a batch at a time with a cursor, optionally filtered.",
    since="2.8.0",
    complexity="O(1) per call for a small sorted set (all of it at once); O(N) per call for a large one",
)
def zscan(ctx: Context, argv: list[bytes]) -> Any:
    cursor = parse_scan_cursor(argv[2])
    value = _get(ctx, argv[1])
    if value is None:
        return [b"0", []]
    count, pattern, _ = parse_scan_options(argv, 3, with_type=False)
    next_cursor, batch = value.scan(cursor, count)
    if pattern is not None and pattern != b"*":
        match = compile_glob(pattern)
        batch = [member for member in batch if match(member)]
    scores = value.scores
    return [str(next_cursor).encode(), [item for member in batch for item in (member, format_score(scores[member]))]]


# ---- pipelined runs --------------------------------------------------------------------------------------------
def _one_by_one(handler: Handler, *, adds_data: bool, reads: bool) -> tuple[RunHandler, SpreadHandler]:
    """Run and spread handlers for pipelined calls of one command (``dispatch.execute_run``): each call executed as
    it would be alone, the generic checks and the bookkeeping done once for all. A call's own error is its reply;
    a storage failure ends the run before the call it hit, which then runs alone and answers for itself, and so
    does going over maxmemory before a call that ``adds_data`` (Redis checks it before every such command). A read
    repeating the call before it (a poller's pipeline) has the same reply: nothing ran between them."""

    def spread(ctx: Context, argvs: list[list[bytes]]) -> list[Any]:
        engine = ctx.engine
        replies: list[Any] = []
        last: list[bytes] | None = None
        for argv in argvs:
            if reads and argv == last:
                replies.append(replies[-1])
                continue
            if adds_data and replies and engine.maxmemory and engine.over_maxmemory():
                break
            try:
                replies.append(handler(ctx, argv))
            except CommandError as error:
                replies.append(ErrorReply(error.message))
            except StorageError:
                break
            last = argv
        return replies

    return (lambda ctx, _key, argvs: spread(ctx, argvs)), spread


def _pipelined(name: str, handler: Handler, arity: int, *, adds_data: bool = False, reads: bool = False) -> None:
    run, spread = _one_by_one(handler, adds_data=adds_data, reads=reads)
    run_of(name, (lambda argv: len(argv) == arity) if arity > 0 else (lambda argv: len(argv) >= -arity), spread)(run)


for _name, _handler, _arity in (("zadd", zadd, -4), ("zincrby", zincrby, 4)):
    _pipelined(_name, _handler, _arity, adds_data=True)
for _name, _handler, _arity in (("zrem", zrem, -3), ("zpopmin", zpopmin, -2), ("zpopmax", zpopmax, -2)):
    _pipelined(_name, _handler, _arity)
for _name, _handler, _arity in (
    ("zscore", zscore, 3), ("zmscore", zmscore, -3), ("zcard", zcard, 2), ("zrank", zrank, 3),
    ("zrevrank", zrevrank, 3), ("zcount", zcount, 4), ("zrange", zrange, -4), ("zrangebyscore", zrangebyscore, -4),
    ("zrevrangebyscore", zrevrangebyscore, -4), ("zrevrange", zrevrange, -4),
):
    _pipelined(_name, _handler, _arity, reads=True)
