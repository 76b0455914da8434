"""Counters behind INFO stats, commandstats and errorstats."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from respq.observe import HISTOGRAM_BUCKETS, Observers, histogram_bucket
from respq.replies import ErrorReply

LAST_BUCKET = HISTOGRAM_BUCKETS - 1


class Command(Protocol):
    """What the counters need of a command: its name (``respq.commands.table.Command`` has it)."""

    name: str

RATE_SAMPLES = 16  # as Redis: a rate is the mean of the last 16 samples, taken every RATE_SAMPLE_INTERVAL
RATE_SAMPLE_INTERVAL = 0.1  # seconds
PEAK_SLOTS = 8  # as Redis: the recent peak of client buffers is the largest seen in each of the last 8 seconds
# Lists whose pushes and pops are counted (/metrics): past this many, a list not yet counted is not counted at all.
MAX_LIST_COUNTERS = 100_000


@dataclass(slots=True)
class CommandStat:
    calls: int = 0
    usec: int = 0
    rejected_calls: int = 0
    failed_calls: int = 0
    # Calls per latency bucket (respq.observe), for LATENCY HISTOGRAM and INFO latencystats.
    histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BUCKETS)


class InstantaneousRate:
    """Per-second rate of a growing counter over a short sliding window, as Redis computes
    instantaneous_ops_per_sec: each sample is the counter's growth per second since the previous sample, and the
    rate is the mean of the last RATE_SAMPLES samples (slots not yet filled count as 0, so it ramps up and decays)."""

    __slots__ = ("_last_count", "_last_time", "_next", "_samples")

    def __init__(self) -> None:
        self._samples = [0.0] * RATE_SAMPLES
        self._next = 0
        self._last_time: float | None = None
        self._last_count = 0

    def sample(self, count: int, now: float) -> None:
        """Records the counter's value at ``now`` (seconds, monotonic)."""
        if self._last_time is not None and now > self._last_time:
            self._samples[self._next] = (count - self._last_count) / (now - self._last_time)
            self._next = (self._next + 1) % RATE_SAMPLES
        self._last_time, self._last_count = now, count

    def per_second(self) -> int:
        return int(sum(self._samples) / RATE_SAMPLES)

    def reset(self) -> None:
        self._samples = [0.0] * RATE_SAMPLES
        self._last_time = None


@dataclass
class Stats:
    commands: dict[str, CommandStat] = field(default_factory=dict)
    errors: Counter[bytes] = field(default_factory=Counter)
    total_commands: int = 0
    total_connections: int = 0
    rejected_connections: int = 0
    net_input_bytes: int = 0
    net_output_bytes: int = 0
    expired_keys: int = 0
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    total_error_replies: int = 0
    evicted_clients: int = 0
    # Per second (indexed by the clock's second modulo PEAK_SLOTS), the largest input and output buffers seen.
    peak_input: list[int] = field(default_factory=lambda: [0] * PEAK_SLOTS)
    peak_output: list[int] = field(default_factory=lambda: [0] * PEAK_SLOTS)
    ops_rate: InstantaneousRate = field(default_factory=InstantaneousRate)
    syncs_rate: InstantaneousRate = field(default_factory=InstantaneousRate)
    observers: Observers = field(default_factory=Observers)
    track_latency: bool = True  # latency-tracking: per-command histograms
    # Calls at least this long (ns) go to observers.observe_call: the slow log's or latency monitor's threshold,
    # or 0 while a MONITOR client is attached (every call is shown).
    watch_ns: int = 1 << 62
    last_ns: int = 0  # the duration of the last call counted (count_call)
    # (db, key) -> [values pushed, values popped], created at a list's first pop since start (lazily: a list nobody
    # consumes, such as 100k idle ones, costs nothing; its pushes are in its depth) and at most MAX_LIST_COUNTERS of
    # them (~200 bytes each). Kept by name, not by list: a queue drained (its key deleted, as Redis does) and filled
    # again goes on counting; RENAME does not carry them, CONFIG RESETSTAT keeps them (metrics counters).
    list_counts: dict[tuple[int, bytes], list[int]] = field(default_factory=dict)

    def count_list(self, db: int, key: bytes, pushed: int, popped: int) -> None:
        counts = self.list_counts.get((db, key))
        if counts is None:
            if not popped or len(self.list_counts) >= MAX_LIST_COUNTERS:
                return
            counts = self.list_counts[(db, key)] = [0, 0]
        counts[0] += pushed
        counts[1] += popped

    def update_watch(self) -> None:
        """Recomputes watch_ns after the thresholds or the MONITOR clients changed."""
        observers = self.observers
        self.watch_ns = 0 if observers.monitors else observers.slow_ns

    def sample_client_buffers(self, second: int, largest_input: int, largest_output: int) -> None:
        """Records this second's largest client buffers; the next second's slot starts over (as Redis's
        clientsCronTrackExpansiveClients)."""
        slot = second % PEAK_SLOTS
        self.peak_input[(slot + 1) % PEAK_SLOTS] = self.peak_output[(slot + 1) % PEAK_SLOTS] = 0
        self.peak_input[slot] = max(self.peak_input[slot], largest_input)
        self.peak_output[slot] = max(self.peak_output[slot], largest_output)

    def _stat(self, cmd: Command) -> CommandStat:
        stat = self.commands.get(cmd.name)
        if stat is None:
            stat = self.commands[cmd.name] = CommandStat()
        return stat

    def count_call(self, cmd: Command, nanoseconds: int, *, failed: bool) -> None:
        """count_calls for one call, written out: this runs for every command."""
        stat = self.commands.get(cmd.name)
        if stat is None:
            stat = self._stat(cmd)
        stat.calls += 1
        stat.usec += nanoseconds // 1000
        if failed:
            stat.failed_calls += 1
        self.total_commands += 1
        self.last_ns = nanoseconds
        if self.track_latency:
            bucket = (nanoseconds - 1).bit_length() - 10  # respq.observe.histogram_bucket, inlined
            stat.histogram[0 if bucket < 0 else bucket if bucket < HISTOGRAM_BUCKETS else LAST_BUCKET] += 1

    def add_time_of(self, name: str, nanoseconds: int) -> None:
        """More time for the named command's commandstats usec, not another call (a blocked call once served)."""
        stat = self.commands.get(name)
        if stat is not None:
            stat.usec += nanoseconds // 1000

    def track_latency_of(self, name: str, nanoseconds: int, change: int) -> None:
        """Adds ``change`` (1 or -1) calls of ``nanoseconds`` to the named command's latency histogram."""
        stat = self.commands.get(name)
        if stat is not None and self.track_latency:
            stat.histogram[histogram_bucket(nanoseconds)] += change

    def count_calls(self, cmd: Command, calls: int, nanoseconds: int, *, failed: int = 0) -> None:
        """``calls`` calls of ``cmd`` (``failed`` of them answered errors) that took ``nanoseconds`` together."""
        stat = self._stat(cmd)
        stat.calls += calls
        stat.usec += nanoseconds // 1000
        stat.failed_calls += failed
        self.total_commands += calls
        if self.track_latency:
            bucket = (nanoseconds // calls - 1).bit_length() - 10  # respq.observe.histogram_bucket, inlined
            stat.histogram[0 if bucket < 0 else bucket if bucket < HISTOGRAM_BUCKETS else LAST_BUCKET] += calls

    def count_error(self, message: bytes) -> None:
        # errorstats is keyed by the first word of the message (ERR, WRONGTYPE, ...), as in Redis.
        self.errors[message.split(b" ", 1)[0]] += 1
        self.total_error_replies += 1

    def rejected(self, message: bytes, cmd: Command | None = None) -> ErrorReply:
        """Counts an error raised before any handler ran and returns it as a reply.

        ``cmd`` is the command refused, when the name resolved to one: as in Redis, it gets a rejected call (not a
        call), while an unknown command or subcommand only shows in errorstats."""
        if cmd is not None:
            self._stat(cmd).rejected_calls += 1
        self.count_error(message)
        return ErrorReply(message)

    def sample_rates(self, now: float, syncs_total: int) -> None:
        """Called every RATE_SAMPLE_INTERVAL seconds with the engine's journal sync count."""
        self.ops_rate.sample(self.total_commands, now)
        self.syncs_rate.sample(syncs_total, now)

    def reset(self) -> None:
        self.commands.clear()
        self.errors.clear()
        self.total_commands = self.total_connections = self.rejected_connections = 0
        self.net_input_bytes = self.net_output_bytes = self.expired_keys = 0
        self.keyspace_hits = self.keyspace_misses = self.total_error_replies = self.evicted_clients = 0
        self.ops_rate.reset()
        self.syncs_rate.reset()
