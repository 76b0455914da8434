"""Replication commands: REPLICAOF/SLAVEOF, ROLE, WAIT, and the master side of Redis's protocol (SYNC, PSYNC,
REPLCONF). docs/replication.md describes the design."""

from __future__ import annotations

import time
from typing import Any

from respq import errors
from respq.blocking import Block
from respq.commands.args import parse_int, parse_timeout_ms
from respq.commands.context import Context
from respq.commands.table import command
from respq.errors import CommandError
from respq.replication import dataset_commands, empty_rdb
from respq.replies import OK, Raw, SimpleString

G = "server"
INVALID_MASTER_PORT = b"ERR Invalid master port"
REPLICA_CLIENT = b"ERR Command is not valid when client is a replica."
ALREADY_CONNECTED = SimpleString(b"OK Already connected to specified master")
NO_MASTER_LINK = b"NOMASTERLINK Can't SYNC while not connected with my master"
WAIT_ON_REPLICA = (
    b"ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is "
    b"configured to be writable (which is not the default) writes to replicas are just local and are not propagated."
)
# The key WAIT's callers block on: an ACK signals it (a push to a key of that name merely makes them look again)
WAIT_KEY = b"\0replication-ack"


def unrecognized_replconf(option: bytes) -> bytes:
    return b"ERR Unrecognized REPLCONF option: " + option


# ---- REPLICAOF ----------------------------------------------------------------------------------------------------
def _replicaof(ctx: Context, argv: list[bytes]) -> Any:
    replication = ctx.replication
    if argv[1].lower() == b"no" and argv[2].lower() == b"one":
        if replication.master is not None:
            ctx.server.replicaof(None, 0)
        return OK
    if ctx.client.replica is not None:
        raise CommandError(REPLICA_CLIENT)
    port = parse_int(argv[2], INVALID_MASTER_PORT)
    if not 0 <= port <= 65535:
        raise CommandError(INVALID_MASTER_PORT)
    host = argv[1].decode(errors="replace")
    master = replication.master
    if master is not None and master.host == host and master.port == port:
        return ALREADY_CONNECTED
    ctx.server.replicaof(host, port)
    return OK


for _name, _since in (("replicaof", "5.0.0"), ("slaveof", "1.0.0")):
    command(
        _name,
        3,
        "admin noscript stale no_async_loading",
        group=G,
        summary="Makes this server a replica of another one, or (NO ONE) a master again.",
        since=_since,
        acl=("@admin", "@slow", "@dangerous"),
    )(_replicaof)


@command(
    "role",
    1,
    "noscript loading stale fast",
    group=G,
    summary="Replies with this server's replication role, offset and replicas (or master).",
    since="2.8.12",
    acl=("@admin", "@fast", "@dangerous"),
)
def role(ctx: Context, argv: list[bytes]) -> Any:
    replication = ctx.replication
    master = replication.master
    if master is None:
        replicas = [
            [replica.ip.encode(), b"%d" % replica.port, b"%d" % replica.ack_offset]
            for replica in replication.replicas.values()
        ]
        return [b"master", replication.offset, replicas]
    state = b"connected" if master.link_up else b"connect"
    return [b"slave", master.host.encode(), master.port, state, master.applied if master.link_up else -1]


# ---- WAIT ---------------------------------------------------------------------------------------------------------
@command(
    "wait",
    3,
    "noscript",
    group="generic",
    summary="Waits until the given number of replicas acknowledged every write so far, or the timeout passes; "
    "replies with how many did.",
    since="3.0.0",
    acl=("@slow", "@connection"),
)
def wait(ctx: Context, argv: list[bytes]) -> Any:
    replication = ctx.replication
    if replication.master is not None:
        raise CommandError(WAIT_ON_REPLICA)
    wanted = parse_int(argv[1])
    milliseconds = parse_timeout_ms(argv[2])
    target = replication.offset
    acked = replication.acked(target)
    if acked >= wanted or ctx.client.deny_blocking:
        return acked
    replication.request_acks()

    def retry(key: bytes) -> Any:
        count = replication.acked(target)
        return count if count >= wanted else None

    block = Block([WAIT_KEY], milliseconds / 1000 if milliseconds else None, retry, 0)
    block.on_timeout = lambda: replication.acked(target)
    return block


# ---- the master side of the protocol ------------------------------------------------------------------------------
@command(
    "replconf",
    -1,
    "admin noscript loading stale allow_busy",
    group=G,
    summary="Tells the master about a replica (listening port, capabilities) and acknowledges the stream.",
    since="3.0.0",
    acl=("@admin", "@slow", "@dangerous"),
)
def replconf(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) % 2 == 0:
        raise CommandError(errors.SYNTAX)
    replication = ctx.replication
    client = ctx.client
    for i in range(1, len(argv), 2):
        option, value = argv[i].lower(), argv[i + 1]
        if option == b"listening-port":
            replication.announced_port[client.id] = parse_int(value)
        elif option == b"ack":
            replica = client.replica
            if replica is not None:
                replica.ack_offset = max(replica.ack_offset, parse_int(value))
                replica.ack_time = time.monotonic()
                if replication.on_ack is not None:
                    replication.on_ack()
            return None  # never answered
        elif option == b"getack":
            return None  # a master asks its replicas, which answer on their link
        elif option not in (b"ip-address", b"capa", b"rdb-only", b"rdb-filter-only"):
            raise CommandError(unrecognized_replconf(argv[i]))
    return OK


def _sync(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    replication = ctx.replication
    if client.replica is not None:
        return None  # already a replica: Redis ignores it
    if replication.master is not None and not replication.master.link_up:
        raise CommandError(NO_MASTER_LINK)
    psync = argv[0].lower() == b"psync"
    if psync:
        offset = parse_int(argv[2])
        replid = argv[1].decode(errors="replace")
        if replication.can_continue(replid, offset):
            rest = replication.since(offset) or b""
            ctx.server.attach_replica(client, partial=True)
            client.push(Raw(b"+CONTINUE " + replication.replid.encode() + b"\r\n" + rest))
            return None
    # A full sync: an RDB with no keys, then the data set as commands. The stream's offset counts those commands (a
    # replica counts every byte after the RDB), so FULLRESYNC names the offset they start at.
    engine = ctx.engine
    chunks = list(dataset_commands(engine, ctx.config.databases, int(time.time() * 1000)))
    start = replication.offset - sum(len(chunk) for chunk in chunks)
    rdb = empty_rdb()
    header = b"+FULLRESYNC %s %d\r\n" % (replication.replid.encode(), start) if psync else b""
    ctx.server.attach_replica(client)
    client.push(Raw(header + b"$%d\r\n" % len(rdb) + rdb))
    for chunk in chunks:
        client.push(Raw(chunk))
    return None


for _name, _arity, _since in (("sync", 1, "1.0.0"), ("psync", -3, "2.8.0")):
    command(
        _name,
        _arity,
        "admin noscript no_async_loading no_multi",
        group=G,
        summary="Makes the connection a replica: a full sync (an empty RDB, then the data set as commands) or the "
        "rest of the stream, then every write's effects.",
        since=_since,
        acl=("@admin", "@slow", "@dangerous"),
    )(_sync)

