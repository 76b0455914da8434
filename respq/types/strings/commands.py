"""String commands with Redis 7.0 semantics (t_string.c) over the inline ``StringValue``.

Every write that creates or replaces a key does so inside one ``engine.atomic()`` with the write that fills it (and
the expiry it sets), so a crash never leaves a key empty, half-replaced or with a stale TTL; MSET and MSETNX put all
their keys in one atomic block.
"""

from __future__ import annotations

from array import array
from operator import attrgetter
from typing import Any

from respq import errors, keyspace, speedups
from respq.commands import floats
from respq.commands.args import parse_int, try_int
from respq.commands.context import Context
from respq.commands.table import command, run_of
from respq.errors import CommandError
from respq.replies import OK, ErrorReply
from respq.storage.errors import StorageError
from respq.types.strings.errors import (
    DECR_OVERFLOW,
    LCS_LEN_AND_IDX,
    LCS_NO_MEMORY,
    LCS_NOT_STRINGS,
    LCS_TABLE_TOO_BIG,
    LCS_TOO_LONG,
    OFFSET_OUT_OF_RANGE,
    STRING_TOO_LONG,
)
from respq.types.strings.model import DATA_SLOT, StringValue

G = "string"
_LLONG_MIN, _LLONG_MAX = -(1 << 63), (1 << 63) - 1
_UINT32_MAX = (1 << 32) - 1
_STRING = "string"
_DATA = attrgetter("data")  # MGET's read of each string


def _now_ms() -> int:
    return keyspace.now_ms()


def _get(ctx: Context, key: bytes) -> StringValue | None:
    return ctx.keyspace.typed(ctx.client.db, key, _STRING)


def _lookup(ctx: Context, db: int, key: bytes) -> Any:
    """Keyspace.lookup, with the engine's entry taken as it is when it has no expiry to check (MGET's loop)."""
    entry = ctx.engine.get(db, key)
    if entry is not None and entry.expire_ms is not None:
        return ctx.keyspace.lookup(db, key)  # expires it lazily if due
    return entry


def _put(
    ctx: Context, key: bytes, data: bytes, entry: Any, *, expire_ms: int | None = None, keep_ttl: bool = False
) -> None:
    """setKey: ``key`` holds ``data`` from now on, whatever it held (``entry``, looked up by the caller: None if
    missing), with expiry ``expire_ms``, or the old one under ``keep_ttl``, or none. Watchers fail; clients
    blocked on a value it replaces are signalled (Keyspace.replace)."""
    client_db = ctx.client.db
    space = ctx.keyspace
    old_expire = entry.expire_ms if entry is not None else None
    new_expire = expire_ms if expire_ms is not None else old_expire if keep_ttl else None
    if entry is not None and entry.type == _STRING:
        if new_expire == old_expire:
            entry.set(data)
            space.touch(client_db, key)
            return
        with ctx.engine.atomic():
            entry.set(data)
            space.set_expire(client_db, key, new_expire)
        return
    engine = ctx.engine
    # Refused now or never: once replace has deleted the old value, the writes after it must not fail for room.
    engine.before_write(len(key) + len(data) + 128)
    with engine.atomic():
        value = space.replace(client_db, key, _STRING)
        value.set(data)
        if new_expire is not None:
            space.set_expire(client_db, key, new_expire)


def _check_length(ctx: Context, size: int, append: int) -> None:
    """checkStringLength: a string may not grow past proto-max-bulk-len."""
    if size + append > ctx.config.proto_max_bulk_len:
        raise CommandError(STRING_TOO_LONG)


# ---- SET and GET with their options -------------------------------------------------------------------------------
# parseExtendedStringArgumentsOrReply's flags, shared by SET (COMMAND_SET) and GETEX (COMMAND_GET).
_NX, _XX, _EX, _PX, _KEEPTTL, _GET, _EXAT, _PXAT, _PERSIST = (1 << n for n in range(9))
_EXPIRES = _EX | _PX | _EXAT | _PXAT


def _parse_options(argv: list[bytes], start: int, for_set: bool) -> tuple[int, bytes | None]:
    """The flags and the expire argument of SET (options from argv[3]) or GETEX (from argv[2]), checked in Redis's
    order: an option is accepted only where no option it excludes came before it (a repeated EX, PX, NX... is
    fine: the last time given counts)."""
    flags = 0
    expire: bytes | None = None
    i = start
    while i < len(argv):
        option = argv[i].upper()
        has_next = i + 1 < len(argv)
        if option == b"NX" and not flags & _XX and for_set:
            flags |= _NX
        elif option == b"XX" and not flags & _NX and for_set:
            flags |= _XX
        elif option == b"GET" and for_set:
            flags |= _GET
        elif option == b"KEEPTTL" and not flags & (_PERSIST | _EXPIRES) and for_set:
            flags |= _KEEPTTL
        elif option == b"PERSIST" and not for_set and not flags & (_EXPIRES | _KEEPTTL):
            flags |= _PERSIST
        elif option in _EXPIRE_OPTIONS and has_next and not flags & (_KEEPTTL | _PERSIST | _OTHER_EXPIRES[option]):
            flags |= _EXPIRE_OPTIONS[option]
            expire = argv[i + 1]
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    return flags, expire


_EXPIRE_OPTIONS = {b"EX": _EX, b"PX": _PX, b"EXAT": _EXAT, b"PXAT": _PXAT}
_OTHER_EXPIRES = {option: _EXPIRES & ~flag for option, flag in _EXPIRE_OPTIONS.items()}  # what each excludes


def _expire_at(argv0: bytes, arg: bytes, flags: int) -> int:
    """getExpireMillisecondsOrReply: the absolute expiry in ms that EX/PX/EXAT/PXAT ``arg`` names (SETEX and PSETEX
    pass _EX / _PX). Positive only, and no overflow once made absolute and in milliseconds."""
    when = parse_int(arg)
    seconds = bool(flags & (_EX | _EXAT))
    if when <= 0 or (seconds and when > _LLONG_MAX // 1000):
        raise CommandError(errors.INVALID_EXPIRE % argv0.lower())
    if seconds:
        when *= 1000
    if flags & (_EX | _PX):
        when += _now_ms()
    if when > _LLONG_MAX:  # Redis's sum wraps negative there
        raise CommandError(errors.INVALID_EXPIRE % argv0.lower())
    return when


def _set_generic(
    ctx: Context, argv: list[bytes], key: bytes, data: bytes, flags: int, expire: bytes | None, ok: Any, abort: Any
) -> Any:
    """setGenericCommand: SET, SETNX, SETEX, PSETEX."""
    expire_ms = _expire_at(argv[0], expire, flags) if expire is not None else None
    old: Any = None
    if flags & _GET:
        value = _get(ctx, key)  # WRONGTYPE before anything is set
        old = value.data if value is not None else None
    entry = ctx.keyspace.lookup(ctx.client.db, key)
    if (flags & _NX and entry is not None) or (flags & _XX and entry is None):
        return old if flags & _GET else abort
    _put(ctx, key, data, entry, expire_ms=expire_ms, keep_ttl=bool(flags & _KEEPTTL))
    return old if flags & _GET else ok


@command(
    "get",
    2,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with the string value of a key, or null if the key is missing.",
    since="1.0.0",
)
def get(ctx: Context, argv: list[bytes]) -> Any:
    value = ctx.keyspace.typed(ctx.client.db, argv[1], _STRING)
    return value.data if value is not None else None


def _get_run(ctx: Context, key: bytes, argvs: list[list[bytes]]) -> list[Any]:
    """Pipelined GETs of one key: one lookup, the same reply to each."""
    try:
        value = _get(ctx, key)
    except CommandError as error:
        return [ErrorReply(error.message)] * len(argvs)
    return [value.data if value is not None else None] * len(argvs)


def _get_spread(ctx: Context, argvs: list[list[bytes]]) -> list[Any]:
    """Pipelined GETs of different keys, each answering as GET alone would."""
    db = ctx.client.db
    replies: list[Any] = []
    for argv in argvs:
        entry = _lookup(ctx, db, argv[1])
        if entry is None:
            replies.append(None)
        elif entry.type != _STRING:
            replies.append(ErrorReply(errors.WRONGTYPE))
        else:
            replies.append(entry.data)
    return replies


run_of("get", lambda argv: len(argv) == 2, _get_spread)(_get_run)


@command(
    "set",
    -3,
    "write denyoom",
    (1, 1, 1),
    group=G,
    options=("NX", "XX", "GET", "KEEPTTL", "EX", "PX", "EXAT", "PXAT"),
    summary="Sets a key to a string value, replacing any value and type, optionally with an expiry or a condition.",
    since="1.0.0",
)
def set_(ctx: Context, argv: list[bytes]) -> Any:
    flags, expire = _parse_options(argv, 3, for_set=True) if len(argv) > 3 else (0, None)
    if not flags:  # the plain SET every client sends: no option to honour
        key = argv[1]
        _put(ctx, key, argv[2], ctx.keyspace.lookup(ctx.client.db, key))
        return OK
    return _set_generic(ctx, argv, argv[1], argv[2], flags, expire, OK, None)


def _set_spread(ctx: Context, argvs: list[list[bytes]]) -> list[Any]:
    """Pipelined plain SETs (no option), each executed as SET alone would be, without the dispatch around each.
    The run stops where one alone would be refused (over maxmemory, checked before each as Redis checks each
    command) or where storage refuses one (that call then runs alone and answers for itself)."""
    space = ctx.keyspace
    db = ctx.client.db
    engine = ctx.engine
    replies: list[Any] = []
    for argv in argvs:
        if replies and engine.maxmemory and engine.over_maxmemory():
            break
        key = argv[1]
        try:
            _put(ctx, key, argv[2], space.lookup(db, key))
        except StorageError:
            break
        replies.append(OK)
    return replies


def _set_run(ctx: Context, key: bytes, argvs: list[list[bytes]]) -> list[Any]:
    """Pipelined plain SETs of one key: the last value is what they leave, so without a memory limit to check
    between them it is the one written (one journal record: after a crash all of them happened or none)."""
    if ctx.engine.maxmemory:
        return _set_spread(ctx, argvs)
    try:
        _put(ctx, key, argvs[-1][2], ctx.keyspace.lookup(ctx.client.db, key))
    except StorageError:
        return []
    return [OK] * len(argvs)


run_of("set", lambda argv: len(argv) == 3, _set_spread)(_set_run)


@command(
    "setnx",
    3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Sets a key to a string value only if the key does not exist; replies 1 if it was set.",
    since="1.0.0",
)
def setnx(ctx: Context, argv: list[bytes]) -> Any:
    return _set_generic(ctx, argv, argv[1], argv[2], _NX, None, 1, 0)


@command(
    "setex",
    4,
    "write denyoom",
    (1, 1, 1),
    group=G,
    summary="Sets a key to a string value that expires after a number of seconds.",
    since="2.0.0",
)
def setex(ctx: Context, argv: list[bytes]) -> Any:
    return _set_generic(ctx, argv, argv[1], argv[3], _EX, argv[2], OK, None)


@command(
    "psetex",
    4,
    "write denyoom",
    (1, 1, 1),
    group=G,
    summary="Sets a key to a string value that expires after a number of milliseconds.",
    since="2.6.0",
)
def psetex(ctx: Context, argv: list[bytes]) -> Any:
    return _set_generic(ctx, argv, argv[1], argv[3], _PX, argv[2], OK, None)


@command(
    "getset",
    3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Sets a key to a string value and replies with its previous value (deprecated: SET ... GET).",
    since="1.0.0",
)
def getset(ctx: Context, argv: list[bytes]) -> Any:
    key = argv[1]
    value = _get(ctx, key)
    old = value.data if value is not None else None
    _put(ctx, key, argv[2], value)
    return old


@command(
    "getdel",
    2,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Replies with the string value of a key and deletes the key.",
    since="6.2.0",
)
def getdel(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    if value is None:
        return None
    data = value.data
    ctx.keyspace.delete(ctx.client.db, argv[1])
    return data


@command(
    "getex",
    -2,
    "write fast",
    (1, 1, 1),
    group=G,
    options=("EX", "PX", "EXAT", "PXAT", "PERSIST"),
    summary="Replies with the string value of a key and sets or clears its expiry.",
    since="6.2.0",
)
def getex(ctx: Context, argv: list[bytes]) -> Any:
    flags, expire = _parse_options(argv, 2, for_set=False)
    key = argv[1]
    value = _get(ctx, key)
    if value is None:
        return None
    expire_ms = _expire_at(argv[0], expire, flags) if expire is not None else None
    data = value.data
    space = ctx.keyspace
    if expire_ms is not None:
        space.set_expire(ctx.client.db, key, expire_ms)  # deletes the key if that time is past, as Redis does
    elif flags & _PERSIST and value.expire_ms is not None:
        space.set_expire(ctx.client.db, key, None)
    return data


# ---- several keys -------------------------------------------------------------------------------------------------
@command(
    "mget",
    -2,
    "readonly fast",
    (1, -1, 1),
    group=G,
    summary="Replies with the string values of the given keys, null for a missing key or one of another type.",
    since="1.0.0",
    complexity="O(N) in the keys given",
)
def mget(ctx: Context, argv: list[bytes]) -> Any:
    return ctx.keyspace.read_many(ctx.client.db, argv[1:], StringValue, _DATA, DATA_SLOT)


def _mget_spread(ctx: Context, argvs: list[list[bytes]]) -> list[Any]:
    """Pipelined MGETs: each answered as MGET alone would be, without the dispatch around each."""
    return [mget(ctx, argv) for argv in argvs]


run_of("mget", lambda argv: len(argv) >= 2, _mget_spread)(lambda ctx, key, argvs: _mget_spread(ctx, argvs))


def _mset(ctx: Context, argv: list[bytes], only_new: bool) -> Any:
    if len(argv) % 2 == 0:
        raise CommandError(errors.wrong_arity(argv[0].lower()))
    space = ctx.keyspace
    db = ctx.client.db
    pairs = range(1, len(argv), 2)
    if only_new and any(space.lookup(db, argv[i]) is not None for i in pairs):
        return 0
    engine = ctx.engine
    engine.before_write(sum(len(argv[i]) + len(argv[i + 1]) + 128 for i in pairs))  # all of it, or nothing
    with engine.atomic():
        for i in pairs:
            _put(ctx, argv[i], argv[i + 1], space.lookup(db, argv[i]))
    return 1 if only_new else OK


@command(
    "mset",
    -3,
    "write denyoom",
    (1, -1, 2),
    group=G,
    summary="Sets several keys to string values at once, replacing what they held.",
    since="1.0.1",
    complexity="O(N) in the keys given",
)
def mset(ctx: Context, argv: list[bytes]) -> Any:
    return _mset(ctx, argv, only_new=False)


@command(
    "msetnx",
    -3,
    "write denyoom",
    (1, -1, 2),
    group=G,
    summary="Sets several keys to string values only if none of them exists; replies 1 if they were set.",
    since="1.0.1",
    complexity="O(N) in the keys given",
)
def msetnx(ctx: Context, argv: list[bytes]) -> Any:
    return _mset(ctx, argv, only_new=True)


# ---- parts of a string --------------------------------------------------------------------------------------------
@command(
    "append",
    3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Appends to the string value of a key, creating it if missing; replies with the new length.",
    since="2.0.0",
    complexity="O(1) amortized: the value grows in place",
)
def append(ctx: Context, argv: list[bytes]) -> Any:
    key, data = argv[1], argv[2]
    value = _get(ctx, key)
    if value is None:
        _put(ctx, key, data, None)
        return len(data)
    _check_length(ctx, len(value), len(data))
    length = value.append(data)
    ctx.keyspace.touch(ctx.client.db, key)
    return length


@command(
    "strlen",
    2,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with the length of the string value of a key (0 if missing).",
    since="2.2.0",
)
def strlen(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return len(value) if value is not None else 0


def _getrange(ctx: Context, argv: list[bytes]) -> Any:
    start, end = parse_int(argv[2]), parse_int(argv[3])
    value = _get(ctx, argv[1])
    if value is None:
        return b""
    length = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(length + start, 0)
    if end < 0:
        end = max(length + end, 0)
    end = min(end, length - 1)
    if start > end or length == 0:
        return b""
    return value.substring(start, end + 1)


@command(
    "getrange",
    4,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Replies with the part of a string value between two offsets (negative ones count from the end).",
    since="2.4.0",
    complexity="O(N) in the bytes returned",
)
def getrange(ctx: Context, argv: list[bytes]) -> Any:
    return _getrange(ctx, argv)


@command(
    "substr",
    4,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Replies with the part of a string value between two offsets (deprecated: GETRANGE).",
    since="1.0.0",
    complexity="O(N) in the bytes returned",
)
def substr(ctx: Context, argv: list[bytes]) -> Any:
    return _getrange(ctx, argv)


@command(
    "setrange",
    4,
    "write denyoom",
    (1, 1, 1),
    group=G,
    summary="Overwrites part of a string value from an offset, padding with zero bytes; replies with the length.",
    since="2.2.0",
    complexity="O(1) amortized, plus the bytes written and any padding",
)
def setrange(ctx: Context, argv: list[bytes]) -> Any:
    key, data = argv[1], argv[3]
    offset = parse_int(argv[2])
    if offset < 0:
        raise CommandError(OFFSET_OUT_OF_RANGE)
    value = _get(ctx, key)
    if value is None:
        if not data:
            return 0
        _check_length(ctx, offset, len(data))
        engine = ctx.engine
        engine.before_write(len(key) + offset + len(data) + 128)
        with engine.atomic():
            value = ctx.keyspace.replace(ctx.client.db, key, _STRING)
            return value.set_range(offset, data)
    if not data:
        return len(value)
    _check_length(ctx, offset, len(data))
    length = value.set_range(offset, data)
    ctx.keyspace.touch(ctx.client.db, key)
    return length


# ---- counters -----------------------------------------------------------------------------------------------------
def _incr(ctx: Context, key: bytes, increment: int) -> int:
    """incrDecrCommand: the value read as a 64-bit integer, plus ``increment``; the key keeps its expiry."""
    value = _get(ctx, key)
    if value is None:
        current = 0
    else:
        found = try_int(value.data) if len(value) <= 20 else None
        if found is None:
            raise CommandError(errors.NOT_INTEGER)
        current = found
    total = current + increment
    if not _LLONG_MIN <= total <= _LLONG_MAX:
        raise CommandError(errors.INCR_OVERFLOW)
    data = b"%d" % total
    if value is None:
        _put(ctx, key, data, None)
    else:
        value.set(data)
        ctx.keyspace.touch(ctx.client.db, key)
    return total


@command(
    "incr",
    2,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Adds 1 to the integer in a key's string value (0 if missing); replies with the result.",
    since="1.0.0",
)
def incr(ctx: Context, argv: list[bytes]) -> Any:
    return _incr(ctx, argv[1], 1)


@command(
    "decr",
    2,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Subtracts 1 from the integer in a key's string value (0 if missing); replies with the result.",
    since="1.0.0",
)
def decr(ctx: Context, argv: list[bytes]) -> Any:
    return _incr(ctx, argv[1], -1)


@command(
    "incrby",
    3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Adds an integer to the integer in a key's string value (0 if missing); replies with the result.",
    since="1.0.0",
)
def incrby(ctx: Context, argv: list[bytes]) -> Any:
    return _incr(ctx, argv[1], parse_int(argv[2]))


@command(
    "decrby",
    3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Subtracts an integer from the integer in a key's string value (0 if missing); replies with the result.",
    since="1.0.0",
)
def decrby(ctx: Context, argv: list[bytes]) -> Any:
    decrement = parse_int(argv[2])
    if decrement == _LLONG_MIN:
        raise CommandError(DECR_OVERFLOW)
    return _incr(ctx, argv[1], -decrement)


@command(
    "incrbyfloat",
    3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Adds a number to the number in a key's string value in long double arithmetic, as Redis does.",
    since="2.6.0",
)
def incrbyfloat(ctx: Context, argv: list[bytes]) -> Any:
    key = argv[1]
    value = _get(ctx, key)
    current = floats.parse(value.data) if value is not None else floats.parse(b"0")
    if current is None:
        raise CommandError(errors.NOT_A_FLOAT)
    increment = floats.parse(argv[2])
    if increment is None:
        raise CommandError(errors.NOT_A_FLOAT)
    total = floats.add(current, increment)
    if not floats.is_finite(total):
        raise CommandError(errors.NAN_OR_INFINITY)
    data = floats.to_text(total)
    if value is None:
        _put(ctx, key, data, None)
    else:
        value.set(data)
        ctx.keyspace.touch(ctx.client.db, key)
    return data


# ---- LCS ----------------------------------------------------------------------------------------------------------
def py_lcs(a: bytes, b: bytes) -> tuple[int, bytes, list[tuple[int, int, int, int, int]]]:
    """The C twin's result (respq/_speedups.c: lcs): the length of the longest common subsequence, the subsequence,
    and the matched ranges (a_start, a_end, b_start, b_end, length) in the order Redis's walk back emits them."""
    alen, blen = len(a), len(b)
    table = [array("I", bytes(4 * (blen + 1)))]
    for i in range(1, alen + 1):
        above, row, byte = table[i - 1], array("I", bytes(4 * (blen + 1))), a[i - 1]
        for j in range(1, blen + 1):
            row[j] = above[j - 1] + 1 if byte == b[j - 1] else max(above[j], row[j - 1])
        table.append(row)
    length = table[alen][blen]
    out = bytearray(length)
    ranges = []
    idx = length
    a_start = alen  # alen: no run of matches open
    a_end = b_start = b_end = 0
    i, j = alen, blen
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx, i, j = idx - 1, i - 1, j - 1
        else:
            if table[i - 1][j] > table[i][j - 1]:
                i -= 1
            else:
                j -= 1
            if a_start != alen:
                emit = True
        if emit:
            ranges.append((a_start, a_end, b_start, b_end, a_end - a_start + 1))
            a_start = alen
    return length, bytes(out), ranges


_lcs = speedups.lcs or py_lcs


@command(
    "lcs",
    -3,
    "readonly",
    (1, 2, 1),
    group=G,
    options=("LEN", "IDX", "MINMATCHLEN", "WITHMATCHLEN"),
    summary="Finds the longest common subsequence of two string values: the text, its length or its ranges.",
    since="7.0.0",
    complexity="O(N*M) in the lengths of the two strings",
)
def lcs(ctx: Context, argv: list[bytes]) -> Any:
    db = ctx.client.db
    first = ctx.keyspace.lookup(db, argv[1])
    second = ctx.keyspace.lookup(db, argv[2])
    if (first is not None and first.type != _STRING) or (second is not None and second.type != _STRING):
        raise CommandError(LCS_NOT_STRINGS)
    a = first.data if first is not None else b""
    b = second.data if second is not None else b""
    want_len = want_idx = with_match_len = False
    min_match_len = 0
    i = 3
    while i < len(argv):
        option = argv[i].upper()
        if option == b"IDX":
            want_idx = True
        elif option == b"LEN":
            want_len = True
        elif option == b"WITHMATCHLEN":
            with_match_len = True
        elif option == b"MINMATCHLEN" and i + 1 < len(argv):
            min_match_len = max(parse_int(argv[i + 1]), 0)
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if want_len and want_idx:
        raise CommandError(LCS_LEN_AND_IDX)
    if len(a) >= _UINT32_MAX - 1 or len(b) >= _UINT32_MAX - 1:
        raise CommandError(LCS_TOO_LONG)
    if (len(a) + 1) * (len(b) + 1) * 4 > ctx.config.proto_max_bulk_len:
        raise CommandError(LCS_TABLE_TOO_BIG)
    try:
        found = _lcs(a, b)
    except MemoryError:
        found = None
    if found is None:
        raise CommandError(LCS_NO_MEMORY)
    length, text, ranges = found
    if want_idx:
        matches = [
            [[a_start, a_end], [b_start, b_end], *([match] if with_match_len else [])]
            for a_start, a_end, b_start, b_end, match in ranges
            if min_match_len == 0 or match >= min_match_len
        ]
        return {b"matches": matches, b"len": length}
    return length if want_len else text
