"""CLUSTER (Redis 7.0's replies, from a static slot map), CLUSTERX (Kvrocks's commands that push the map),
READONLY, READWRITE and ASKING.

Without ``cluster-enabled yes`` each answers as redis-server does without cluster support. Subcommands that change
the topology the gossip way (MEET, ADDSLOTS, FAILOVER, ...) answer an error naming CLUSTERX SETNODES instead."""

from __future__ import annotations

import time
from collections.abc import Collection
from itertools import islice
from typing import Any

from respq import errors
from respq.cluster import SLOTS, MapError, SlotMap, key_slot
from respq.cluster.slotmap import INVALID_VERSION, SLOT_OUT_OF_RANGE, Node, format_ranges
from respq.commands.args import parse_int
from respq.commands.context import Context
from respq.commands.help import help_lines
from respq.commands.table import command, container
from respq.errors import CommandError
from respq.replies import OK, Verbatim

G = "cluster"
CLUSTER_DISABLED = b"ERR This instance has cluster support disabled"
NOT_INITIALIZED = b"CLUSTERDOWN The cluster is not initialized"  # Kvrocks's, before a map arrives
INVALID_SLOT = b"ERR Invalid slot"
INVALID_SLOT_OR_COUNT = b"ERR Invalid slot or number of keys"
STATIC_MAP = b"ERR CLUSTER %s is not supported: respq's slot map is set with CLUSTERX SETNODES (no cluster bus)"
# Redis's answers for what a cluster node keeps to database 0.
SELECT_IN_CLUSTER = b"ERR SELECT is not allowed in cluster mode"
MOVE_IN_CLUSTER = b"ERR MOVE is not allowed in cluster mode"
COPY_DB_IN_CLUSTER = b"ERR Copying to another database is not allowed in cluster mode"
SWAPDB_IN_CLUSTER = b"ERR SWAPDB is not allowed in cluster mode"
INVALID_IMPORT_STATE = b"ERR Invalid import state"
SLOT_SERVED_HERE = b"ERR The slot is served or imported by this node: its keys are not removed"
IMPORT_START, IMPORT_SUCCESS, IMPORT_FAILED = 0, 1, 2  # Kvrocks's CLUSTERX IMPORT states
CPORT_OFFSET = 10000  # CLUSTER NODES prints port+10000 as the bus port, as Kvrocks does: parsers expect one

_ADMIN = "admin stale no_async_loading"


def slot_map(ctx: Context) -> SlotMap:
    """The node's slot map; the error redis-server gives without cluster support when there is none."""
    slots = ctx.cluster
    if slots is None:
        raise CommandError(CLUSTER_DISABLED)
    return slots


def _initialized(ctx: Context) -> SlotMap:
    slots = slot_map(ctx)
    if slots.version < 0:
        raise CommandError(NOT_INITIALIZED)
    return slots


def _parse_slot(arg: bytes, error: bytes) -> int:
    slot = parse_int(arg)
    if not 0 <= slot < SLOTS:
        raise CommandError(error)
    return slot


container("cluster", group=G, summary="Groups the subcommands that show and set the cluster's slot map.", since="3.0.0")


@command("cluster|info", 2, "stale", group=G, summary="Reports the cluster's state and its slot counts.", since="3.0.0")
def cluster_info(ctx: Context, argv: list[bytes]) -> Any:
    slots = slot_map(ctx)
    epoch = max(slots.version, 0)
    fields = [
        ("cluster_state", "ok" if slots.covered else "fail"),
        ("cluster_slots_assigned", slots.assigned),
        ("cluster_slots_ok", slots.assigned),
        ("cluster_slots_pfail", 0),
        ("cluster_slots_fail", 0),
        ("cluster_known_nodes", max(len(slots.nodes), 1)),
        ("cluster_size", slots.size),
        ("cluster_current_epoch", epoch),
        ("cluster_my_epoch", epoch),
        ("cluster_stats_messages_sent", 0),  # no cluster bus: nothing is ever sent or received
        ("cluster_stats_messages_received", 0),
        ("total_cluster_links_buffer_limit_exceeded", 0),
    ]
    return Verbatim("".join(f"{name}:{value}\r\n" for name, value in fields).encode())


@command("cluster|myid", 2, "stale", group=G, summary="Returns this node's id.", since="3.0.0")
def cluster_myid(ctx: Context, argv: list[bytes]) -> Any:
    slots = slot_map(ctx)
    if not slots.myid:
        raise CommandError(NOT_INITIALIZED)
    return slots.myid.encode()


@command("cluster|keyslot", 3, "stale", group=G, summary="Returns the hash slot of a key.", since="3.0.0")
def cluster_keyslot(ctx: Context, argv: list[bytes]) -> Any:
    slot_map(ctx)
    return key_slot(argv[2])


def _slot_keys(ctx: Context, slot: int) -> Collection[bytes]:
    """Keys of database 0 (the only one in cluster mode) in ``slot``, from the slot index. As Redis counts them, a
    key past its expiry time that nothing deleted yet is still there; the keys of a slot another node serves now
    are not (they are hidden, kept for a slot that comes back)."""
    keyspace = ctx.keyspace
    index = keyspace.slot_index
    keys = index.keys(slot) if index is not None else ()
    return () if keys and keyspace.hidden and next(iter(keys)) in keyspace.hidden else keys


@command(
    "cluster|countkeysinslot",
    3,
    "stale",
    group=G,
    summary="Counts the keys of a hash slot.",
    since="3.0.0",
    complexity="O(1)",
)
def cluster_countkeysinslot(ctx: Context, argv: list[bytes]) -> Any:
    slot_map(ctx)
    return len(_slot_keys(ctx, _parse_slot(argv[2], INVALID_SLOT)))


@command(
    "cluster|getkeysinslot",
    4,
    "stale",
    group=G,
    summary="Returns up to count keys of a hash slot.",
    since="3.0.0",
    complexity="O(N) where N is the number of requested keys",
)
def cluster_getkeysinslot(ctx: Context, argv: list[bytes]) -> Any:
    slot_map(ctx)
    slot, count = parse_int(argv[2]), parse_int(argv[3])
    if not 0 <= slot < SLOTS or count < 0:
        raise CommandError(INVALID_SLOT_OR_COUNT)
    return list(islice(_slot_keys(ctx, slot), count))


def _node_entry(node: Node) -> list[Any]:
    return [node.host.encode(), node.port, node.id.encode(), {}]


@command(
    "cluster|slots",
    2,
    "stale",
    group=G,
    summary="Lists the slot ranges and the node serving each.",
    since="3.0.0",
    complexity="O(N) in the slot ranges",
)
def cluster_slots(ctx: Context, argv: list[bytes]) -> Any:
    slots = slot_map(ctx)  # before the first map: no ranges, as a node of no cluster yet
    ranges = sorted((start, end, node) for node in slots.nodes.values() for start, end in node.ranges)
    return [[start, end, _node_entry(node)] for start, end, node in ranges]


@command(
    "cluster|shards",
    2,
    "stale",
    group=G,
    summary="Lists the shards: each one's slot ranges and nodes.",
    since="7.0.0",
    complexity="O(N) in the nodes",
)
def cluster_shards(ctx: Context, argv: list[bytes]) -> Any:
    slots = slot_map(ctx)
    shards = []
    for node in slots.nodes.values():
        host = node.host.encode()
        described = {
            b"id": node.id.encode(),
            b"port": node.port,
            b"ip": host,
            b"endpoint": host,
            b"role": b"master",
            b"replication-offset": 0,
            b"health": b"online",
        }
        bounds = [bound for start, end in node.ranges for bound in (start, end)]
        shards.append({b"slots": bounds, b"nodes": [described]})
    return shards


@command(
    "cluster|nodes",
    2,
    "stale",
    group=G,
    summary="Lists the nodes of the slot map in Redis's nodes.conf format.",
    since="3.0.0",
    complexity="O(N) in the nodes",
)
def cluster_nodes(ctx: Context, argv: list[bytes]) -> Any:
    slots = _initialized(ctx)
    now = int(time.time() * 1000)
    lines = []
    for node in slots.nodes.values():
        flags = "myself,master" if node is slots.myself else "master"
        address = f"{node.host}:{node.port}@{node.port + CPORT_OFFSET}"
        line = f"{node.id} {address} {flags} - 0 {now} {slots.version} connected"
        if node.ranges:
            line += " " + format_ranges(node.ranges)
        lines.append(line + "\n")
    return Verbatim("".join(lines).encode())


def _static(name: str, arity: int, summary: str, flags: str = _ADMIN) -> None:
    """A subcommand that would change the topology the gossip way: refused with a pointer to CLUSTERX."""

    @command(f"cluster|{name}", arity, flags, group=G, summary=summary, since=_SINCE.get(name, "3.0.0"))
    def refuse(ctx: Context, argv: list[bytes]) -> Any:
        slot_map(ctx)
        raise CommandError(STATIC_MAP % name.upper().encode())


# The refused subcommands Redis added after CLUSTER itself (3.0.0).
_SINCE = {"addslotsrange": "7.0.0", "delslotsrange": "7.0.0", "links": "7.0.0", "replicas": "5.0.0"}

for _name, _arity, _summary, *_flags in (
    ("addslots", -3, "Assigns slots to this node (refused: the map is static)."),
    ("addslotsrange", -4, "Assigns slot ranges to this node (refused: the map is static)."),
    ("bumpepoch", 2, "Advances the config epoch (refused: the map is static)."),
    ("count-failure-reports", 3, "Counts failure reports (refused: there is no failure detection).", "admin stale"),
    ("delslots", -3, "Removes slots from this node (refused: the map is static)."),
    ("delslotsrange", -4, "Removes slot ranges from this node (refused: the map is static)."),
    ("failover", -2, "Promotes a replica (refused: respq has no replicas)."),
    ("flushslots", 2, "Removes this node's slots (refused: the map is static)."),
    ("forget", 3, "Forgets a node (refused: the map is static)."),
    ("links", 2, "Lists cluster bus links (refused: there is no cluster bus).", "stale"),
    ("meet", -4, "Joins a node to the cluster (refused: the map is static)."),
    ("replicas", 3, "Lists a node's replicas (refused: respq has no replicas).", "admin stale"),
    ("replicate", 3, "Makes this node a replica (refused: respq has no replicas)."),
    ("reset", -2, "Resets this node (refused: the map is static).", "admin noscript stale"),
    ("saveconfig", 2, "Saves the map (refused: every change is saved at once)."),
    ("set-config-epoch", 3, "Sets the config epoch (refused: the map is static)."),
    ("setslot", -4, "Sets a slot's state (refused: use CLUSTERX SETSLOT)."),
    ("slaves", 3, "Lists a node's replicas (refused: respq has no replicas).", "admin stale"),
):
    _static(_name, _arity, _summary, *_flags)


CLUSTER_HELP = [
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "The slot map is set with CLUSTERX SETNODES, SETNODEID and SETSLOT; subcommands that change it the gossip",
    "way (MEET, ADDSLOTS, SETSLOT, FAILOVER, ...) answer an error.",
]


@command("cluster|help", 2, "loading stale", group=G, summary="Lists the CLUSTER subcommands.", since="5.0.0")
def cluster_help(ctx: Context, argv: list[bytes]) -> Any:
    slot_map(ctx)
    return help_lines(b"CLUSTER", CLUSTER_HELP)


# ---- CLUSTERX: Kvrocks's commands that push the map ------------------------------------------------------------
container(
    "clusterx",
    group=G,
    summary="Groups the subcommands that set the slot map (Kvrocks's CLUSTERX).",
    since="7.0.0",
    extension=True,
)


def _clusterx_map(ctx: Context, argv: list[bytes]) -> SlotMap:
    """Without cluster mode CLUSTERX is unknown, as to redis-server."""
    if ctx.cluster is None:
        raise CommandError(errors.unknown_command(argv[0], argv[1:]))
    return ctx.cluster


def _version(arg: bytes) -> int:
    version = parse_int(arg)
    if version < 0:
        raise _refused(MapError(INVALID_VERSION))
    return version


def _refused(error: MapError) -> CommandError:
    """Kvrocks replies ERR and the map's own text."""
    return CommandError(b"ERR " + error.message.encode())


@command(
    "clusterx|setnodes",
    -4,
    "admin stale",
    group=G,
    summary="Replaces the slot map (Kvrocks's SETNODES text) if its version is newer, or with FORCE.",
    since="7.0.0",
    options=("FORCE",),
    extension=True,
)
def clusterx_setnodes(ctx: Context, argv: list[bytes]) -> Any:
    slots = _clusterx_map(ctx, argv)
    if len(argv) > 5 or (len(argv) == 5 and argv[4].lower() != b"force"):
        raise CommandError(errors.SYNTAX)
    version = _version(argv[3])
    before = dict(enumerate(slots.owners))
    try:
        changed = slots.set_nodes(argv[2].decode("utf-8", "replace"), version, force=len(argv) == 5)
    except MapError as error:
        raise _refused(error) from None
    if changed:
        ctx.server.cluster_changed([slot for slot, owner in before.items() if owner is not slots.owners[slot]])
    return OK


@command(
    "clusterx|setnodeid",
    3,
    "admin stale",
    group=G,
    summary="Names the node of the slot map that this node is.",
    since="7.0.0",
    extension=True,
)
def clusterx_setnodeid(ctx: Context, argv: list[bytes]) -> Any:
    slots = _clusterx_map(ctx, argv)
    try:
        slots.set_node_id(argv[2].decode("utf-8", "replace"))
    except MapError as error:
        raise _refused(error) from None
    ctx.server.cluster_changed(list(range(SLOTS)))
    return OK


@command(
    "clusterx|setslot",
    6,
    "admin stale",
    group=G,
    summary="Gives one slot to a node: the version must be exactly the current one plus one.",
    since="7.0.0",
    options=("NODE",),
    extension=True,
)
def clusterx_setslot(ctx: Context, argv: list[bytes]) -> Any:
    slots = _clusterx_map(ctx, argv)
    slot = parse_int(argv[2])
    if not 0 <= slot < SLOTS:
        raise _refused(MapError(SLOT_OUT_OF_RANGE))
    if argv[3].lower() != b"node":
        raise CommandError(errors.SYNTAX)
    try:
        slots.set_slot(slot, argv[4].decode("utf-8", "replace"), _version(argv[5]))
    except MapError as error:
        raise _refused(error) from None
    ctx.server.cluster_changed([slot])
    return OK


@command(
    "clusterx|publish",
    4,
    "pubsub loading stale fast",
    group=G,
    summary="Delivers a PUBLISH another node of the map forwarded, to this node's subscribers only.",
    since="7.0.0",
    complexity="O(N+M): N subscribers of the channel, M patterns subscribed to",
    extension=True,
)
def clusterx_publish(ctx: Context, argv: list[bytes]) -> Any:
    _clusterx_map(ctx, argv)
    return ctx.pubsub.publish(argv[2], argv[3])


def _slot_arg(arg: bytes) -> int:
    slot = parse_int(arg)
    if not 0 <= slot < SLOTS:
        raise _refused(MapError(SLOT_OUT_OF_RANGE))
    return slot


def _drop_slot_keys(ctx: Context, slot: int) -> int:
    """Deletes the keys of ``slot``, which this node does not serve (hidden keys included)."""
    keyspace = ctx.keyspace
    index = keyspace.slot_index
    keys = list(index.keys(slot)) if index is not None else []
    keyspace.hidden.difference_update(keys)  # visible again for a moment so that delete finds them
    return sum(keyspace.delete(0, key) for key in keys)


@command(
    "clusterx|import",
    4,
    "admin stale",
    group=G,
    summary="Starts (0) or ends (1 success, 2 failure) the import of a slot's keys from its owner (Kvrocks's states).",
    since="7.0.0",
    extension=True,
)
def clusterx_import(ctx: Context, argv: list[bytes]) -> Any:
    slots = _clusterx_map(ctx, argv)
    slot, state = _slot_arg(argv[2]), parse_int(argv[3])
    if state not in (IMPORT_START, IMPORT_SUCCESS, IMPORT_FAILED):
        raise CommandError(INVALID_IMPORT_STATE)
    if state == IMPORT_START:
        slots.importing.add(slot)
        return OK
    slots.importing.discard(slot)
    if state == IMPORT_FAILED and not slots.serves(slot):
        _drop_slot_keys(ctx, slot)  # Kvrocks cleans a failed import up: the slot's owner still has the keys
    return OK


@command(
    "clusterx|delkeysinslot",
    3,
    "admin write stale",
    group=G,
    summary="Deletes the keys this node keeps of a slot another node serves (after the slot moved there).",
    since="7.0.0",
    complexity="O(N) in the keys of the database",
    extension=True,
)
def clusterx_delkeysinslot(ctx: Context, argv: list[bytes]) -> Any:
    slots = _clusterx_map(ctx, argv)
    slot = _slot_arg(argv[2])
    if slots.serves(slot) or slot in slots.importing:
        raise CommandError(SLOT_SERVED_HERE)
    return _drop_slot_keys(ctx, slot)


@command(
    "clusterx|version", 2, "stale", group=G, summary="Returns the slot map's version.", since="7.0.0", extension=True
)
def clusterx_version(ctx: Context, argv: list[bytes]) -> Any:
    return _clusterx_map(ctx, argv).version


@command(
    "clusterx|help",
    2,
    "loading stale",
    group=G,
    summary="Lists the CLUSTERX subcommands.",
    since="7.0.0",
    extension=True,
)
def clusterx_help(ctx: Context, argv: list[bytes]) -> Any:
    _clusterx_map(ctx, argv)
    return help_lines(
        b"CLUSTERX",
        [
            'SETNODES "<id> <host> <port> master - <slot|start-end> ...\\n..." <version> [FORCE]',
            "    Replace the slot map if <version> is newer than the current one (any version with FORCE).",
            "SETNODEID <id>",
            "    Name the node of the map that this node is.",
            "SETSLOT <slot> NODE <id> <version>",
            "    Give <slot> to node <id>; <version> must be the current version plus one.",
            "VERSION",
            "    Return the slot map's version (-1 before the first map).",
            "IMPORT <slot> <0|1|2>",
            "    Start (0) importing <slot>: ASKING then lets the next command use it here; end it (1 success,",
            "    2 failure: the keys copied so far are deleted).",
            "DELKEYSINSLOT <slot>",
            "    Delete the keys this node keeps of <slot> once another node serves it; returns how many.",
            "PUBLISH <channel> <message>",
            "    Deliver a message another node forwarded to this node's subscribers (not forwarded again).",
        ],
    )


# ---- per-connection flags: READONLY/READWRITE matter with replicas, which respq has not yet ------------------------
@command(
    "readonly",
    1,
    "loading stale fast",
    group=G,
    summary="Allows reads from a replica.",
    since="3.0.0",
    acl=("@fast", "@connection"),
)
def readonly(ctx: Context, argv: list[bytes]) -> Any:
    slot_map(ctx)
    return OK


@command(
    "readwrite", 1, "loading stale fast", group=G, summary="Ends READONLY.", since="3.0.0", acl=("@fast", "@connection")
)
def readwrite(ctx: Context, argv: list[bytes]) -> Any:
    slot_map(ctx)
    return OK


@command(
    "asking",
    1,
    "fast",
    group=G,
    summary="Lets the next command use a slot being imported.",
    since="3.0.0",
    acl=("@fast", "@connection"),
)
def asking(ctx: Context, argv: list[bytes]) -> Any:
    slot_map(ctx)
    ctx.client.asking = True
    return OK
