"""Operator commands: MONITOR, SLOWLOG, LATENCY, and the persistence and replication commands Redis tools send (SAVE,
BGSAVE, BGREWRITEAOF, LASTSAVE, ROLE, WAIT) answered from respq's checkpoints and its replica-less role.

What they report is kept by respq.observe (the slow log, latency events, per-command histograms, the MONITOR feed);
the dispatcher feeds it as commands run.
"""

from __future__ import annotations

import time
from typing import Any

from respq import errors
from respq.commands.args import parse_int
from respq.commands.context import Context
from respq.commands.help import help_lines
from respq.commands.table import COMMANDS, Command, command, container
from respq.errors import CommandError
from respq.info import memory_figures, purge_memory
from respq.observe import histogram_cdf
from respq.replies import OK, Raw, SimpleString, Verbatim
from respq.storage.errors import StorageError

G = "server"
SLOWLOG_DEFAULT_COUNT = 10
LATENCY_GRAPH_COLUMNS = 80
LATENCY_OFF_REPORT = (
    "Latency monitoring is disabled: no latency event is recorded. Set a threshold in milliseconds with "
    '"CONFIG SET latency-monitor-threshold <milliseconds>" to enable it.\n'
)


# ---- MONITOR ------------------------------------------------------------------------------------------------------
@command(
    "monitor",
    1,
    "admin noscript loading stale",
    group=G,
    summary="Streams every command the server runs to this connection, as it runs.",
    since="1.0.0",
    complexity="O(1) to start; each command run costs its quoting once for all monitors",
    acl=("@admin", "@slow", "@dangerous"),
)
def monitor(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    if client.deny_blocking:  # inside EXEC: its client must get one reply per command
        raise CommandError(errors.MONITOR_DENY_BLOCKING)
    if client.monitoring:  # Redis ignores a second MONITOR without a reply
        return Raw(b"")
    ctx.server.start_monitor(client)
    return OK


# ---- SLOWLOG ------------------------------------------------------------------------------------------------------
container("slowlog", group=G, summary="Groups the subcommands that read and clear the slow log.", since="2.2.12")


@command(
    "slowlog|get",
    -2,
    "admin loading stale",
    group=G,
    summary="Replies with the newest entries of the slow log (10 by default, all with -1).",
    since="2.2.12",
    complexity="O(N) in the entries returned",
    acl=("@admin", "@slow", "@dangerous"),
)
def slowlog_get(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.subcommand_syntax(argv[1], b"SLOWLOG"))
    entries = ctx.stats.observers.slowlog
    count = SLOWLOG_DEFAULT_COUNT
    if len(argv) == 3:
        count = parse_int(argv[2], errors.SLOWLOG_COUNT)
        if count < -1:
            raise CommandError(errors.SLOWLOG_COUNT)
        if count == -1:
            count = len(entries)
    return [
        [entry.id, entry.time, entry.duration, list(entry.argv), entry.peer, entry.name]
        for _, entry in zip(range(count), entries, strict=False)
    ]


@command(
    "slowlog|len",
    2,
    "admin loading stale",
    group=G,
    summary="Replies with the number of entries in the slow log.",
    since="2.2.12",
    acl=("@admin", "@slow", "@dangerous"),
)
def slowlog_len(ctx: Context, argv: list[bytes]) -> Any:
    return len(ctx.stats.observers.slowlog)


@command(
    "slowlog|reset",
    2,
    "admin loading stale",
    group=G,
    summary="Empties the slow log.",
    since="2.2.12",
    complexity="O(N) in the entries dropped",
    acl=("@admin", "@slow", "@dangerous"),
)
def slowlog_reset(ctx: Context, argv: list[bytes]) -> Any:
    ctx.stats.observers.slowlog.clear()
    return OK


@command(
    "slowlog|help",
    2,
    "loading stale",
    group=G,
    summary="Lists the SLOWLOG subcommands with a line or two on each.",
    since="6.2.0",
    acl=("@slow",),
)
def slowlog_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(
        b"SLOWLOG",
        [
            "GET [<count>]",
            "    Reply with the newest <count> entries (10 if not given, every entry with -1). An entry holds: its id,",
            "    the unix time it was logged, its duration in microseconds, the command and its arguments, the",
            "    client's address and the client's name.",
            "LEN",
            "    Reply with the number of entries.",
            "RESET",
            "    Drop every entry.",
        ],
    )


# ---- LATENCY ------------------------------------------------------------------------------------------------------
container("latency", group=G, summary="Groups the subcommands of the latency monitor.", since="2.8.13")


@command(
    "latency|latest",
    2,
    "admin noscript loading stale",
    group=G,
    summary="Replies with each event's latest sample.",
    since="2.8.13",
    acl=("@admin", "@slow", "@dangerous"),
)
def latency_latest(ctx: Context, argv: list[bytes]) -> Any:
    return [
        [name.encode(), event.samples[-1][0], event.samples[-1][1], event.max]
        for name, event in ctx.stats.observers.events.items()
    ]


@command(
    "latency|history",
    3,
    "admin noscript loading stale",
    group=G,
    summary="Replies with an event's samples, oldest first.",
    since="2.8.13",
    acl=("@admin", "@slow", "@dangerous"),
)
def latency_history(ctx: Context, argv: list[bytes]) -> Any:
    event = ctx.stats.observers.events.get(argv[2].decode("latin-1"))
    return [] if event is None else [list(sample) for sample in event.samples]


@command(
    "latency|reset",
    -2,
    "admin noscript loading stale",
    group=G,
    summary="Forgets the samples of the events named, or of all.",
    since="2.8.13",
    acl=("@admin", "@slow", "@dangerous"),
)
def latency_reset(ctx: Context, argv: list[bytes]) -> Any:
    names = [arg.decode("latin-1") for arg in argv[2:]] or None
    return ctx.stats.observers.reset_latency(names)


@command(
    "latency|graph",
    3,
    "admin noscript loading stale",
    group=G,
    summary="Draws an event's samples as an ASCII graph.",
    since="2.8.13",
    acl=("@admin", "@slow", "@dangerous"),
)
def latency_graph(ctx: Context, argv: list[bytes]) -> Any:
    name = argv[2].decode("latin-1")
    event = ctx.stats.observers.events.get(name)
    if event is None:
        raise CommandError(errors.LATENCY_NO_SAMPLES.replace(b"%s", argv[2]))
    return Verbatim(_graph(name, event.samples, event.max).encode())


def _ago(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _graph(name: str, samples: Any, all_time_high: int) -> str:
    """A title line, a rule, then one column per sample (newest right): bars of '#' scaled between the lowest and
    highest sample, with how long ago it was written under each column."""
    values = [latency for _, latency in samples][-LATENCY_GRAPH_COLUMNS:]
    labels = [_ago(int(time.time()) - at) for at, _ in samples][-LATENCY_GRAPH_COLUMNS:]
    high, low = max(values), min(values)
    rows = 4
    lines = [f"{name} - high {high} ms, low {low} ms (all time high {all_time_high} ms)", "-" * LATENCY_GRAPH_COLUMNS]
    span = max(1, high - low)
    heights = [1 + (value - low) * (rows - 1) // span for value in values]
    for row in range(rows, 0, -1):
        lines.append("".join("#" if height >= row else " " for height in heights).rstrip())
    width = max(len(label) for label in labels)
    for position in range(width):
        lines.append("".join(label[position] if position < len(label) else " " for label in labels).rstrip())
    return "\n".join(lines) + "\n"


@command(
    "latency|doctor",
    2,
    "admin noscript loading stale",
    group=G,
    summary="Replies with a report on the latency events.",
    since="2.8.13",
    acl=("@admin", "@slow", "@dangerous"),
)
def latency_doctor(ctx: Context, argv: list[bytes]) -> Any:
    observers = ctx.stats.observers
    if not observers.events and not observers.latency_threshold:
        return Verbatim(LATENCY_OFF_REPORT.encode())
    if not observers.events:
        return Verbatim(b"No latency event reached the threshold of the latency monitor so far.\n")
    lines = ["Latency events recorded (respq names its own: fsync, checkpoint):", ""]
    now = int(time.time())
    for number, (name, event) in enumerate(observers.events.items(), 1):
        values = [latency for _, latency in event.samples]
        average = sum(values) // len(values)
        deviation = sum(abs(average - value) for value in values) // len(values)
        period = max(1, now - min(at for at, _ in event.samples))
        lines.append(
            f"{number}. {name}: {len(values)} latency spikes (average {average}ms, mean deviation {deviation}ms, "
            f"period {period / len(values):.2f} sec). Worst all time event {event.max}ms."
        )
    lines += ["", "See SLOWLOG GET for the commands that ran longest, and LATENCY HISTORY <event> for each sample."]
    return Verbatim(("\n".join(lines) + "\n").encode())


@command(
    "latency|histogram",
    -2,
    "admin noscript loading stale",
    summary="Replies with the latency distribution of the commands named, or of every command called.",
    group=G,
    since="7.0.0",
    complexity="O(N) in the commands",
    acl=("@admin", "@slow", "@dangerous"),
)
def latency_histogram(ctx: Context, argv: list[bytes]) -> Any:
    stats = ctx.stats.commands
    # Commands with calls recorded (none while latency-tracking is off).
    tracked = {name for name, stat in stats.items() if any(stat.histogram)}
    if len(argv) == 2:
        names = [name for name in _all_names() if name in tracked]
    else:
        names = []
        for arg in argv[2:]:
            cmd = _by_full_name(arg)
            if cmd is None:
                continue
            names += [c.name for c in (cmd, *cmd.subcommands.values()) if c.name in tracked]
    return {name.encode(): _cdf(stats[name].histogram) for name in names}


def _cdf(buckets: list[int]) -> dict[bytes, Any]:
    return {b"calls": sum(buckets), b"histogram_usec": dict(histogram_cdf(buckets))}


def _all_names() -> list[str]:
    names = []
    for cmd in COMMANDS.values():
        names.append(cmd.name)
        names += [sub.name for sub in cmd.subcommands.values()]
    return names


def _by_full_name(arg: bytes) -> Command | None:
    """The command a LATENCY HISTOGRAM argument names: ``get``, or ``config|get`` for a subcommand."""
    parts = arg.lower().split(b"|")
    cmd = COMMANDS.get(parts[0])
    if cmd is None or len(parts) == 1:
        return cmd
    return cmd.subcommands.get(parts[1]) if len(parts) == 2 else None


@command(
    "latency|help",
    2,
    "loading stale",
    group=G,
    summary="Lists the LATENCY subcommands with a line or two on each.",
    since="2.8.13",
    acl=("@slow",),
)
def latency_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(
        b"LATENCY",
        [
            "DOCTOR",
            "    Reply with a report on the latency events recorded.",
            "GRAPH <event>",
            "    Reply with an ASCII graph of the samples of <event>.",
            "HISTORY <event>",
            "    Reply with the samples of <event>: [unix time, milliseconds] pairs.",
            "LATEST",
            "    Reply with each event's latest sample and its all time high.",
            "RESET [<event> ...]",
            "    Forget the samples of the events named (of every event when none is named).",
            "HISTOGRAM [COMMAND ...]",
            "    Reply with the latency distribution of the commands named (of every command called when none is",
            "    named).",
        ],
    )


# ---- persistence --------------------------------------------------------------------------------------------------
# respq has no RDB file and no AOF rewrite: its journal is made compact by checkpoints (docs/storage.md). SAVE,
# BGSAVE and BGREWRITEAOF all write a checkpoint; LASTSAVE is when the last one finished.
BGSAVE_IN_PROGRESS = b"ERR Background save already in progress"  # a checkpoint is being written
BGSAVE_STARTED = SimpleString(b"Background saving started")
BGSAVE_SCHEDULED = SimpleString(b"Background saving scheduled")
BGREWRITEAOF_STARTED = SimpleString(b"Background append only file rewriting started")
BGREWRITEAOF_SCHEDULED = SimpleString(b"Background append only file rewriting scheduled")


@command(
    "save",
    1,
    "admin noscript no_async_loading no_multi",
    group=G,
    summary="Writes a checkpoint before replying (every write is durable already; this compacts the journal).",
    since="1.0.0",
    complexity="O(N) in the data written since the last checkpoint",
    acl=("@admin", "@slow", "@dangerous"),
)
def save(ctx: Context, argv: list[bytes]) -> Any:
    if ctx.server.checkpointing:
        raise CommandError(BGSAVE_IN_PROGRESS)
    try:
        ctx.server.save()
    except StorageError as error:
        raise CommandError(errors.misconf(str(error))) from None
    return OK


@command(
    "bgsave",
    -1,
    "admin noscript no_async_loading",
    group=G,
    options=("SCHEDULE",),
    summary="Starts a checkpoint in the background.",
    since="1.0.0",
    acl=("@admin", "@slow", "@dangerous"),
)
def bgsave(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"schedule"):
        raise CommandError(errors.SYNTAX)
    server = ctx.server
    if ctx.client.deny_blocking and not server.checkpoint_running:
        # Inside EXEC Redis only schedules it (once, however many times it is asked): the checkpoint starts after
        # EXEC, whose atomic block no checkpoint may begin inside.
        if not server.checkpointing:
            server.background_save()
        return BGSAVE_SCHEDULED
    if server.checkpointing:
        raise CommandError(BGSAVE_IN_PROGRESS)
    server.background_save()
    return BGSAVE_STARTED


@command(
    "bgrewriteaof",
    1,
    "admin noscript no_async_loading",
    group=G,
    summary="Starts a checkpoint in the background (the journal is compacted by checkpoints).",
    since="1.0.0",
    acl=("@admin", "@slow", "@dangerous"),
)
def bgrewriteaof(ctx: Context, argv: list[bytes]) -> Any:
    if ctx.server.checkpointing or ctx.client.deny_blocking:
        if not ctx.server.checkpointing:
            ctx.server.background_save()
        return BGREWRITEAOF_SCHEDULED
    ctx.server.background_save()
    return BGREWRITEAOF_STARTED


@command(
    "lastsave",
    1,
    "loading stale fast",
    group=G,
    summary="Replies with the unix time of the last checkpoint (of start-up before the first).",
    since="1.0.0",
    acl=("@admin", "@fast", "@dangerous"),
)
def lastsave(ctx: Context, argv: list[bytes]) -> Any:
    return ctx.server.last_save()


# ---- MEMORY -------------------------------------------------------------------------------------------------------
@command(
    "memory|stats",
    2,
    "",
    group=G,
    summary="Replies with the process's memory figures under Redis's names (respq's values live on disk mostly).",
    since="4.0.0",
    acl=("@slow",),
)
def memory_stats(ctx: Context, argv: list[bytes]) -> Any:
    figures = memory_figures()
    rss, peak, startup = figures["rss"], figures["peak"], figures["startup"]
    clients = sum(_client_memory(client) for client in ctx.clients.values())
    keyspace = ctx.keyspace
    per_db: dict[bytes, Any] = {}
    keys = 0
    if keyspace is not None:
        for db in range(ctx.config.databases):
            count = keyspace.dbsize(db)
            if count:
                keys += count
                expires = len(keyspace.volatile[db])
                per_db[b"db.%d" % db] = {
                    b"overhead.hashtable.main": _table_overhead(count),
                    b"overhead.hashtable.expires": _table_overhead(expires),
                    b"overhead.hashtable.slot-to-keys": 0,
                }
    overhead = (
        startup
        + clients
        + sum(d[b"overhead.hashtable.main"] + d[b"overhead.hashtable.expires"] for d in per_db.values())
    )
    dataset = max(0, rss - overhead)
    net = max(0, rss - startup)
    reply: dict[bytes, Any] = {
        b"peak.allocated": peak,
        b"total.allocated": rss,
        b"startup.allocated": startup,
        b"replication.backlog": 0,
        b"clients.slaves": 0,
        b"clients.normal": clients,
        b"cluster.links": 0,
        b"aof.buffer": 0,
        b"lua.caches": 0,
        b"functions.caches": 0,
        **per_db,
        b"overhead.total": overhead,
        b"keys.count": keys,
        b"keys.bytes-per-key": net // keys if keys else 0,
        b"dataset.bytes": dataset,
        b"dataset.percentage": dataset * 100 / net if net else 0.0,
        b"peak.percentage": rss * 100 / peak if peak else 0.0,
        b"allocator.allocated": rss,
        b"allocator.active": rss,
        b"allocator.resident": rss,
        b"allocator-fragmentation.ratio": 1.0,
        b"allocator-fragmentation.bytes": 0,
        b"allocator-rss.ratio": 1.0,
        b"allocator-rss.bytes": 0,
        b"rss-overhead.ratio": 1.0,
        b"rss-overhead.bytes": 0,
        b"fragmentation": 1.0,
        b"fragmentation.bytes": 0,
    }
    return reply


def _table_overhead(entries: int) -> int:
    """What a hash table of ``entries`` costs Redis beyond its keys and values: an entry each and a power-of-two
    bucket array."""
    return entries * 24 + (1 << max(2, (entries - 1).bit_length())) * 8 if entries else 0


def _client_memory(client: Any) -> int:
    connection = client.connection
    return connection.memory() if connection is not None else 0


@command(
    "memory|doctor",
    2,
    "",
    group=G,
    summary="Replies with a report on the process's memory use.",
    since="4.0.0",
    acl=("@slow",),
)
def memory_doctor(ctx: Context, argv: list[bytes]) -> Any:
    figures = memory_figures()
    rss, peak = figures["rss"], figures["peak"]
    lines = [
        f"The respq process holds {rss} bytes of memory (peak {peak} bytes).",
        "Lists and streams live on disk and cost memory only for their indexes; strings and hashes are held in "
        "memory (INFO memory respq_inline_bytes).",
    ]
    if peak > rss * 3 // 2:
        lines.append("The peak is well above the current use: MEMORY PURGE returns freed memory to the system.")
    else:
        lines.append("No memory issue was found.")
    return Verbatim(("\n".join(lines) + "\n").encode())


@command(
    "memory|malloc-stats",
    2,
    "",
    group=G,
    summary="Replies with the allocator's statistics; respq runs on the C library's malloc, which keeps none.",
    since="4.0.0",
    acl=("@slow",),
)
def memory_malloc_stats(ctx: Context, argv: list[bytes]) -> Any:
    return Verbatim(b"respq allocates with the C library's malloc, which reports no statistics.\n")


@command(
    "memory|purge",
    2,
    "",
    group=G,
    summary="Returns memory the process freed to the system (malloc_trim).",
    since="4.0.0",
    acl=("@slow",),
)
def memory_purge(ctx: Context, argv: list[bytes]) -> Any:
    purge_memory()
    return OK
