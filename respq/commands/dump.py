"""DUMP and RESTORE: a value as Redis 7.0's serialized payload (RDB object, RDB version, CRC-64), so values move
between respq and redis-server both ways. The generic part (options, TTL, checks, the key) is here; each type's
codec (``respq.types.RDB_CODECS``) writes and reads its own object."""

from __future__ import annotations

from typing import Any

from respq import errors, rdb
from respq.commands.args import parse_int
from respq.commands.context import Context
from respq.commands.table import command
from respq.errors import CommandError
from respq.keyspace import now_ms
from respq.replies import OK
from respq.types import RDB_CODECS
from respq.types.codec import Limits

G = "generic"


def limits(ctx: Context) -> Limits:
    return Limits.from_values(ctx.config.values)


def dump_value(value: Any, lim: Limits) -> bytes:
    """The DUMP payload of a value (also what MIGRATE sends)."""
    return rdb.payload(RDB_CODECS.by_name[value.type].dump(value, lim))


@command(
    "dump",
    2,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Serializes a key's value in Redis 7.0's DUMP format (RDB object, version, CRC-64), or null if missing.",
    since="2.6.0",
    complexity="O(N) in the size of the value",
    acl=("@keyspace", "@read", "@slow"),
)
def dump(ctx: Context, argv: list[bytes]) -> Any:
    value = ctx.keyspace.lookup(ctx.client.db, argv[1])
    return None if value is None else dump_value(value, limits(ctx))


def parse_payload(payload: bytes) -> tuple[Any, Any]:
    """(codec, parsed contents) of a DUMP payload; CommandError as RESTORE words it."""
    if not rdb.verify_payload(payload):
        raise CommandError(rdb.BAD_PAYLOAD)
    reader = rdb.Reader(payload)  # reads may run into the footer, as Redis's rio over the whole argument does
    try:
        codec = RDB_CODECS.by_rdb_type.get(reader.byte())
        if codec is None:
            raise rdb.FormatError("unknown type")
        rdb_type = reader.data[0]
        return codec, codec.parse(rdb_type, reader)
    except rdb.FormatError:
        raise CommandError(errors.BAD_DATA_FORMAT) from None


@command(
    "restore",
    -4,
    "write denyoom",
    (1, 1, 1),
    group=G,
    options=("REPLACE", "ABSTTL", "IDLETIME", "FREQ"),
    summary="Creates a key from a DUMP payload, with a TTL (0: none), optionally replacing the key.",
    since="2.6.0",
    complexity="O(N) in the size of the value",
    acl=("@keyspace", "@write", "@slow", "@dangerous"),
)
def restore(ctx: Context, argv: list[bytes]) -> Any:
    replace = absttl = False
    idle = freq = -1
    i = 4
    while i < len(argv):
        option = argv[i].lower()
        more = len(argv) - i - 1
        if option == b"replace":
            replace = True
        elif option == b"absttl":
            absttl = True
        elif option == b"idletime" and more and freq == -1:
            i += 1
            idle = parse_int(argv[i])
            if idle < 0:
                raise CommandError(errors.INVALID_IDLETIME)
        elif option == b"freq" and more and idle == -1:
            i += 1
            freq = parse_int(argv[i])
            if not 0 <= freq <= 255:
                raise CommandError(errors.INVALID_FREQ)
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    # IDLETIME and FREQ are checked and then ignored: respq keeps no per-key access clock (see OBJECT IDLETIME).
    keyspace = ctx.keyspace
    db, key = ctx.client.db, argv[1]
    if not replace and keyspace.lookup(db, key) is not None:
        raise CommandError(errors.BUSY_KEY)
    ttl = parse_int(argv[2])
    if ttl < 0:
        raise CommandError(errors.INVALID_TTL)
    codec, parsed = parse_payload(argv[3])
    if ttl and not absttl:
        ttl += now_ms()
    if ttl and ttl <= now_ms():  # already expired: only the old key goes
        if replace:
            keyspace.delete(db, key)
        return OK
    with ctx.engine.atomic():  # the old key's removal, the new value and its expiry: all or none after a crash
        value = keyspace.replace(db, key, codec.type_name)
        codec.fill(value, parsed, limits(ctx))
        if ttl:
            keyspace.set_expire(db, key, ttl)
    keyspace.signal_ready(db, key)
    return OK
