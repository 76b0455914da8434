"""Generic key commands, the same for every value type: DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, COPY, MOVE, expiry and
TTLs, OBJECT and MEMORY USAGE (which ask the value itself: ``Value.encoding``, ``refcount``, ``memory_usage``)."""

from __future__ import annotations

from typing import Any

from respq import errors
from respq.commands.args import parse_db_index, parse_int
from respq.commands.cluster import COPY_DB_IN_CLUSTER, MOVE_IN_CLUSTER
from respq.commands.context import Context
from respq.commands.help import help_lines
from respq.commands.table import command, container
from respq.errors import CommandError
from respq.glob import compile_glob
from respq.keyspace import now_ms
from respq.replies import OK, SimpleString
from respq.types import memory

G = "generic"
INVALID_CURSOR = b"ERR invalid cursor"
NX_INCOMPATIBLE = b"ERR NX and XX, GT or LT options at the same time are not compatible"
GT_LT_INCOMPATIBLE = b"ERR GT and LT options at the same time are not compatible"
_LLONG_MAX = (1 << 63) - 1
_LLONG_MIN = -(1 << 63)


@command(
    "del",
    -2,
    "write",
    (1, -1, 1),
    group=G,
    summary="Removes the given keys with their values; replies how many existed.",
    since="1.0.0",
    complexity="O(N) in the keys given; a value's files are dropped whole, not read",
)
def del_(ctx: Context, argv: list[bytes]) -> Any:
    keyspace = ctx.keyspace
    return sum(keyspace.delete(ctx.client.db, key) for key in argv[1:])


@command(
    "unlink",
    -2,
    "write fast",
    (1, -1, 1),
    group=G,
    summary="Removes the given keys; in respq exactly the same as DEL.",
    since="4.0.0",
    complexity="O(N) in the keys given; a value's files are dropped whole, not read",
)
def unlink(ctx: Context, argv: list[bytes]) -> Any:
    return del_(ctx, argv)


@command(
    "exists",
    -2,
    "readonly fast",
    (1, -1, 1),
    group=G,
    summary="Counts how many of the given keys exist, a repeated key once per mention.",
    since="1.0.0",
    complexity="O(N) in the keys given",
)
def exists(ctx: Context, argv: list[bytes]) -> Any:
    keyspace = ctx.keyspace
    return sum(keyspace.exists(ctx.client.db, key) for key in argv[1:])


@command(
    "touch",
    -2,
    "readonly fast",
    (1, -1, 1),
    group=G,
    summary="Counts how many of the given keys exist; respq keeps no access times to update.",
    since="3.2.1",
    complexity="O(N) in the keys given",
)
def touch(ctx: Context, argv: list[bytes]) -> Any:
    return exists(ctx, argv)


@command(
    "type",
    2,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Names the type of a key's value (as registered by its type: list, stream, ...), or none.",
    since="1.0.0",
)
def type_(ctx: Context, argv: list[bytes]) -> Any:
    entry = ctx.keyspace.lookup(ctx.client.db, argv[1])
    return SimpleString(entry.type.encode() if entry is not None else b"none")


@command(
    "keys",
    2,
    "readonly",
    group=G,
    summary="Lists every key name that matches a glob-style pattern.",
    since="1.0.0",
    complexity="O(N) in the keys of the database",
    acl=("@keyspace", "@read", "@slow", "@dangerous"),
)
def keys(ctx: Context, argv: list[bytes]) -> Any:
    return ctx.keyspace.matching_keys(ctx.client.db, argv[1])


def parse_scan_cursor(arg: bytes) -> int:
    """Cursors are unsigned 64-bit, parsed like strtoul (so "-1" wraps around, as in Redis)."""
    if not arg or arg[:1] in (b" ", b"+") or not arg.lstrip(b"-").isdigit():
        raise CommandError(INVALID_CURSOR)
    value = int(arg)
    if value < 0:
        value %= 1 << 64
    if value >= 1 << 64:
        raise CommandError(INVALID_CURSOR)
    return value


def parse_scan_options(argv: list[bytes], start: int, *, with_type: bool) -> tuple[int, bytes | None, bytes | None]:
    """COUNT, MATCH and (SCAN only) TYPE from ``argv[start:]``: (count, pattern, lowercased type). Each option takes
    one argument; COUNT must be at least 1, and anything else is a syntax error, as in Redis's scanGenericCommand."""
    count = 10
    pattern: bytes | None = None
    type_filter: bytes | None = None
    i = start
    while i < len(argv):
        option = argv[i].upper()
        if i + 1 >= len(argv):
            raise CommandError(errors.SYNTAX)
        if option == b"COUNT":
            count = parse_int(argv[i + 1])
            if count < 1:
                raise CommandError(errors.SYNTAX)
        elif option == b"MATCH":
            pattern = argv[i + 1]
        elif option == b"TYPE" and with_type:
            type_filter = argv[i + 1].lower()
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    return count, pattern, type_filter


@command(
    "scan",
    -2,
    "readonly",
    group=G,
    options=("MATCH", "COUNT", "TYPE"),
    summary="Walks the key names a batch at a time with a cursor, optionally filtered.",
    since="2.8.0",
    complexity="O(N) per call in the keys of the database, so O(N²/COUNT) for a full walk",
)
def scan(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    cursor = parse_scan_cursor(argv[1])
    count, pattern, type_filter = parse_scan_options(argv, 2, with_type=True)
    keyspace = ctx.keyspace
    next_cursor, batch = keyspace.scan(client.db, cursor if cursor < 1 << 32 else 1 << 32, count)
    match = compile_glob(pattern) if pattern is not None and pattern != b"*" else None
    found = []
    for key in batch:
        if match is not None and not match(key):
            continue
        type_name = keyspace.type_of(client.db, key)
        if type_name is None:
            continue
        if type_filter is not None and type_name.encode() != type_filter:
            continue
        found.append(key)
    return [str(next_cursor).encode(), found]


def _rename(ctx: Context, argv: list[bytes], *, only_if_new: bool) -> Any:
    client = ctx.client
    keyspace = ctx.keyspace
    src, dst = argv[1], argv[2]
    if keyspace.lookup(client.db, src) is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if src == dst:
        return 0 if only_if_new else OK
    if only_if_new and keyspace.exists(client.db, dst):
        return 0
    keyspace.rename(client.db, src, dst)
    keyspace.signal_ready(client.db, dst)
    return 1 if only_if_new else OK


@command(
    "rename", 3, "write", (1, 2, 1), group=G, summary="Moves a value to a new key, replacing any there.", since="1.0.0"
)
def rename(ctx: Context, argv: list[bytes]) -> Any:
    return _rename(ctx, argv, only_if_new=False)


@command(
    "renamenx",
    3,
    "write fast",
    (1, 2, 1),
    group=G,
    summary="Moves a value to a new key name unless that name is already taken.",
    since="1.0.0",
)
def renamenx(ctx: Context, argv: list[bytes]) -> Any:
    return _rename(ctx, argv, only_if_new=True)


@command(
    "copy",
    -3,
    "write denyoom",
    (1, 2, 1),
    group=G,
    options=("DB", "REPLACE"),
    summary="Copies a key's value and expiry to another key, optionally in another database or replacing it.",
    since="6.2.0",
    complexity="O(N) in the size of the value: its contents are written again",
)
def copy(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    dst_db = client.db
    replace = False
    i = 3
    while i < len(argv):
        option = argv[i].lower()
        if option == b"replace":
            replace = True
        elif option == b"db" and i + 1 < len(argv):
            dst_db = parse_db_index(argv[i + 1], ctx.keyspace.databases)
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if ctx.cluster is not None and dst_db != 0:
        raise CommandError(COPY_DB_IN_CLUSTER)
    src, dst = argv[1], argv[2]
    if dst_db == client.db and src == dst:
        raise CommandError(errors.SAME_OBJECT)
    return int(ctx.keyspace.copy(client.db, src, dst_db, dst, replace=replace))


@command(
    "move",
    3,
    "write fast",
    (1, 1, 1),
    group=G,
    summary="Moves a key with its value and expiry to another database, unless the key is there already.",
    since="1.0.0",
)
def move(ctx: Context, argv: list[bytes]) -> Any:
    if ctx.cluster is not None:
        raise CommandError(MOVE_IN_CLUSTER)
    client = ctx.client
    dst_db = parse_db_index(argv[2], ctx.keyspace.databases)
    if dst_db == client.db:
        raise CommandError(errors.SAME_OBJECT)
    return int(ctx.keyspace.move(client.db, argv[1], dst_db))


@command(
    "randomkey",
    1,
    "readonly",
    group=G,
    summary="Replies with a key name picked at random, or null if the database is empty.",
    since="1.0.0",
    complexity="O(N) in the keys of the database",
)
def randomkey(ctx: Context, argv: list[bytes]) -> Any:
    return ctx.keyspace.random_key(ctx.client.db)


# ---- expiry -------------------------------------------------------------------------------------------------------
def _expire_flags(argv: list[bytes]) -> set[bytes]:
    flags: set[bytes] = set()
    for arg in argv[3:]:
        option = arg.upper()
        if option not in (b"NX", b"XX", b"GT", b"LT"):
            raise CommandError(errors.unsupported_option(arg))
        flags.add(option)
    if b"NX" in flags and len(flags) > 1:
        raise CommandError(NX_INCOMPATIBLE)
    if {b"GT", b"LT"} <= flags:
        raise CommandError(GT_LT_INCOMPATIBLE)
    return flags


def _expire(ctx: Context, argv: list[bytes], *, unit_ms: int, absolute: bool) -> Any:
    client = ctx.client
    flags = _expire_flags(argv)
    when = parse_int(argv[2])
    invalid = errors.INVALID_EXPIRE % argv[0].lower()
    if unit_ms == 1000:
        if when > _LLONG_MAX // 1000 or when < -(_LLONG_MAX // 1000):
            raise CommandError(invalid)
        when *= 1000
    if not absolute:
        base = now_ms()
        if when > _LLONG_MAX - base:
            raise CommandError(invalid)
        when += base
    keyspace = ctx.keyspace
    entry = keyspace.lookup(client.db, argv[1])
    if entry is None:
        return 0
    current = entry.expire_ms
    if b"NX" in flags and current is not None:
        return 0
    if b"XX" in flags and current is None:
        return 0
    if b"GT" in flags and (current is None or when <= current):
        return 0
    if b"LT" in flags and current is not None and when >= current:
        return 0
    keyspace.set_expire(client.db, argv[1], when)
    return 1


_EXPIRE_OPTIONS = ("NX", "XX", "GT", "LT")


@command(
    "expire",
    -3,
    "write fast",
    (1, 1, 1),
    group=G,
    options=_EXPIRE_OPTIONS,
    summary="Gives a key a time to live in seconds, optionally only under NX/XX/GT/LT.",
    since="1.0.0",
)
def expire(ctx: Context, argv: list[bytes]) -> Any:
    return _expire(ctx, argv, unit_ms=1000, absolute=False)


@command(
    "pexpire",
    -3,
    "write fast",
    (1, 1, 1),
    group=G,
    options=_EXPIRE_OPTIONS,
    summary="Gives a key a time to live in milliseconds, optionally only under NX/XX/GT/LT.",
    since="2.6.0",
)
def pexpire(ctx: Context, argv: list[bytes]) -> Any:
    return _expire(ctx, argv, unit_ms=1, absolute=False)


@command(
    "expireat",
    -3,
    "write fast",
    (1, 1, 1),
    group=G,
    options=_EXPIRE_OPTIONS,
    summary="Makes a key expire at a Unix time in seconds, optionally only under NX/XX/GT/LT.",
    since="1.2.0",
)
def expireat(ctx: Context, argv: list[bytes]) -> Any:
    return _expire(ctx, argv, unit_ms=1000, absolute=True)


@command(
    "pexpireat",
    -3,
    "write fast",
    (1, 1, 1),
    group=G,
    options=_EXPIRE_OPTIONS,
    summary="Makes a key expire at a Unix time in milliseconds, optionally under NX/XX/GT/LT.",
    since="2.6.0",
)
def pexpireat(ctx: Context, argv: list[bytes]) -> Any:
    return _expire(ctx, argv, unit_ms=1, absolute=True)


def _ttl(ctx: Context, key: bytes, *, milliseconds: bool, absolute: bool) -> int:
    entry = ctx.keyspace.lookup(ctx.client.db, key)
    if entry is None:
        return -2
    if entry.expire_ms is None:
        return -1
    value = entry.expire_ms if absolute else max(0, entry.expire_ms - now_ms())
    return value if milliseconds else (value + 500) // 1000


@command(
    "ttl",
    2,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Reports a key's remaining time to live in seconds (-1: no expiry, -2: no key).",
    since="1.0.0",
)
def ttl(ctx: Context, argv: list[bytes]) -> Any:
    return _ttl(ctx, argv[1], milliseconds=False, absolute=False)


@command(
    "pttl",
    2,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Reports a key's remaining time to live in milliseconds (-1: no expiry, -2: no key).",
    since="2.6.0",
)
def pttl(ctx: Context, argv: list[bytes]) -> Any:
    return _ttl(ctx, argv[1], milliseconds=True, absolute=False)


@command(
    "expiretime",
    2,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Reports the Unix time in seconds when a key expires (-1: never, -2: no key).",
    since="7.0.0",
)
def expiretime(ctx: Context, argv: list[bytes]) -> Any:
    return _ttl(ctx, argv[1], milliseconds=False, absolute=True)


@command(
    "pexpiretime",
    2,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Reports the Unix time in milliseconds when a key expires (-1: never, -2: no key).",
    since="7.0.0",
)
def pexpiretime(ctx: Context, argv: list[bytes]) -> Any:
    return _ttl(ctx, argv[1], milliseconds=True, absolute=True)


@command("persist", 2, "write fast", (1, 1, 1), group=G, summary="Clears a key's expiry.", since="2.2.0")
def persist(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    keyspace = ctx.keyspace
    entry = keyspace.lookup(client.db, argv[1])
    if entry is None or entry.expire_ms is None:
        return 0
    keyspace.set_expire(client.db, argv[1], None)
    return 1


# ---- OBJECT and MEMORY USAGE: what the value says of itself --------------------------------------------------------
container("object", group=G, summary="Groups the subcommands that describe how a key's value is held.", since="2.2.3")

LFU_INIT_VAL = 5  # the access counter Redis gives a new key under an LFU policy


def _lfu_policy(ctx: Context) -> bool:
    return "lfu" in ctx.config.show("maxmemory-policy")


def _object_lookup(ctx: Context, key: bytes) -> Any:
    """The key's value, None if missing (OBJECT replies null then, before any other check)."""
    return ctx.keyspace.lookup(ctx.client.db, key)


@command(
    "object|encoding",
    3,
    "readonly",
    (2, 2, 1),
    group=G,
    summary="Names the representation Redis 7.0 would use for the key's value (quicklist, stream, ...).",
    since="2.2.3",
)
def object_encoding(ctx: Context, argv: list[bytes]) -> Any:
    value = _object_lookup(ctx, argv[2])
    return None if value is None else value.encoding()


@command(
    "object|refcount",
    3,
    "readonly",
    (2, 2, 1),
    group=G,
    summary="Reports the reference count Redis 7.0 would show for the key's value.",
    since="2.2.3",
)
def object_refcount(ctx: Context, argv: list[bytes]) -> Any:
    value = _object_lookup(ctx, argv[2])
    return None if value is None else value.refcount()


@command(
    "object|idletime",
    3,
    "readonly",
    (2, 2, 1),
    group=G,
    summary="Reports seconds since the key was used: always 0, since respq keeps no access times.",
    since="2.2.3",
)
def object_idletime(ctx: Context, argv: list[bytes]) -> Any:
    if _object_lookup(ctx, argv[2]) is None:
        return None
    if _lfu_policy(ctx):
        raise CommandError(errors.LFU_SELECTED)
    return 0  # no per-key access clock: its bytes per idle queue would outweigh the answer's use


@command(
    "object|freq",
    3,
    "readonly",
    (2, 2, 1),
    group=G,
    summary="Reports the key's access frequency under an LFU policy: always 5, a new key's counter in Redis.",
    since="4.0.0",
)
def object_freq(ctx: Context, argv: list[bytes]) -> Any:
    if _object_lookup(ctx, argv[2]) is None:
        return None
    if not _lfu_policy(ctx):
        raise CommandError(errors.LFU_NOT_SELECTED)
    return LFU_INIT_VAL


@command(
    "object|help",
    2,
    "loading stale",
    group=G,
    summary="Lists the OBJECT subcommands with a line or two on each.",
    since="6.2.0",
    acl=("@keyspace", "@slow"),
)
def object_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(
        b"OBJECT",
        [
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    )


container("memory", group="server", summary="Groups the subcommands that report memory use.", since="4.0.0")


@command(
    "memory|usage",
    -3,
    "readonly",
    (2, 2, 1),
    group="server",
    options=("SAMPLES",),
    summary="Reports the bytes Redis 7.0 would use for a key and its value, nested parts sampled.",
    since="4.0.0",
    complexity="O(N) in the samples: the parts sampled are read",
    acl=("@read", "@slow"),
)
def memory_usage(ctx: Context, argv: list[bytes]) -> Any:
    samples = 5
    i = 3
    while i < len(argv):
        if argv[i].lower() == b"samples" and i + 1 < len(argv):
            samples = parse_int(argv[i + 1])
            if samples < 0:
                raise CommandError(errors.SYNTAX)
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    key = argv[2]
    value = ctx.engine.get(ctx.client.db, key)  # Redis looks in the table as it is: a key due to expire counts
    if value is None:
        return None
    return value.memory_usage(samples) + memory.key_usage(key)


@command(
    "memory|help",
    2,
    "loading stale",
    group="server",
    summary="Lists the MEMORY subcommands with a line or two on each.",
    since="4.0.0",
    acl=("@slow",),
)
def memory_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(
        b"MEMORY",
        [
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "STATS",
            "    Return the process's memory figures under Redis's names.",
            "DOCTOR",
            "    Return a report on the process's memory use.",
            "MALLOC-STATS",
            "    Return the allocator's statistics (respq's allocator keeps none).",
            "PURGE",
            "    Return memory freed by the process to the system.",
        ],
    )
