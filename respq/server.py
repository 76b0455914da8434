"""The server: shared state (config, keyspace, clients, pub/sub, durability) and the Trio listener/supervisor tasks."""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import time
from typing import TYPE_CHECKING, Any

import trio

from respq import __version__, speedups
from respq.acl import load_users
from respq.blocking import BlockingRegistry
from respq.client import Client
from respq.cluster import MapError, SlotMap, key_slot
from respq.cluster.slotindex import SlotIndex
from respq.commands.context import Context
from respq.commands.modules import load_all
from respq.commands.pubsub import drop_shard_channels
from respq.commands.replication import WAIT_KEY
from respq.commands.table import apply_renames
from respq.config import SET_FAILED, Config, ConfigSetError
from respq.connection import CLIENT_BASE_MEMORY, Connection, open_listeners, serve_listeners, serve_while_busy
from respq.errors import DataDirectoryLocked, StartupError
from respq.histogram import CHECKPOINT_SECONDS, Histogram
from respq.http import check_http_bind, open_http_listener, serve_http
from respq.keyspace import Keyspace
from respq.log import Logger
from respq.peers import PeerLinks
from respq.pubsub import PubSub
from respq.reactor import Reactor
from respq.replica_link import follow_master
from respq.replication import MasterState, Replica, Replication
from respq.replies import ErrorReply, Raw
from respq.scripting.engine import ScriptEngine
from respq.scripting.functions import FunctionEngine
from respq.stats import RATE_SAMPLE_INTERVAL, Stats
from respq.storage.engine import Engine
from respq.storage.errors import DirectoryLockedError, DiskFullError, StorageError, StorageWriteError
from respq.storage.memory import MemoryEngine
from respq.storage.scrub import DONE, OFF, Scrub
from respq.tls import CONTEXT_DIRECTIVES, STARTUP_FAILED, UPDATE_FAILED, TLSContextError, TLSSettings, server_context
from respq.types import REGISTRY, SETTINGS_DIRECTIVES, type_settings

if TYPE_CHECKING:
    import socket
    import ssl

DISK_FULL_RETRY = 0.1  # seconds between attempts to write the journal while the disk is full
ACTIVE_EXPIRE_INTERVAL = 0.1  # seconds between active-expiry sweeps (Redis: hz 10)
EVERYSEC_INTERVAL = 1.0
CHECKPOINT_POLL = 0.5  # seconds between checks whether the journal has grown enough for a checkpoint
SETTLE_VALUES_PER_PASS = 2000  # journal-resident values copied to segments per loop pass before a checkpoint
SETTLE_AHEAD_SECONDS = 5.0  # producers may outpace the copying: then begin_checkpoint settles the rest
SHUTDOWN_DRAIN_SECONDS = 5.0  # how long in-flight commands may take to finish at shutdown
SCRUB_CHUNK = 4 << 20  # bytes the scrub verifies per worker-thread call; it sleeps between calls to keep its pace
SCRUB_SETTING_POLL = 0.5  # seconds between looks at scrub-bandwidth while the scrub is off
REPLICA_SEND_DELAY = 0.001  # seconds the stream's new bytes wait to be sent with those that follow
CLIENTS_CRON_INTERVAL = 1.0  # seconds between the checks every client gets (Redis: each client once a second)
# Fatal start-up lines, worded after Redis 7.0's ("Can't open or create append-only dir", "Fatal error loading the DB").
DATA_DIR_FAILED = "Can't open or create the data directory {}: {}"
DATA_DIR_LOCKED = "Can't lock the data directory: {}"
LOAD_FAILED = "Fatal error loading the DB: {}. Exiting."
TLS_APPLY_FAILED = "Failed applying new configuration. Possibly related to new {} setting. Restoring previous settings."


class Server:
    def __init__(self, config: Config, log: Logger) -> None:
        load_all()
        apply_renames(config.rename_commands)
        self.config = config
        self.log = log
        self.acl = load_users(config)
        self.stats = Stats()
        self.pubsub = PubSub()
        self.clients: dict[int, Client] = {}
        self.connections: dict[int, Connection] = {}
        self.started = time.time()
        self.started_monotonic = time.monotonic()
        self.run_id = os.urandom(20).hex()
        self.port = 0  # INFO tcp_port: the plaintext port, or the TLS port when there is no plaintext listener
        self.tls_port = 0
        self.tls_context: ssl.SSLContext | None = None  # set when a TLS port is configured
        self.tls_handshakes = 0  # TLS connections accepted whose handshake is under way: they count as clients
        self.loading = True
        self.engine: Engine | MemoryEngine | None = None
        self.scrub: Scrub | None = None  # the background check of checkpointed segments, once loading finished
        self.keyspace: Keyspace = None  # type: ignore[assignment]  # set when loading finishes
        self.blocking = BlockingRegistry()
        self.reactor: Reactor | None = None  # made when serving starts (it holds an epoll descriptor)
        self.paused_until = 0.0
        self.pause_writes_only = False
        self.pause_changed = trio.Event()
        self.durable_lsn = 0
        self._durable_changed = trio.Event()
        self._sync_wanted = trio.Event()
        self._sync_target = 0
        self.shutdown_requested = trio.Event()
        self.nursery: trio.Nursery = None  # type: ignore[assignment]
        self.clients_output = 0  # bytes of replies queued for every client together
        self.maxmemory_clients = config.maxmemory_clients  # bytes; 0 = no client eviction
        self.busy_error: bytes | None = None  # set while a script runs past busy-reply-threshold
        self.listeners: list[socket.socket] = []  # what plaintext clients connect to (set when serving starts)
        self.tls_listeners: list[socket.socket] = []
        self.embedded = False  # runs inside an application (respq.embedded), set by run
        self.scripts = ScriptEngine(log, config.script_memory_limit)
        self.scripts.serve_while_busy = self._serve_while_busy
        self._checkpoint_lock = trio.Lock()
        self.last_checkpoint = self.started  # LASTSAVE (set again once the data directory is open)
        self.checkpoint_seconds = Histogram(CHECKPOINT_SECONDS)  # for /metrics
        self.recovery_seconds = 0.0  # how long loading the data directory took
        self.saves = 0  # SAVE, BGSAVE, BGREWRITEAOF done (INFO rdb_saves in memory)
        self._checkpoint_scheduled = False  # BGSAVE started a checkpoint that has not taken the lock yet
        self._configure_observers()
        self.functions = FunctionEngine(log, config.script_memory_limit)  # FUNCTION's libraries, FCALL
        # cluster-enabled yes: the slot map, read from its file once the data directory is open (in memory, none).
        self.cluster: SlotMap | None = None
        if config.cluster_enabled:
            path = None if config.in_memory else config.cluster_config_path
            self.cluster = SlotMap(path, config.port, config.bind)
            self.cluster.full_coverage = config.values["cluster-require-full-coverage"]
        self.peers: PeerLinks | None = None  # cluster mode, once serving: the links that carry PUBLISH to the others
        self.functions.serve_while_busy = self._serve_while_busy
        self.replication = Replication(config.values["repl-backlog-size"])
        self.replication.configure(config.values["min-replicas-to-write"])
        self.replication.on_ack = self._replica_acked
        self.replication.schedule_send = self._schedule_replica_send
        self._replica_data = trio.Event()
        self.master_link: trio.CancelScope | None = None  # the task following the master, while a replica

    # ---- durability -------------------------------------------------------------------------------------------
    async def make_durable(self) -> None:
        """Returns once every mutation so far is as durable as appendfsync promises: written to the journal under
        every policy (a process crash loses nothing), and synced under ``always``. Raises StorageError when that can
        never happen (a failed fsync): the replies waiting for it must not be sent."""
        engine = self.engine
        if engine is None:
            return
        needed = engine.pending_lsn()
        if self.config.appendfsync == "always":
            if needed > self.durable_lsn:
                if engine.write_error is not None:
                    raise StorageWriteError(engine.write_error)
                await self.wait_durable(needed)  # the syncer writes the journal once for every waiter
            return
        while needed > engine.flushed_lsn():
            try:
                engine.flush()
            except DiskFullError:
                # The records stay buffered and their replies wait; writing resumes when space returns.
                await trio.sleep(DISK_FULL_RETRY)

    def sync_now(self) -> bool:
        """Group commit on the loop thread: writes and syncs the journal at once if ``always`` asks for it. True when
        every mutation so far is durable; False when it is not (a full disk, a failed sync): make_durable then waits,
        or raises for a failed disk."""
        engine = self.engine
        if engine is None:
            return True
        if self.config.appendfsync != "always":
            return False  # make_durable writes the journal without waiting unless the disk is full
        if engine.pending_lsn() <= self.durable_lsn:
            return True
        try:
            target = engine.flush()
        except StorageError:  # a full disk: the syncer retries; a failed write: the engine logged it
            return False
        try:
            engine.sync(target)
        except StorageError as error:
            self._sync_finished(target, error)
            return False
        self._sync_finished(target)
        return True

    def durable_now(self) -> bool:
        """Makes every mutation so far as durable as appendfsync promises, synchronously (a script blocks the loop
        meanwhile: the replies it holds back may go out). False when that cannot be done now (a full disk)."""
        engine = self.engine
        if engine is None:
            return True
        if self.config.appendfsync == "always":
            return self.sync_now()
        try:
            engine.flush()
        except StorageError:
            return False
        return True

    def _sync_finished(self, target: int, error: StorageError | None = None) -> None:
        """The journal is synced up to ``target``, or the sync failed (the engine refuses writes from now on): wakes
        the clients waiting for durability either way; they find out which."""
        if error is None:
            self.durable_lsn = max(self.durable_lsn, target)
        else:
            self.log.warning(f"journal sync failed: {error}")
        self._wake_durability_waiters()

    def _wake_durability_waiters(self) -> None:
        self._durable_changed.set()
        self._durable_changed = trio.Event()

    async def wait_durable(self, lsn: int) -> None:
        """Returns once the journal is synced up to lsn (group commit: one sync in flight covers every waiter)."""
        if lsn > self._sync_target:
            self._sync_target = lsn
            self._sync_wanted.set()
        while self.durable_lsn < lsn:
            await self._durable_changed.wait()
            if self.durable_lsn < lsn and self.engine is not None and self.engine.write_error:
                raise StorageWriteError(self.engine.write_error)

    async def _syncer(self) -> None:
        """Group commit: one journal write and one fdatasync cover every client waiting when it starts."""
        engine = self.engine
        assert engine is not None
        while True:
            await self._sync_wanted.wait()
            self._sync_wanted = trio.Event()
            # Clients made runnable by the same poll run first, so their records ride on this sync too.
            await trio.lowlevel.checkpoint()
            try:
                target = engine.flush()
            except DiskFullError:
                # The records stay buffered and their replies wait; writing resumes when space returns.
                await trio.sleep(DISK_FULL_RETRY)
                self._sync_wanted.set()
                continue
            except StorageError:  # writes are disabled from now on (the engine logged why); waiters are told
                self._wake_durability_waiters()
                continue
            started = time.monotonic()
            try:
                await trio.to_thread.run_sync(engine.sync, target)
            except StorageError as error:
                self._sync_finished(target, error)
            else:
                self._sync_finished(target)
            self.stats.observers.add_latency("fsync", int((time.monotonic() - started) * 1000))

    async def _everysec(self) -> None:
        engine = self.engine
        assert engine is not None
        while True:
            await trio.sleep(EVERYSEC_INTERVAL)
            if self.config.appendfsync != "everysec":
                continue
            try:
                target = engine.flush()
                if target > self.durable_lsn:
                    await trio.to_thread.run_sync(engine.sync, target)
                    self.durable_lsn = max(self.durable_lsn, target)
            except StorageError as error:
                self.log.warning(f"background journal sync failed: {error}")

    async def _checkpointer(self) -> None:
        engine = self.engine
        assert engine is not None
        while True:
            await trio.sleep(CHECKPOINT_POLL)
            if not engine.checkpoint_due() or self.checkpointing:
                continue
            try:
                # Copy what is still queued out of the journal a slice per loop pass, so that begin_checkpoint,
                # which settles the rest at once, does not hold up the loop. Each slice copies at least twice what
                # was pushed since the previous one, so settling outpaces producers that fill a backlog.
                with trio.move_on_after(SETTLE_AHEAD_SECONDS):
                    pushed = engine.journaled_values
                    while engine.settle_some(max(SETTLE_VALUES_PER_PASS, 2 * (engine.journaled_values - pushed))):
                        pushed = engine.journaled_values
                        await trio.sleep(0)
                await self.checkpoint()
            except StorageError as error:  # the journal keeps everything; the next attempt starts over
                self.log.warning(f"checkpoint failed: {error}")

    async def checkpoint(self) -> None:
        """Writes a checkpoint in a worker thread (the checkpointer's, BGSAVE's); a latency event "checkpoint"
        records how long it took. Raises StorageError when it fails."""
        engine = self.engine
        assert engine is not None
        async with self._checkpoint_lock:
            started = time.monotonic()
            checkpoint = engine.begin_checkpoint()
            with trio.CancelScope(shield=True):  # shutdown waits for a started checkpoint rather than strand it
                await trio.to_thread.run_sync(engine.run_checkpoint, checkpoint)
            engine.finish_checkpoint(checkpoint)
            self.last_checkpoint = time.time()
            self._checkpoint_took(time.monotonic() - started)

    def _checkpoint_took(self, seconds: float) -> None:
        self.stats.observers.add_latency("checkpoint", int(seconds * 1000))
        self.checkpoint_seconds.observe(seconds)

    @property
    def checkpointing(self) -> bool:
        return self._checkpoint_lock.locked() or self._checkpoint_scheduled

    @property
    def checkpoint_running(self) -> bool:
        return self._checkpoint_lock.locked()

    def save(self) -> None:
        """SAVE: a checkpoint written before this returns, the loop held meanwhile as Redis's SAVE holds it. Raises
        StorageError when it fails. In memory there is nothing to write: it only counts as done (LASTSAVE)."""
        engine = self.engine
        assert engine is not None
        if self.config.in_memory:
            self.last_checkpoint = time.time()
            self.saves += 1
            return
        started = time.monotonic()
        checkpoint = engine.begin_checkpoint()
        engine.run_checkpoint(checkpoint)
        engine.finish_checkpoint(checkpoint)
        self.last_checkpoint = time.time()
        self._checkpoint_took(time.monotonic() - started)

    def background_save(self) -> None:
        """BGSAVE, BGREWRITEAOF: a checkpoint starts in the background."""
        self._checkpoint_scheduled = True
        self.nursery.start_soon(self._background_checkpoint)

    async def _background_checkpoint(self) -> None:
        try:
            self._checkpoint_scheduled = False
            if self.config.in_memory:
                self.save()
                return
            await self.checkpoint()
        except StorageError as error:
            self.log.warning(f"background checkpoint failed: {error}")

    def last_save(self) -> int:
        """LASTSAVE: the unix time of the last checkpoint, or of start-up before the first one."""
        return int(self.last_checkpoint)

    async def _scrubber(self) -> None:
        """Verifies what start-up trusted without reading (checkpointed segments), in a worker thread a chunk at a
        time, at most scrub-bandwidth MB/s so serving goes on. Setting it to 0 stops the pass; setting it above 0
        again starts a new one (a pass that finished stays finished)."""
        assert self.scrub is not None
        while True:
            scrub = self.scrub
            if scrub.status == OFF:
                while not self.config.scrub_bandwidth:
                    await trio.sleep(SCRUB_SETTING_POLL)
                scrub = self.scrub = Scrub(self.config.dir)
                self.log.notice("Scrub of checkpointed segments started")
            await self._scrub_pass(scrub)
            if scrub.status == DONE:
                return

    async def _scrub_pass(self, scrub: Scrub) -> None:
        while True:
            bandwidth = self.config.scrub_bandwidth << 20
            if not bandwidth:
                scrub.stop()
                break
            chunk = min(SCRUB_CHUNK, bandwidth // 4)  # a slow pace reads smaller chunks more often, not bursts
            started = time.monotonic()
            for fault in await trio.to_thread.run_sync(scrub.step, chunk):
                self.log.warning(f"Scrub: {fault.message}")
            if not scrub.running:
                break
            await trio.sleep(max(0.0, chunk / bandwidth - (time.monotonic() - started)))
        self.log.notice(
            f"Scrub of checkpointed segments ended ({scrub.status}): {scrub.bytes_verified} bytes verified, "
            f"{scrub.errors} errors"
        )

    # ---- background work ----------------------------------------------------------------------------------------
    async def _sample_rates(self) -> None:
        engine = self.engine
        assert engine is not None
        while True:
            await trio.sleep(RATE_SAMPLE_INTERVAL)
            self.stats.sample_rates(time.monotonic(), engine.syncs_total)

    async def _active_expiry(self) -> None:
        while True:
            await trio.sleep(ACTIVE_EXPIRE_INTERVAL)
            if not self.loading:
                self.keyspace.expire_some()

    async def _clients_cron(self) -> None:
        """Once a second, as Redis's clientsCron: idle timeouts, output buffer soft limits held long enough (even with
        nothing more queued), the recent peaks of client buffers for INFO, and maxmemory-clients with query buffers
        counted too."""
        while True:
            await trio.sleep(CLIENTS_CRON_INTERVAL)
            timeout = self.config.timeout
            now = time.monotonic()
            largest_input = largest_output = 0
            for connection in list(self.connections.values()):
                client = connection.client
                idle = now - client.last_interaction
                if timeout and idle > timeout and not client.subscriptions and not connection.blocked:
                    connection.kill()
                    continue
                queued = connection.output_memory()
                if queued:
                    connection.check_output_limit()
                    largest_output = max(largest_output, queued)
                largest_input = max(largest_input, connection.parser.buffered())
            self.stats.sample_client_buffers(int(time.time()), largest_input, largest_output)
            self.evict_clients(exact=True)

    def evict_clients(self, exact: bool = False) -> None:
        """maxmemory-clients, as Redis's evictClients: while all clients together use at least the limit, the
        largest are closed (those with CLIENT NO-EVICT count but stay). Unless ``exact``, a first estimate from the
        queued replies alone (the part that grows between two crons) spares a pass over every client."""
        limit = self.maxmemory_clients
        if not limit:
            return
        if not exact and self.clients_output + len(self.connections) * CLIENT_BASE_MEMORY < limit:
            return
        usage = [(c.memory(), c) for c in self.connections.values() if not c.client.killed]
        total = sum(memory for memory, _ in usage)
        if total < limit:
            return
        usage.sort(key=lambda pair: pair[0], reverse=True)
        for memory, connection in usage:
            if total < limit:
                return
            if connection.client.no_evict:
                continue
            self.log.notice(f"Evicting client: {connection.describe()}")
            self.stats.evicted_clients += 1
            connection.kill()
            total -= memory
        if total >= limit:
            self.log.warning("Over client maxmemory after evicting all evictable clients")

    # ---- clients ------------------------------------------------------------------------------------------------
    def context(self, client: Client) -> Context:
        """What the client's command handlers get: made once per client, used for every command it sends."""
        return Context(
            client,
            keyspace=self.keyspace,
            engine=self.engine,  # type: ignore[arg-type]  # None while loading, as the context says
            blocking=self.blocking,
            pubsub=self.pubsub,
            stats=self.stats,
            config=self.config,
            clients=self.clients,
            server=self,
            acl=self.acl,
            cluster=self.cluster,
            replication=self.replication,
        )

    def register(self, connection: Connection) -> None:
        self.clients[connection.client.id] = connection.client
        self.connections[connection.client.id] = connection
        self.stats.total_connections += 1

    def unregister(self, connection: Connection) -> None:
        client = connection.client
        self.stop_monitor(client)
        self.clients.pop(client.id, None)
        self.connections.pop(client.id, None)
        self.pubsub.forget(client)
        if client.replica is not None or client.id in self.replication.announced_port:
            self.replication.detach(client.id)
        if self.keyspace is not None:
            self.keyspace.unwatch_all(client)

    # ---- replication --------------------------------------------------------------------------------------------
    def attach_replica(self, client: Client, partial: bool = False) -> None:
        """SYNC/PSYNC: the connection becomes a replica, fed the replication stream from now on (never answered)."""
        connection = self.connections[client.id]

        def send(data: bytes) -> None:
            connection.push(Raw(data))

        replica = Replica(client.id, connection.peer_host, send)
        client.replica = replica
        client.reply_mode = b"off"
        self.replication.attach(replica)
        if partial:
            self.log.notice(f"Partial resynchronization request from {connection.peer_host}:{replica.port} accepted")
        else:
            self.log.notice(f"Full resync requested by replica {connection.peer_host}:{replica.port}")

    def _schedule_replica_send(self) -> None:
        self._replica_data.set()

    async def _replica_sender(self) -> None:
        """Sends replicas the stream's new bytes a moment after they appear: the commands of many clients' batches
        go out in one write (one per pass of Redis's event loop, in Redis)."""
        while True:
            await self._replica_data.wait()
            self._replica_data = trio.Event()
            await trio.sleep(REPLICA_SEND_DELAY)
            self.replication.send_now()

    def _replica_acked(self) -> None:
        self.blocking.signal_everywhere(WAIT_KEY)
        if self.blocking.ready:
            self.blocking.serve_ready()

    def _key_expired(self, db: int, key: bytes) -> None:
        """A key expired here: replicas delete it too (a replica leaves that to its master)."""
        replication = self.replication
        if replication.feeding and replication.master is None:
            replication.propagate(db, [b"DEL", key])

    def replicaof(self, host: str | None, port: int) -> None:
        """REPLICAOF host port (follow it, from a full sync or where this server's history allows), NO ONE (a
        master again, keeping the history so other replicas of the old master can continue from here)."""
        replication = self.replication
        if self.master_link is not None:
            self.master_link.cancel()
            self.master_link = None
        self.config.values["replicaof"] = None if host is None else (host, port)  # what CONFIG REWRITE keeps
        if host is None:
            replication.master = None
            replication.shift_history()
            replication.configure(self.config.values["min-replicas-to-write"])
            self.log.notice("MASTER MODE enabled (user request)")
            return
        replication.master = MasterState(host, port)
        replication.start_backlog()  # what this server receives is kept: a promotion lets others continue
        replication.configure(self.config.values["min-replicas-to-write"])
        scope = self.master_link = trio.CancelScope()
        self.nursery.start_soon(follow_master, self, replication.master, scope)
        self.log.notice(f"REPLICAOF {host}:{port} enabled (user request from client)")

    def start_monitor(self, client: Client) -> None:
        connection = self.connections.get(client.id)
        if connection is None:
            return
        client.monitoring = True
        self.stats.observers.monitors[client.id] = connection.monitor_feed
        self.stats.update_watch()

    def stop_monitor(self, client: Client) -> None:
        client.monitoring = False
        if self.stats.observers.monitors.pop(client.id, None) is not None:
            self.stats.update_watch()

    def _configure_observers(self) -> None:
        values = self.config.values
        self.stats.observers.configure(
            values["slowlog-log-slower-than"], values["slowlog-max-len"], values["latency-monitor-threshold"]
        )
        self.stats.track_latency = values["latency-tracking"]
        self.stats.update_watch()

    async def wait_unpaused(self, is_write: bool) -> None:
        while True:
            remaining = self.paused_until - time.monotonic()
            if remaining <= 0 or (self.pause_writes_only and not is_write):
                return
            with trio.move_on_after(remaining):
                await self.pause_changed.wait()

    def unpause(self) -> None:
        self.paused_until = 0.0
        self.pause_changed.set()
        self.pause_changed = trio.Event()

    def apply_config(self, changed: list[str]) -> None:
        """Makes directives changed by CONFIG SET take effect. Raises ConfigSetError, having changed nothing, when
        the TLS context cannot be rebuilt from them (the caller restores the previous values)."""
        cfg = self.config
        if self.tls_context is not None:
            reloaded = [name for name in changed if name in CONTEXT_DIRECTIVES]
            if reloaded:
                self._reload_tls(reloaded[0])
        if "requirepass" in changed:
            self.acl.set_requirepass(cfg.requirepass)
        if "acl-pubsub-default" in changed:
            self.acl.pubsub_default_all = bool(cfg.values["acl-pubsub-default"])
        if "acllog-max-len" in changed:
            self.acl.log.max_len = cfg.values["acllog-max-len"]
        if "loglevel" in changed:
            self.log.set_level(cfg.loglevel)
        if "cluster-require-full-coverage" in changed and self.cluster is not None:
            self.cluster.full_coverage = cfg.values["cluster-require-full-coverage"]
            self.cluster.update_local()
        if "maxdisk" in changed and self.engine is not None:
            self.engine.maxdisk = cfg.maxdisk
        if "maxmemory-clients" in changed or "maxmemory" in changed:
            self.maxmemory_clients = cfg.maxmemory_clients  # the next cron evicts if clients are over it
        if "maxmemory" in changed and self.engine is not None:
            self.engine.maxmemory = cfg.maxmemory
            if self.engine.over_maxmemory():
                self.log.warning(
                    f"WARNING: the new maxmemory value set via CONFIG SET ({cfg.maxmemory}) is smaller than the "
                    f"memory values hold ({self.engine.inline_bytes}): commands that add data are refused until "
                    "keys are deleted"
                )
        if SETTINGS_DIRECTIVES.intersection(changed) and self.engine is not None:
            for name, payload in type_settings(cfg).items():
                self.engine.set_type_settings(name, payload)
        if {"slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold", "latency-tracking"} & set(
            changed
        ):
            self._configure_observers()
        if "appendfsync" in changed:
            self.log.notice(f"appendfsync is now {cfg.appendfsync}")
        if "min-replicas-to-write" in changed:
            self.replication.configure(cfg.values["min-replicas-to-write"])
        if "repl-backlog-size" in changed:
            self.replication.backlog_size = cfg.values["repl-backlog-size"]

    def _reload_tls(self, name: str) -> None:
        """Rebuilds the TLS context from the directives (certificates read again from their files), as Redis does
        on a CONFIG SET of one; new connections use it. Raises ConfigSetError when it cannot be built."""
        try:
            self.tls_context = server_context(TLSSettings.from_values(self.config.values))
        except TLSContextError as error:
            self.log.warning(str(error))
            self.log.warning(TLS_APPLY_FAILED.format(name))
            raise ConfigSetError(SET_FAILED % (name.encode(), UPDATE_FAILED.encode())) from None

    def _configure_tls(self) -> None:
        """The TLS context for the TLS port and HTTPS, before any listener opens; raises StartupError when it cannot
        be built (the cause logged first, as Redis does)."""
        if not (self.config.tls_port or self.config.http_tls):
            return
        try:
            self.tls_context = server_context(TLSSettings.from_values(self.config.values))
        except TLSContextError as error:
            self.log.warning(str(error))
            raise StartupError(STARTUP_FAILED) from None

    # ---- lifecycle ----------------------------------------------------------------------------------------------
    def _lock_data_directory(self) -> int:
        """Creates the data directory if missing (not its parents: a mistyped path fails rather than growing a tree)
        and takes its lock. Raises StartupError when either cannot be done."""
        path = self.config.dir
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
            return Engine.lock_directory(path)
        except DirectoryLockedError as error:
            raise DataDirectoryLocked(DATA_DIR_LOCKED.format(error)) from None
        except OSError as error:
            raise StartupError(DATA_DIR_FAILED.format(path, error.strerror or error)) from None

    def _load(self, lock_fd: int | None = None) -> None:
        """Opens the storage engine and the keyspace over it; with lock_fd, the directory's lock is held already."""
        cfg = self.config
        if cfg.in_memory:
            self._load_memory()
            return
        engine = Engine.open(
            cfg.dir,
            lock_fd=lock_fd,
            appendfsync=cfg.appendfsync,
            databases=cfg.databases,
            segment_size=cfg.segment_size,
            max_open_files=cfg.max_open_files,
            checkpoint_bytes=cfg.checkpoint_bytes,
            maxdisk=cfg.maxdisk,
            maxmemory=cfg.maxmemory,
            log=self.log,
            types=REGISTRY,
            type_settings=type_settings(cfg),
        )
        self.engine = engine
        if self.cluster is not None:
            self.cluster.load()
        self.last_checkpoint = time.time()  # opening the data directory ends with a checkpoint
        self.functions.restore_saved(engine)
        self.keyspace = Keyspace(engine, databases=cfg.databases, stats=self.stats, blocking=self.blocking)
        self._hide_foreign_keys()
        self.keyspace.on_expired = self._key_expired

    def _load_memory(self) -> None:
        """``storage memory``: an empty store held in memory (storage/memory.py) behind the same port."""
        cfg = self.config
        engine = MemoryEngine.open(
            databases=cfg.databases, maxmemory=cfg.maxmemory, types=REGISTRY, type_settings=type_settings(cfg)
        )
        self.engine = engine
        self.last_checkpoint = time.time()
        self.functions.restore_saved(engine)  # type: ignore[arg-type]
        self.keyspace = Keyspace(engine, databases=cfg.databases, stats=self.stats, blocking=self.blocking)  # type: ignore[arg-type]
        self._hide_foreign_keys()
        self.keyspace.on_expired = self._key_expired

    def cluster_changed(self, slots: list[int]) -> None:
        """Clients blocked on a key of a slot that moved away get the redirect (MOVED, CLUSTERDOWN), as Redis's
        clusterRedirectBlockedClientIfNeeded gives them; the map's new owner serves them once they retry there."""
        cluster = self.cluster
        if cluster is None:
            return
        self._hide_foreign_keys()
        self._update_peers()
        moved = set(slots)
        if self.pubsub.shard.subscribers:
            drop_shard_channels(self.pubsub, lambda channel: _left(cluster, moved, key_slot(channel)))
        if not self.blocking.by_client:
            return
        for client_id, waiter in list(self.blocking.by_client.items()):
            for key in waiter.block.keys:
                slot = key_slot(key)
                redirect = cluster.redirect(slot) if slot in moved else None
                if redirect is not None:
                    self.stats.count_error(redirect)
                    self.blocking.unblock(client_id, ErrorReply(redirect))
                    break

    def _update_peers(self) -> None:
        cluster, peers = self.cluster, self.peers
        if cluster is not None and peers is not None:
            others = [node for node in cluster.nodes.values() if node is not cluster.myself and not cluster.is_me(node)]
            peers.update({(node.host, node.port) for node in others})  # never a link to itself: no echo

    def forward_publish(self, channel: bytes, message: bytes) -> None:
        if self.peers is not None:
            self.peers.publish(channel, message)

    def _hide_foreign_keys(self) -> None:
        """Keys of slots another node serves now are left out of DBSIZE, KEYS, SCAN and RANDOMKEY (O(keys), once per
        map change: no command can add such a key until the map changes again)."""
        cluster, keyspace = self.cluster, self.keyspace
        if cluster is None or keyspace is None:
            return
        if keyspace.slot_index is None:
            keyspace.slot_index = SlotIndex(keyspace.engine)
        owners, myself = cluster.owners, cluster.myself
        foreign = {owner for owner in owners if owner is not None and owner is not myself}
        keyspace.hidden = keyspace.slot_index.keys_of(slot for slot, owner in enumerate(owners) if owner in foreign)

    def request_shutdown(self) -> None:
        self.shutdown_requested.set()

    def _serve_while_busy(self, caller: Client) -> None:
        """Called from inside a script running past busy-reply-threshold (the event loop is not running): answers
        the other clients, and ends the process for SHUTDOWN NOSAVE without the script's writes."""
        serve_while_busy(self, caller)
        if self.shutdown_requested.is_set():
            self._exit_during_script()

    def _exit_during_script(self) -> None:
        """SHUTDOWN NOSAVE while a script runs: what was acknowledged before the script is made durable, the
        script's writes (not journaled until it ends) are dropped, and the process exits at once, as Redis does."""
        log = self.log
        log.warning("User requested shutdown during a script: its writes are discarded...")
        engine = self.engine
        if engine is not None:
            try:
                engine.sync(engine.flush())
            except StorageError as error:
                log.warning(f"Writing the journal before exiting failed: {error}")
        log.warning("respq is now ready to exit, bye bye...")
        os._exit(0)

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED, *, embedded: bool = False) -> None:
        """Serves until shutdown. Raises StartupError (never inside an exception group) when start-up fails.

        ``embedded``: the server lives inside an application (respq.embedded): it listens nowhere (``listen`` adds
        listeners later), and leaves the application's signals and garbage collector alone."""
        cfg = self.config
        log = self.log
        self.embedded = embedded
        if not embedded:
            # Reference cycles are rare on the hot path; a full collection over a large heap costs tens of ms of
            # tail latency, so collect far less often.
            gc.freeze()
            gc.set_threshold(100_000, 50, 100)
        log.notice(f"respq {__version__} starting, pid={os.getpid()}")
        if speedups.STALE is not None:
            log.warning(speedups.STALE)
        check_http_bind(cfg, self.acl.auth_required)
        # The lock comes before any bind: a second server refused the directory never listens, not even briefly.
        # In memory there is no directory: nothing is created, locked or written.
        lock_fd = None if cfg.in_memory else self._lock_data_directory()
        if lock_fd is None:
            log.notice("Storage in memory: nothing is written to disk, and nothing survives a restart")
        else:
            log.notice(f"Data directory {os.path.abspath(cfg.dir)}, appendfsync {cfg.appendfsync}")
        try:
            self._configure_tls()
            listeners, tls_listeners = ([], []) if embedded else open_listeners(self)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        try:
            http_socket = open_http_listener(cfg)
        except BaseException:
            for listener in (*listeners, *tls_listeners):
                listener.close()
            os.close(lock_fd)
            raise
        for warning in getattr(cfg, "warnings", []):
            log.warning(warning)
        failure: str | None = None
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                if hasattr(select, "epoll"):
                    self.reactor = Reactor(self)
                    nursery.start_soon(self.reactor.run)
                if listeners or tls_listeners:
                    serve_listeners(self, nursery, listeners, tls_listeners)
                    if tls_listeners:
                        self.tls_port = tls_listeners[0].getsockname()[1]
                    self.port = listeners[0].getsockname()[1] if listeners else self.tls_port
                    if self.cluster is not None:  # SETNODES finds this node by the port it listens on
                        self.cluster.port = self.port
                    tls = f" tls-port={self.tls_port}" if tls_listeners else ""
                    log.notice(f"Server initialized; listening on {', '.join(cfg.bind)} port={self.port}{tls}")
                if not embedded:
                    nursery.start_soon(self._signals)
                nursery.start_soon(self._clients_cron)
                if http_socket is not None:
                    # Before loading, so that /readyz answers 503 while the journal is replayed.
                    address = http_socket.getsockname()
                    await nursery.start(serve_http, self, http_socket)
                    log.notice(f"HTTP listening on {address[0]} port={address[1]}")
                failure = await self._load_data(lock_fd)
                if failure is None:
                    await self._serve_loaded(nursery, task_status)
                nursery.cancel_scope.cancel()
        finally:
            # closing one twice is harmless; an embedded server's listeners were opened by listen()
            for listener in (*listeners, *tls_listeners, *self.listeners, *self.tls_listeners):
                listener.close()
        if failure is not None:
            raise StartupError(failure)  # out of the nursery, which would wrap it in an exception group

    async def _load_data(self, lock_fd: int | None) -> str | None:
        """Loads the data directory in a worker thread (the engine takes over lock_fd, and closes it if loading
        fails); the fatal line when it cannot be loaded."""
        started = time.monotonic()
        try:
            await trio.to_thread.run_sync(self._load, lock_fd)
        except (StorageError, OSError, MapError) as error:
            return LOAD_FAILED.format(error)
        for connection in self.connections.values():  # clients that connected while loading
            connection.ctx.keyspace = self.keyspace
            connection.ctx.engine = self.engine  # type: ignore[assignment]
            self.keyspace.adopt_watches(connection.client)  # type: ignore[union-attr]
        self.loading = False
        self.recovery_seconds = time.monotonic() - started
        if not self.config.in_memory:  # nothing to load in memory
            self.log.notice(f"DB loaded from disk: {self.recovery_seconds:.3f} seconds")
        return None

    def listen(self) -> int:
        """Loop thread, once serving: starts accepting clients on the configured addresses (an embedded server, which
        started listening nowhere). Returns the port; raises StartupError when an address cannot be bound."""
        listeners, tls_listeners = open_listeners(self)
        serve_listeners(self, self.nursery, listeners, tls_listeners)
        if tls_listeners:
            self.tls_port = tls_listeners[0].getsockname()[1]
        self.port = listeners[0].getsockname()[1] if listeners else self.tls_port
        self._log_ready()
        return self.port

    def _log_ready(self) -> None:
        where = (self.config.bind or ["*"])[0]
        if self.listeners:
            self.log.notice(f"Ready to accept connections tcp on {where} port={self.port}")
        if self.tls_listeners:
            self.log.notice(f"Ready to accept connections tls on {where} port={self.tls_port}")

    async def _serve_loaded(self, nursery: trio.Nursery, task_status: Any) -> None:
        """Starts the background work that needs the data, then serves until shutdown is requested."""
        cfg = self.config
        nursery.start_soon(self._active_expiry)
        nursery.start_soon(self._replica_sender)
        nursery.start_soon(self._sample_rates)
        # The storage tasks get a nursery of their own: shutdown stops them, and waits for the worker threads they
        # may be in (a sync, a checkpoint, a scrub step), before the engine closes the files those threads use.
        async with trio.open_nursery() as storage_tasks:
            if not cfg.in_memory:  # durability, checkpoints and the scrub have nothing to do in memory
                storage_tasks.start_soon(self._syncer)
                storage_tasks.start_soon(self._everysec)
                storage_tasks.start_soon(self._checkpointer)
                self.scrub = Scrub(cfg.dir)
                if not cfg.scrub_bandwidth:
                    self.scrub.stop()
                storage_tasks.start_soon(self._scrubber)
            if self.cluster is not None:
                self.peers = PeerLinks(nursery, cfg.requirepass, self.log)
                self._update_peers()
            if cfg.values["replicaof"] is not None:  # a replica from the start (as Sentinel's CONFIG REWRITE leaves it)
                self.replicaof(*cfg.values["replicaof"])
            self._log_ready()
            task_status.started(self.port)
            await self.shutdown_requested.wait()
            await self._stop_serving([*self.listeners, *self.tls_listeners])
            storage_tasks.cancel_scope.cancel()
        await self._close_storage()

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                self.log.warning(f"Received {signal.Signals(signum).name}, scheduling shutdown...")
                self.request_shutdown()
                return

    def _say_shutdown(self, message: str) -> None:
        # An application closing its embedded queues is routine; a server going away is worth a warning.
        (self.log.notice if self.embedded else self.log.warning)(message)

    async def _stop_serving(self, listeners: list[trio.socket.SocketType]) -> None:
        self._say_shutdown("User requested shutdown...")
        for listener in listeners:
            trio.lowlevel.notify_closing(listener)
            listener.close()
        # Let batches being executed finish and write their replies (blocked clients wait for nothing), then close.
        with trio.move_on_after(SHUTDOWN_DRAIN_SECONDS):
            while any(c.busy and c.blocked is None for c in self.connections.values()):
                await trio.sleep(0.01)
        for connection in list(self.connections.values()):
            connection.kill()

    async def _close_storage(self) -> None:
        if self.engine is not None:
            # A checkpoint BGSAVE started runs outside the storage tasks: let it finish, then close writes the last.
            async with self._checkpoint_lock:
                await trio.to_thread.run_sync(self.engine.close)
            if not self.config.in_memory:
                self.log.notice("Storage flushed, synced and closed.")
        self._say_shutdown("respq is now ready to exit, bye bye...")


def _left(cluster: SlotMap, moved: set[int], slot: int) -> bool:
    """The slot is among those the map change touched and this node no longer owns it."""
    return slot in moved and not cluster.serves(slot)
