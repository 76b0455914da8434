"""/metrics: Prometheus exposition of the server's counters and of its queues (lists and streams).

Cost is bounded at any number of queues: the pass over the keys runs in slices of at most SLICE_SECONDS with a
yield to the event loop between them, so RESP clients are served meanwhile; by default only totals, a histogram and
the worst TOP queues are exported, and per-queue series (hand-rendered, also in slices) only when asked: the
``metrics-per-queue`` directive, or ``/metrics?match=<glob>&limit=N``. Values may move between slices, as they
would between two scrapes.

Server families go through prometheus-client (its collector API and its encoders: text 0.0.4 or OpenMetrics, as the
Accept header asks); the per-queue families are appended by ``render_queue_families`` in the same format.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from respq import REDIS_COMPAT_VERSION, __version__
from respq.glob import compile_glob
from respq.histogram import Histogram
from respq.http.app import Request, Response, route
from respq.types.lists.model import cold_size
from respq.types.streams.model import oldest_pending_id, redelivered_count

if TYPE_CHECKING:
    from respq.server import Server
    from respq.storage.engine import Engine

SLICE_SECONDS = 0.002  # work done between two yields to the event loop
CHECK_EVERY = 32  # keys (or series) between two looks at the clock
REDELIVERED_SCAN_LIMIT = 10_000  # a larger PEL is not walked to count redelivered entries (reported as absent)
MAX_LIMIT = 100_000  # the most queues one per-queue request may list
QUEUE_TYPES = ("list", "stream")
# Histogram of the queues' oldest-message ages, in seconds.
AGE_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)
OPENMETRICS_EOF = b"# EOF\n"
BAD_LIMIT = b"limit must be a whole number from 1 to %d\n" % MAX_LIMIT


@dataclass(slots=True)
class GroupSample:
    name: bytes
    pending: int
    lag: int | None  # None: not knowable (XINFO's nil lag)
    lag_seconds: float  # age of the next undelivered entry; 0 when there is none
    oldest_pending_seconds: float  # age of the oldest pending entry; 0 when none is pending
    consumers: int
    redelivered: int | None  # pending entries delivered more than once; None when the PEL was too big to walk


@dataclass(slots=True)
class QueueSample:
    db: int
    key: bytes
    type: str
    depth: int
    disk_bytes: int
    oldest_seconds: float | None  # age of the oldest message; 0 when empty; None when unknown (lists, for now)
    pushed: int | None  # messages ever added (streams: entries-added); None when not counted
    groups: list[GroupSample] = field(default_factory=list)


class QueueScan:
    """A pass over every database's keys that ``step`` advances a slice at a time (sans I/O: the caller yields to
    its event loop between steps). It counts keys by type and samples each list and stream."""

    def __init__(self, engine: Engine, databases: int, *, match: bytes | None = None, limit: int | None = None) -> None:
        self.engine = engine
        self.now_ms = int(time.time() * 1000)
        self.keys_by_type: Counter[str] = Counter()
        self.queues: list[QueueSample] = []
        self.selected: list[QueueSample] = []  # those the per-queue families list (match, limit)
        self._matches = compile_glob(match) if match is not None else None
        self._limit = limit
        self._pending = ((db, engine.keys(db)) for db in range(databases))  # each db's keys copied when reached
        self._current: tuple[int, Iterator[bytes]] | None = None

    def step(self, seconds: float) -> bool:
        """Samples keys for about ``seconds``; True once every key was seen."""
        deadline = time.perf_counter() + seconds
        while True:
            if self._current is None:
                self._current = next(self._pending, None)  # type: ignore[arg-type]
                if self._current is None:
                    return True
            db, keys = self._current
            catalog = self.engine.catalog[db]
            for count, key in enumerate(keys, 1):
                entry = catalog.get(key)
                if entry is not None:
                    self._sample(db, key, entry)
                if count % CHECK_EVERY == 0 and time.perf_counter() > deadline:
                    return False
            self._current = None

    def _sample(self, db: int, key: bytes, entry: Any) -> None:
        if type(entry) is bytes:  # a cold value: read its summary without making objects of it
            vtype = self.engine.types.of_cold(entry)
            type_name, expire_ms = vtype.name, vtype.cold_expire(entry)
        else:
            type_name, expire_ms = entry.type, entry.expire_ms
        if expire_ms is not None and expire_ms <= self.now_ms:
            return  # expired, not yet deleted
        self.keys_by_type[type_name] += 1
        if type_name == "list":
            if type(entry) is bytes:
                depth, disk = cold_size(entry)
            else:
                depth, disk = len(entry), entry.disk_bytes()
            sample = QueueSample(db, key, "list", depth, disk, None, None)
        elif type_name == "stream":
            sample = self._stream(db, key, entry)
        else:
            return
        self.queues.append(sample)
        if self._matches is not None and not self._matches(key):
            return
        if self._limit is None or len(self.selected) < self._limit:
            self.selected.append(sample)

    def _stream(self, db: int, key: bytes, log: Any) -> QueueSample:
        now = self.now_ms
        oldest = max(0.0, (now - (log.first_id >> 64)) / 1000) if log.length else 0.0
        groups = []
        for name, group in log.groups.items():
            lag = log.lag(group)
            following = log.next_live_id(group.last_id) if lag != 0 else None
            first_pending = oldest_pending_id(group)
            groups.append(
                GroupSample(
                    name,
                    len(group.pel),
                    lag,
                    max(0.0, (now - (following >> 64)) / 1000) if following else 0.0,
                    max(0.0, (now - (first_pending >> 64)) / 1000) if first_pending is not None else 0.0,
                    len(group.consumers),
                    redelivered_count(group, REDELIVERED_SCAN_LIMIT),
                )
            )
        return QueueSample(db, key, "stream", log.length, log.disk_bytes(), oldest, log.entries_added, groups)


async def scan_queues(server: Server, *, match: bytes | None = None, limit: int | None = None) -> QueueScan | None:
    """A whole QueueScan, yielding to the loop between slices; None while the data is loading."""
    if server.loading or server.engine is None:
        return None
    scan = QueueScan(server.engine, server.config.databases, match=match, limit=limit)
    while not scan.step(SLICE_SECONDS):
        await trio.sleep(0)
    return scan


# ---- server families (prometheus-client) ---------------------------------------------------------------------------


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, documentation, buckets=histogram.cumulative(), sum_value=histogram.sum)


def _label(key: bytes) -> str:
    return key.decode("utf-8", "backslashreplace")


class ServerCollector:
    """Families read from the server's live counters (INFO's sources) and from one QueueScan."""

    def __init__(self, server: Server, scan: QueueScan | None) -> None:
        self.server = server
        self.scan = scan

    def describe(self) -> list[Metric]:
        return []  # registering must not run collect()

    def collect(self) -> Iterator[Metric]:
        server = self.server
        stats = server.stats
        build = GaugeMetricFamily(
            "respq_build_info",
            "respq's version and the Redis version it answers as.",
            labels=["version", "redis_version"],
        )
        build.add_metric([__version__, REDIS_COMPAT_VERSION], 1)
        yield build
        yield GaugeMetricFamily(
            "respq_uptime_seconds", "Seconds since start.", time.monotonic() - server.started_monotonic
        )
        yield GaugeMetricFamily("respq_loading", "1 while the data directory is being loaded.", int(server.loading))
        yield GaugeMetricFamily(
            "respq_recovery_seconds", "How long loading the data directory took.", server.recovery_seconds
        )
        engine = server.engine
        yield GaugeMetricFamily(
            "respq_accepting_writes",
            "0 once a journal write or fsync failed: writes are refused until a restart.",
            int(engine is None or engine.write_error is None),
        )
        yield from self._commands(stats)
        yield GaugeMetricFamily("respq_connected_clients", "Clients connected over RESP.", len(server.clients))
        yield GaugeMetricFamily(
            "respq_blocked_clients", "Clients blocked in BLPOP, XREADGROUP BLOCK...", len(server.blocking)
        )
        yield CounterMetricFamily("respq_connections_received", "Connections accepted.", stats.total_connections)
        yield CounterMetricFamily(
            "respq_connections_rejected", "Connections refused (maxclients).", stats.rejected_connections
        )
        yield CounterMetricFamily("respq_net_input_bytes", "Bytes read from clients.", stats.net_input_bytes)
        yield CounterMetricFamily("respq_net_output_bytes", "Bytes written to clients.", stats.net_output_bytes)
        yield CounterMetricFamily("respq_expired_keys", "Keys deleted because they expired.", stats.expired_keys)
        if engine is not None:
            yield from self._storage(engine)
        yield _histogram("respq_checkpoint_seconds", "Checkpoint durations.", server.checkpoint_seconds)
        if self.scan is not None:
            yield from self._keyspace(self.scan)

    @staticmethod
    def _commands(stats: Any) -> Iterator[Metric]:
        calls = CounterMetricFamily("respq_commands", "Calls per command.", labels=["command"])
        seconds = CounterMetricFamily("respq_commands_duration_seconds", "Time spent per command.", labels=["command"])
        failed = CounterMetricFamily("respq_commands_failed", "Calls that answered an error.", labels=["command"])
        rejected = CounterMetricFamily(
            "respq_commands_rejected", "Calls refused before running (arity, auth, OOM...).", labels=["command"]
        )
        for name, stat in stats.commands.items():
            calls.add_metric([name], stat.calls)
            seconds.add_metric([name], stat.usec / 1e6)
            failed.add_metric([name], stat.failed_calls)
            rejected.add_metric([name], stat.rejected_calls)
        errors = CounterMetricFamily("respq_errors", "Error replies by their first word.", labels=["error"])
        for code, count in stats.errors.items():
            errors.add_metric([code.decode("latin-1")], count)
        yield from (calls, seconds, failed, rejected, errors)

    @staticmethod
    def _storage(engine: Engine) -> Iterator[Metric]:
        journal = engine.journal
        yield GaugeMetricFamily(
            "respq_disk_bytes", "Bytes of segments and journal in the data directory.", engine.disk_bytes()
        )
        yield GaugeMetricFamily("respq_open_files", "Segment and journal files respq holds open.", engine.open_files())
        yield _histogram("respq_journal_fsync_seconds", "Journal fdatasync durations.", journal.sync_seconds)
        yield _histogram(
            "respq_journal_sync_batch_bytes",
            "Journal bytes made durable per sync (group commit).",
            journal.sync_batch_bytes,
        )
        yield CounterMetricFamily("respq_journal_fsync_errors", "Journal syncs that failed.", journal.sync_errors)

    def _keyspace(self, scan: QueueScan) -> Iterator[Metric]:
        keys = GaugeMetricFamily("respq_keys", "Keys by type.", labels=["type"])
        for type_name, count in sorted(scan.keys_by_type.items()):
            keys.add_metric([type_name], count)
        yield keys
        queues = GaugeMetricFamily("respq_queues", "Lists and streams.", labels=["type"])
        messages = GaugeMetricFamily("respq_queues_messages", "Values in lists, entries in streams.", labels=["type"])
        disk = GaugeMetricFamily("respq_queues_disk_bytes", "Bytes the queues' messages take on disk.", labels=["type"])
        oldest = GaugeMetricFamily(
            "respq_queues_oldest_age_seconds", "The oldest message's age over all queues of the type.", labels=["type"]
        )
        for type_name in QUEUE_TYPES:
            samples = [q for q in scan.queues if q.type == type_name]
            ages = [q.oldest_seconds for q in samples if q.oldest_seconds is not None]
            queues.add_metric([type_name], len(samples))
            messages.add_metric([type_name], sum(q.depth for q in samples))
            disk.add_metric([type_name], sum(q.disk_bytes for q in samples))
            if ages:
                oldest.add_metric([type_name], max(ages))
        yield from (queues, messages, disk, oldest)
        ages = [q.oldest_seconds for q in scan.queues if q.oldest_seconds is not None]
        counts = Histogram(AGE_BUCKETS)
        for age in ages:
            counts.observe(age)
        yield _histogram("respq_queues_by_oldest_age_seconds", "Queues by the age of their oldest message.", counts)
        groups = [(q, g) for q in scan.queues for g in q.groups]
        yield GaugeMetricFamily("respq_groups", "Stream consumer groups.", len(groups))
        yield GaugeMetricFamily(
            "respq_groups_pending", "Entries delivered, not yet acknowledged.", sum(g.pending for _, g in groups)
        )
        yield GaugeMetricFamily(
            "respq_groups_lag", "Entries not yet delivered to their group.", sum(g.lag or 0 for _, g in groups)
        )
        yield GaugeMetricFamily(
            "respq_groups_lag_seconds_max",
            "The worst group's age of its next undelivered entry.",
            max((g.lag_seconds for _, g in groups), default=0),
        )
        yield from self._top(scan, groups)

    def _top(self, scan: QueueScan, groups: list[tuple[QueueSample, GroupSample]]) -> Iterator[Metric]:
        """The worst queues by oldest age and the worst groups by lag: the alerts' answer without per-queue series."""
        top = self.server.config.values["metrics-top-queues"]
        labels = ["db", "queue", "type"]
        oldest = GaugeMetricFamily(
            "respq_top_queue_oldest_age_seconds", f"The {top} queues with the oldest messages.", labels=labels
        )
        aged = (q for q in scan.queues if q.oldest_seconds)
        for q in heapq.nlargest(top, aged, key=lambda q: q.oldest_seconds or 0.0):
            oldest.add_metric([str(q.db), _label(q.key), q.type], q.oldest_seconds or 0.0)
        glabels = ["db", "queue", "group"]
        lag = GaugeMetricFamily(
            "respq_top_group_lag", f"The {top} groups with the most undelivered entries.", labels=glabels
        )
        for q, g in heapq.nlargest(top, (pair for pair in groups if pair[1].lag), key=lambda pair: pair[1].lag or 0):
            lag.add_metric([str(q.db), _label(q.key), _label(g.name)], g.lag or 0)
        lag_seconds = GaugeMetricFamily(
            "respq_top_group_lag_seconds", f"The {top} groups whose next undelivered entry is oldest.", labels=glabels
        )
        for q, g in heapq.nlargest(
            top, (pair for pair in groups if pair[1].lag_seconds), key=lambda p: p[1].lag_seconds
        ):
            lag_seconds.add_metric([str(q.db), _label(q.key), _label(g.name)], g.lag_seconds)
        yield from (oldest, lag, lag_seconds)


# ---- per-queue families (hand-rendered, in slices) ----------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


QUEUE_FAMILIES: tuple[tuple[str, str, str, Any], ...] = (
    ("respq_queue_messages", "gauge", "Values in the list, entries in the stream.", lambda q: q.depth),
    ("respq_queue_disk_bytes", "gauge", "Bytes the queue's messages take on disk.", lambda q: q.disk_bytes),
    (
        "respq_queue_oldest_age_seconds",
        "gauge",
        "Age of the oldest message (0 when empty; absent when unknown: lists).",
        lambda q: q.oldest_seconds,
    ),
    ("respq_queue_pushed", "counter", "Messages ever added (streams).", lambda q: q.pushed),
)
GROUP_FAMILIES: tuple[tuple[str, str, Any], ...] = (
    ("respq_group_pending", "Entries delivered to the group, not yet acknowledged.", lambda g: g.pending),
    ("respq_group_lag", "Entries not yet delivered to the group (absent when not knowable).", lambda g: g.lag),
    ("respq_group_lag_seconds", "Age of the group's next undelivered entry (0 when none).", lambda g: g.lag_seconds),
    (
        "respq_group_oldest_pending_age_seconds",
        "Age of the group's oldest pending entry (0 when none).",
        lambda g: g.oldest_pending_seconds,
    ),
    ("respq_group_consumers", "Consumers in the group.", lambda g: g.consumers),
    ("respq_group_redelivered", "Pending entries delivered more than once.", lambda g: g.redelivered),
)


def queue_lines(queues: list[QueueSample], openmetrics: bool) -> Iterator[str]:
    """The per-queue families' text, a line at a time; counters named as each format wants them."""
    labels = [(q, f'db="{q.db}",queue="{_escape(_label(q.key))}",type="{q.type}"') for q in queues]
    for name, kind, help_text, read in QUEUE_FAMILIES:
        sample = name + "_total" if kind == "counter" else name
        family = name if openmetrics or kind != "counter" else sample
        yield f"# HELP {family} {help_text}\n# TYPE {family} {kind}\n"
        for q, text in labels:
            value = read(q)
            if value is not None:
                yield f"{sample}{{{text}}} {_number(value)}\n"
    groups = [
        (g, f'db="{q.db}",queue="{_escape(_label(q.key))}",group="{_escape(_label(g.name))}"')
        for q in queues
        for g in q.groups
    ]
    for name, help_text, read in GROUP_FAMILIES:
        yield f"# HELP {name} {help_text}\n# TYPE {name} gauge\n"
        for g, text in groups:
            value = read(g)
            if value is not None:
                yield f"{name}{{{text}}} {_number(value)}\n"


async def render_queue_families(queues: list[QueueSample], openmetrics: bool) -> bytes:
    """``queue_lines`` joined, yielding to the loop every SLICE_SECONDS."""
    parts: list[str] = []
    deadline = time.perf_counter() + SLICE_SECONDS
    for count, line in enumerate(queue_lines(queues, openmetrics), 1):
        parts.append(line)
        if count % CHECK_EVERY == 0 and time.perf_counter() > deadline:
            await trio.sleep(0)
            deadline = time.perf_counter() + SLICE_SECONDS
    return "".join(parts).encode()


def registry_for(server: Server, scan: QueueScan | None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(server, scan))  # type: ignore[arg-type]
    ProcessCollector(registry=registry)  # process CPU, RSS, open descriptors
    return registry


@route("/metrics")
async def metrics(request: Request) -> Response:
    server = request.server
    match_arg, limit_arg = request.arg("match"), request.arg("limit")
    limit = None
    if limit_arg is not None:
        if not limit_arg.isdigit() or not 1 <= int(limit_arg) <= MAX_LIMIT:
            return Response(400, BAD_LIMIT)
        limit = int(limit_arg)
    per_queue = server.config.values["metrics-per-queue"] or match_arg is not None or limit is not None
    match = match_arg.encode("utf-8", "surrogateescape") if match_arg is not None else None
    scan = await scan_queues(server, match=match, limit=limit)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    openmetrics = content_type.startswith("application/openmetrics-text")
    body = encoder(registry_for(server, scan))
    if per_queue and scan is not None:
        await trio.sleep(0)
        tail = await render_queue_families(scan.selected, openmetrics)
        if openmetrics and body.endswith(OPENMETRICS_EOF):
            body = body[: -len(OPENMETRICS_EOF)] + tail + OPENMETRICS_EOF
        else:
            body += tail
    return Response(200, body, content_type)
