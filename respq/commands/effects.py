"""What a write sends replicas: the command itself, or, where running it again would not give the same data, the
effect Redis 7.0 propagates instead (absolute expiry times, the ID XADD chose, the members SPOP took, the pops a
blocking command was served, the pending entries XREADGROUP made)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from respq.commands.context import Context
from respq.commands.migrate import migrate_keys
from respq.replies import SetReply
from respq.types.streams.model import format_id

# (ctx, argv, reply) -> the effects of a call that changed data
Rewrite = Callable[[Context, list[bytes], Any], list[list[bytes]]]
REWRITES: dict[bytes, Rewrite] = {}


def effects(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    rewrite = REWRITES.get(argv[0].lower())
    return [argv] if rewrite is None else rewrite(ctx, argv, reply)


def _rewrites(*names: str) -> Callable[[Rewrite], Rewrite]:
    def register(rewrite: Rewrite) -> Rewrite:
        for name in names:
            REWRITES[name.encode()] = rewrite
        return rewrite

    return register


def _expiry_of(ctx: Context, key: bytes) -> list[list[bytes]]:
    """The key's expiry as an absolute time (or its deletion, when an expiry in the past removed it)."""
    entry = ctx.keyspace.lookup(ctx.client.db, key)
    if entry is None:
        return [[b"DEL", key]]
    if entry.expire_ms is None:
        return [[b"PERSIST", key]]
    return [[b"PEXPIREAT", key, b"%d" % entry.expire_ms]]


@_rewrites("expire", "pexpire", "expireat", "pexpireat")
def _expire(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    return _expiry_of(ctx, argv[1])


@_rewrites("getex")
def _getex(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    return _expiry_of(ctx, argv[1])


_EXPIRY_OPTIONS = frozenset({b"ex", b"px", b"exat", b"pxat"})


@_rewrites("set", "setex", "psetex")
def _set(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    name = argv[0].lower()
    if name != b"set":
        key, value = argv[1], argv[3]
    else:
        key, value = argv[1], argv[2]
        words = [word.lower() for word in argv[3:]]
        if not _EXPIRY_OPTIONS.intersection(words):
            return [[b"SET", key, value, b"KEEPTTL"]] if b"keepttl" in words else [[b"SET", key, value]]
    entry = ctx.keyspace.lookup(ctx.client.db, key)
    if entry is None:  # an expiry in the past
        return [[b"DEL", key]]
    if entry.expire_ms is None:
        return [[b"SET", key, value]]
    return [[b"SET", key, value, b"PXAT", b"%d" % entry.expire_ms]]


@_rewrites("incrbyfloat")
def _incrbyfloat(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    return [[b"SET", argv[1], reply, b"KEEPTTL"]]


@_rewrites("hincrbyfloat")
def _hincrbyfloat(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    return [[b"HSET", argv[1], argv[2], reply]]


@_rewrites("spop")
def _spop(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    members = reply.items if isinstance(reply, SetReply) else reply if isinstance(reply, list) else [reply]
    return [[b"SREM", argv[1], *members]] if members else []


@_rewrites("migrate")
def _migrate(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    """Replicas delete what the move took from here, as Redis propagates MIGRATE: running MIGRATE again there would
    send the keys a second time. A key left in place (COPY, or changed while the target answered) stays there too."""
    keys = [argv[i] for i in migrate_keys(argv)]
    gone = [key for key in keys if ctx.keyspace.lookup(ctx.client.db, key) is None]
    return [[b"DEL", *gone]] if gone else []


# ---- blocking commands (also when served later) -------------------------------------------------------------------
@_rewrites("blpop", "brpop")
def _bpop(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    return [[b"LPOP" if argv[0].lower() == b"blpop" else b"RPOP", reply[0]]]


@_rewrites("blmpop")
def _blmpop(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    numkeys = int(argv[2])
    side = argv[3 + numkeys].upper()
    return [[b"LPOP" if side == b"LEFT" else b"RPOP", reply[0], b"%d" % len(reply[1])]]


@_rewrites("brpoplpush")
def _brpoplpush(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    return [[b"RPOPLPUSH", argv[1], argv[2]]]


@_rewrites("blmove")
def _blmove(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    return [[b"LMOVE", *argv[1:5]]]


@_rewrites("bzpopmin", "bzpopmax")
def _bzpop(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    return [[b"ZPOPMIN" if argv[0].lower() == b"bzpopmin" else b"ZPOPMAX", reply[0]]]


@_rewrites("bzmpop")
def _bzmpop(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    numkeys = int(argv[2])
    which = argv[3 + numkeys].upper()
    return [[b"ZPOPMIN" if which == b"MIN" else b"ZPOPMAX", reply[0], b"%d" % len(reply[1])]]


# ---- streams ------------------------------------------------------------------------------------------------------
_TRIM = frozenset({b"maxlen", b"minid"})


@_rewrites("xadd", "xtrim")
def _xadd(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    """The ID chosen in place of ``*``; approximate trimming as exact trimming to what was kept, as Redis's
    streamRewriteApproxSpecifier and streamRewriteTrimArgument do."""
    out = list(argv)
    xadd = argv[0].lower() == b"xadd"
    i = 2
    while i < len(out):
        word = out[i].lower()
        if word == b"nomkstream":
            i += 1
        elif word in _TRIM:
            i += 1
            if out[i] in (b"~", b"="):
                out[i] = b"="
                i += 1
            stream = ctx.keyspace.typed(ctx.client.db, argv[1], "stream")
            if stream is not None:
                if word == b"maxlen":
                    out[i] = b"%d" % stream.length
                else:
                    out[i] = format_id(stream.first_id or stream.last_id)
            i += 1
        elif word == b"limit":
            del out[i : i + 2]
        else:
            break
    if xadd and i < len(out):
        out[i] = reply
    return [out]


def _group_state(ctx: Context, key: bytes, group_name: bytes, consumer: bytes, ids: list[bytes]) -> list[list[bytes]]:
    """The consumer group as it is now for ``ids``: each one claimed by its owner with its delivery time and count,
    and the group's last ID (Redis's XCLAIM ... FORCE JUSTID and XGROUP SETID effects of XREADGROUP)."""
    stream = ctx.keyspace.typed(ctx.client.db, key, "stream")
    if stream is None:
        return []
    group = stream.groups.get(group_name)
    if group is None:
        return []
    out = [[b"XGROUP", b"CREATECONSUMER", key, group_name, consumer]]
    for raw in ids:
        parsed = _parse_id(raw)
        pending = group.pending(parsed) if parsed is not None else None
        if pending is None:
            out.append([b"XACK", key, group_name, raw])
            continue
        out.append(
            [
                b"XCLAIM", key, group_name, pending.consumer.name, b"0", raw, b"TIME", b"%d" % pending.delivered,
                b"RETRYCOUNT", b"%d" % pending.count, b"FORCE", b"JUSTID",
            ]
        )  # fmt: skip
    read = b"%d" % group.entries_read
    out.append([b"XGROUP", b"SETID", key, group_name, format_id(group.last_id), b"ENTRIESREAD", read])
    return out


def _parse_id(raw: bytes) -> int | None:
    ms, _, seq = raw.partition(b"-")
    try:
        return (int(ms) << 64) | int(seq or 0)
    except ValueError:
        return None


@_rewrites("xreadgroup")
def _xreadgroup(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    group_name, consumer = argv[2], argv[3]
    out: list[list[bytes]] = []
    for key, entries in _stream_replies(reply):
        out.extend(_group_state(ctx, key, group_name, consumer, [entry[0] for entry in entries]))
    return out


@_rewrites("xclaim")
def _xclaim(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    ids = [item[0] if isinstance(item, list) else item for item in reply if item is not None]
    return _group_state(ctx, argv[1], argv[2], argv[3], ids)


@_rewrites("xautoclaim")
def _xautoclaim(ctx: Context, argv: list[bytes], reply: Any) -> list[list[bytes]]:
    claimed = [item[0] if isinstance(item, list) else item for item in reply[1] if item is not None]
    deleted = list(reply[2]) if len(reply) > 2 else []
    return _group_state(ctx, argv[1], argv[2], argv[3], claimed + deleted)


def _stream_replies(reply: Any) -> list[tuple[bytes, list[Any]]]:
    """(key, entries) of an XREAD-style reply (an array of pairs in RESP2, a map in RESP3)."""
    if isinstance(reply, dict):
        return [(bytes(key), entries or []) for key, entries in reply.items()]
    if isinstance(reply, list):
        return [(pair[0], pair[1] or []) for pair in reply]
    return []
