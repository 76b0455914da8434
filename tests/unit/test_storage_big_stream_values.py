"""Stream entries with field values from 0 B to 16 MiB, byte for byte against a model, across restarts and crashes.

An entry is written once, to its stream's segment file: buffered until the loop pass ends when it is small,
written at once when it is not; read forward (XRANGE, XREAD, XREADGROUP) and backward (XREVRANGE) through the
segment store's blocks; found again after a crash through its journal note or, unnoted, at the end of its file.
Sizes are drawn around the storage's block and buffer sizes (tests/bigvalues.py); the boundary sizes run as explicit
cases on every run. ``pytest tests/unit/test_storage_big_stream_values.py --long`` sweeps many more examples.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conftest import IN_CI
from respq.storage import Engine
from respq.storage.segments import SEGMENT_SIZE
from respq.types import REGISTRY
from respq.types.streams.model import MAX_ID, StreamLog, id_of
from tests.bigvalues import BOUNDARY_SIZES, check_values, make_value, value_sizes

KEY = b"s"
GROUP = b"g"
CONSUMERS = st.sampled_from([b"c1", b"c2"])
# Value bytes made per test (spread evenly over its examples: the rest of an example's values are small), examples
# and steps per example. CI keeps the model test to seconds on two cores; --long sweeps far more.
CI_BYTES, CI_EXAMPLES, CI_STEPS = 512 << 20, 10, 30
LONG_TIMEOUT = 3 * 3600
SHRINK_TIMEOUT = 900
LONG_BYTES, LONG_EXAMPLES, LONG_STEPS = 200 * (400 << 20), 200, 60


@dataclass
class State:
    """What the stream holds: entries in ID order, and its group's last delivered ID and pending owners."""

    entries: dict[int, list[bytes]] = field(default_factory=dict)
    delivered: int = 0
    pending: dict[int, bytes] = field(default_factory=dict)

    def copy(self) -> State:
        return State(dict(self.entries), self.delivered, dict(self.pending))

    def summary(self) -> str:
        sizes = [sum(map(len, fields)) for fields in self.entries.values()]
        return f"{len(sizes)} entries of {sizes[:10]} bytes, delivered {self.delivered}, pending {sorted(self.pending)}"


def fields_of(values: list[bytes]) -> list[bytes]:
    return [part for index, value in enumerate(values) for part in (b"f%d" % index, value)]


class Streams:
    """One stream with one consumer group in the engine, and a model of it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.engine = self._open()
        self.state = State()
        # The state after each operation since the last sync: a crash may keep any prefix of them.
        self.since_sync = [self.state.copy()]
        self.next_ms = 1
        self.tag = 0
        self.budget = 0
        self.now = 1_700_000_000_000

    def _open(self) -> Engine:
        return Engine.open(self.path, types=REGISTRY, segment_size=SEGMENT_SIZE, log=lambda *_: None)

    def new_values(self, sizes: list[int]) -> list[bytes]:
        values = []
        for size in sizes:
            if size > self.budget:
                size = min(size, 64)
            self.budget -= size
            self.tag += 1
            values.append(make_value(self.tag, size))
        return values

    def stream(self) -> StreamLog:
        entry = self.engine.get(0, KEY)
        if entry is None:
            with self.engine.atomic():
                entry = self.engine.create(0, KEY, "stream")
                entry.set_group(GROUP, 0, 0)
        assert isinstance(entry, StreamLog)
        return entry

    def _done(self) -> None:
        self.since_sync.append(self.state.copy())

    # -- operations

    def add(self, entries: list[list[bytes]], one_by_one: bool) -> None:
        """XADD (``one_by_one``) or a pipelined run of XADDs (one append, as the server runs them)."""
        stream = self.stream()
        ids = []
        for _ in entries:
            ids.append(id_of(self.next_ms, 0))
            self.next_ms += 1
        if one_by_one:
            for stream_id, values in zip(ids, entries, strict=True):
                stream.add(stream_id, fields_of(values))
                self.state.entries[stream_id] = fields_of(values)
                self._done()
        else:
            assert stream.add_many(ids, [fields_of(values) for values in entries]) == len(entries)
            for stream_id, values in zip(ids, entries, strict=True):
                self.state.entries[stream_id] = fields_of(values)
                self._done()  # a run is an XADD per entry to its clients: a crash may keep a first part

    def check_range(self, pick: int, count: int, reverse: bool) -> None:
        """XRANGE / XREVRANGE from an entry's ID on, and XREAD after it."""
        stream = self.stream()
        ids = list(self.state.entries)
        start = ids[pick % len(ids)] if ids else 0
        if reverse:
            expected = [(i, f) for i, f in reversed(self.state.entries.items()) if i <= start]
            got = stream.range(0, start, count, reverse=True)
        else:
            expected = [(i, f) for i, f in self.state.entries.items() if i >= start]
            got = stream.range(start, MAX_ID, count)
        expected = expected[:count] if count else expected
        what = f"{'XREVRANGE' if reverse else 'XRANGE'} from {start} COUNT {count}"
        assert [i for i, _ in got] == [i for i, _ in expected], what
        for (stream_id, fields), (_, want) in zip(got, expected, strict=True):
            check_values(fields, want, f"{what}: entry {stream_id}")

    def read_new(self, consumer: bytes, count: int) -> None:
        """XREADGROUP ... >"""
        stream = self.stream()
        group = stream.groups[GROUP]
        self.now += 1
        owner, _ = stream.create_consumer(group, consumer, self.now)
        got = stream.read_group(group, owner, group.last_id, count, False, self.now)
        expected = [(i, f) for i, f in self.state.entries.items() if i > self.state.delivered]
        expected = expected[:count] if count else expected
        assert [i for i, _ in got] == [i for i, _ in expected], f"XREADGROUP > COUNT {count}"
        for (stream_id, fields), (_, want) in zip(got, expected, strict=True):
            check_values(fields, want, f"XREADGROUP >: entry {stream_id}")
            self.state.pending[stream_id] = consumer
            self.state.delivered = stream_id
        self._done()

    def read_own(self, consumer: bytes) -> None:
        """XREADGROUP ... 0: the consumer's pending entries again, fields included."""
        stream = self.stream()
        group = stream.groups[GROUP]
        if consumer not in group.consumers:
            return
        self.now += 1
        got = stream.read_history(group, group.consumers[consumer], 0, 0, self.now)
        mine = sorted(i for i, owner in self.state.pending.items() if owner == consumer)
        assert [i for i, _ in got] == mine, f"XREADGROUP {consumer!r} 0"
        for stream_id, fields in got:
            check_values(fields or [], self.state.entries.get(stream_id, []), f"XREADGROUP 0: entry {stream_id}")
        self._done()

    def ack(self, picks: list[int]) -> None:
        pending = sorted(self.state.pending)
        if not pending:
            return
        ids = sorted({pending[pick % len(pending)] for pick in picks})
        stream = self.stream()
        assert stream.drop_pending(stream.groups[GROUP], ids) == len(ids)
        for stream_id in ids:
            del self.state.pending[stream_id]
        self._done()

    def delete(self, pick: int) -> None:
        ids = list(self.state.entries)
        if not ids:
            return
        target = ids[pick % len(ids)]
        assert self.stream().delete([target]) == 1
        del self.state.entries[target]
        self._done()

    # -- durability

    def sync(self) -> None:
        self.engine.sync(self.engine.flush())
        self.since_sync = [self.state.copy()]

    def checkpoint(self) -> None:
        self.engine.checkpoint()
        self.since_sync = [self.state.copy()]

    def reopen(self) -> None:
        self.engine.close()
        self.engine = self._open()
        self.since_sync = [self.state.copy()]
        self.check_all("after a clean restart")

    def crash(self, flush_first: bool) -> None:
        """kill -9: everything synced comes back, and of what followed, the state after some prefix of it."""
        if flush_first:
            self.sync()
        self.engine.abandon()
        self.engine = self._open()
        observed = self.observed()
        for state in reversed(self.since_sync):
            if self._same(observed, state):
                self.state = state
                break
        else:
            raise AssertionError(
                f"recovered {observed.summary()}, which is no prefix of the {len(self.since_sync) - 1} operations "
                f"since the last sync; synced: {self.since_sync[0].summary()}"
            )
        self.since_sync = [self.state.copy()]
        self.check_all("after a crash")

    def observed(self) -> State:
        entry = self.engine.get(0, KEY)
        if entry is None:
            return State()
        assert isinstance(entry, StreamLog)
        group = entry.groups[GROUP]
        pending = {p.id: p.consumer.name for p in group.iter_pending()}
        return State(dict(entry.range(0, MAX_ID)), group.last_id, pending)

    @staticmethod
    def _same(a: State, b: State) -> bool:
        return (a.entries, a.delivered, a.pending) == (b.entries, b.delivered, b.pending)

    def check_all(self, when: str) -> None:
        stream = self.stream()
        entries = list(self.state.entries.items())
        for reverse in (False, True):
            got = stream.range(0, MAX_ID, reverse=reverse)
            want = entries[::-1] if reverse else entries
            assert [i for i, _ in got] == [i for i, _ in want], f"{'XREVRANGE' if reverse else 'XRANGE'} {when}"
            for (stream_id, fields), (_, expected) in zip(got, want, strict=True):
                check_values(fields, expected, f"entry {stream_id} {when}")
        group = stream.groups[GROUP]
        assert group.last_id == self.state.delivered, when
        assert {p.id: p.consumer.name for p in group.iter_pending()} == self.state.pending, when

    def check_ends(self) -> None:
        """The first and the last entry, each read from the nearer end of the stream."""
        stream = self.stream()
        entries = list(self.state.entries.items())
        for reverse, expected in ((False, entries[:1]), (True, entries[-1:])):
            got = stream.range(0, MAX_ID, 1, reverse=reverse)
            assert [i for i, _ in got] == [i for i, _ in expected]
            for (stream_id, fields), (_, want) in zip(got, expected, strict=True):
                check_values(fields, want, f"entry {stream_id}, read {'backward' if reverse else 'forward'}")

    def close(self) -> None:
        self.engine.close()


class BigStreamEntries(RuleBasedStateMachine):
    budget = CI_BYTES // CI_EXAMPLES

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="respq-big-stream-")
        self.streams = Streams(self.dir)
        self.streams.budget = self.budget

    def teardown(self) -> None:
        try:
            self.streams.crash(flush_first=True)
        finally:
            self.streams.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @initialize(sizes=st.lists(value_sizes(), min_size=1, max_size=3), sync=st.booleans())
    def start(self, sizes: list[int], sync: bool) -> None:
        self.streams.add([self.streams.new_values([size]) for size in sizes], one_by_one=False)
        if sync:
            self.streams.sync()

    @rule(
        entries=st.lists(st.lists(value_sizes(), min_size=1, max_size=2), min_size=1, max_size=3),
        one_by_one=st.booleans(),
    )
    def add(self, entries: list[list[int]], one_by_one: bool) -> None:
        self.streams.add([self.streams.new_values(sizes) for sizes in entries], one_by_one)

    @precondition(lambda self: self.streams.state.entries)
    @rule(pick=st.integers(0, 8), count=st.integers(0, 3), reverse=st.booleans())
    def xrange(self, pick: int, count: int, reverse: bool) -> None:
        self.streams.check_range(pick, count, reverse)

    @rule(consumer=CONSUMERS, count=st.integers(0, 3))
    def read_new(self, consumer: bytes, count: int) -> None:
        self.streams.read_new(consumer, count)

    @precondition(lambda self: self.streams.state.pending)
    @rule(consumer=CONSUMERS)
    def read_own(self, consumer: bytes) -> None:
        self.streams.read_own(consumer)

    @precondition(lambda self: self.streams.state.pending)
    @rule(picks=st.lists(st.integers(0, 8), min_size=1, max_size=3))
    def ack(self, picks: list[int]) -> None:
        self.streams.ack(picks)

    @precondition(lambda self: self.streams.state.entries)
    @rule(pick=st.integers(0, 8))
    def delete(self, pick: int) -> None:
        self.streams.delete(pick)

    @rule()
    def sync(self) -> None:
        self.streams.sync()

    @rule()
    def checkpoint(self) -> None:
        self.streams.checkpoint()

    @rule()
    def reopen(self) -> None:
        self.streams.reopen()

    @rule(flush_first=st.booleans())
    def crash(self, flush_first: bool) -> None:
        self.streams.crash(flush_first)

    @invariant()
    def ends_match(self) -> None:
        self.streams.check_ends()


def run_machine(examples: int, steps: int, total_bytes: int) -> None:
    machine = type("Machine", (BigStreamEntries,), {"budget": total_bytes // examples})
    run_state_machine_as_test(
        machine,
        settings=settings(
            # Shrinking replays megabytes per step: in CI a failure is reported as found, at once.
            phases=[phase for phase in Phase if phase != Phase.shrink or not IN_CI],
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )


@pytest.mark.timeout(SHRINK_TIMEOUT)  # shrinking a failure (outside CI) takes minutes
def test_big_stream_entries_against_a_model() -> None:
    run_machine(CI_EXAMPLES, CI_STEPS, CI_BYTES)


@pytest.mark.timeout(LONG_TIMEOUT)
def test_big_stream_entries_long_sweep(long_mode: bool) -> None:
    if not long_mode:
        pytest.skip("the long sweep runs with --long")
    run_machine(LONG_EXAMPLES, LONG_STEPS, LONG_BYTES)


@pytest.fixture
def streams(tmp_path: Path) -> Iterator[Streams]:
    harness = Streams(str(tmp_path))
    harness.budget = 1 << 40
    yield harness
    harness.close()


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_a_boundary_size_through_every_path(streams: Streams, size: int) -> None:
    """Entries of ``size`` between small ones, added alone and in runs, read both ways from the pending buffer,
    the file, after crashes (noted and unnoted) and after a clean restart, by XRANGE, XREVRANGE and XREADGROUP."""
    big = lambda: streams.new_values([size])  # noqa: E731
    small = lambda: streams.new_values([5])  # noqa: E731
    streams.add([small(), big(), small()], one_by_one=True)
    streams.check_all("in the pending buffer or just written")
    streams.sync()
    streams.add([big(), small() + big(), big()], one_by_one=False)
    streams.check_all("after a run")
    streams.read_new(b"c1", 2)
    streams.crash(flush_first=False)  # the run and the read were not synced: any prefix of them may survive
    streams.add([big()], one_by_one=True)
    streams.crash(flush_first=True)  # a lone XADD after a sync is unnoted: found at the end of its file
    streams.read_new(b"c2", 0)
    streams.read_own(b"c2")
    for reverse in (False, True):
        streams.check_range(1, 2, reverse)
    streams.checkpoint()
    streams.add([big(), small()], one_by_one=True)
    streams.reopen()
    streams.read_own(b"c2")
    streams.ack([0, 1, 2])
    streams.delete(1)
    streams.crash(flush_first=True)
