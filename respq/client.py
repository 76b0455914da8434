"""Per-connection state that commands read and change. Knows nothing of sockets or of the server: the connection owns
the I/O, and handlers reach shared state through their context (respq.commands.context)."""

from __future__ import annotations

import itertools
import time
from typing import Any

_client_ids = itertools.count(1)


class Client:
    __slots__ = (
        "addr",
        "asking",
        "authenticated",
        "channels",
        "closing",
        "connection",
        "created",
        "db",
        "deny_blocking",
        "dirty_cas",
        "id",
        "killed",
        "laddr",
        "last_command",
        "last_interaction",
        "lib_name",
        "lib_ver",
        "master",
        "monitoring",
        "multi",
        "multi_error",
        "name",
        "no_evict",
        "no_touch",
        "patterns",
        "protocol",
        "replica",
        "reply_mode",
        "script",
        "shard_channels",
        "user",
        "watched",
    )

    def __init__(self, addr: str, laddr: str, *, authenticated: bool, user: Any = None) -> None:
        """``authenticated``: whether the connection may run commands before AUTH (the default user is on and
        needs no password); ``user``: the ACL user (respq.acl.User) its commands run as."""
        self.id = next(_client_ids)
        self.addr = addr
        self.laddr = laddr
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.db = 0
        self.protocol = 2
        self.authenticated = authenticated
        self.user = user
        self.created = time.monotonic()
        self.last_interaction = self.created
        self.last_command = "NULL"  # for CLIENT LIST cmd=; encoded only when listed
        self.multi: list[tuple[Any, list[bytes]]] | None = None  # queued (command, argv) while in MULTI
        self.multi_error = False  # a command was rejected while queueing: EXEC answers EXECABORT
        self.watched: set[tuple[int, bytes]] = set()
        self.dirty_cas = False  # a watched key changed: EXEC fails
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        self.shard_channels: set[bytes] = set()  # SSUBSCRIBE: counted apart from channels and patterns
        self.asking = False  # ASKING: the next redirected command may use a slot this node imports
        self.reply_mode = b"on"  # CLIENT REPLY on|off|skip
        self.no_evict = False
        self.no_touch = False
        self.closing = False  # QUIT: close after the reply is written
        self.killed = False
        self.script = False  # the client scripts' redis.call runs commands as (no connection, never blocks)
        self.monitoring = False  # MONITOR: every call is shown to it, and it may not touch keys
        self.deny_blocking = False  # running EXEC's commands: nothing may wait (Redis's CLIENT_DENY_BLOCKING)
        self.replica: Any = None  # the replication.Replica record once this connection sent SYNC/PSYNC
        self.master = False  # the link to this replica's master: its writes pass replica-read-only
        self.connection: Any = None  # the transport that delivers out-of-band messages (set by the connection)

    @property
    def subscriptions(self) -> int:
        """Subscriptions of every kind: while there are any the client is a subscriber (Redis's CLIENT_PUBSUB)."""
        return len(self.channels) + len(self.patterns) + len(self.shard_channels)

    @property
    def global_subscriptions(self) -> int:
        """What (P)(UN)SUBSCRIBE confirmations count: channels and patterns, not shard channels."""
        return len(self.channels) + len(self.patterns)

    @property
    def is_local(self) -> bool:
        return self.addr.startswith(("127.", "[::1]"))

    @property
    def in_pubsub_mode(self) -> bool:
        """RESP2 clients with subscriptions may only send (un)subscribe commands, PING, QUIT and RESET."""
        return self.protocol == 2 and bool(self.channels or self.patterns or self.shard_channels)

    def push(self, value: Any) -> None:
        """Delivers an out-of-band reply (a pub/sub message) to this client's connection."""
        if self.connection is not None:
            self.connection.push(value)
