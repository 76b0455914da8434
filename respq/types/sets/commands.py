"""Set commands with Redis 7.0 semantics (t_set.c) over the in-memory, journaled SetValue.

Replies Redis sends as sets (SMEMBERS, SINTER, SUNION, SDIFF, SPOP with a count) are ``SetReply``: RESP3 ``~``.
A set Redis would hold as an intset answers in numeric order, as Redis's does; a hashtable's order is its own.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from respq import errors
from respq.commands.args import parse_int
from respq.commands.context import Context
from respq.commands.keys import parse_scan_cursor, parse_scan_options
from respq.commands.randoms import STREAMED_PICKS, streamed_picks
from respq.commands.table import Handler, command, run_of
from respq.errors import CommandError
from respq.glob import compile_glob
from respq.replies import ErrorReply, SetReply
from respq.storage.errors import StorageError
from respq.types.hashes.errors import COUNT_OUT_OF_RANGE
from respq.types.lists.commands import numkeys_positions, try_numkeys
from respq.types.sets.errors import LIMIT_NEGATIVE, NUMKEYS_TOO_MANY
from respq.types.sets.model import fits_intset, new_set

if TYPE_CHECKING:
    from respq.types.sets.model import SetValue

G = "set"
_LLONG_MIN, _LLONG_MAX = -(1 << 63), (1 << 63) - 1
SPOP_MOVE_STRATEGY_MUL = 5  # Redis's: SPOP keeps the rest in a new set when it takes nearly all


def _get(ctx: Context, key: bytes) -> SetValue | None:
    return ctx.keyspace.typed(ctx.client.db, key, "set")  # type: ignore[no-any-return]


def _max_intset(ctx: Context) -> int:
    """set-max-intset-entries as configured now (it decides the encoding)."""
    return ctx.config.values["set-max-intset-entries"]  # type: ignore[no-any-return]


def _sets(ctx: Context, keys: list[bytes]) -> list[SetValue | None]:
    """Each key's set (None where missing), WRONGTYPE for the first key holding another type, as Redis checks."""
    return [_get(ctx, key) for key in keys]


def _ordered(members: list[bytes], max_entries: int) -> list[bytes]:
    """A new set's members in the order Redis would read them from it: numeric for an intset."""
    if fits_intset(members, len(members), max_entries):
        return sorted(members, key=int)
    return members


def _store(ctx: Context, key: bytes, members: list[bytes]) -> int:
    """The STORE forms: ``key`` becomes a set of ``members`` (distinct), whatever it held (its expiry gone), or is
    deleted when there are none; one atomic block, so a crash keeps the old value or the whole new set."""
    keyspace, db = ctx.keyspace, ctx.client.db
    if not members:
        keyspace.delete(db, key)
        return 0
    engine = ctx.engine
    with engine.atomic():
        if engine.maxdisk:  # refused before anything changes
            engine.before_write(sum(map(len, members)) + 4 * len(members) + len(key) + 64)
        stored: SetValue = keyspace.replace(db, key, "set")
        stored.add_many(members, _max_intset(ctx))
    return len(members)


@command(
    "sadd",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Adds members to a set, creating it if needed; replies how many were not members yet.",
    since="1.0.0",
    complexity="O(N) in the members given",
)
def sadd(ctx: Context, argv: list[bytes]) -> Any:
    db = ctx.client.db
    key = argv[1]
    value = _get(ctx, key)
    if value is None:
        added = len(new_set(ctx.engine, db, key, dict.fromkeys(argv[2:]).keys(), _max_intset(ctx)))
    else:
        added = value.add_many(argv[2:], _max_intset(ctx))
    if added:
        ctx.keyspace.touch(db, key)
    return added


def _spread(handler: Handler, *, adds_data: bool) -> Any:
    """Spread handler for pipelined calls of a set command on differing keys (``dispatch.execute_run``): each call
    executed as it would be alone, the generic checks and the bookkeeping done once for all. A call's own error is
    its reply; a storage failure ends the run before the call it hit, which then runs alone and answers for itself,
    and so does going over maxmemory before a call that ``adds_data`` (Redis checks it before every such command)."""

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

    return spread


def _sadd_run(ctx: Context, key: bytes, argvs: list[list[bytes]]) -> list[Any]:
    """Pipelined SADDs of one key: one lookup and one journal record for all their members (the set's encoding
    after them is the same either way: conversions only follow from the members added and the final size); each
    call's reply counts what was new when it ran. Under maxmemory each call runs alone, as Redis checks each."""
    if ctx.engine.maxmemory:
        return []
    try:
        value = _get(ctx, key)
    except CommandError:
        return []  # WRONGTYPE: each call answers alone
    holds = value.__contains__ if value is not None else None
    seen: set[bytes] = set()
    replies = []
    members: list[bytes] = []
    for argv in argvs:
        given = dict.fromkeys(argv[2:])
        new = [member for member in given if member not in seen and not (holds and holds(member))]
        seen.update(new)
        members += new
        replies.append(len(new))
    db = ctx.client.db
    try:
        if value is None:
            new_set(ctx.engine, db, key, members, _max_intset(ctx))
        elif members:
            value.add_many(members, _max_intset(ctx))
    except StorageError:
        return []  # refused before anything changed: the first call runs alone and answers for itself
    if members:
        ctx.keyspace.touch(db, key)
    return replies


@command(
    "srem",
    -3,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Removes members from a set, and the key with its last member; replies how many were removed.",
    since="1.0.0",
    complexity="O(N) in the members given",
)
def srem(ctx: Context, argv: list[bytes]) -> Any:
    db = ctx.client.db
    key = argv[1]
    value = _get(ctx, key)
    if value is None:
        return 0
    present = [member for member in dict.fromkeys(argv[2:]) if member in value]
    if not present:
        return 0
    if len(present) == len(value):
        ctx.keyspace.delete(db, key)  # one record for the whole change: the key goes with its last member
    else:
        value.remove_many(present)
        ctx.keyspace.touch(db, key)
    return len(present)


@command(
    "smembers",
    2,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Replies with every member of a set.",
    since="1.0.0",
    complexity="O(N) in the size of the set",
)
def smembers(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return SetReply([] if value is None else value.ordered())


@command(
    "sismember",
    3,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies 1 if the member is in the set, else 0.",
    since="1.0.0",
)
def sismember(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return int(value is not None and argv[2] in value)


def _sismember_run(ctx: Context, key: bytes, argvs: list[list[bytes]]) -> list[Any]:
    """Pipelined SISMEMBERs of one key: one lookup, then each member (a WRONGTYPE key: each call answers alone)."""
    try:
        value = _get(ctx, key)
    except CommandError:
        return []
    if value is None:
        return [0] * len(argvs)
    holds = value.__contains__
    return [int(holds(argv[2])) for argv in argvs]


run_of("sadd", lambda argv: len(argv) >= 3, _spread(sadd, adds_data=True))(_sadd_run)
run_of("sismember", lambda argv: len(argv) == 3, _spread(sismember, adds_data=False))(_sismember_run)


@command(
    "smismember",
    -3,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies 1 or 0 for each member given: whether it is in the set.",
    since="6.2.0",
    complexity="O(N) in the members given",
)
def smismember(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    if value is None:
        return [0] * (len(argv) - 2)
    holds = value.__contains__
    return [int(holds(member)) for member in argv[2:]]


@command(
    "scard",
    2,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with the number of members of a set.",
    since="1.0.0",
)
def scard(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return 0 if value is None else len(value)


@command(
    "spop",
    -2,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Removes and replies with random members of a set (one, or up to a count).",
    since="1.0.0",
    complexity="O(1) without a count, else O(N) in the count (O(N) in the set's size for large sets)",
)
def spop(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) == 3:
        return _spop_count(ctx, argv)
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    db = ctx.client.db
    key = argv[1]
    value = _get(ctx, key)
    if value is None:
        return None
    member = value.pick()
    if len(value) == 1:
        ctx.keyspace.delete(db, key)
    else:
        value.remove_many([member])
        ctx.keyspace.touch(db, key)
    return member


def _spop_count(ctx: Context, argv: list[bytes]) -> Any:
    count = parse_int(argv[2], errors.MUST_BE_POSITIVE)
    if count < 0:
        raise CommandError(errors.MUST_BE_POSITIVE)
    db = ctx.client.db
    key = argv[1]
    value = _get(ctx, key)
    if value is None or count == 0:
        return SetReply([])
    size = len(value)
    if count >= size:  # the whole set, in its order; the key goes
        popped = value.ordered()
        ctx.keyspace.delete(db, key)
        return SetReply(popped)
    remaining = size - count
    members = list(value.members)
    if remaining * SPOP_MOVE_STRATEGY_MUL > count:
        popped = random.sample(members, count)
        value.remove_many(popped)
    else:
        # Redis keeps the rest in a new set, built member by member: an intset again if they all fit one.
        kept = set(random.sample(members, remaining))
        popped = [member for member in value if member not in kept]
        value.remove_many(popped, hashtable=not fits_intset(kept, remaining, _max_intset(ctx)))
    ctx.keyspace.touch(db, key)
    return SetReply(popped)


@command(
    "srandmember",
    -2,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Replies with random members of a set (distinct for a positive count, repeating for a negative one).",
    since="1.0.0",
    complexity="O(1) without a count, else O(N) in the count (O(N) in the set's size for large sets)",
)
def srandmember(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2:
        value = _get(ctx, argv[1])
        return None if value is None else value.pick()
    count = parse_int(argv[2])
    if count == _LLONG_MIN:
        raise CommandError(COUNT_OUT_OF_RANGE)
    value = _get(ctx, argv[1])
    if value is None or count == 0:
        return []
    if count < 0 or count == 1:  # with repetition (a single pick is the same either way)
        if abs(count) == 1:
            return [value.pick()]
        if -count > STREAMED_PICKS:
            return streamed_picks(value.members, -count)
        return random.choices(list(value.members), k=-count)
    if count >= len(value):
        return value.ordered()
    return random.sample(list(value.members), count)


@command(
    "smove",
    4,
    "write fast",
    (1, 2, 1),
    group=G,
    summary="Moves a member from one set to another (created if needed); replies 1 if it was moved, else 0.",
    since="1.0.0",
)
def smove(ctx: Context, argv: list[bytes]) -> Any:
    db = ctx.client.db
    keyspace = ctx.keyspace
    src_key, dst_key, member = argv[1], argv[2], argv[3]
    src = _get(ctx, src_key)
    if src is None:
        return 0  # before the destination's type is looked at, as in Redis
    dst = _get(ctx, dst_key)
    if src is dst:
        return int(member in src)
    if member not in src:
        return 0
    engine = ctx.engine
    with engine.atomic():  # both keys change, or neither (a crash, a full disk)
        if engine.maxdisk:
            engine.before_write(2 * len(member) + len(dst_key) + 128)
        if len(src) == 1:
            keyspace.delete(db, src_key)
        else:
            src.remove_many([member])
        if dst is None:
            new_set(engine, db, dst_key, [member], _max_intset(ctx))
        else:
            dst.add_many([member], _max_intset(ctx))
    keyspace.touch(db, src_key)
    keyspace.touch(db, dst_key)
    return 1


def _inter(ctx: Context, keys: list[bytes], limit: int = 0) -> list[bytes]:
    """The members every set has, in the order of the smallest set (up to ``limit`` of them; 0: all)."""
    sets = _sets(ctx, keys)
    if any(value is None for value in sets):
        return []
    ordered = sorted(sets, key=len)  # type: ignore[arg-type]
    first, others = ordered[0], [value.__contains__ for value in ordered[1:] if value is not ordered[0]]
    found: list[bytes] = []
    assert first is not None
    for member in first:
        if all(holds(member) for holds in others):
            found.append(member)
            if len(found) == limit:
                break
    return found


@command(
    "sinter",
    -2,
    "readonly",
    (1, -1, 1),
    group=G,
    summary="Replies with the members every given set has (missing keys are empty sets).",
    since="1.0.0",
    complexity="O(N*M): N the smallest set's size, M the number of sets",
)
def sinter(ctx: Context, argv: list[bytes]) -> Any:
    return SetReply(_inter(ctx, argv[1:]))


@command(
    "sintercard",
    -3,
    "readonly movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=lambda argv: numkeys_positions(argv, 1),
    options=("LIMIT",),
    summary="Replies with the number of members every given set has, counting up to an optional limit.",
    since="7.0.0",
    complexity="O(N*M): N the smallest set's size, M the number of sets",
)
def sintercard(ctx: Context, argv: list[bytes]) -> Any:
    numkeys = try_numkeys(argv[1])
    if numkeys > len(argv) - 2:
        raise CommandError(NUMKEYS_TOO_MANY)
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].lower() == b"limit" and i + 1 < len(argv):
            limit = parse_int(argv[i + 1], LIMIT_NEGATIVE)
            if limit < 0:
                raise CommandError(LIMIT_NEGATIVE)
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    return len(_inter(ctx, argv[2 : 2 + numkeys], limit))


@command(
    "sinterstore",
    -3,
    "write denyoom",
    (1, -1, 1),
    group=G,
    summary="Stores the members every given set has as a set at the destination; replies with its size.",
    since="1.0.0",
    complexity="O(N*M): N the smallest set's size, M the number of sets",
)
def sinterstore(ctx: Context, argv: list[bytes]) -> Any:
    return _store(ctx, argv[1], _inter(ctx, argv[2:]))


def _union(ctx: Context, keys: list[bytes]) -> list[bytes]:
    found: dict[bytes, None] = {}
    for value in _sets(ctx, keys):
        if value is not None:
            found.update(dict.fromkeys(value.members))
    return list(found)


def _diff(ctx: Context, keys: list[bytes]) -> list[bytes]:
    sets = _sets(ctx, keys)
    first = sets[0]
    if first is None:
        return []
    others = [value.__contains__ for value in sets[1:] if value is not None]
    return [member for member in first.members if not any(holds(member) for holds in others)]


@command(
    "sunion",
    -2,
    "readonly",
    (1, -1, 1),
    group=G,
    summary="Replies with the members of any of the given sets.",
    since="1.0.0",
    complexity="O(N) in the members of all the sets",
)
def sunion(ctx: Context, argv: list[bytes]) -> Any:
    return SetReply(_ordered(_union(ctx, argv[1:]), _max_intset(ctx)))


@command(
    "sunionstore",
    -3,
    "write denyoom",
    (1, -1, 1),
    group=G,
    summary="Stores the members of any of the given sets as a set at the destination; replies with its size.",
    since="1.0.0",
    complexity="O(N) in the members of all the sets",
)
def sunionstore(ctx: Context, argv: list[bytes]) -> Any:
    return _store(ctx, argv[1], _union(ctx, argv[2:]))


@command(
    "sdiff",
    -2,
    "readonly",
    (1, -1, 1),
    group=G,
    summary="Replies with the members of the first set that none of the other sets has.",
    since="1.0.0",
    complexity="O(N) in the members of all the sets",
)
def sdiff(ctx: Context, argv: list[bytes]) -> Any:
    return SetReply(_ordered(_diff(ctx, argv[1:]), _max_intset(ctx)))


@command(
    "sdiffstore",
    -3,
    "write denyoom",
    (1, -1, 1),
    group=G,
    summary="Stores the members of the first set that none of the others has as a set at the destination.",
    since="1.0.0",
    complexity="O(N) in the members of all the sets",
)
def sdiffstore(ctx: Context, argv: list[bytes]) -> Any:
    return _store(ctx, argv[1], _diff(ctx, argv[2:]))


@command(
    "sscan",
    -3,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("MATCH", "COUNT"),
    summary="Walks the members of a set a batch at a time with a cursor, optionally filtered.",
    since="2.8.0",
    complexity="O(1) per call for an intset (all of it at once); O(N) per call for a hashtable",
)
def sscan(ctx: Context, argv: list[bytes]) -> Any:
    cursor = parse_scan_cursor(argv[2])
    value = _get(ctx, argv[1])
    if value is None:
        return [b"0", []]
    count, pattern, _ = parse_scan_options(argv, 3, with_type=False)
    next_cursor, batch = value.scan(cursor, count)
    if pattern is not None and pattern != b"*":
        match = compile_glob(pattern)
        batch = [member for member in batch if match(member)]
    return [str(next_cursor).encode(), batch]
