"""Hash commands with Redis 7.0 semantics (t_hash.c) over the in-memory, journaled HashValue."""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any

from respq import errors
from respq.commands import floats
from respq.commands.args import parse_int, try_int
from respq.commands.context import Context
from respq.commands.keys import parse_scan_cursor, parse_scan_options
from respq.commands.randoms import STREAMED_PICKS, streamed_picks
from respq.commands.table import Handler, RunHandler, SpreadHandler, command, run_of
from respq.errors import CommandError
from respq.glob import compile_glob
from respq.replies import OK, ErrorReply
from respq.storage.errors import StorageError
from respq.types.hashes.errors import (
    COUNT_OUT_OF_RANGE,
    HASH_VALUE_NOT_FLOAT,
    HASH_VALUE_NOT_INTEGER,
    INCREMENT_NAN_OR_INFINITY,
    WITHVALUES_COUNT_OUT_OF_RANGE,
)
from respq.types.hashes.model import new_hash

if TYPE_CHECKING:
    from respq.types.hashes.model import HashValue

G = "hash"
_LLONG_MIN, _LLONG_MAX = -(1 << 63), (1 << 63) - 1
_WITHVALUES_MAX = _LLONG_MAX // 2  # HRANDFIELD ... WITHVALUES replies twice as many elements as its count


def _get(ctx: Context, key: bytes) -> HashValue | None:
    return ctx.keyspace.typed(ctx.client.db, key, "hash")  # type: ignore[no-any-return]


def _set(ctx: Context, key: bytes, pairs: list[bytes]) -> int:
    """Sets flat field, value, ... pairs, creating the hash if missing; returns how many fields are new."""
    db = ctx.client.db
    keyspace = ctx.keyspace
    value = keyspace.typed(db, key, "hash")
    config = ctx.config.values  # hash-max-listpack-entries / -value as configured now decide the encoding
    max_entries, max_value = config["hash-max-listpack-entries"], config["hash-max-listpack-value"]
    if value is None:
        added = len(new_hash(ctx.engine, db, key, pairs, max_entries, max_value).fields)
    else:
        added = value.set_many(pairs, max_entries, max_value)
    keyspace.touch(db, key)
    return added


@command(
    "hset",
    -4,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Sets fields of a hash, creating it if needed; replies how many fields are new.",
    since="2.0.0",
    complexity="O(N) in the fields given",
)
def hset(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) % 2:
        raise CommandError(errors.wrong_arity(b"hset"))
    return _set(ctx, argv[1], argv[2:])


def _one_by_one(handler: Handler, *, adds_data: bool) -> tuple[RunHandler, SpreadHandler]:
    """Run and spread handlers for pipelined calls of a hash command (``dispatch.execute_run``): each call executed
    as it would be alone, the generic checks and the bookkeeping done once for all. A call's own error is its
    reply; a storage failure ends the run before the call it hit, which then runs alone and answers for itself, and
    so does going over maxmemory before a call that ``adds_data`` (Redis checks it before every such command)."""

    def spread(ctx: Context, argvs: list[list[bytes]]) -> list[Any]:
        engine = ctx.engine
        replies: list[Any] = []
        for argv in argvs:
            if adds_data and replies and engine.maxmemory and engine.over_maxmemory():
                break
            try:
                replies.append(handler(ctx, argv))
            except CommandError as error:
                replies.append(ErrorReply(error.message))
            except StorageError:
                break
        return replies

    return (lambda ctx, _key, argvs: spread(ctx, argvs)), spread


def _pipelined(name: str, handler: Handler, fits: Callable[[list[bytes]], bool], *, adds_data: bool) -> None:
    run, spread = _one_by_one(handler, adds_data=adds_data)
    run_of(name, fits, spread)(run)


_pipelined("hset", hset, lambda argv: len(argv) >= 4, adds_data=True)


@command(
    "hmset",
    -4,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Sets fields of a hash, creating it if needed (deprecated: HSET does the same).",
    since="2.0.0",
    complexity="O(N) in the fields given",
)
def hmset(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) % 2:
        raise CommandError(errors.wrong_arity(b"hmset"))
    _set(ctx, argv[1], argv[2:])
    return OK


@command(
    "hsetnx",
    4,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Sets a field of a hash only if the field does not exist yet.",
    since="2.0.0",
)
def hsetnx(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    if value is not None and argv[2] in value.fields:
        return 0
    _set(ctx, argv[1], argv[2:])
    return 1


@command(
    "hget",
    3,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with the value of a field of a hash.",
    since="2.0.0",
)
def hget(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return None if value is None else value.fields.get(argv[2])


def _hget_run(ctx: Context, key: bytes, argvs: list[list[bytes]]) -> list[Any]:
    """Pipelined HGETs of one key: one lookup, then each field (a WRONGTYPE key: each call answers alone)."""
    try:
        value = _get(ctx, key)
    except CommandError:
        return []
    if value is None:
        return [None] * len(argvs)
    get = value.fields.get
    return [get(argv[2]) for argv in argvs]


run_of("hget", lambda argv: len(argv) == 3, _one_by_one(hget, adds_data=False)[1])(_hget_run)


@command(
    "hmget",
    -3,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with the values of the given fields of a hash (null for each missing one).",
    since="2.0.0",
    complexity="O(N) in the fields given",
)
def hmget(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    if value is None:
        return [None] * (len(argv) - 2)
    get = value.fields.get
    return [get(field) for field in argv[2:]]


@command(
    "hgetall",
    2,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Replies with every field and value of a hash.",
    since="2.0.0",
    complexity="O(N) in the size of the hash",
)
def hgetall(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return {} if value is None else value.fields.copy()


@command(
    "hkeys",
    2,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Replies with every field name of a hash.",
    since="2.0.0",
    complexity="O(N) in the size of the hash",
)
def hkeys(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return [] if value is None else list(value.fields)


@command(
    "hvals",
    2,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Replies with every value of a hash.",
    since="2.0.0",
    complexity="O(N) in the size of the hash",
)
def hvals(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return [] if value is None else list(value.fields.values())


@command(
    "hdel",
    -3,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Removes fields from a hash, and the key with its last field; replies how many were removed.",
    since="2.0.0",
    complexity="O(N) in the fields given",
)
def hdel(ctx: Context, argv: list[bytes]) -> Any:
    db = ctx.client.db
    keyspace = ctx.keyspace
    key = argv[1]
    value = keyspace.typed(db, key, "hash")
    if value is None:
        return 0
    fields = value.fields
    present = [field for field in dict.fromkeys(argv[2:]) if field in fields]
    if not present:
        return 0
    if len(present) == len(fields):
        keyspace.delete(db, key)  # one record for the whole change: the key goes with its last field
    else:
        value.delete_many(present)
        keyspace.touch(db, key)
    return len(present)


@command(
    "hexists",
    3,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies 1 if a hash has the field, else 0.",
    since="2.0.0",
)
def hexists(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return int(value is not None and argv[2] in value.fields)


@command(
    "hlen",
    2,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with the number of fields of a hash.",
    since="2.0.0",
)
def hlen(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return 0 if value is None else len(value.fields)


@command(
    "hstrlen",
    3,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with the length of the value of a field of a hash (0 if missing).",
    since="3.2.0",
)
def hstrlen(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    found = None if value is None else value.fields.get(argv[2])
    return 0 if found is None else len(found)


@command(
    "hincrby",
    4,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Adds an integer to the integer value of a field of a hash (missing fields count as 0).",
    since="2.0.0",
)
def hincrby(ctx: Context, argv: list[bytes]) -> Any:
    increment = parse_int(argv[3])
    value = _get(ctx, argv[1])
    current = 0
    found = None if value is None else value.fields.get(argv[2])
    if found is not None:
        parsed = try_int(found)
        if parsed is None:
            raise CommandError(HASH_VALUE_NOT_INTEGER)
        current = parsed
    result = current + increment
    if not _LLONG_MIN <= result <= _LLONG_MAX:
        raise CommandError(errors.INCR_OVERFLOW)
    _set(ctx, argv[1], [argv[2], str(result).encode()])
    return result


@command(
    "hincrbyfloat",
    4,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Adds a float to the value of a field of a hash, computed and printed as Redis's long double.",
    since="2.6.0",
)
def hincrbyfloat(ctx: Context, argv: list[bytes]) -> Any:
    increment = floats.parse(argv[3])  # the increment is checked before the key is looked at
    if increment is None:
        raise CommandError(errors.NOT_A_FLOAT)
    if not floats.is_finite(increment):
        raise CommandError(INCREMENT_NAN_OR_INFINITY)
    value = _get(ctx, argv[1])
    found = None if value is None else value.fields.get(argv[2])
    current = floats.parse(b"0" if found is None else found)
    if current is None:
        raise CommandError(HASH_VALUE_NOT_FLOAT)
    total = floats.add(current, increment)
    if not floats.is_finite(total):
        raise CommandError(errors.NAN_OR_INFINITY)
    text = floats.to_text(total)  # stored as printed, as Redis does (and journaled so: replay never adds)
    _set(ctx, argv[1], [argv[2], text])
    return text


def _field_then_value(pair: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    return pair


def _field_value_pair(pair: tuple[bytes, bytes]) -> tuple[list[bytes]]:
    return ([pair[0], pair[1]],)


@command(
    "hrandfield",
    -2,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("WITHVALUES",),
    summary="Replies with random fields of a hash (distinct for a positive count, repeating for a negative one).",
    since="6.2.0",
    complexity="O(N) in the size of the hash, plus the count",
)
def hrandfield(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        value = _get(ctx, argv[1])
        if value is None:
            return None
        fields = value.fields
        return next(islice(fields, random.randrange(len(fields)), None))
    count = parse_int(argv[2])
    if count == _LLONG_MIN:
        raise CommandError(COUNT_OUT_OF_RANGE)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withvalues"):
        raise CommandError(errors.SYNTAX)
    with_values = len(argv) == 4
    if with_values and not -_WITHVALUES_MAX <= count <= _WITHVALUES_MAX:
        raise CommandError(WITHVALUES_COUNT_OUT_OF_RANGE)
    value = _get(ctx, argv[1])
    if value is None or count == 0:
        return []
    fields = value.fields
    if -count > STREAMED_PICKS:
        if not with_values:
            return streamed_picks(fields, -count)
        if ctx.client.protocol == 2:
            return streamed_picks(fields.items(), -count, _field_then_value, 2)
        return streamed_picks(fields.items(), -count, _field_value_pair, items=True)
    if count < 0 or count == 1:  # with repetition (a single pick is the same either way)
        chosen = random.choices(list(fields), k=abs(count))
    elif count >= len(fields):
        chosen = list(fields)
    else:  # distinct fields, in the hash's order
        keys = list(fields)
        chosen = [keys[index] for index in sorted(random.sample(range(len(keys)), count))]
    if not with_values:
        return chosen
    if ctx.client.protocol == 2:
        return [item for field in chosen for item in (field, fields[field])]
    return [[field, fields[field]] for field in chosen]


@command(
    "hscan",
    -3,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("MATCH", "COUNT"),
    summary="Walks the fields and values of a hash a batch at a time with a cursor, optionally filtered.",
    since="2.8.0",
    complexity="O(1) per call for a small hash (all of it at once); O(N) per call for a large one",
)
def hscan(ctx: Context, argv: list[bytes]) -> Any:
    cursor = parse_scan_cursor(argv[2])
    value = _get(ctx, argv[1])
    if value is None:
        return [b"0", []]
    count, pattern, _ = parse_scan_options(argv, 3, with_type=False)
    next_cursor, batch = value.scan(cursor, count)
    fields = value.fields
    if pattern is not None and pattern != b"*":
        match = compile_glob(pattern)
        batch = [field for field in batch if match(field)]
    return [str(next_cursor).encode(), [item for field in batch for item in (field, fields[field])]]
