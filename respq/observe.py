"""What operators watch: the slow log, the latency monitor's events, per-command latency histograms and the MONITOR
feed, kept as Redis 7.0 keeps them (slowlog.c, latency.c, replicationFeedMonitors).

Nothing here knows of sockets or commands: the dispatcher reports each call's duration to ``Stats`` (respq.stats),
which holds one ``Observers``; the commands render what is kept here.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

SLOWLOG_MAX_ARGC = 32  # arguments an entry keeps; the last one kept says how many more there were
SLOWLOG_MAX_STRING = 128  # bytes an argument keeps; the rest is summed up as "... (N more bytes)"
REDACTED = b"(redacted)"  # what the slow log and MONITOR show in place of a password
LATENCY_SAMPLES = 160  # samples a latency event keeps (one per second at most)
# Per-command latency histograms: bucket k counts calls of at most HISTOGRAM_BASE << k nanoseconds, as Redis's
# LATENCY HISTOGRAM reports them (powers of two from 1024 ns, everything from one second up in the last one).
HISTOGRAM_BASE = 1024
HISTOGRAM_BUCKETS = 21  # 1024 << 20 ns is just over one second
NEVER = 1 << 62  # a threshold no duration reaches


@dataclass(slots=True)
class SlowEntry:
    id: int
    time: int  # unix seconds
    duration: int  # microseconds
    argv: list[bytes]
    peer: bytes  # the client's address
    name: bytes  # the client's name, or b""


def slowlog_argv(argv: list[bytes]) -> list[bytes]:
    """The arguments as a slow-log entry keeps them: at most SLOWLOG_MAX_ARGC, each at most SLOWLOG_MAX_STRING
    bytes, with what was cut said in words (Redis's slowlogCreateEntry)."""
    argc = len(argv)
    kept = min(argc, SLOWLOG_MAX_ARGC)
    out = []
    for index in range(kept):
        if kept != argc and index == kept - 1:
            out.append(b"... (%d more arguments)" % (argc - kept + 1))
            break
        arg = argv[index]
        if len(arg) > SLOWLOG_MAX_STRING:
            arg = arg[:SLOWLOG_MAX_STRING] + b"... (%d more bytes)" % (len(arg) - SLOWLOG_MAX_STRING)
        out.append(arg)
    return out


def redacted(argv: list[bytes]) -> list[bytes]:
    """``argv`` with the passwords of AUTH, of HELLO's AUTH option and ACL SETUSER's user and rules replaced by
    REDACTED, as Redis redacts them
    (HELLO only as far as its own parsing got before the AUTH option: a bad protocol version stops it first)."""
    name = argv[0].lower()
    if name == b"auth":
        return [argv[0], *(REDACTED for _ in argv[1:])]
    if name == b"acl" and len(argv) >= 3 and argv[1].lower() == b"setuser":  # its rules may hold passwords
        return [argv[0], argv[1], *(REDACTED for _ in argv[2:])]
    if name != b"hello" or len(argv) < 3:
        return argv
    try:
        version = int(argv[1])
    except ValueError:
        return argv
    if version not in (2, 3):
        return argv
    out = list(argv)
    index = 2
    while index < len(argv):
        option = argv[index].lower()
        more = len(argv) - 1 - index
        if option == b"auth" and more >= 2:
            out[index + 1] = out[index + 2] = REDACTED
            index += 3
        elif option == b"setname" and more:
            if any(c <= 32 or c > 126 for c in argv[index + 1]):  # Redis refuses the name before going on
                break
            index += 2
        else:
            break
    return out


_REPR = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 7: "\\a", 8: "\\b"}
_REPR_TABLE = [_REPR.get(c, chr(c) if 32 <= c < 127 else f"\\x{c:02x}") for c in range(256)]


def quoted(arg: bytes) -> str:
    """``arg`` in double quotes with Redis's escapes (sdscatrepr)."""
    table = _REPR_TABLE
    return '"' + "".join([table[c] for c in arg]) + '"'


def monitor_line(now: float, db: int, origin: str, argv: list[bytes]) -> bytes:
    """What MONITOR shows of one call: ``<unix>.<usec> [<db> <origin>] "arg" ...`` (origin: the client's address,
    or ``lua`` for a script's calls)."""
    micros = int(now * 1_000_000)
    head = f"{micros // 1_000_000}.{micros % 1_000_000:06d} [{db} {origin}] "
    return (head + " ".join([quoted(arg) for arg in argv])).encode("latin-1")


class LatencyEvent:
    """One event's samples (Redis's latencyTimeSeries): the worst latency of each second it happened in, the last
    LATENCY_SAMPLES of them, and the worst ever."""

    __slots__ = ("max", "samples")

    def __init__(self) -> None:
        self.samples: deque[list[int]] = deque(maxlen=LATENCY_SAMPLES)  # [unix seconds, milliseconds]
        self.max = 0

    def add(self, now: int, milliseconds: int) -> None:
        self.max = max(self.max, milliseconds)
        samples = self.samples
        if samples and samples[-1][0] == now:
            samples[-1][1] = max(samples[-1][1], milliseconds)
        else:
            samples.append([now, milliseconds])


def histogram_bucket(nanoseconds: int) -> int:
    return min(max(0, (nanoseconds - 1).bit_length() - 10), HISTOGRAM_BUCKETS - 1)


def histogram_cdf(buckets: list[int]) -> list[tuple[int, int]]:
    """(microseconds, calls at most that long) for each bucket that adds calls, as LATENCY HISTOGRAM reports."""
    out = []
    total = 0
    for index, count in enumerate(buckets):
        if count:
            total += count
            out.append(((HISTOGRAM_BASE << index) // 1000, total))
    return out


def histogram_percentile(buckets: list[int], percentile: float) -> float:
    """Microseconds within which ``percentile`` percent of the calls ran (a bucket's upper bound)."""
    total = sum(buckets)
    if not total:
        return 0.0
    wanted = max(1, int(total * percentile / 100 + 0.5))
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= wanted:
            return (HISTOGRAM_BASE << index) / 1000
    return (HISTOGRAM_BASE << (HISTOGRAM_BUCKETS - 1)) / 1000


class Observers:
    """The slow log, the latency events and the MONITOR clients of one server."""

    def __init__(self) -> None:
        self.slowlog: deque[SlowEntry] = deque()  # newest first
        self.slowlog_next_id = 0
        self.slowlog_max_len = 128
        self.slowlog_slower_than = 10_000  # microseconds; negative: the slow log is off
        self.latency_threshold = 0  # milliseconds; 0: the latency monitor is off
        self.events: dict[str, LatencyEvent] = {}
        # Each MONITOR client's delivery function (by client id): it takes one line of the feed, and whether the
        # line shows a command of that client's own.
        self.monitors: dict[int, Callable[[bytes, bool], None]] = {}
        self.slow_ns = NEVER  # calls at least this long need a look (slow log or latency monitor)

    def configure(self, slower_than: int, max_len: int, latency_threshold: int) -> None:
        self.slowlog_slower_than = slower_than
        self.slowlog_max_len = max_len
        self.latency_threshold = latency_threshold
        bounds = []
        if slower_than >= 0:
            bounds.append(slower_than * 1000)
        if latency_threshold > 0:
            bounds.append(latency_threshold * 1_000_000)
        self.slow_ns = min(bounds, default=NEVER)
        if slower_than >= 0:  # Redis trims after each call while the slow log is on: the CONFIG SET is one
            self._trim()

    def slow_call(
        self, argv: list[bytes], nanoseconds: int, peer: str, name: bytes, *, fast: bool, log: bool = True
    ) -> None:
        """A call of at least ``slow_ns``: into the slow log (unless ``log`` is False: commands Redis keeps out of
        it) and the latency monitor's command events."""
        micros = nanoseconds // 1000
        if self.latency_threshold and micros // 1000 >= self.latency_threshold:
            self.add_latency("fast-command" if fast else "command", micros // 1000)
        if log and 0 <= self.slowlog_slower_than <= micros:
            entry = SlowEntry(
                self.slowlog_next_id, int(time.time()), micros, slowlog_argv(redacted(argv)), peer.encode(), name
            )
            self.slowlog_next_id += 1
            self.slowlog.appendleft(entry)
            self._trim()

    def _trim(self) -> None:
        while len(self.slowlog) > self.slowlog_max_len:
            self.slowlog.pop()

    def add_latency(self, event: str, milliseconds: int) -> None:
        """A latency sample for ``event`` if the latency monitor is on and it reaches the threshold (Redis's
        latencyAddSampleIfNeeded)."""
        if self.latency_threshold and milliseconds >= self.latency_threshold:
            latency = self.events.get(event)
            if latency is None:
                latency = self.events[event] = LatencyEvent()
            latency.add(int(time.time()), milliseconds)

    def reset_latency(self, events: list[str] | None) -> int:
        """Forgets the named events (every event when None); how many there were."""
        if events is None:
            count = len(self.events)
            self.events.clear()
            return count
        return sum(self.events.pop(event, None) is not None for event in dict.fromkeys(events))

    def feed(self, db: int, origin: str, argv: list[bytes], source: int = 0) -> None:
        """Shows a call to every MONITOR client (``source``: the caller's id; a monitor sees its own calls too)."""
        line = monitor_line(time.time(), db, origin, redacted(argv))
        for client_id, deliver in list(self.monitors.items()):
            deliver(line, client_id == source)
