"""Stream and consumer-group commands with Redis 7.0 semantics over the storage engine's StreamLog."""

from __future__ import annotations

import heapq
import itertools
import re
import time
from dataclasses import dataclass
from typing import Any

from respq import errors
from respq.blocking import Block
from respq.commands.args import parse_int, parse_timeout_ms
from respq.commands.context import Context
from respq.commands.help import help_lines
from respq.commands.table import command, container, run_of
from respq.errors import CommandError
from respq.replies import NULL_ARRAY, OK, ErrorReply
from respq.storage.errors import StorageError
from respq.types.streams.errors import (
    BLOCK_FROM_SCRIPT,
    BUSYGROUP,
    DOLLAR_IN_XREADGROUP,
    ELEMENTS_TOO_LARGE,
    ENTRIES_ADDED_NEGATIVE,
    ENTRIESREAD_NEGATIVE,
    GREATER_IN_XREAD,
    GROUP_ONLY_XREADGROUP,
    ID_EXHAUSTED,
    ID_TOO_SMALL,
    ID_ZERO,
    INVALID_END,
    INVALID_ID,
    INVALID_START,
    LIMIT_NEGATIVE,
    LIMIT_WITHOUT_APPROX,
    LIMIT_WITHOUT_STRATEGY,
    MAXLEN_AND_MINID,
    MAXLEN_NEGATIVE,
    MISSING_GROUP,
    NOACK_ONLY_XREADGROUP,
    NOGROUP_BLOCKED,
    NOGROUP_FOR_KEY,
    NOGROUP_KEY_OR_GROUP,
    NOGROUP_XREADGROUP,
    SUBCOMMAND_SYNTAX,
    UNBALANCED_STREAMS,
    UNBLOCKED_DELETED,
    XAUTOCLAIM_COUNT,
    XAUTOCLAIM_MIN_IDLE,
    XCLAIM_IDLE,
    XCLAIM_MIN_IDLE,
    XCLAIM_RETRYCOUNT,
    XCLAIM_TIME,
    XCLAIM_UNKNOWN_OPTION,
    XGROUP_NEEDS_KEY,
    XSETID_BELOW_LENGTH,
    XSETID_BELOW_MAXDELETED,
    XSETID_BELOW_TOP,
    XTRIM_WITHOUT_STRATEGY,
)
from respq.types.streams.model import (
    INVALID_ENTRIES_READ,
    MAX_ID,
    MAXLEN,
    MINID,
    Consumer,
    Group,
    StreamLog,
    format_id,
    id_of,
)

G = "stream"

XREAD_BLOCKED_DEFAULT_COUNT = 1000  # a blocked reader with no COUNT gets at most this many entries per stream
# `~` trimming without LIMIT removes at most 100 listpacks' worth of entries, kept within these bounds.
APPROX_TRIM_LIMIT_MAX = 1_000_000
APPROX_TRIM_LIMIT_FALLBACK = 10_000  # when stream-node-max-entries is 0 (or the product overflows)
XAUTOCLAIM_MAX_COUNT = ((1 << 63) - 1) // 16
XAUTOCLAIM_ATTEMPTS_FACTOR = 10
_ULL_MAX = (1 << 64) - 1
_STRTOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_STRICT_LL = re.compile(rb"-?[1-9][0-9]*|0")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _fmt(template: bytes, *args: bytes) -> bytes:
    # Names are printed with %s in Redis: the text stops at a NUL byte, and an error stays on one line.
    cleaned = tuple(arg.split(b"\0", 1)[0].replace(b"\r", b" ").replace(b"\n", b" ") for arg in args)
    return template % cleaned


# ---- IDs ----------------------------------------------------------------------------------------------------------
def _parse_u64(text: bytes) -> int | None:
    """Redis's string2ull: a strict signed integer must not be negative; otherwise strtoull's rules."""
    if len(text) < 20 and text.isdigit():  # ASCII digits only: every rule below reads them as int() does
        return int(text)
    if _STRICT_LL.fullmatch(text) and len(text) < 20:
        value = int(text)
        return value if value >= 0 else None
    match = _STRTOULL.fullmatch(text)
    if match is None:
        return None
    value = int(match.group(2))
    if value > _ULL_MAX:
        return None
    if match.group(1) == b"-":
        value = -value % (1 << 64)
    return value


def parse_id(arg: bytes, missing_seq: int = 0, *, strict: bool = False, seq_wildcard: bool = False) -> tuple[int, bool]:
    """A stream ID argument: (id, whether the sequence was given). ``ms-*`` is accepted with ``seq_wildcard``."""
    text = arg.split(b"\0", 1)[0]  # parsed as a C string
    if len(arg) > 127:
        raise CommandError(INVALID_ID)
    if text in (b"-", b"+"):
        if strict:
            raise CommandError(INVALID_ID)
        return (0, True) if text == b"-" else (MAX_ID, True)
    ms_text, dash, seq_text = text.partition(b"-")
    ms = _parse_u64(ms_text)
    if ms is None:
        raise CommandError(INVALID_ID)
    if not dash:
        return id_of(ms, missing_seq), True
    if seq_wildcard and seq_text == b"*":
        return id_of(ms, 0), False
    seq = _parse_u64(seq_text)
    if seq is None:
        raise CommandError(INVALID_ID)
    return id_of(ms, seq), True


def _plain_ids(args: list[bytes]) -> list[int] | None:
    """The IDs when every argument is ``<ms>-<seq>`` in short ASCII digits (what servers hand out, and clients
    send back to XACK), parsed as ``parse_id`` would; None to let ``parse_id`` judge each one."""
    ids = []
    for arg in args:
        ms, dash, seq = arg.partition(b"-")
        if not (dash and ms.isdigit() and seq.isdigit() and len(ms) < 20 and len(seq) < 20):
            return None
        ids.append(int(ms) << 64 | int(seq))
    return ids


def _parse_interval(arg: bytes, missing_seq: int) -> tuple[int, bool]:
    """A range bound; ``(`` makes it exclusive (and forbids ``-`` / ``+``)."""
    if len(arg) > 1 and arg[:1] == b"(":
        return parse_id(arg[1:], missing_seq, strict=True)[0], True
    return parse_id(arg, missing_seq)[0], False


def _range_start(arg: bytes) -> int:
    start, exclusive = _parse_interval(arg, 0)
    if exclusive:
        if start == MAX_ID:
            raise CommandError(INVALID_START)
        start += 1
    return start


def _range_end(arg: bytes) -> int:
    end, exclusive = _parse_interval(arg, _ULL_MAX)
    if exclusive:
        if end == 0:
            raise CommandError(INVALID_END)
        end -= 1
    return end


# ---- replies ------------------------------------------------------------------------------------------------------
def _entry(stream_id: int, fields: list[bytes] | None) -> list[Any]:
    return [format_id(stream_id), NULL_ARRAY if fields is None else fields]


def _entries(entries: list[tuple[int, list[bytes]]]) -> list[Any]:
    return [[format_id(stream_id), fields] for stream_id, fields in entries]


class _MapKey(bytes):
    """A map key equal only to itself: Redis repeats a key named twice in XREAD STREAMS, so the map must too."""

    __eq__ = object.__eq__
    __hash__ = object.__hash__


def _per_key(ctx: Context, served: list[tuple[bytes, list[Any]]]) -> Any:
    """XREAD/XREADGROUP: a map of key -> entries under RESP3, an array of [key, entries] pairs under RESP2."""
    if ctx.client.protocol == 3:
        return {_MapKey(key): entries for key, entries in served}
    return [[key, entries] for key, entries in served]


# ---- lookups ------------------------------------------------------------------------------------------------------
def _get(ctx: Context, key: bytes) -> StreamLog | None:
    return ctx.keyspace.typed(ctx.client.db, key, "stream")


def _group_or_error(stream: StreamLog | None, key: bytes, name: bytes) -> Group:
    group = stream.groups.get(name) if stream is not None else None
    if group is None:
        raise CommandError(_fmt(NOGROUP_KEY_OR_GROUP, key, name))
    return group


def _changed(ctx: Context, key: bytes) -> None:
    ctx.keyspace.touch(ctx.client.db, key)


# ---- XADD / XTRIM -------------------------------------------------------------------------------------------------
@dataclass
class TrimArgs:
    strategy: int | None = None
    threshold: int = 0
    approx: bool = False
    limit: int = 0
    nomkstream: bool = False
    id: int | None = None
    seq_given: bool = True


def _approx_trim_limit(node_max_entries: int) -> int:
    """The LIMIT of `~` trimming when none is given: 100 * stream-node-max-entries, as Redis computes it in a signed
    64-bit integer (so a huge setting wraps), then bounded."""
    limit = 100 * node_max_entries
    if 0 < limit <= APPROX_TRIM_LIMIT_MAX:
        return limit
    limit &= _ULL_MAX
    if limit >= 1 << 63:
        limit -= 1 << 64
    if limit <= 0:
        return APPROX_TRIM_LIMIT_FALLBACK
    return min(limit, APPROX_TRIM_LIMIT_MAX)


def _parse_add_or_trim(argv: list[bytes], xadd: bool, node_max_entries: int) -> tuple[TrimArgs, int]:
    """XADD / XTRIM options, in Redis's order of checks; returns them and the position of XADD's ID. A LIMIT of 0
    means no limit; `~` without LIMIT gets one from stream-node-max-entries."""
    args = TrimArgs()
    limit_given = False
    i = 2
    argc = len(argv)
    while i < argc:
        more = argc - 1 - i
        option = argv[i].lower()
        if xadd and argv[i] == b"*":
            break
        if option in (b"maxlen", b"minid") and more:
            if args.strategy is not None:
                raise CommandError(MAXLEN_AND_MINID)
            args.approx = False
            following = argv[i + 1]
            if more >= 2 and following == b"~":
                args.approx = True
                i += 1
            elif more >= 2 and following == b"=":
                i += 1
            if option == b"maxlen":
                args.threshold = parse_int(argv[i + 1])
                if args.threshold < 0:
                    raise CommandError(MAXLEN_NEGATIVE)
                args.strategy = MAXLEN
            else:
                args.threshold = parse_id(argv[i + 1], strict=True)[0]
                args.strategy = MINID
            i += 1
        elif option == b"limit" and more:
            args.limit = parse_int(argv[i + 1])
            if args.limit < 0:
                raise CommandError(LIMIT_NEGATIVE)
            limit_given = True
            i += 1
        elif xadd and option == b"nomkstream":
            args.nomkstream = True
        elif xadd:
            args.id, args.seq_given = parse_id(argv[i], strict=True, seq_wildcard=True)
            break
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if args.limit and args.strategy is None:
        raise CommandError(LIMIT_WITHOUT_STRATEGY)
    if not xadd and args.strategy is None:
        raise CommandError(XTRIM_WITHOUT_STRATEGY)
    if limit_given:
        if not args.approx:
            raise CommandError(LIMIT_WITHOUT_APPROX)
    elif args.approx:
        args.limit = _approx_trim_limit(node_max_entries)  # stream-node-max-entries
    else:
        args.limit = 0
    return args, i


def _auto_id(last: int, now: int) -> int:
    """The ID of ``XADD key *`` after ``last`` at ``now`` (ms): the clock's time, or the next sequence number."""
    return id_of(now, 0) if now > last >> 64 else last + 1


def _next_id(stream: StreamLog, args: TrimArgs) -> int:
    """The ID XADD gives the new entry; CommandError if it would not be above the stream's last ID."""
    last = stream.last_id
    if args.id is None:
        candidate = _auto_id(last, _now_ms())
    elif args.seq_given:
        candidate = args.id
    elif last >> 64 == args.id >> 64:
        if last & _ULL_MAX == _ULL_MAX:
            raise CommandError(ELEMENTS_TOO_LARGE)
        candidate = last + 1
    else:
        candidate = args.id
    if candidate <= last:
        raise CommandError(ID_TOO_SMALL)
    return candidate


@command(
    "xadd",
    -5,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    options=("NOMKSTREAM", "MAXLEN", "MINID", "LIMIT", "=", "~"),
    summary="Appends an entry to a stream, creating it unless NOMKSTREAM; can trim it too.",
    since="5.0.0",
    complexity="O(1) to append; trimming adds O(N) in nodes dropped, reading at most one node",
)
def xadd(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    args, id_pos = _parse_add_or_trim(argv, True, ctx.config.stream_node_max_entries)
    field_count = len(argv) - id_pos - 1
    if field_count < 2 or field_count % 2:
        raise CommandError(errors.wrong_arity(b"xadd"))
    if args.id == 0 and args.seq_given:
        raise CommandError(ID_ZERO)
    keyspace = ctx.keyspace
    key = argv[1]
    stream = _get(ctx, key)
    if stream is None:
        if args.nomkstream:
            return None
        stream = keyspace.create(client.db, key, "stream")
    if stream.last_id == MAX_ID:
        raise CommandError(ID_EXHAUSTED)
    new_id = _next_id(stream, args)
    if args.strategy is None:
        stream.add(new_id, argv[id_pos + 1 :])  # one journal record by itself
    else:
        with ctx.engine.atomic():  # the entry and the trim it causes: one record
            stream.add(new_id, argv[id_pos + 1 :])
            stream.trim(args.strategy, args.threshold, args.approx, args.limit)
    _changed(ctx, key)
    keyspace.signal_ready(client.db, key)
    return format_id(new_id)


def _is_plain_xadd(argv: list[bytes]) -> bool:
    """XADD key * field value [field value ...]: no option, an ID the server picks."""
    return len(argv) >= 5 and len(argv) % 2 == 1 and argv[2] == b"*"


@run_of("xadd", _is_plain_xadd)
def xadd_run(ctx: Context, key: bytes, argvs: list[list[bytes]]) -> list[Any]:
    """Pipelined XADD key * ... calls: the stream is looked up once; each entry is added as XADD adds it."""
    if ctx.engine.maxmemory and not ctx.engine.on_disk:  # entries count towards maxmemory: checked before each call
        return []
    client = ctx.client
    keyspace = ctx.keyspace
    try:
        stream = _get(ctx, key)
        if stream is None:
            stream = keyspace.create(client.db, key, "stream")
    except (CommandError, StorageError):
        return []
    # The IDs XADD would give one by one, all from one reading of the clock (a run takes microseconds).
    ids: list[int] = []
    last, now = stream.last_id, _now_ms()
    for _ in argvs:
        if last == MAX_ID:
            break  # XADD alone answers that
        last = _auto_id(last, now)
        ids.append(last)
    if not ids:
        return []
    try:
        added = stream.add_many(ids, [argv[3:] for argv in argvs[: len(ids)]])
    except StorageError:  # refused before anything changed: the first call runs alone and says why
        return []
    _changed(ctx, key)
    keyspace.signal_ready(client.db, key)
    return [format_id(new_id) for new_id in ids[:added]]


@command(
    "xtrim",
    -4,
    "write",
    (1, 1, 1),
    group=G,
    options=("MAXLEN", "MINID", "LIMIT", "=", "~"),
    summary="Deletes a stream's oldest entries down to a length (MAXLEN) or an ID (MINID).",
    since="5.0.0",
    complexity="O(N) in nodes dropped whole, plus at most one node read from disk",
)
def xtrim(ctx: Context, argv: list[bytes]) -> Any:
    args, _ = _parse_add_or_trim(argv, False, ctx.config.stream_node_max_entries)
    stream = _get(ctx, argv[1])
    if stream is None:
        return 0
    assert args.strategy is not None
    deleted = stream.trim(args.strategy, args.threshold, args.approx, args.limit)
    if deleted:
        _changed(ctx, argv[1])
    return deleted


# ---- XLEN / XRANGE / XREVRANGE / XDEL -----------------------------------------------------------------------------
@command(
    "xlen", 2, "readonly fast", (1, 1, 1), group=G, summary="Reports how many entries a stream holds.", since="5.0.0"
)
def xlen(ctx: Context, argv: list[bytes]) -> Any:
    stream = _get(ctx, argv[1])
    return 0 if stream is None else stream.length


def _xrange(ctx: Context, argv: list[bytes], reverse: bool) -> Any:
    start_arg, end_arg = (argv[3], argv[2]) if reverse else (argv[2], argv[3])
    start = _range_start(start_arg)
    end = _range_end(end_arg)
    count = -1
    i = 4
    while i < len(argv):
        if argv[i].lower() == b"count" and i + 1 < len(argv):
            count = max(0, parse_int(argv[i + 1]))
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    stream = _get(ctx, argv[1])
    if stream is None:
        return []
    if count == 0:
        return NULL_ARRAY
    return _entries(stream.range(start, end, max(count, 0), reverse))


@command(
    "xrange",
    -4,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("COUNT",),
    summary="Returns the entries whose IDs lie between two bounds, oldest first.",
    since="5.0.0",
    complexity="O(log N + M): a binary search for the first node, then M entries read from disk",
)
def xrange(ctx: Context, argv: list[bytes]) -> Any:
    return _xrange(ctx, argv, reverse=False)


@command(
    "xrevrange",
    -4,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("COUNT",),
    summary="Returns the entries whose IDs lie between two bounds, newest first.",
    since="5.0.0",
    complexity="O(log N + M): a binary search for the last node, then M entries read from disk",
)
def xrevrange(ctx: Context, argv: list[bytes]) -> Any:
    return _xrange(ctx, argv, reverse=True)


@command(
    "xdel",
    -3,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Deletes entries by ID; replies how many of them existed.",
    since="5.0.0",
    complexity="O(log N) per ID, plus reading at most one node (100 entries) from disk",
)
def xdel(ctx: Context, argv: list[bytes]) -> Any:
    stream = _get(ctx, argv[1])
    if stream is None:
        return 0
    ids = [parse_id(arg, strict=True)[0] for arg in argv[2:]]
    deleted = stream.delete(ids)
    if deleted:
        _changed(ctx, argv[1])
    return deleted


# ---- XREAD / XREADGROUP -------------------------------------------------------------------------------------------
@dataclass
class ReadArgs:
    keys: list[bytes]
    ids: list[bytes]
    count: int
    timeout_ms: int | None  # None: no BLOCK
    group: bytes | None
    consumer: bytes | None
    noack: bool


def _parse_read(argv: list[bytes], xreadgroup: bool, in_script: bool = False) -> ReadArgs:
    timeout_ms: int | None = None
    count = 0
    group = consumer = None
    noack = False
    streams_at = 0
    i = 1
    while i < len(argv):
        more = len(argv) - i - 1
        option = argv[i].lower()
        if option == b"block" and more:
            if in_script:  # Redis refuses BLOCK in a script outright, where other blocking commands just time out
                raise CommandError(_fmt(BLOCK_FROM_SCRIPT, argv[0]))
            i += 1
            timeout_ms = parse_timeout_ms(argv[i])
        elif option == b"count" and more:
            i += 1
            count = max(0, parse_int(argv[i]))
        elif option == b"streams" and more:
            streams_at = i + 1
            if (len(argv) - streams_at) % 2:
                raise CommandError(UNBALANCED_STREAMS)
            break
        elif option == b"group" and more >= 2:
            if not xreadgroup:
                raise CommandError(GROUP_ONLY_XREADGROUP)
            group, consumer = argv[i + 1], argv[i + 2]
            i += 2
        elif option == b"noack":
            if not xreadgroup:
                raise CommandError(NOACK_ONLY_XREADGROUP)
            noack = True
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if not streams_at:
        raise CommandError(errors.SYNTAX)
    if xreadgroup and group is None:
        raise CommandError(MISSING_GROUP)
    half = (len(argv) - streams_at) // 2
    keys = argv[streams_at : streams_at + half]
    return ReadArgs(keys, argv[streams_at + half :], count, timeout_ms, group, consumer, noack)


def _resolve_ids(ctx: Context, args: ReadArgs) -> list[int]:
    """The ID each stream is read past (MAX_ID stands for ``>``), checking keys and groups in Redis's order."""
    resolved = []
    for key, arg in zip(args.keys, args.ids, strict=True):
        stream = _get(ctx, key)
        if args.group is not None and (stream is None or args.group not in stream.groups):
            raise CommandError(_fmt(NOGROUP_XREADGROUP, key, args.group))
        if arg == b"$":
            if args.group is not None:
                raise CommandError(DOLLAR_IN_XREADGROUP)
            resolved.append(stream.last_id if stream is not None else 0)
        elif arg == b">":
            if args.group is None:
                raise CommandError(GREATER_IN_XREAD)
            resolved.append(MAX_ID)
        else:
            resolved.append(parse_id(arg, strict=True)[0])
    return resolved


def _read_group_from(
    ctx: Context, stream: StreamLog, group: Group, args: ReadArgs, after: int, count: int
) -> list[Any]:
    """One stream's part of an XREADGROUP reply: new entries past ``after``, or (history) the consumer's own."""
    now = _now_ms()
    assert args.consumer is not None
    consumer, _ = stream.create_consumer(group, args.consumer, now)
    if after != MAX_ID:
        return [_entry(i, fields) for i, fields in stream.read_history(group, consumer, after, count, now)]
    return _entries(stream.read_group(group, consumer, group.last_id, count, args.noack, now))


def _xread(ctx: Context, argv: list[bytes], xreadgroup: bool) -> Any:
    args = _parse_read(argv, xreadgroup, ctx.client.script)
    after = _resolve_ids(ctx, args)
    served: list[tuple[bytes, list[Any]]] = []
    for key, gt in zip(args.keys, after, strict=True):
        stream = _get(ctx, key)
        if stream is None:
            continue
        if args.group is not None:
            group = stream.groups[args.group]
            if gt != MAX_ID:
                # History: always answered, from the start ID on (inclusive of the next ID after it).
                served.append(
                    (key, _read_group_from(ctx, stream, group, args, gt + 1 if gt < MAX_ID else gt, args.count))
                )
            elif stream.length and stream.last_live_id() > group.last_id:
                served.append((key, _read_group_from(ctx, stream, group, args, MAX_ID, args.count)))
        elif stream.length and stream.last_live_id() > gt:
            served.append((key, _entries(stream.range(gt + 1, MAX_ID, args.count))))
    if served:
        return _per_key(ctx, served)  # group state changed, but Redis does not signal watchers of it
    if args.timeout_ms is None:
        return NULL_ARRAY
    timeout = args.timeout_ms / 1000 if args.timeout_ms > 0 else None
    count = args.count or XREAD_BLOCKED_DEFAULT_COUNT
    positions = dict(zip(args.keys, after, strict=True))

    def retry(key: bytes) -> Any:
        return _serve_blocked(ctx, args, key, positions[key], count)

    return Block(list(args.keys), timeout, retry, NULL_ARRAY)


def _serve_blocked(ctx: Context, args: ReadArgs, key: bytes, gt: int, count: int) -> Any:
    """A blocked reader's turn after ``key`` was signalled: its reply, or None to keep waiting."""
    entry = ctx.keyspace.lookup(ctx.client.db, key)
    if entry is None or entry.type != "stream":
        return ErrorReply(UNBLOCKED_DELETED) if args.group is not None else None
    stream: StreamLog = entry.value
    if args.group is not None:
        group = stream.groups.get(args.group)
        if group is None:
            return ErrorReply(NOGROUP_BLOCKED)
        gt = group.last_id
    if stream.last_id <= gt:
        return None
    if args.group is not None:
        entries = _read_group_from(ctx, stream, group, args, MAX_ID, count)
    else:
        entries = _entries(stream.range(gt + 1, MAX_ID, count))
    return _per_key(ctx, [(key, entries)])


def _stream_keys(argv: list[bytes]) -> list[int]:
    for i, arg in enumerate(argv):
        if arg.lower() == b"streams":
            half = (len(argv) - i - 1) // 2
            return list(range(i + 1, i + 1 + half))
    return []


@command(
    "xread",
    -4,
    "readonly blocking movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=_stream_keys,
    options=("COUNT", "BLOCK", "STREAMS"),
    summary="Reads entries past given IDs from one or more streams, optionally waiting for some.",
    since="5.0.0",
    complexity="O(log N + M) per stream for M entries returned; each XADD wakes the readers it serves",
)
def xread(ctx: Context, argv: list[bytes]) -> Any:
    return _xread(ctx, argv, xreadgroup=False)


@command(
    "xreadgroup",
    -7,
    "write blocking movablekeys",
    (0, 0, 0),
    group=G,
    key_finder=_stream_keys,
    options=("GROUP", "COUNT", "BLOCK", "NOACK", "STREAMS"),
    summary="Reads new or own pending entries through a consumer group, optionally waiting.",
    since="5.0.0",
    complexity="O(M log N) per stream for M entries, each read from disk and tracked as pending",
)
def xreadgroup(ctx: Context, argv: list[bytes]) -> Any:
    return _xread(ctx, argv, xreadgroup=True)


# ---- XGROUP -------------------------------------------------------------------------------------------------------
container("xgroup", group=G, summary="Groups the subcommands that create and manage consumer groups.", since="5.0.0")


def _subcommand_syntax(argv: list[bytes]) -> CommandError:
    return CommandError(_fmt(SUBCOMMAND_SYNTAX, argv[1][:128], argv[0].upper()))


def _xgroup_prepare(ctx: Context, argv: list[bytes]) -> tuple[StreamLog | None, Group | None, bool, int]:
    """XGROUP's shared checks, in Redis's order: options, key type, key existence, group existence."""
    sub = argv[1].lower()
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    i = 5
    while i < len(argv):
        option = argv[i].lower()
        if sub == b"create" and option == b"mkstream":
            mkstream = True
            i += 1
        elif sub in (b"create", b"setid") and option == b"entriesread" and i + 1 < len(argv):
            entries_read = parse_int(argv[i + 1])
            if entries_read < 0 and entries_read != INVALID_ENTRIES_READ:
                raise CommandError(ENTRIESREAD_NEGATIVE)
            i += 2
        else:
            raise _subcommand_syntax(argv)
    stream = _get(ctx, argv[2])
    group = None
    if not mkstream:
        if stream is None:
            raise CommandError(XGROUP_NEEDS_KEY)
        group = stream.groups.get(argv[3])
        if group is None and sub in (b"setid", b"createconsumer", b"delconsumer"):
            raise CommandError(_fmt(NOGROUP_FOR_KEY, argv[3], argv[2]))
    elif stream is not None:
        group = stream.groups.get(argv[3])
    return stream, group, mkstream, entries_read


@command(
    "xgroup|create",
    -5,
    "write denyoom",
    (2, 2, 1),
    group=G,
    options=("MKSTREAM", "ENTRIESREAD", "$"),
    summary="Creates a consumer group that starts after a given entry ID ($: the newest).",
    since="5.0.0",
)
def xgroup_create(ctx: Context, argv: list[bytes]) -> Any:
    stream, _, _, entries_read = _xgroup_prepare(ctx, argv)
    if len(argv) > 8:
        raise _subcommand_syntax(argv)
    current_last = stream.last_id if stream is not None else 0
    start = current_last if argv[4] == b"$" else parse_id(argv[4], strict=True)[0]
    if stream is None:
        stream = ctx.keyspace.create(ctx.client.db, argv[2], "stream")
        _changed(ctx, argv[2])
    if argv[3] in stream.groups:
        raise CommandError(BUSYGROUP)
    stream.set_group(argv[3], start, entries_read)
    return OK


@command(
    "xgroup|setid",
    -5,
    "write",
    (2, 2, 1),
    group=G,
    options=("ENTRIESREAD",),
    summary="Moves a consumer group's last-delivered position to another entry ID.",
    since="5.0.0",
)
def xgroup_setid(ctx: Context, argv: list[bytes]) -> Any:
    stream, group, _, entries_read = _xgroup_prepare(ctx, argv)
    if len(argv) not in (5, 7):
        raise _subcommand_syntax(argv)
    assert stream is not None and group is not None
    last_id = stream.last_id if argv[4] == b"$" else parse_id(argv[4])[0]
    stream.set_group(group.name, last_id, entries_read)
    return OK


@command(
    "xgroup|destroy",
    4,
    "write",
    (2, 2, 1),
    group=G,
    summary="Deletes a consumer group with its consumers and pending entries.",
    since="5.0.0",
    complexity="O(N) in the group's pending entries",
)
def xgroup_destroy(ctx: Context, argv: list[bytes]) -> Any:
    stream, group, _, _ = _xgroup_prepare(ctx, argv)
    if stream is None or group is None:
        return 0
    stream.destroy_group(group.name)
    # Readers blocked on the group get NOGROUP at once.
    ctx.keyspace.signal_ready(ctx.client.db, argv[2])
    return 1


@command(
    "xgroup|createconsumer",
    5,
    "write denyoom",
    (2, 2, 1),
    group=G,
    summary="Adds a named consumer to a consumer group unless it is already there.",
    since="6.2.0",
)
def xgroup_createconsumer(ctx: Context, argv: list[bytes]) -> Any:
    stream, group, _, _ = _xgroup_prepare(ctx, argv)
    assert stream is not None and group is not None
    _, created = stream.create_consumer(group, argv[4], _now_ms(), refresh=False)
    return int(created)


@command(
    "xgroup|delconsumer",
    5,
    "write",
    (2, 2, 1),
    group=G,
    summary="Removes a consumer and its pending entries; replies how many were pending.",
    since="5.0.0",
    complexity="O(N) in the consumer's pending entries",
)
def xgroup_delconsumer(ctx: Context, argv: list[bytes]) -> Any:
    stream, group, _, _ = _xgroup_prepare(ctx, argv)
    assert stream is not None and group is not None
    consumer = group.consumers.get(argv[4])
    if consumer is None:
        return 0
    return stream.delete_consumer(group, consumer)


XGROUP_HELP = [
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
]


@command(
    "xgroup|help",
    2,
    "loading stale",
    group=G,
    summary="Lists the XGROUP subcommands with a line or two on each.",
    since="5.0.0",
    acl=("@stream", "@slow"),
)
def xgroup_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(b"XGROUP", XGROUP_HELP)


# ---- XSETID -------------------------------------------------------------------------------------------------------
@command(
    "xsetid",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    group=G,
    options=("ENTRIESADDED", "MAXDELETEDID"),
    summary="Overrides a stream's last ID and counters, as replication and restores need.",
    since="5.0.0",
)
def xsetid(ctx: Context, argv: list[bytes]) -> Any:
    last_id = parse_id(argv[2], strict=True)[0]
    entries_added = -1
    max_deleted = 0
    i = 3
    while i < len(argv):
        more = len(argv) - 1 - i
        option = argv[i].lower()
        if option == b"entriesadded" and more:
            entries_added = parse_int(argv[i + 1])
            if entries_added < 0:
                raise CommandError(ENTRIES_ADDED_NEGATIVE)
        elif option == b"maxdeletedid" and more:
            max_deleted = parse_id(argv[i + 1], strict=True)[0]
            if last_id < max_deleted:
                raise CommandError(XSETID_BELOW_MAXDELETED)
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    stream = _get(ctx, argv[1])
    if stream is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if stream.length:
        if last_id < stream.last_live_id():
            raise CommandError(XSETID_BELOW_TOP)
        if entries_added != -1 and stream.length > entries_added:
            raise CommandError(XSETID_BELOW_LENGTH)
    stream.set_id(
        last_id,
        entries_added if entries_added != -1 else stream.entries_added,
        max_deleted if max_deleted else stream.max_deleted_id,
    )
    return OK


# ---- XACK / XPENDING ----------------------------------------------------------------------------------------------
@command(
    "xack",
    -4,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Acknowledges entries, taking them off a consumer group's pending list.",
    since="5.0.0",
    complexity="O(log N) per ID, N being the owning consumer's pending entries",
)
def xack(ctx: Context, argv: list[bytes]) -> Any:
    stream = _get(ctx, argv[1])
    group = stream.groups.get(argv[2]) if stream is not None else None
    if stream is None or group is None:
        return 0
    ids = _plain_ids(argv[3:]) or [parse_id(arg, strict=True)[0] for arg in argv[3:]]
    return stream.drop_pending(group, ids)


@command(
    "xpending",
    -3,
    "readonly",
    (1, 1, 1),
    group=G,
    options=("IDLE",),
    summary="Summarizes a consumer group's pending entries, or lists them by ID range.",
    since="5.0.0",
    complexity="O(C) in consumers for the summary; O(C + M log C) to list M entries scanned",
)
def xpending(ctx: Context, argv: list[bytes]) -> Any:
    argc = len(argv)
    if argc != 3 and not 6 <= argc <= 9:
        raise CommandError(errors.SYNTAX)
    min_idle = 0
    consumer_name = None
    if argc >= 6:
        at = 3
        if argv[3].lower() == b"idle":
            min_idle = parse_int(argv[4])
            if argc < 8:
                raise CommandError(errors.SYNTAX)
            at = 5
        count = max(0, parse_int(argv[at + 2]))
        start = _range_start(argv[at])
        end = _range_end(argv[at + 1])
        if at + 3 < argc:
            consumer_name = argv[at + 3]
    stream = _get(ctx, argv[1])
    group = _group_or_error(stream, argv[1], argv[2])
    if argc == 3:
        bounds = group.pending_bounds()
        if bounds is None:
            return [0, None, None, NULL_ARRAY]
        owners = [
            [name, b"%d" % len(consumer.pel)] for name, consumer in sorted(group.consumers.items()) if consumer.pel
        ]
        return [len(group.pel), format_id(bounds[0]), format_id(bounds[1]), owners]
    consumer = None
    if consumer_name is not None:
        consumer = group.consumers.get(consumer_name)
        if consumer is None:
            return []
    now = _now_ms()
    out = []
    if count:
        for pending in group.iter_pending(start, end, consumer):
            if min_idle and now - pending.delivered < min_idle:
                continue
            out.append([format_id(pending.id), pending.consumer.name, max(0, now - pending.delivered), pending.count])
            if len(out) == count:
                break
    return out


# ---- XCLAIM / XAUTOCLAIM ------------------------------------------------------------------------------------------
@command(
    "xclaim",
    -6,
    "write fast",
    (1, 1, 1),
    group=G,
    options=("IDLE", "TIME", "RETRYCOUNT", "FORCE", "JUSTID", "LASTID"),
    summary="Hands pending entries idle long enough over to another consumer; returns them.",
    since="5.0.0",
    complexity="O(log N) per ID: the entry is looked up on disk and its pending record moved",
)
def xclaim(ctx: Context, argv: list[bytes]) -> Any:
    key = argv[1]
    stream = _get(ctx, key)
    group = _group_or_error(stream, key, argv[2])
    assert stream is not None
    min_idle = max(0, parse_int(argv[4], XCLAIM_MIN_IDLE))
    ids = []
    j = 5
    while j < len(argv):
        try:
            ids.append(parse_id(argv[j], strict=True)[0])
        except CommandError:
            break
        j += 1
    now = _now_ms()
    delivery = -1
    retry_count = -1
    force = justid = False
    last_id = 0
    while j < len(argv):
        more = len(argv) - 1 - j
        option = argv[j].lower()
        if option == b"force":
            force = True
        elif option == b"justid":
            justid = True
        elif option == b"idle" and more:
            j += 1
            delivery = now - parse_int(argv[j], XCLAIM_IDLE)
        elif option == b"time" and more:
            j += 1
            delivery = parse_int(argv[j], XCLAIM_TIME)
        elif option == b"retrycount" and more:
            j += 1
            retry_count = parse_int(argv[j], XCLAIM_RETRYCOUNT)
        elif option == b"lastid" and more:
            j += 1
            last_id = parse_id(argv[j], strict=True)[0]
        else:
            raise CommandError(_fmt(XCLAIM_UNKNOWN_OPTION, argv[j]))
        j += 1
    if delivery == -1 or delivery < 0 or delivery > now:
        delivery = now
    out: list[Any] = []
    consumer: Consumer | None = None
    with ctx.engine.atomic():
        if last_id > group.last_id:
            stream.set_group(group.name, last_id, group.entries_read)
        for stream_id in ids:
            pending = group.pending(stream_id)
            fields = stream.get(stream_id)
            if fields is None:
                if pending is not None:
                    stream.drop_pending(group, [stream_id])  # deleted from the stream: silently forgotten
                continue
            if pending is None:
                if not force:
                    continue
                count = 1
            else:
                if min_idle and now - pending.delivered < min_idle:
                    continue
                count = pending.count
            if consumer is None:
                consumer, _ = stream.create_consumer(group, argv[3], now)
            if retry_count >= 0:
                count = retry_count
            elif not justid:
                count += 1
            stream.set_pending(group, consumer, [(stream_id, delivery, count)])
            out.append(format_id(stream_id) if justid else _entry(stream_id, fields))
    return out


@command(
    "xautoclaim",
    -6,
    "write fast",
    (1, 1, 1),
    group=G,
    options=("COUNT", "JUSTID"),
    summary="Claims idle pending entries from a start ID for a consumer, cursor by cursor.",
    since="6.2.0",
    complexity="O(C + M log C) for M pending entries examined, at most ten times COUNT",
)
def xautoclaim(ctx: Context, argv: list[bytes]) -> Any:
    key = argv[1]
    min_idle = max(0, parse_int(argv[4], XAUTOCLAIM_MIN_IDLE))
    start = _range_start(argv[5])
    count = 100
    justid = False
    j = 6
    while j < len(argv):
        more = len(argv) - 1 - j
        option = argv[j].lower()
        if option == b"count" and more:
            count = parse_int(argv[j + 1], XAUTOCLAIM_COUNT)
            if not 1 <= count <= XAUTOCLAIM_MAX_COUNT:
                raise CommandError(XAUTOCLAIM_COUNT)
            j += 1
        elif option == b"justid":
            justid = True
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    stream = _get(ctx, key)
    group = _group_or_error(stream, key, argv[2])
    assert stream is not None
    attempts = count * XAUTOCLAIM_ATTEMPTS_FACTOR
    # Examined IDs are fixed up front: claiming moves entries between consumers' lists while we go.
    candidates = list(
        itertools.islice(
            heapq.merge(*(c.pel.irange(start, MAX_ID) for c in group.consumers.values() if c.pel)), attempts + 1
        )
    )
    now = _now_ms()
    claimed: list[Any] = []
    deleted: list[bytes] = []
    consumer: Consumer | None = None
    examined = 0
    with ctx.engine.atomic():
        while attempts and count and examined < len(candidates):
            attempts -= 1
            stream_id = candidates[examined]
            examined += 1
            pending = group.pending(stream_id)
            assert pending is not None
            fields = stream.get(stream_id)
            if fields is None:
                stream.drop_pending(group, [stream_id])
                deleted.append(format_id(stream_id))
                count -= 1
                continue
            if min_idle and now - pending.delivered < min_idle:
                continue
            if consumer is None:
                consumer, _ = stream.create_consumer(group, argv[3], now)
            stream.set_pending(group, consumer, [(stream_id, now, pending.count + (not justid))])
            claimed.append(format_id(stream_id) if justid else _entry(stream_id, fields))
            count -= 1
    cursor = format_id(candidates[examined]) if examined < len(candidates) else b"0-0"
    return [cursor, claimed, deleted]


# ---- XINFO --------------------------------------------------------------------------------------------------------
container("xinfo", group=G, summary="Groups the subcommands that describe streams and consumer groups.", since="5.0.0")


def _xinfo_stream_key(ctx: Context, key: bytes) -> StreamLog:
    stream = _get(ctx, key)
    if stream is None:
        raise CommandError(errors.NO_SUCH_KEY)
    return stream


@command(
    "xinfo|consumers",
    4,
    "readonly",
    (2, 2, 1),
    group=G,
    summary="Describes each consumer of a group: pending entries and idle time.",
    since="5.0.0",
    complexity="O(N) in the group's consumers",
)
def xinfo_consumers(ctx: Context, argv: list[bytes]) -> Any:
    stream = _xinfo_stream_key(ctx, argv[2])
    group = stream.groups.get(argv[3])
    if group is None:
        raise CommandError(_fmt(NOGROUP_FOR_KEY, argv[3], argv[2]))
    now = _now_ms()
    return [
        {b"name": name, b"pending": len(consumer.pel), b"idle": max(0, now - consumer.seen)}
        for name, consumer in sorted(group.consumers.items())
    ]


@command(
    "xinfo|groups",
    3,
    "readonly",
    (2, 2, 1),
    group=G,
    summary="Describes each consumer group of a stream: consumers, pending, position, lag.",
    since="5.0.0",
    complexity="O(N) in the stream's groups",
)
def xinfo_groups(ctx: Context, argv: list[bytes]) -> Any:
    stream = _xinfo_stream_key(ctx, argv[2])
    return [
        {
            b"name": name,
            b"consumers": len(group.consumers),
            b"pending": len(group.pel),
            b"last-delivered-id": format_id(group.last_id),
            b"entries-read": None if group.entries_read == INVALID_ENTRIES_READ else group.entries_read,
            b"lag": stream.lag(group),
        }
        for name, group in sorted(stream.groups.items())
    ]


@command(
    "xinfo|stream",
    -3,
    "readonly",
    (2, 2, 1),
    group=G,
    options=("FULL", "COUNT"),
    summary="Describes a stream; FULL adds its entries, groups and pending entries.",
    since="5.0.0",
    complexity="O(N) in nodes; FULL adds COUNT entries and pending entries per group and consumer",
)
def xinfo_stream(ctx: Context, argv: list[bytes]) -> Any:
    stream = _xinfo_stream_key(ctx, argv[2])
    options = argv[3:]
    full = bool(options)
    count = 10
    if options:
        if len(options) not in (1, 3) or options[0].lower() != b"full":
            raise _subcommand_syntax(argv)
        if len(options) == 3:
            if options[1].lower() != b"count":
                raise _subcommand_syntax(argv)
            count = parse_int(options[2])
            if count < 0:
                count = 10
    reply: dict[bytes, Any] = {
        b"length": stream.length,
        b"radix-tree-keys": stream.node_count,
        b"radix-tree-nodes": stream.radix_tree_nodes,
        b"last-generated-id": format_id(stream.last_id),
        b"max-deleted-entry-id": format_id(stream.max_deleted_id),
        b"entries-added": stream.entries_added,
        b"recorded-first-entry-id": format_id(stream.first_id),
    }
    if not full:
        first = stream.range(0, MAX_ID, 1)
        last = stream.range(0, MAX_ID, 1, reverse=True)
        reply[b"groups"] = len(stream.groups)
        reply[b"first-entry"] = _entries(first)[0] if first else None
        reply[b"last-entry"] = _entries(last)[0] if last else None
        return reply
    reply[b"entries"] = _entries(stream.range(0, MAX_ID, count))
    groups = []
    for name, group in sorted(stream.groups.items()):
        pel = list(itertools.islice(group.iter_pending(), count or None))
        consumers = []
        for consumer_name, consumer in sorted(group.consumers.items()):
            own = list(itertools.islice(group.iter_pending(consumer=consumer), count or None))
            consumers.append(
                {
                    b"name": consumer_name,
                    b"seen-time": consumer.seen,
                    b"pel-count": len(consumer.pel),
                    b"pending": [[format_id(p.id), p.delivered, p.count] for p in own],
                }
            )
        groups.append(
            {
                b"name": name,
                b"last-delivered-id": format_id(group.last_id),
                b"entries-read": None if group.entries_read == INVALID_ENTRIES_READ else group.entries_read,
                b"lag": stream.lag(group),
                b"pel-count": len(group.pel),
                b"pending": [[format_id(p.id), p.consumer.name, p.delivered, p.count] for p in pel],
                b"consumers": consumers,
            }
        )
    reply[b"groups"] = groups
    return reply


XINFO_HELP = [
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
]


@command(
    "xinfo|help",
    2,
    "loading stale",
    group=G,
    summary="Lists the XINFO subcommands with a line or two on each.",
    since="5.0.0",
    acl=("@stream", "@slow"),
)
def xinfo_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(b"XINFO", XINFO_HELP)
