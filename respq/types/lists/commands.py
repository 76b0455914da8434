"""List commands with Redis 7.0 semantics over the storage engine's ListLog."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from respq import errors
from respq.blocking import Block
from respq.commands.args import parse_int, parse_timeout
from respq.commands.context import Context
from respq.commands.table import command, run_of
from respq.errors import CommandError
from respq.replies import NULL_ARRAY, OK, ErrorReply, StreamedArray
from respq.storage.errors import CorruptionError, StorageError, StorageReadError
from respq.types.lists.errors import (
    COUNT_NEGATIVE,
    COUNT_NOT_POSITIVE,
    MAXLEN_NEGATIVE,
    NUMKEYS_NOT_POSITIVE,
    RANK_ZERO,
)
from respq.types.lists.model import LEFT, RIGHT, Side, push_keys

if TYPE_CHECKING:
    from respq.keyspace import Keyspace
    from respq.types.lists.model import ListLog

G = "list"

_SIDES = {b"LEFT": LEFT, b"RIGHT": RIGHT}
_LLONG_MIN = -(1 << 63)
STREAMED_RANGE = 1024  # LRANGE replies with more elements are streamed rather than built whole


def _get(ctx: Context, key: bytes) -> ListLog | None:
    return ctx.keyspace.typed(ctx.client.db, key, "list")


def _push_keys(keyspace: Keyspace, db: int, side: Side, pushes: list[tuple[bytes, list[bytes]]]) -> list[int | None]:
    """LPUSH/RPUSH of each ``(key, values)`` in order, creating missing lists: each list's length after its push,
    None for a key of another type (nothing pushed there). A storage failure after some pushes ends the list before
    the call it hit (a failure before any is raised). No client may be blocked on one of the keys: nobody is
    signalled."""
    engine = keyspace.engine
    results: list[int | None] | None = push_keys(engine, db, side, pushes)  # type: ignore[assignment]
    if results is None:  # a key with an expiry (perhaps due) or of another type: look at each first
        fits = [entry is None or entry.type == "list" for entry in (keyspace.lookup(db, key) for key, _ in pushes)]
        fitting = [push for push, fit in zip(pushes, fits, strict=True) if fit]
        pushed = iter(push_keys(engine, db, side, fitting, checked=True))  # type: ignore[arg-type]
        results = []
        for fit in fits:
            length = next(pushed, None) if fit else None
            if fit and length is None:
                break  # that push failed: the run ends before it
            results.append(length)
    list_counts = keyspace.stats.list_counts
    if list_counts:  # only lists popped from since start are counted (Stats.list_counts)
        for (key, values), length in zip(pushes, results, strict=False):  # results may stop early
            counts = list_counts.get((db, key)) if length is not None else None
            if counts is not None:
                counts[0] += len(values)
    if keyspace.watchers:
        for (key, _), length in zip(pushes, results, strict=False):
            if length is not None:
                keyspace.touch(db, key)
    return results


def _parse_side(arg: bytes) -> Side:
    side = _SIDES.get(arg.upper())
    if side is None:
        raise CommandError(errors.SYNTAX)
    return side


def _changed(ctx: Context, key: bytes) -> None:
    ctx.keyspace.touch(ctx.client.db, key)


def _popped(ctx: Context, key: bytes, value: ListLog, count: int = 0) -> None:
    """After ``count`` values were popped from (or others removed from) the list at ``key``."""
    client = ctx.client
    keyspace = ctx.keyspace
    if count:
        counts = keyspace.stats.list_counts.get((client.db, key))  # Stats.count_list inline: every pop's path
        if counts is not None:
            counts[1] += count
        else:
            keyspace.stats.count_list(client.db, key, 0, count)
    keyspace.delete_if_empty(client.db, key, value)
    keyspace.touch(client.db, key)


def _push(ctx: Context, key: bytes, values: list[bytes], side: Side, *, only_existing: bool) -> int:
    client = ctx.client
    keyspace = ctx.keyspace
    value = keyspace.typed(client.db, key, "list")
    if value is not None:
        length = value.push(side, values)
        counts = keyspace.stats.list_counts.get((client.db, key))  # Stats.count_list inline: every push's path
        if counts is not None:
            counts[0] += len(values)
        keyspace.touch(client.db, key)
    elif only_existing:
        return 0
    else:
        length = _push_keys(keyspace, client.db, side, [(key, values)])[0]  # type: ignore[assignment]
    keyspace.signal_ready(client.db, key)
    return length


@command(
    "lpush",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Adds elements at the head of a list, creating the list if needed.",
    since="1.0.0",
    complexity="O(1) per element, appended to the list's files",
)
def lpush(ctx: Context, argv: list[bytes]) -> Any:
    return _push(ctx, argv[1], argv[2:], LEFT, only_existing=False)


@command(
    "rpush",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Adds elements at the tail of a list, creating the list if needed.",
    since="1.0.0",
    complexity="O(1) per element, appended to the list's files",
)
def rpush(ctx: Context, argv: list[bytes]) -> Any:
    return _push(ctx, argv[1], argv[2:], RIGHT, only_existing=False)


def _is_push(argv: list[bytes]) -> bool:
    return len(argv) >= 3


def _push_run(ctx: Context, key: bytes, argvs: list[list[bytes]], side: Side) -> list[Any]:
    """Pipelined pushes to one list: one push of all their values; each call's reply is the length after it."""
    if ctx.engine.maxmemory and not ctx.engine.on_disk:  # values count towards maxmemory: checked before each call
        return []
    values = [value for argv in argvs for value in argv[2:]]
    try:
        length = _push(ctx, key, values, side, only_existing=False)
    except (CommandError, StorageError):  # refused before anything changed: each call runs alone and says why
        return []
    replies = []
    length -= len(values)
    for argv in argvs:
        length += len(argv) - 2
        replies.append(length)
    return replies


def _push_spread(ctx: Context, argvs: list[list[bytes]], side: Side) -> list[Any]:
    """Pipelined pushes to different lists, each answering as LPUSH/RPUSH alone would, journaled in one go. A call on
    a key of another type fails alone; a storage failure ends the run before the call it hit, which then runs alone
    and answers for itself. ``execute_run`` ends the run before a key a client is blocked on, so nobody needs
    signalling."""
    if ctx.engine.maxmemory and not ctx.engine.on_disk:  # values count towards maxmemory: checked before each call
        return []
    pushes = [(argv[1], argv[2:]) for argv in argvs]
    try:
        lengths = _push_keys(ctx.keyspace, ctx.client.db, side, pushes)
    except StorageError:
        return []
    return [ErrorReply(errors.WRONGTYPE) if length is None else length for length in lengths]


run_of("lpush", _is_push, partial(_push_spread, side=LEFT))(partial(_push_run, side=LEFT))
run_of("rpush", _is_push, partial(_push_spread, side=RIGHT))(partial(_push_run, side=RIGHT))


@command(
    "lpushx",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Adds elements at the head of a list, only if the list already exists.",
    since="2.2.0",
    complexity="O(1) per element",
)
def lpushx(ctx: Context, argv: list[bytes]) -> Any:
    return _push(ctx, argv[1], argv[2:], LEFT, only_existing=True)


@command(
    "rpushx",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Adds elements at the tail of a list, only if the list already exists.",
    since="2.2.0",
    complexity="O(1) per element",
)
def rpushx(ctx: Context, argv: list[bytes]) -> Any:
    return _push(ctx, argv[1], argv[2:], RIGHT, only_existing=True)


def _pop(ctx: Context, argv: list[bytes], side: Side) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.wrong_arity(argv[0].lower()))
    count: int | None = None
    if len(argv) == 3:
        count = parse_int(argv[2], errors.MUST_BE_POSITIVE)
        if count < 0:
            raise CommandError(errors.MUST_BE_POSITIVE)
    value = _get(ctx, argv[1])
    if value is None:
        return None if count is None else NULL_ARRAY
    if count == 0:
        return []
    items = value.pop(side, 1 if count is None else count)
    _popped(ctx, argv[1], value, len(items))
    return items[0] if count is None else items


@command(
    "lpop",
    -2,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Removes and returns one or more elements from the head of a list.",
    since="1.0.0",
    complexity="O(1) per element popped, each one record read from disk",
)
def lpop(ctx: Context, argv: list[bytes]) -> Any:
    return _pop(ctx, argv, LEFT)


@command(
    "rpop",
    -2,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Removes and returns one or more elements from the tail of a list.",
    since="1.0.0",
    complexity="O(1) per element popped, each one record read from disk",
)
def rpop(ctx: Context, argv: list[bytes]) -> Any:
    return _pop(ctx, argv, RIGHT)


def _is_single_pop(argv: list[bytes]) -> bool:
    return len(argv) == 2


def _pop_run(ctx: Context, key: bytes, argvs: list[list[bytes]], side: Side) -> list[Any]:
    """Pipelined single-value pops of one list: one pop of as many values; calls past the list's end get nil."""
    try:
        value = _get(ctx, key)
        if value is None:
            return [None] * len(argvs)
        items: list[Any] = value.pop(side, len(argvs))
    except CommandError:
        return []
    except (CorruptionError, StorageReadError) as error:  # reported by the call that met it, as a count pop would
        return [ErrorReply(errors.corrupt_data(str(error)))]
    except StorageError:  # refused before anything changed
        return []
    _popped(ctx, key, value, len(items))
    return items + [None] * (len(argvs) - len(items))


run_of("lpop", _is_single_pop)(partial(_pop_run, side=LEFT))
run_of("rpop", _is_single_pop)(partial(_pop_run, side=RIGHT))


@command("llen", 2, "readonly fast", (1, 1, 1), group=G, summary="Reports how many elements a list has.", since="1.0.0")
def llen(ctx: Context, argv: list[bytes]) -> Any:
    value = _get(ctx, argv[1])
    return 0 if value is None else len(value)


@command(
    "lrange",
    4,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Returns the elements between two indexes, inclusive; negative ones count from the tail.",
    since="1.0.0",
    complexity="O(S+N): S records skipped from the nearer end to reach start, N records returned",
)
def lrange(ctx: Context, argv: list[bytes]) -> Any:
    start = parse_int(argv[2])
    stop = parse_int(argv[3])
    value = _get(ctx, argv[1])
    if value is None:
        return []
    first, last = value.range_bounds(start, stop)
    if last - first < STREAMED_RANGE:
        return list(value.range(start, stop))
    # Sent while it is read, from a snapshot: the list may change before the last value goes out.
    snapshot = value.snapshot(start, stop)
    return StreamedArray(len(snapshot), iter(snapshot), snapshot.close)


@command(
    "lindex",
    3,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Returns the element at an index; negative indexes count from the tail.",
    since="1.0.0",
    complexity="O(N) in the index's distance from the nearer end (records skipped on disk)",
)
def lindex(ctx: Context, argv: list[bytes]) -> Any:
    index = parse_int(argv[2])
    value = _get(ctx, argv[1])
    if value is None:
        return None
    return value.index(index)


@command(
    "lset",
    4,
    "write denyoom",
    (1, 1, 1),
    group=G,
    summary="Replaces the element at an index with a new value.",
    since="1.0.0",
    complexity="O(N) in the index's distance from the nearer end; writes one record, rarely rewrites the list",
)
def lset(ctx: Context, argv: list[bytes]) -> Any:
    index = parse_int(argv[2])
    value = _get(ctx, argv[1])
    if value is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if not value.set(index, argv[3]):
        raise CommandError(errors.INDEX_OUT_OF_RANGE)
    _changed(ctx, argv[1])
    return OK


@command(
    "linsert",
    5,
    "write denyoom",
    (1, 1, 1),
    group=G,
    options=("BEFORE", "AFTER"),
    summary="Inserts an element just before or after the first occurrence of a pivot value.",
    since="2.2.0",
    complexity="O(N) in the pivot's position; writes one record, rarely rewrites the list",
)
def linsert(ctx: Context, argv: list[bytes]) -> Any:
    where = argv[2].upper()
    if where not in (b"BEFORE", b"AFTER"):
        raise CommandError(errors.SYNTAX)
    value = _get(ctx, argv[1])
    if value is None:
        return 0
    length = value.insert(argv[3], argv[4], where == b"BEFORE")
    if length > 0:
        _changed(ctx, argv[1])
    return length


@command(
    "lrem",
    4,
    "write",
    (1, 1, 1),
    group=G,
    summary="Removes up to COUNT elements equal to a value, scanning from the head or the tail.",
    since="1.0.0",
    complexity="O(N) in the list length; rewrites the list on disk when something matches",
)
def lrem(ctx: Context, argv: list[bytes]) -> Any:
    count = parse_int(argv[2])
    value = _get(ctx, argv[1])
    if value is None:
        return 0
    removed = value.remove(count, argv[3])
    if removed:
        _popped(ctx, argv[1], value)
    return removed


@command(
    "ltrim",
    4,
    "write",
    (1, 1, 1),
    group=G,
    summary="Keeps only the elements between two indexes and drops the rest.",
    since="1.0.0",
    complexity="O(S) in records skipped to reach the two cut points; dropped elements are never read",
)
def ltrim(ctx: Context, argv: list[bytes]) -> Any:
    start = parse_int(argv[2])
    stop = parse_int(argv[3])
    value = _get(ctx, argv[1])
    if value is None:
        return OK
    value.trim(start, stop)
    _popped(ctx, argv[1], value)
    return OK


@command(
    "lpos",
    -3,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("RANK", "COUNT", "MAXLEN"),
    summary="Finds the indexes of elements equal to a value, with RANK, COUNT and MAXLEN limits.",
    since="6.0.6",
    complexity="O(N) in the elements scanned, each read from disk",
)
def lpos(ctx: Context, argv: list[bytes]) -> Any:
    rank, count, maxlen = 1, None, 0
    single_match = False
    i = 3
    while i < len(argv):
        option = argv[i].upper()
        if i + 1 >= len(argv):
            raise CommandError(errors.SYNTAX)
        if option == b"RANK":
            rank = parse_int(argv[i + 1])
            if rank == 0:
                raise CommandError(RANK_ZERO)
            if rank == _LLONG_MIN:
                # Redis negates the rank in 64 bits: LLONG_MIN stays negative and acts as -1 with room for one match.
                rank, single_match = -1, True
        elif option == b"COUNT":
            count = parse_int(argv[i + 1])
            if count < 0:
                raise CommandError(COUNT_NEGATIVE)
        elif option == b"MAXLEN":
            maxlen = parse_int(argv[i + 1])
            if maxlen < 0:
                raise CommandError(MAXLEN_NEGATIVE)
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    value = _get(ctx, argv[1])
    if value is None:
        return None if count is None else []
    found = value.positions(argv[2], rank=rank, count=1 if count is None or single_match else count, maxlen=maxlen)
    if count is None:
        return found[0] if found else None
    return found


# ---- moves --------------------------------------------------------------------------------------------------------
def _move(ctx: Context, src: bytes, dst: bytes, wherefrom: Side, whereto: Side) -> Any:
    """LMOVE's core: None if the source is empty. Atomic in the journal, so a crash leaves the element in one list."""
    client = ctx.client
    keyspace = ctx.keyspace
    source = _get(ctx, src)
    if source is None:
        return None
    destination = _get(ctx, dst)  # WRONGTYPE before anything moves
    element = source.index(0 if wherefrom == LEFT else -1)
    # Push, then pop: if the disk refuses the push, nothing has left the source yet.
    with ctx.engine.atomic():
        created = destination is None
        if created:
            destination = keyspace.create(client.db, dst, "list")
        try:
            destination.push(whereto, [element])
        except StorageError:
            if created:
                keyspace.engine.delete(client.db, dst)  # Redis has no empty lists
            raise
        source.pop(wherefrom, 1)
    keyspace.stats.count_list(client.db, dst, 1, 0)
    _popped(ctx, src, source, 1)
    keyspace.touch(client.db, dst)
    keyspace.signal_ready(client.db, dst)
    return element


@command(
    "lmove",
    5,
    "write denyoom",
    (1, 2, 1),
    group=G,
    options=("LEFT", "RIGHT"),
    summary="Moves an element from an end of one list to an end of another and returns it.",
    since="6.2.0",
)
def lmove(ctx: Context, argv: list[bytes]) -> Any:
    wherefrom, whereto = _parse_side(argv[3]), _parse_side(argv[4])
    return _move(ctx, argv[1], argv[2], wherefrom, whereto)


@command(
    "rpoplpush",
    3,
    "write denyoom",
    (1, 2, 1),
    group=G,
    summary="Moves the tail element of one list to the head of another and returns it.",
    since="1.2.0",
)
def rpoplpush(ctx: Context, argv: list[bytes]) -> Any:
    return _move(ctx, argv[1], argv[2], RIGHT, LEFT)


def _parse_mpop(argv: list[bytes], first: int) -> tuple[list[bytes], Side, int]:
    """LMPOP/BLMPOP arguments from ``numkeys`` at argv[first]: keys, side, count."""
    numkeys = try_numkeys(argv[first])
    keys_end = first + 1 + numkeys
    if numkeys > len(argv) - first - 2:
        raise CommandError(errors.SYNTAX)
    keys = argv[first + 1 : keys_end]
    side = _parse_side(argv[keys_end])
    count = 1
    i = keys_end + 1
    seen_count = False
    while i < len(argv):
        if argv[i].upper() == b"COUNT" and i + 1 < len(argv) and not seen_count:
            count = parse_int(argv[i + 1], COUNT_NOT_POSITIVE)
            if count <= 0:
                raise CommandError(COUNT_NOT_POSITIVE)
            seen_count = True
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    return keys, side, count


def numkeys_positions(argv: list[bytes], at: int) -> list[int]:
    """Key positions of a ``numkeys key [key ...]`` command, for COMMAND GETKEYS."""
    numkeys = try_numkeys(argv[at])
    if at + numkeys >= len(argv):
        raise CommandError(errors.SYNTAX)
    return list(range(at + 1, at + 1 + numkeys))


def try_numkeys(arg: bytes) -> int:
    numkeys = parse_int(arg, NUMKEYS_NOT_POSITIVE)
    if numkeys <= 0:
        raise CommandError(NUMKEYS_NOT_POSITIVE)
    return numkeys


def _mpop_from(ctx: Context, keys: list[bytes], side: Side, count: int) -> Any:
    for key in keys:
        value = _get(ctx, key)
        if value is not None and len(value):
            items = value.pop(side, count)
            _popped(ctx, key, value, len(items))
            return [key, items]
    return None


@command(
    "lmpop",
    -4,
    "write movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=lambda argv: numkeys_positions(argv, 1),
    options=("LEFT", "RIGHT", "COUNT"),
    summary="Pops one or more elements from the first non-empty list among the given keys.",
    since="7.0.0",
    complexity="O(N+M): N keys checked, M elements popped",
)
def lmpop(ctx: Context, argv: list[bytes]) -> Any:
    keys, side, count = _parse_mpop(argv, 1)
    reply = _mpop_from(ctx, keys, side, count)
    return NULL_ARRAY if reply is None else reply


# ---- blocking -----------------------------------------------------------------------------------------------------
def _first_nonempty(ctx: Context, keys: list[bytes]) -> bytes | None:
    for key in keys:
        value = _get(ctx, key)  # WRONGTYPE on the first key holding another type, as Redis checks in order
        if value is not None and len(value):
            return key
    return None


def _bpop(ctx: Context, argv: list[bytes], side: Side) -> Any:
    timeout = parse_timeout(argv[-1])
    keys = argv[1:-1]

    def pop_from(key: bytes) -> Any:
        value = _get(ctx, key)
        if value is None or not len(value):
            return None
        element = value.pop(side, 1)[0]
        _popped(ctx, key, value, 1)
        return [key, element]

    ready = _first_nonempty(ctx, keys)
    if ready is not None:
        return pop_from(ready)
    return Block(keys, timeout, lambda key: _safe(ctx, pop_from, key), NULL_ARRAY)


def _safe(ctx: Context, function: Any, key: bytes) -> Any:
    """A waiter's turn after ``key`` was signalled. As in Redis, list waiters are served from a list only: a key
    that holds another type by then (a list replaced by SET in the same transaction, a stream COPY or RENAME put
    there) leaves them waiting. An error of the move itself (BLMOVE to a key of another type) is the waiter's
    reply."""
    entry = ctx.keyspace.lookup(ctx.client.db, key)
    if entry is None or entry.type != "list":
        return None
    try:
        return function(key)
    except CommandError as error:
        return ErrorReply(error.message)


@command(
    "blpop",
    -3,
    "write noscript blocking",
    (1, -2, 1),
    group=G,
    summary="Pops the head of the first non-empty list given, waiting while all are empty.",
    since="2.0.0",
    complexity="O(N) in the keys given",
)
def blpop(ctx: Context, argv: list[bytes]) -> Any:
    return _bpop(ctx, argv, LEFT)


@command(
    "brpop",
    -3,
    "write noscript blocking",
    (1, -2, 1),
    group=G,
    summary="Pops the tail of the first non-empty list given, waiting while all are empty.",
    since="2.0.0",
    complexity="O(N) in the keys given",
)
def brpop(ctx: Context, argv: list[bytes]) -> Any:
    return _bpop(ctx, argv, RIGHT)


def _bmove(ctx: Context, src: bytes, dst: bytes, wherefrom: Side, whereto: Side, timeout_arg: bytes) -> Any:
    timeout = parse_timeout(timeout_arg)
    element = _move(ctx, src, dst, wherefrom, whereto)
    if element is not None:
        return element

    def retry(key: bytes) -> Any:
        return _move(ctx, src, dst, wherefrom, whereto)

    return Block([src], timeout, lambda key: _safe(ctx, retry, key), NULL_ARRAY)


@command(
    "blmove",
    6,
    "write denyoom noscript blocking",
    (1, 2, 1),
    group=G,
    options=("LEFT", "RIGHT"),
    summary="Moves an element between lists as LMOVE does, waiting while the source is empty.",
    since="6.2.0",
)
def blmove(ctx: Context, argv: list[bytes]) -> Any:
    wherefrom, whereto = _parse_side(argv[3]), _parse_side(argv[4])
    return _bmove(ctx, argv[1], argv[2], wherefrom, whereto, argv[5])


@command(
    "brpoplpush",
    4,
    "write denyoom noscript blocking",
    (1, 2, 1),
    group=G,
    summary="Moves an element as RPOPLPUSH does, waiting while the source list is empty.",
    since="2.2.0",
)
def brpoplpush(ctx: Context, argv: list[bytes]) -> Any:
    return _bmove(ctx, argv[1], argv[2], RIGHT, LEFT, argv[3])


@command(
    "blmpop",
    -5,
    "write blocking movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=lambda argv: numkeys_positions(argv, 2),
    options=("LEFT", "RIGHT", "COUNT"),
    summary="Pops elements from the first non-empty list as LMPOP does, waiting while all are empty.",
    since="7.0.0",
    complexity="O(N+M): N keys checked, M elements popped",
)
def blmpop(ctx: Context, argv: list[bytes]) -> Any:
    timeout = parse_timeout(argv[1])
    keys, side, count = _parse_mpop(argv, 2)
    reply = _mpop_from(ctx, keys, side, count)
    if reply is not None:
        return reply

    def retry(key: bytes) -> Any:
        return _mpop_from(ctx, [key], side, count)

    return Block(keys, timeout, lambda key: _safe(ctx, retry, key), NULL_ARRAY)
