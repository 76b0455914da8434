"""Replication state shared by the command layer and the server: the replication ID and offset, the backlog, the
replicas attached, and the stream of effects they are fed (docs/replication.md).

Replication works at the command layer, as Redis's does: after a write changed data, the command's effects (the
command itself, or what Redis rewrites it to when it is not deterministic) are appended to the stream as RESP arrays,
``SELECT`` first whenever the database changes. Effects of one call (a transaction, a script, a command with several
effects) go out together, wrapped in MULTI/EXEC when there is more than one. Nothing here knows sockets: a replica is
fed through the ``send`` callable its connection gave.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from respq.protocol import encode_command, encode_reply
from respq.types import REGISTRY

if TYPE_CHECKING:
    from respq.storage.engine import Engine

NO_REPLID = "0" * 40
# A minimal RDB a Redis 7.0 replica loads (version 10, no keys, checksum 0 = "checksum disabled"): the data set follows
# it as commands, as the AOF rewrite writes each type.
RDB_MAGIC = b"REDIS0010"
RDB_AUX = 0xFA
RDB_EOF = 0xFF
GETACK = encode_command([b"REPLCONF", b"GETACK", b"*"])
MULTI = encode_command([b"MULTI"])
EXEC = encode_command([b"EXEC"])


def new_replid() -> str:
    return os.urandom(20).hex()


def _rdb_string(data: bytes) -> bytes:
    assert len(data) < 64  # a 6-bit length is all the AUX fields need
    return bytes([len(data)]) + data


def empty_rdb() -> bytes:
    aux = b"".join(
        bytes([RDB_AUX]) + _rdb_string(name) + _rdb_string(value)
        for name, value in ((b"redis-ver", b"7.0.15"), (b"redis-bits", b"64"), (b"aof-base", b"0"))
    )
    return RDB_MAGIC + aux + bytes([RDB_EOF]) + b"\0" * 8


@dataclass(eq=False)
class Replica:
    """A replica attached to this server (a connection that sent SYNC or PSYNC)."""

    client_id: int
    ip: str
    send: Callable[[bytes], None]  # queues bytes of the stream on the replica's connection
    port: int = 0  # REPLCONF listening-port
    ack_offset: int = 0  # the last REPLCONF ACK's offset
    ack_time: float = field(default_factory=time.monotonic)
    online: bool = True


class Replication:
    def __init__(self, backlog_size: int = 1 << 20) -> None:
        self.replid = new_replid()
        self.replid2 = NO_REPLID  # the replication ID this server followed before a promotion
        self.second_offset = -1  # up to which offset replid2's history is valid (+1), as Redis's second_replid_offset
        self.offset = 0  # master_repl_offset: bytes of the stream ever produced
        self.backlog_size = backlog_size
        self.backlog: deque[bytes] | None = None  # made when the first replica attaches (as Redis's)
        self.backlog_bytes = 0
        self.replicas: dict[int, Replica] = {}
        self.announced_port: dict[int, int] = {}  # REPLCONF listening-port of connections not attached yet
        # True while there is a backlog: commands are then propagated (checked on every call: keep it one attribute)
        self.feeding = False
        self.depth = 0  # calls nested in the current one (EXEC, scripts)
        self.pending: list[tuple[int, list[bytes]]] = []  # effects of the current call, as (db, argv)
        self.db = -1  # the database the stream last selected
        self.master: MasterState | None = None  # set while this server is a replica
        # This server's data follows replid's history up to offset (it was synced from a master, or is the master):
        # a new master is asked to continue it rather than to send everything
        self.followed = False
        self.on_ack: Callable[[], None] | None = None  # an ACK arrived: WAIT may be answered
        # Bytes of the stream not sent to replicas yet, and how to have ``send_now`` called once the current pass of
        # the event loop is over (None: sent at once)
        self.unsent: list[bytes] = []
        self.schedule_send: Callable[[], None] | None = None
        self.send_scheduled = False
        self.min_replicas = 0  # min-replicas-to-write
        # Writes of normal clients are checked (this is a replica, or min-replicas-to-write is set): one attribute
        # the dispatcher looks at for every command
        self.guard_writes = False

    def configure(self, min_replicas: int) -> None:
        self.min_replicas = min_replicas
        self.guard_writes = bool(min_replicas) or self.master is not None

    # ---- the stream -----------------------------------------------------------------------------------------------
    def start_backlog(self) -> None:
        if self.backlog is None:
            self.backlog = deque()
            self.backlog_bytes = 0
            self.feeding = True

    @property
    def backlog_first(self) -> int:
        """The offset of the first byte the backlog holds (Redis's repl_backlog_first_byte_offset)."""
        return self.offset - self.backlog_bytes + 1

    def propagate(self, db: int, argv: list[bytes]) -> None:
        """One effect of the current call, or on its own outside any call (an expired key's DEL)."""
        self.pending.append((db, argv))
        if not self.depth:
            self.flush_call()

    def flush_call(self) -> None:
        """The current call finished: its effects go out, together."""
        pending = self.pending
        if not pending:
            return
        self.pending = []
        if len(pending) == 1 and pending[0][0] == self.db:  # the common case: one command, same database
            self.feed(encode_reply(pending[0][1], 2))  # an array of bulk strings, as a request is sent (in C)
            return
        parts = []
        wrap = len(pending) > 1
        if wrap:
            parts.append(MULTI)
        for db, argv in pending:
            if db != self.db:
                parts.append(encode_command([b"SELECT", b"%d" % db]))
                self.db = db
            parts.append(encode_reply(argv, 2))
        if wrap:
            parts.append(EXEC)
        self.feed(b"".join(parts))

    def feed_calls(self, db: int, calls: list[list[list[bytes]]]) -> None:
        """The effects of consecutive calls in database ``db`` (a pipelined run), each call's as ``flush_call`` would
        send them, fed at once."""
        parts = []
        if db != self.db:
            parts.append(encode_command([b"SELECT", b"%d" % db]))
            self.db = db
        for call in calls:
            if len(call) == 1:
                parts.append(encode_reply(call[0], 2))
            elif call:
                parts.append(MULTI)
                parts.extend(encode_reply(argv, 2) for argv in call)
                parts.append(EXEC)
        if parts:
            self.feed(b"".join(parts))

    def feed(self, data: bytes) -> None:
        """Appends encoded commands to the stream: the backlog keeps them, every online replica is sent them."""
        backlog = self.backlog
        if backlog is None:
            return
        backlog.append(data)
        self.offset += len(data)
        self.backlog_bytes += len(data)
        while self.backlog_bytes - len(backlog[0]) >= self.backlog_size:
            self.backlog_bytes -= len(backlog.popleft())
        if not self.replicas:
            return
        self.unsent.append(data)
        if self.schedule_send is None:
            self.send_now()
        elif not self.send_scheduled:
            self.send_scheduled = True
            self.schedule_send()

    def send_now(self) -> None:
        """Sends replicas what the stream gained since the last time: once per loop pass, not once per command."""
        self.send_scheduled = False
        if not self.unsent:
            return
        data = b"".join(self.unsent)
        self.unsent.clear()
        for replica in self.replicas.values():
            if replica.online:
                replica.send(data)

    def since(self, offset: int) -> bytes | None:
        """The stream from ``offset`` (the first byte a replica lacks) on, or None when the backlog no longer holds
        it (or never did)."""
        if self.backlog is None or not self.backlog_first <= offset <= self.offset + 1:
            return None
        skip = offset - self.backlog_first
        data = b"".join(self.backlog)
        return data[skip:]

    def can_continue(self, replid: str, offset: int) -> bool:
        """PSYNC ``replid`` ``offset`` may continue: the history is ours (or, up to where it forked, our former
        master's) and the backlog still holds the offset."""
        if replid != self.replid and not (replid == self.replid2 and offset <= self.second_offset):
            return False
        return self.since(offset) is not None

    def request_acks(self) -> None:
        """Asks every replica for an ACK now (WAIT), through the stream as Redis does."""
        if self.replicas:
            self.feed(GETACK)

    def shift_history(self) -> None:
        """A replica becomes a master (REPLICAOF NO ONE): a new ID, the old one kept so that the other replicas of the
        same master can continue from this server (Redis's shiftReplicationId)."""
        self.replid2 = self.replid
        self.second_offset = self.offset + 1
        self.replid = new_replid()

    # ---- replicas -------------------------------------------------------------------------------------------------
    def attach(self, replica: Replica) -> None:
        self.send_now()  # what is pending predates this replica's sync
        self.start_backlog()
        replica.port = self.announced_port.pop(replica.client_id, 0)
        self.replicas[replica.client_id] = replica
        self.db = -1  # the next effect selects its database again: a new replica knows none

    def detach(self, client_id: int) -> None:
        self.replicas.pop(client_id, None)
        self.announced_port.pop(client_id, None)

    def acked(self, offset: int) -> int:
        """How many replicas acknowledged ``offset`` or more."""
        return sum(1 for replica in self.replicas.values() if replica.ack_offset >= offset)

    def good_replicas(self, max_lag: int) -> int:
        """Replicas whose last ACK is at most ``max_lag`` seconds old (min-replicas-to-write)."""
        now = time.monotonic()
        return sum(1 for replica in self.replicas.values() if now - replica.ack_time <= max_lag)


@dataclass(eq=False)
class MasterState:
    """This server is a replica of ``host``:``port`` (REPLICAOF)."""

    host: str
    port: int
    link_up: bool = False
    syncing: bool = True  # master_sync_in_progress
    down_since: float = field(default_factory=time.monotonic)
    last_io: float = field(default_factory=time.monotonic)
    applied: int = 0  # slave_repl_offset: the master's offset this replica has applied


def dataset_commands(engine: Engine, databases: int, now_ms: int) -> Iterator[bytes]:
    """The data set as commands, key by key (SELECT before each database's first key, an expiry after its key), as a
    full sync sends it after the empty RDB. Keys already expired are left out."""
    for db in range(databases):
        selected = False
        for key in list(engine.keys(db)):
            entry = engine.get(db, key)
            if entry is None or (entry.expire_ms is not None and entry.expire_ms <= now_ms):
                continue
            parts = []
            if not selected:
                parts.append(encode_command([b"SELECT", b"%d" % db]))
                selected = True
            parts.extend(encode_command(argv) for argv in REGISTRY.by_name[entry.type].rewrite(key, entry.value))
            if entry.expire_ms is not None:
                parts.append(encode_command([b"PEXPIREAT", key, b"%d" % entry.expire_ms]))
            yield b"".join(parts)
