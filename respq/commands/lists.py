"""List commands with Redis 7.0 semantics over the storage engine's ListLog."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from respq import errors
from respq.blocking import Block
from respq.commands.args import parse_int, parse_timeout
from respq.commands.table import command
from respq.errors import CommandError
from respq.replies import NULL_ARRAY, OK
from respq.storage.listlog import LEFT, RIGHT, Side

if TYPE_CHECKING:
    from respq.client import Client
    from respq.storage.listlog import ListLog

G = "list"
RANK_ZERO = (
    b"ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start "
    b"from the end of the list"
)
COUNT_NEGATIVE = b"ERR COUNT can't be negative"
MAXLEN_NEGATIVE = b"ERR MAXLEN can't be negative"
NUMKEYS_NOT_POSITIVE = b"ERR numkeys should be greater than 0"
COUNT_NOT_POSITIVE = b"ERR count should be greater than 0"
_SIDES = {b"LEFT": LEFT, b"RIGHT": RIGHT}
_LLONG_MIN = -(1 << 63)


def _get(client: Client, key: bytes) -> ListLog | None:
    return client.server.keyspace.typed(client.db, key, "list")


def _parse_side(arg: bytes) -> Side:
    side = _SIDES.get(arg.upper())
    if side is None:
        raise CommandError(errors.SYNTAX)
    return side


def _changed(client: Client, key: bytes) -> None:
    client.server.keyspace.touch(client.db, key)


def _popped(client: Client, key: bytes, value: ListLog) -> None:
    keyspace = client.server.keyspace
    keyspace.delete_if_empty(client.db, key, value)
    keyspace.touch(client.db, key)


def _push(client: Client, key: bytes, values: list[bytes], side: Side, *, only_existing: bool) -> int:
    keyspace = client.server.keyspace
    value = keyspace.typed(client.db, key, "list")
    if value is None:
        if only_existing:
            return 0
        value = keyspace.create(client.db, key, "list")
    length = value.push(side, values)
    keyspace.touch(client.db, key)
    keyspace.signal_ready(client.db, key)
    return length


@command(
    "lpush",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Prepends one or more elements to a list.",
    since="1.0.0",
    complexity="O(1) for each element added",
)
def lpush(client: Client, argv: list[bytes]) -> Any:
    return _push(client, argv[1], argv[2:], LEFT, only_existing=False)


@command(
    "rpush",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Appends one or more elements to a list.",
    since="1.0.0",
    complexity="O(1) for each element added",
)
def rpush(client: Client, argv: list[bytes]) -> Any:
    return _push(client, argv[1], argv[2:], RIGHT, only_existing=False)


@command(
    "lpushx",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Prepends one or more elements to a list only when the list exists.",
    since="2.2.0",
)
def lpushx(client: Client, argv: list[bytes]) -> Any:
    return _push(client, argv[1], argv[2:], LEFT, only_existing=True)


@command(
    "rpushx",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    summary="Appends one or more elements to a list only when the list exists.",
    since="2.2.0",
)
def rpushx(client: Client, argv: list[bytes]) -> Any:
    return _push(client, argv[1], argv[2:], RIGHT, only_existing=True)


def _pop(client: Client, argv: list[bytes], side: Side) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.wrong_arity(argv[0].lower()))
    count: int | None = None
    if len(argv) == 3:
        count = parse_int(argv[2], errors.MUST_BE_POSITIVE)
        if count < 0:
            raise CommandError(errors.MUST_BE_POSITIVE)
    value = _get(client, argv[1])
    if value is None:
        return None if count is None else NULL_ARRAY
    if count == 0:
        return []
    items = value.pop(side, 1 if count is None else count)
    _popped(client, argv[1], value)
    return items[0] if count is None else items


@command(
    "lpop",
    -2,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Returns the first elements in a list after removing it.",
    since="1.0.0",
    complexity="O(N) where N is the number of elements returned",
)
def lpop(client: Client, argv: list[bytes]) -> Any:
    return _pop(client, argv, LEFT)


@command(
    "rpop",
    -2,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Returns and removes the last elements of a list.",
    since="1.0.0",
    complexity="O(N) where N is the number of elements returned",
)
def rpop(client: Client, argv: list[bytes]) -> Any:
    return _pop(client, argv, RIGHT)


@command("llen", 2, "readonly fast", (1, 1, 1), group=G, summary="Returns the length of a list.", since="1.0.0")
def llen(client: Client, argv: list[bytes]) -> Any:
    value = _get(client, argv[1])
    return 0 if value is None else len(value)


@command(
    "lrange",
    4,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Returns a range of elements from a list.",
    since="1.0.0",
    complexity="O(S+N) where S is the distance of start offset from HEAD and N the number of elements",
)
def lrange(client: Client, argv: list[bytes]) -> Any:
    start = parse_int(argv[2])
    stop = parse_int(argv[3])
    value = _get(client, argv[1])
    if value is None:
        return []
    return list(value.range(start, stop))


@command(
    "lindex",
    3,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Returns an element from a list by its index.",
    since="1.0.0",
    complexity="O(N) where N is the number of elements to traverse to get to the element",
)
def lindex(client: Client, argv: list[bytes]) -> Any:
    index = parse_int(argv[2])
    value = _get(client, argv[1])
    if value is None:
        return None
    return value.index(index)


@command(
    "lset",
    4,
    "write denyoom",
    (1, 1, 1),
    group=G,
    summary="Sets the value of an element in a list by its index.",
    since="1.0.0",
    complexity="O(N) where N is the length of the list",
)
def lset(client: Client, argv: list[bytes]) -> Any:
    index = parse_int(argv[2])
    value = _get(client, argv[1])
    if value is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if not value.set(index, argv[3]):
        raise CommandError(errors.INDEX_OUT_OF_RANGE)
    _changed(client, argv[1])
    return OK


@command(
    "linsert",
    5,
    "write denyoom",
    (1, 1, 1),
    group=G,
    options=("BEFORE", "AFTER"),
    summary="Inserts an element before or after another element in a list.",
    since="2.2.0",
    complexity="O(N) where N is the number of elements to traverse before seeing the value pivot",
)
def linsert(client: Client, argv: list[bytes]) -> Any:
    where = argv[2].upper()
    if where not in (b"BEFORE", b"AFTER"):
        raise CommandError(errors.SYNTAX)
    value = _get(client, argv[1])
    if value is None:
        return 0
    length = value.insert(argv[3], argv[4], where == b"BEFORE")
    if length > 0:
        _changed(client, argv[1])
    return length


@command(
    "lrem",
    4,
    "write",
    (1, 1, 1),
    group=G,
    summary="Removes elements from a list.",
    since="1.0.0",
    complexity="O(N+M) where N is the length of the list and M is the number of elements removed",
)
def lrem(client: Client, argv: list[bytes]) -> Any:
    count = parse_int(argv[2])
    value = _get(client, argv[1])
    if value is None:
        return 0
    removed = value.remove(count, argv[3])
    if removed:
        _popped(client, argv[1], value)
    return removed


@command(
    "ltrim",
    4,
    "write",
    (1, 1, 1),
    group=G,
    summary="Removes elements from both ends of a list.",
    since="1.0.0",
    complexity="O(N) where N is the number of elements to be removed by the operation",
)
def ltrim(client: Client, argv: list[bytes]) -> Any:
    start = parse_int(argv[2])
    stop = parse_int(argv[3])
    value = _get(client, argv[1])
    if value is None:
        return OK
    value.trim(start, stop)
    _popped(client, argv[1], value)
    return OK


@command(
    "lpos",
    -3,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("RANK", "COUNT", "MAXLEN"),
    summary="Returns the index of matching elements in a list.",
    since="6.0.6",
    complexity="O(N) where N is the number of elements in the list",
)
def lpos(client: Client, argv: list[bytes]) -> Any:
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
    value = _get(client, argv[1])
    if value is None:
        return None if count is None else []
    found = value.positions(argv[2], rank=rank, count=1 if count is None or single_match else count, maxlen=maxlen)
    if count is None:
        return found[0] if found else None
    return found


# ---- moves --------------------------------------------------------------------------------------------------------
def _move(client: Client, src: bytes, dst: bytes, wherefrom: Side, whereto: Side) -> Any:
    """LMOVE's core: None if the source is empty. Atomic in the journal, so a crash leaves the element in one list."""
    keyspace = client.server.keyspace
    source = _get(client, src)
    if source is None:
        return None
    destination = _get(client, dst)  # WRONGTYPE before anything moves
    with client.server.engine.atomic():
        element = source.pop(wherefrom, 1)[0]
        _popped(client, src, source)
        if destination is None or (src == dst and len(source) == 0):
            destination = keyspace.create(client.db, dst, "list")
        destination.push(whereto, [element])
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
    summary="Returns an element after popping it from one list and pushing it to another.",
    since="6.2.0",
)
def lmove(client: Client, argv: list[bytes]) -> Any:
    wherefrom, whereto = _parse_side(argv[3]), _parse_side(argv[4])
    return _move(client, argv[1], argv[2], wherefrom, whereto)


@command(
    "rpoplpush",
    3,
    "write denyoom",
    (1, 2, 1),
    group=G,
    summary="Returns the last element of a list after removing and pushing it to another list.",
    since="1.2.0",
)
def rpoplpush(client: Client, argv: list[bytes]) -> Any:
    return _move(client, argv[1], argv[2], RIGHT, LEFT)


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


def _mpop_from(client: Client, keys: list[bytes], side: Side, count: int) -> Any:
    for key in keys:
        value = _get(client, key)
        if value is not None and len(value):
            items = value.pop(side, count)
            _popped(client, key, value)
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
    summary="Returns multiple elements from a list after removing them.",
    since="7.0.0",
    complexity="O(N+M) where N is the number of provided keys and M is the number of elements returned",
)
def lmpop(client: Client, argv: list[bytes]) -> Any:
    keys, side, count = _parse_mpop(argv, 1)
    reply = _mpop_from(client, keys, side, count)
    return NULL_ARRAY if reply is None else reply


# ---- blocking -----------------------------------------------------------------------------------------------------
def _first_nonempty(client: Client, keys: list[bytes]) -> bytes | None:
    for key in keys:
        value = _get(client, key)  # WRONGTYPE on the first key holding another type, as Redis checks in order
        if value is not None and len(value):
            return key
    return None


def _bpop(client: Client, argv: list[bytes], side: Side) -> Any:
    timeout = parse_timeout(argv[-1])
    keys = argv[1:-1]

    def pop_from(key: bytes) -> Any:
        value = _get(client, key)
        if value is None or not len(value):
            return None
        element = value.pop(side, 1)[0]
        _popped(client, key, value)
        return [key, element]

    ready = _first_nonempty(client, keys)
    if ready is not None:
        return pop_from(ready)
    return Block(keys, timeout, lambda key: _safe(pop_from, key), NULL_ARRAY)


def _safe(function: Any, key: bytes) -> Any:
    """A served waiter whose key changed type gets the error instead of staying blocked."""
    try:
        return function(key)
    except CommandError as error:
        from respq.replies import ErrorReply

        return ErrorReply(error.message)


@command(
    "blpop",
    -3,
    "write noscript blocking",
    (1, -2, 1),
    group=G,
    summary="Removes and returns the first element in a list. Blocks until an element is available otherwise.",
    since="2.0.0",
    complexity="O(N) where N is the number of provided keys",
)
def blpop(client: Client, argv: list[bytes]) -> Any:
    return _bpop(client, argv, LEFT)


@command(
    "brpop",
    -3,
    "write noscript blocking",
    (1, -2, 1),
    group=G,
    summary="Removes and returns the last element in a list. Blocks until an element is available otherwise.",
    since="2.0.0",
    complexity="O(N) where N is the number of provided keys",
)
def brpop(client: Client, argv: list[bytes]) -> Any:
    return _bpop(client, argv, RIGHT)


def _bmove(client: Client, src: bytes, dst: bytes, wherefrom: Side, whereto: Side, timeout_arg: bytes) -> Any:
    timeout = parse_timeout(timeout_arg)
    element = _move(client, src, dst, wherefrom, whereto)
    if element is not None:
        return element

    def retry(key: bytes) -> Any:
        return _move(client, src, dst, wherefrom, whereto)

    return Block([src], timeout, lambda key: _safe(retry, key), NULL_ARRAY)


@command(
    "blmove",
    6,
    "write denyoom noscript blocking",
    (1, 2, 1),
    group=G,
    options=("LEFT", "RIGHT"),
    summary="Pops an element from a list, pushes it to another list and returns it. Blocks until an element is "
    "available otherwise.",
    since="6.2.0",
)
def blmove(client: Client, argv: list[bytes]) -> Any:
    wherefrom, whereto = _parse_side(argv[3]), _parse_side(argv[4])
    return _bmove(client, argv[1], argv[2], wherefrom, whereto, argv[5])


@command(
    "brpoplpush",
    4,
    "write denyoom noscript blocking",
    (1, 2, 1),
    group=G,
    summary="Pops an element from a list, pushes it to another list and returns it. Blocks until an element is "
    "available otherwise.",
    since="2.2.0",
)
def brpoplpush(client: Client, argv: list[bytes]) -> Any:
    return _bmove(client, argv[1], argv[2], RIGHT, LEFT, argv[3])


@command(
    "blmpop",
    -5,
    "write blocking movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=lambda argv: numkeys_positions(argv, 2),
    options=("LEFT", "RIGHT", "COUNT"),
    summary="Pops the first elements from one of multiple lists. Blocks until an element is available otherwise.",
    since="7.0.0",
    complexity="O(N+M) where N is the number of provided keys and M is the number of elements returned",
)
def blmpop(client: Client, argv: list[bytes]) -> Any:
    timeout = parse_timeout(argv[1])
    keys, side, count = _parse_mpop(argv, 2)
    reply = _mpop_from(client, keys, side, count)
    if reply is not None:
        return reply

    def retry(key: bytes) -> Any:
        return _mpop_from(client, [key], side, count)

    return Block(keys, timeout, lambda key: _safe(retry, key), NULL_ARRAY)
