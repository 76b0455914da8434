"""What a command handler may use: the context it is called with.

A handler is ``handler(ctx, argv) -> reply`` (a run handler ``(ctx, key, argvs)``, a spread handler ``(ctx, argvs)``).
``ctx.client`` is the calling connection's own state (selected database ``ctx.client.db``, protocol, transaction,
subscriptions, name, ...); every other field is shared by all clients of one server. A handler reaches nothing else:
no server object, no connection, no socket. One context is made per client when it connects and serves every command
it sends (``Server.context``), so dispatching costs no allocation.

Nothing here needs a running server: a test, or a script engine, builds a context over an engine opened on a
temporary directory, a ``Keyspace`` over it and a ``ServerControl`` of its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from respq.blocking import BlockingRegistry
from respq.client import Client
from respq.cluster import SlotMap
from respq.config import Config
from respq.info import InfoSource
from respq.keyspace import Keyspace
from respq.pubsub import PubSub
from respq.replication import Replication
from respq.stats import Stats
from respq.storage.engine import Engine

if TYPE_CHECKING:
    from respq.acl import Acl
    from respq.scripting.engine import ScriptEngine
    from respq.scripting.functions import FunctionEngine


class ServerControl(InfoSource, Protocol):
    """The server-wide state and actions a handler may use beyond the context's own fields; ``respq.server.Server``
    provides it. INFO renders from it (InfoSource); the rest is for the dispatcher and a few admin commands."""

    loading: bool  # the data directory is still loading: only commands flagged "loading" run
    # While a script runs past busy-reply-threshold: the BUSY error commands not flagged allow_busy get; else None.
    busy_error: bytes | None
    scripts: ScriptEngine  # the Lua script cache and runtime (EVAL, SCRIPT)
    functions: FunctionEngine  # the function libraries and their runtime (FUNCTION, FCALL)
    paused_until: float  # CLIENT PAUSE: time.monotonic() when the pause ends, 0.0 when none
    pause_writes_only: bool

    def unpause(self) -> None:
        """CLIENT UNPAUSE: ends a pause and lets held commands run."""

    def request_shutdown(self) -> None:
        """SHUTDOWN: stops the server once the reply is written."""

    def apply_config(self, changed: list[str]) -> None:
        """Makes the directives CONFIG SET changed take effect."""

    def attach_replica(self, client: Client, partial: bool = False) -> None:
        """SYNC/PSYNC: the client's connection becomes a replica fed the replication stream."""

    def replicaof(self, host: str | None, port: int) -> None:
        """REPLICAOF host port, or (``host`` None) NO ONE."""

    def start_monitor(self, client: Client) -> None:
        """MONITOR: shows the client every command run from now on."""

    def stop_monitor(self, client: Client) -> None:
        """RESET: the client is no longer a monitor (if it was one)."""

    @property
    def checkpointing(self) -> bool:
        """A checkpoint is being written (or about to be, for BGSAVE)."""

    @property
    def checkpoint_running(self) -> bool:
        """A checkpoint is being written (not only scheduled): Redis's RDB child is alive."""

    def save(self) -> None:
        """SAVE: writes a checkpoint before returning; raises StorageError when it fails."""

    def background_save(self) -> None:
        """BGSAVE, BGREWRITEAOF: starts a checkpoint in the background."""

    def last_save(self) -> int:
        """LASTSAVE: the unix time of the last checkpoint (of start-up before the first)."""

    def forward_publish(self, channel: bytes, message: bytes) -> None:
        """Cluster mode: PUBLISH reaches the subscribers of the other nodes of the map too."""

    def cluster_changed(self, slots: list[int]) -> None:
        """The slot map changed the owner of ``slots``: clients blocked on their keys are redirected."""


@dataclass(slots=True, eq=False)
class Context:
    client: Client  # the calling connection's state
    # The keyspace and engine are None while the data directory loads, when only commands flagged "loading" run; a
    # handler of such a command that uses them must check (RESET, INFO do).
    keyspace: Keyspace
    engine: Engine
    blocking: BlockingRegistry  # clients blocked on keys (BLPOP, XREAD BLOCK, ...)
    pubsub: PubSub
    stats: Stats  # INFO stats/commandstats/errorstats counters
    config: Config  # the live configuration (CONFIG SET changes it in place)
    clients: dict[int, Client]  # every connected client by id (CLIENT LIST/KILL)
    server: ServerControl
    acl: Acl = dataclasses.field(default_factory=lambda: _new_acl())  # the users, the ACL log
    cluster: SlotMap | None = None  # the slot map with cluster-enabled yes; None: every key is served here
    replication: Replication = dataclasses.field(default_factory=Replication)  # the replicas and the stream they get

    def __post_init__(self) -> None:
        if self.client.user is None:  # a client made without a user (a test's, a script's) runs as the default user
            self.client.user = self.acl.default

    def for_client(self, client: Client) -> Context:
        """The same server's context for another client (a second connection in a test, a script's own client)."""
        return dataclasses.replace(self, client=client)


def _new_acl() -> Acl:
    from respq.acl import Acl  # respq.acl reads the command table, which imports this module

    return Acl()
