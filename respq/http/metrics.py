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
from collections.abc import Iterator, Mapping, Sized
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
from respq.types.lists.model import cold_summary
from respq.types.streams.model import oldest_pending_id

if TYPE_CHECKING:
    from respq.server import Server
    from respq.storage.engine import Engine

SLICE_SECONDS = 0.0005  # work done between two yields to the event loop
CHECK_EVERY = 8  # keys (or series) between two looks at the clock
PIECE_BYTES = 64 * 1024  # the per-queue text is sent in pieces of about this size
MAX_LIMIT = 100_000  # the most queues one per-queue request may list
QUEUE_TYPES = ("list", "stream")
# Histogram of the queues' oldest-message ages, in seconds.
AGE_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)
OPENMETRICS_EOF = b"# EOF\n"
NEXT_IDS = "metrics.next_ids"  # the App state key of QueueScan's memo
BAD_LIMIT = b"limit must be a whole number from 1 to %d\n" % MAX_LIMIT


@dataclass(slots=True)
class GroupSample:
    name: bytes
    pending: int
    lag: int | None  # None: not knowable (XINFO's nil lag)
    lag_seconds: float  # age of the next undelivered entry; 0 when there is none
    oldest_pending_seconds: float  # age of the oldest pending entry; 0 when none is pending
    consumers: int
    redelivered: int  # deliveries of entries already delivered (XCLAIM, XAUTOCLAIM, history reads) since start
    delivered: int | None  # entries ever delivered to the group (XINFO's entries-read); None when unknown
    labels: str = ""  # its series' labels, rendered once for all its families (queue_lines)


@dataclass(slots=True)
class QueueSample:
    db: int
    key: bytes
    type: str
    depth: int
    disk_bytes: int
    oldest_seconds: float | None  # age of the oldest message; 0 when empty; None when unknown (lists of format 3)
    pushed: int | None  # messages ever added (streams: entries-added); lists: values pushed since start
    popped: int | None = None  # lists: values popped since start (None: streams, or a list past the counters' bound)
    groups: list[GroupSample] = field(default_factory=list)
    waiting: int = 0  # clients blocked on it (BLPOP, XREAD BLOCK, XREADGROUP BLOCK...)
    labels: str = ""  # its series' labels, rendered once for all its families (queue_lines)


@dataclass(slots=True)
class TypeTotals:
    queues: int = 0
    messages: int = 0
    disk_bytes: int = 0
    oldest_seconds: float | None = None


class Worst:
    """The ``size`` items of largest score seen (a bounded min-heap: one comparison per item past the first)."""

    __slots__ = ("_heap", "_seen", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._heap: list[tuple[float, int, Any]] = []
        self._seen = 0  # ties keep arrival order, and items are never compared

    def offer(self, score: float, item: Any) -> None:
        if not self.size or score <= 0:
            return
        heap = self._heap
        full = len(heap) >= self.size
        if full and score <= heap[0][0]:  # most queues, once the heap is full: no tuple made (a later tie loses)
            return
        self._seen += 1
        entry = (score, -self._seen, item)
        if not full:
            heapq.heappush(heap, entry)
        else:
            heapq.heapreplace(heap, entry)

    def items(self) -> list[tuple[float, Any]]:
        return [(score, item) for score, _, item in sorted(self._heap, reverse=True)]


class QueueScan:
    """A pass over every database's keys that ``step`` advances a slice at a time (sans I/O: the caller yields to
    its event loop between steps). It counts keys by type and samples each list and stream, adding to totals and
    to the worst-``top`` lists as it goes (rendering then costs nothing per queue); it keeps the samples of the
    queues the per-queue families list (``per_queue``, ``match``, ``limit``)."""

    def __init__(
        self,
        engine: Engine,
        databases: int,
        *,
        top: int = 0,
        per_queue: bool = False,
        match: bytes | None = None,
        limit: int | None = None,
        next_ids: dict[tuple[int, bytes, bytes], tuple[tuple[int, int, int], int]] | None = None,
        waiters: Mapping[tuple[int, bytes], Sized] | None = None,
        list_counts: Mapping[tuple[int, bytes], list[int]] | None = None,
    ) -> None:
        self.engine = engine
        self._waiters = waiters or {}
        self._list_counts = list_counts  # Stats.list_counts; None: lists' pushes and pops are not reported
        # Each group's next undelivered entry, from the previous scan (``next_ids``) and for the next one: only
        # groups seen this time are kept, so the memo is bounded by the groups there are.
        self.previous_next_ids = next_ids or {}
        self.next_ids: dict[tuple[int, bytes, bytes], tuple[tuple[int, int, int], int]] = {}
        self.now_ms = int(time.time() * 1000)
        self.keys_by_type: Counter[str] = Counter()
        self.totals = {type_name: TypeTotals() for type_name in QUEUE_TYPES}
        self.ages = Histogram(AGE_BUCKETS)
        self.groups = self.pending = self.lag = 0
        self.lag_seconds = 0.0
        self.oldest = Worst(top)  # (db, key, type) by oldest age
        self.worst_lag = Worst(top)  # (db, key, group) by lag
        self.worst_lag_seconds = Worst(top)
        self.selected: list[QueueSample] = []  # those the per-queue families list
        self._per_queue = per_queue
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

    def sample(self, db: int, key: bytes) -> QueueSample | None:
        """One queue's sample, outside the pass (None when the key is no list or stream, or does not exist)."""
        entry = self.engine.catalog[db].get(key)
        if entry is None:
            return None
        _, sample = self._measure(db, key, entry)
        return sample

    def _measure(self, db: int, key: bytes, entry: Any) -> tuple[str | None, QueueSample | None]:
        """(type name, sample): no type when the key expired, no sample when it is no queue."""
        if type(entry) is bytes:  # a cold value: read its summary without making objects of it
            vtype = self.engine.types.of_cold(entry)
            type_name, expire_ms = vtype.name, vtype.cold_expire(entry)
        else:
            type_name, expire_ms = entry.type, entry.expire_ms
        if expire_ms is not None and expire_ms <= self.now_ms:
            return None, None  # expired, not yet deleted
        if type_name == "list":
            if type(entry) is bytes:
                # Only an engine with a journal has cold lists.
                depth, disk, pushed_ms = cold_summary(entry, self.engine.journal)
            else:
                depth, disk, pushed_ms = len(entry), entry.disk_bytes(), entry.oldest_push_ms()
            # Push times are per chunk or journal batch: unknown (None) for values written before format 4.
            oldest = max(0.0, (self.now_ms - pushed_ms) / 1000) if pushed_ms else None
            sample = QueueSample(db, key, "list", depth, disk, oldest, None)
            counts = self._list_counts.get((db, key)) if self._list_counts is not None else None
            if counts is not None:  # counted from the list's first pop since start (Stats.list_counts)
                sample.pushed, sample.popped = counts
        elif type_name == "stream":
            sample = self._stream(db, key, entry)
        else:
            return type_name, None
        blocked = self._waiters.get((db, key))
        if blocked:
            sample.waiting = len(blocked)
        return type_name, sample

    def _sample(self, db: int, key: bytes, entry: Any) -> None:
        type_name, sample = self._measure(db, key, entry)
        if type_name is None:
            return
        self.keys_by_type[type_name] += 1
        if sample is None:
            return
        self._add(sample)
        if not self._per_queue or (self._matches is not None and not self._matches(key)):
            return
        if self._limit is None or len(self.selected) < self._limit:
            self.selected.append(sample)

    def _add(self, sample: QueueSample) -> None:
        totals = self.totals[sample.type]
        totals.queues += 1
        totals.messages += sample.depth
        totals.disk_bytes += sample.disk_bytes
        age = sample.oldest_seconds
        if age is not None:
            self.ages.observe(age)
            if totals.oldest_seconds is None or age > totals.oldest_seconds:
                totals.oldest_seconds = age
            self.oldest.offer(age, (sample.db, sample.key, sample.type))
        for group in sample.groups:
            self.groups += 1
            self.pending += group.pending
            self.lag += group.lag or 0
            self.lag_seconds = max(self.lag_seconds, group.lag_seconds)
            where = (sample.db, sample.key, group.name)
            self.worst_lag.offer(group.lag or 0, where)
            self.worst_lag_seconds.offer(group.lag_seconds, where)

    def _next_live_id(self, where: tuple[int, bytes, bytes], log: Any, after: int) -> int | None:
        """``log.next_live_id(after)``, remembered from the previous scan while still exact: the group has not
        moved, no entry was removed (entries added minus length counts every deletion and trim ever), and new
        entries only come after the remembered one. Finding it may read a node of records from its segment."""
        token = (after, log.entries_added - log.length, log.first_id)
        known = self.previous_next_ids.get(where)
        if known is not None and known[0] == token:
            found: int | None = known[1]
        else:
            found = log.next_live_id(after)
        if found is not None:
            self.next_ids[where] = (token, found)
        return found

    def _stream(self, db: int, key: bytes, log: Any) -> QueueSample:
        now = self.now_ms
        oldest = max(0.0, (now - (log.first_id >> 64)) / 1000) if log.length else 0.0
        groups = []
        for name, group in log.groups.items():
            lag = log.lag(group)
            following = self._next_live_id((db, key, name), log, group.last_id) if lag != 0 else None
            first_pending = oldest_pending_id(group)
            groups.append(
                GroupSample(
                    name,
                    len(group.pel),
                    lag,
                    max(0.0, (now - (following >> 64)) / 1000) if following else 0.0,
                    max(0.0, (now - (first_pending >> 64)) / 1000) if first_pending is not None else 0.0,
                    len(group.consumers),
                    group.redeliveries,
                    group.entries_read if group.entries_read >= 0 else None,
                )
            )
        return QueueSample(
            db, key, "stream", log.length, log.disk_bytes(), oldest, log.entries_added, groups=groups
        )


async def scan_queues(
    request: Request, *, per_queue: bool = False, match: bytes | None = None, limit: int | None = None
) -> QueueScan | None:
    """A whole QueueScan, yielding to the loop between slices; None while the data is loading."""
    server = request.server
    if server.loading or server.engine is None:
        return None
    scan = QueueScan(
        server.engine,
        server.config.databases,
        top=server.config.values["metrics-top-queues"],
        per_queue=per_queue,
        match=match,
        limit=limit,
        next_ids=request.state.get(NEXT_IDS),
        waiters=server.blocking.waiters,
        list_counts=server.stats.list_counts,
    )
    while not scan.step(SLICE_SECONDS):
        await trio.sleep(0)
    request.state[NEXT_IDS] = scan.next_ids
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
        if engine is not None and engine.on_disk:  # storage memory has no files, journal or syncs
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
            "respq_queues_oldest_age_seconds",
            "The oldest message's age over all queues of the type (absent when no queue's age is known).",
            labels=["type"],
        )
        for type_name, totals in scan.totals.items():
            queues.add_metric([type_name], totals.queues)
            messages.add_metric([type_name], totals.messages)
            disk.add_metric([type_name], totals.disk_bytes)
            if totals.oldest_seconds is not None:
                oldest.add_metric([type_name], totals.oldest_seconds)
        yield from (queues, messages, disk, oldest)
        yield _histogram("respq_queues_by_oldest_age_seconds", "Queues by the age of their oldest message.", scan.ages)
        yield GaugeMetricFamily("respq_groups", "Stream consumer groups.", scan.groups)
        yield GaugeMetricFamily("respq_groups_pending", "Entries delivered, not yet acknowledged.", scan.pending)
        yield GaugeMetricFamily("respq_groups_lag", "Entries not yet delivered to their group.", scan.lag)
        yield GaugeMetricFamily(
            "respq_groups_lag_seconds_max", "The worst group's age of its next undelivered entry.", scan.lag_seconds
        )
        top = scan.oldest.size
        oldest = GaugeMetricFamily(
            "respq_top_queue_oldest_age_seconds",
            f"The {top} queues with the oldest messages.",
            labels=["db", "queue", "type"],
        )
        for age, (db, key, type_name) in scan.oldest.items():
            oldest.add_metric([str(db), _label(key), type_name], age)
        yield oldest
        for family, worst, documentation in (
            ("respq_top_group_lag", scan.worst_lag, f"The {top} groups with the most undelivered entries."),
            (
                "respq_top_group_lag_seconds",
                scan.worst_lag_seconds,
                f"The {top} groups whose next undelivered entry is oldest.",
            ),
        ):
            metric = GaugeMetricFamily(family, documentation, labels=["db", "queue", "group"])
            for score, (db, key, group) in worst.items():
                metric.add_metric([str(db), _label(key), _label(group)], score)
            yield metric


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
        "Age of the oldest message (0 when empty; absent when unknown: lists written before format 4).",
        lambda q: q.oldest_seconds,
    ),
    (
        "respq_queue_pushed",
        "counter",
        "Messages added: a stream's entries ever added, a list's values pushed since start.",
        lambda q: q.pushed,
    ),
    ("respq_queue_popped", "counter", "Values popped from the list since start.", lambda q: q.popped),
    ("respq_queue_waiting_clients", "gauge", "Clients blocked waiting on the queue.", lambda q: q.waiting),
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
)
GROUP_COUNTERS: tuple[tuple[str, str, Any], ...] = (
    (
        "respq_group_delivered",
        "Entries ever delivered to the group (entries-read; absent when unknown).",
        lambda g: g.delivered,
    ),
    (
        "respq_group_redelivered",
        "Deliveries of entries already delivered (XCLAIM, XAUTOCLAIM, history reads) since start.",
        lambda g: g.redelivered,
    ),
)


def _queue_labels(q: QueueSample) -> str:
    return f'db="{q.db}",queue="{_escape(_label(q.key))}",type="{q.type}"'


def _group_labels(q: QueueSample, g: GroupSample) -> str:
    return f'db="{q.db}",queue="{_escape(_label(q.key))}",group="{_escape(_label(g.name))}"'


def queue_lines(queues: list[QueueSample], openmetrics: bool) -> Iterator[str]:
    """The per-queue families' text, a line at a time; counters named as each format wants them."""
    for name, kind, help_text, read in QUEUE_FAMILIES:
        sample = name + "_total" if kind == "counter" else name
        family = name if openmetrics or kind != "counter" else sample
        yield f"# HELP {family} {help_text}\n# TYPE {family} {kind}\n"
        for q in queues:
            value = read(q)
            if value is not None:
                labels = q.labels or _queue_labels(q)  # escaping a name costs more than the rest of its line
                q.labels = labels
                yield f"{sample}{{{labels}}} {_number(value)}\n"
    groups = [(name, "gauge", help_text, read) for name, help_text, read in GROUP_FAMILIES]
    groups += [(name, "counter", help_text, read) for name, help_text, read in GROUP_COUNTERS]
    # The caller yields to the loop after so many lines: a family's pass over queues with no group (lists) yields
    # none, and eight such passes over 10k lists held the loop for 5-9 ms. Those are left out once, up front.
    grouped = [q for q in queues if q.groups]
    for name, kind, help_text, read in groups:
        sample = name + "_total" if kind == "counter" else name
        family = name if openmetrics or kind != "counter" else sample
        yield f"# HELP {family} {help_text}\n# TYPE {family} {kind}\n"
        for q in grouped:
            for g in q.groups:
                value = read(g)
                if value is not None:
                    labels = g.labels or _group_labels(q, g)
                    g.labels = labels
                    yield f"{sample}{{{labels}}} {_number(value)}\n"


async def render_queue_families(queues: list[QueueSample], openmetrics: bool) -> list[bytes]:
    """``queue_lines`` encoded in pieces of about PIECE_BYTES, yielding to the loop every SLICE_SECONDS."""
    pieces: list[bytes] = []
    lines: list[str] = []
    size = 0
    deadline = time.perf_counter() + SLICE_SECONDS
    for count, line in enumerate(queue_lines(queues, openmetrics), 1):
        lines.append(line)
        size += len(line)
        if size >= PIECE_BYTES:
            pieces.append("".join(lines).encode())
            lines, size = [], 0
        if count % CHECK_EVERY == 0 and time.perf_counter() > deadline:
            await trio.sleep(0)
            deadline = time.perf_counter() + SLICE_SECONDS
    pieces.append("".join(lines).encode())
    return pieces


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
    scan = await scan_queues(request, per_queue=per_queue, match=match, limit=limit)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    openmetrics = content_type.startswith("application/openmetrics-text")
    body = encoder(registry_for(server, scan))
    if per_queue and scan is not None:
        await trio.sleep(0)
        chunks = await render_queue_families(scan.selected, openmetrics)
        if openmetrics and body.endswith(OPENMETRICS_EOF):
            return Response(200, [body[: -len(OPENMETRICS_EOF)], *chunks, OPENMETRICS_EOF], content_type)
        return Response(200, [body, *chunks], content_type)
    return Response(200, body, content_type)
