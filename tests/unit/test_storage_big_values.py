"""Values from 0 B to 16 MiB through every path a list value takes in the engine, byte for byte against a model.

A value lives in the journal's buffer, then in the journal file (read in both directions, one by one or by count,
in cached blocks or scattered), in a replayed journal file after a crash, in a segment file of its list or in the
shared file once a checkpoint settles it, in a cold list after a restart, in segment records written at once by an
atomic block (LMOVE's push) or behind a backlog, and in an LRANGE snapshot read while the list changes. Every size
is drawn around the storage's block and buffer sizes (tests/bigvalues.py), and the boundary sizes themselves run as
explicit cases on every run. ``pytest tests/unit/test_storage_big_values.py --long`` sweeps many more examples
with a larger byte budget, and a 100 MB round trip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
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
from respq.storage import Engine, fileio, framing
from respq.storage.segments import PENDING_LIMIT, READ_AHEAD, SEGMENT_SIZE
from respq.types import REGISTRY
from respq.types.lists import model as listlog
from respq.types.lists.model import LEFT, RIGHT, ListLog, Side, push_keys
from tests.bigvalues import BOUNDARY_SIZES, check_value, check_values, make_value, show, value_sizes
from tests.unit.test_storage_model import model_range

KEYS = st.sampled_from([b"a", b"b", b"c"])
SIDES = st.sampled_from([LEFT, RIGHT])
# Value bytes made per test (spread evenly over its examples: the rest of an example's values are small), examples
# and steps per example. CI keeps the model test to seconds on two cores; --long sweeps far more.
CI_BYTES, CI_EXAMPLES, CI_STEPS = 512 << 20, 15, 25
LONG_TIMEOUT = 3 * 3600
SHRINK_TIMEOUT = 900
LONG_BYTES, LONG_EXAMPLES, LONG_STEPS = 300 * (400 << 20), 300, 60


def open_engine(path: str) -> Engine:
    engine = Engine.open(path, types=REGISTRY, segment_size=SEGMENT_SIZE, log=lambda *_: None)
    for key in engine.empty_keys(0):  # left by a crash that cut a new list's first push, deleted as the server does
        engine.delete(0, key)
    return engine


class Lists:
    """The engine's db 0 and a model of it, driven through the paths a server drives a list through."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.engine = open_engine(path)
        self.model: dict[bytes, list[bytes]] = {}
        self.flushed: dict[bytes, list[bytes]] = {}
        self.tag = 0
        self.budget = 0

    # -- values

    def new_values(self, sizes: list[int]) -> list[bytes]:
        values = []
        for size in sizes:
            if size > self.budget:
                size = min(size, 64)  # the example's bytes are spent: small values keep the operations going
            self.budget -= size
            self.tag += 1
            values.append(make_value(self.tag, size))
        return values

    def log(self, key: bytes, create: bool = False) -> ListLog | None:
        entry = self.engine.get(0, key)
        if entry is None:
            return self.engine.create(0, key, "list") if create else None
        assert isinstance(entry, ListLog)
        return entry

    def drop_if_empty(self, key: bytes) -> None:
        log = self.log(key)
        if log is not None and not len(log):
            self.engine.delete(0, key)
            del self.model[key]

    # -- operations

    def push(self, key: bytes, side: Side, values: list[bytes], how: str) -> None:
        items = self.model.setdefault(key, [])
        if how == "each":  # LPUSH/RPUSH as the server runs them: a new list of one value is cold at once
            (length,) = push_keys(self.engine, 0, side, [(key, values)])  # type: ignore[misc]
        elif how == "atomic":  # in an atomic block (LMOVE's push): the values go to segment records at once
            log = self.log(key, create=True)
            with self.engine.atomic():
                length = log.push(side, values[:1])  # type: ignore[union-attr]
                if values[1:]:
                    length = log.push(side, values[1:])  # type: ignore[union-attr]
        else:
            length = self.log(key, create=True).push(side, values)  # type: ignore[union-attr]
        for value in values:
            items.insert(0, value) if side == LEFT else items.append(value)
        assert length == len(items)

    def spread(self, keys: list[bytes], side: Side, values: list[bytes]) -> None:
        """Pipelined pushes to several lists, as the server runs them: their records framed in one go, each list
        finding its values at its own record's position."""
        pushes = [(keys[index % len(keys)], [value]) for index, value in enumerate(values)]
        lengths = push_keys(self.engine, 0, side, pushes)
        for (key, (value,)), length in zip(pushes, lengths, strict=True):  # type: ignore[arg-type]
            items = self.model.setdefault(key, [])
            items.insert(0, value) if side == LEFT else items.append(value)
            assert length == len(items)

    def trim(self, key: bytes, start: int, stop: int) -> None:
        """LTRIM splits chunks and runs at record boundaries (settling the list first)."""
        log = self.log(key)
        if log is None:
            return
        log.trim(start, stop)
        self.model[key] = model_range(self.model[key], start, stop)
        self.drop_if_empty(key)

    def rename(self, src: bytes, dst: bytes) -> None:
        if src not in self.model or src == dst:
            return
        self.engine.rename(0, src, dst)
        self.model[dst] = self.model.pop(src)

    def pop(self, key: bytes, side: Side, count: int) -> None:
        log = self.log(key)
        if log is None:
            return
        items = self.model[key]
        expected = items[:count] if side == LEFT else items[::-1][:count]
        check_values(log.pop(side, count), expected, f"pop {count} from the {side.name} of {key!r}")
        if side == LEFT:
            del items[:count]
        else:
            del items[len(items) - len(expected) :]
        self.drop_if_empty(key)

    def move(self, src: bytes, dst: bytes, wherefrom: Side, whereto: Side) -> None:
        """LMOVE as the server runs it: peek the source, then push and pop in one atomic block."""
        source = self.log(src)
        if source is None:
            return
        items = self.model[src]
        expected = items[0] if wherefrom == LEFT else items[-1]
        value = source.index(0 if wherefrom == LEFT else -1)
        check_value(value, expected, f"LMOVE {src!r} {wherefrom.name}: the value peeked")
        with self.engine.atomic():
            self.log(dst, create=True).push(whereto, [value])  # type: ignore[union-attr,list-item]
            check_values(source.pop(wherefrom, 1), [expected], f"LMOVE {src!r} {wherefrom.name}: the value popped")
        items.pop(0 if wherefrom == LEFT else -1)
        target = self.model.setdefault(dst, [])
        target.insert(0, expected) if whereto == LEFT else target.append(expected)
        self.drop_if_empty(src)

    def check_range(self, key: bytes, start: int, stop: int) -> None:
        log = self.log(key)
        items = self.model.get(key, [])
        if log is None:
            assert not items
            return
        check_values(list(log.range(start, stop)), model_range(items, start, stop), f"LRANGE {key!r} {start} {stop}")
        for index in (start, stop):
            expected = items[index] if -len(items) <= index < len(items) else None
            check_value(log.index(index), expected, f"LINDEX {key!r} {index}")

    def check_ends(self, key: bytes) -> None:
        """The first and last values, read towards the tail (LINDEX) and towards the head (LPOS with a negative
        rank compares the value it reads from the tail)."""
        log = self.log(key)
        items = self.model[key]
        assert log is not None and len(log) == len(items), key
        for index in (0, -1):
            check_value(log.index(index), items[index], f"LINDEX {key!r} {index}")
        tail_first = log.positions(items[-1], -1, 1, maxlen=1)
        assert tail_first == [len(items) - 1], f"LPOS {key!r} {show(items[-1])} RANK -1 MAXLEN 1: {tail_first}"
        head_first = log.positions(items[0], 1, 1, maxlen=1)
        assert head_first == [0], f"LPOS {key!r} {show(items[0])} MAXLEN 1: {head_first}"

    def check_snapshot(self, key: bytes, pop_first: Side | None) -> None:
        """A streamed LRANGE: the snapshot's values are the list's when it was taken, even after a pop."""
        log = self.log(key)
        if log is None:
            return
        expected = list(self.model[key])
        with log.snapshot(0, -1) as snapshot:
            if pop_first is not None:
                self.pop(key, pop_first, 1)
            check_values(list(snapshot), expected, f"LRANGE {key!r} streamed from a snapshot")

    def check_positions(self, key: bytes, pick: int, rank: int) -> None:
        """LPOS compares every value it passes, read in the direction of the rank."""
        log = self.log(key)
        if log is None:
            return
        items = self.model[key]
        target = items[pick % len(items)]
        indices = [i for i, v in enumerate(items) if v == target]
        if rank < 0:
            indices.reverse()
        assert log.positions(target, rank, 0) == indices[abs(rank) - 1 :], f"LPOS {key!r} rank {rank}"

    def insert(self, key: bytes, pick: int, value: bytes, before: bool) -> None:
        log = self.log(key)
        if log is None:
            return
        items = self.model[key]
        pivot = items[pick % len(items)]
        position = items.index(pivot)
        assert log.insert(pivot, value, before) == len(items) + 1
        items.insert(position if before else position + 1, value)

    def set(self, key: bytes, index: int, value: bytes) -> None:
        log = self.log(key)
        if log is None:
            return
        items = self.model[key]
        index %= len(items)
        assert log.set(index, value)
        items[index] = value

    def remove(self, key: bytes, pick: int, count: int) -> None:
        log = self.log(key)
        if log is None:
            return
        items = self.model[key]
        target = items[pick % len(items)]
        indices = [i for i, v in enumerate(items) if v == target]
        indices = indices[:count] if count > 0 else indices[count:] if count < 0 else indices
        assert log.remove(count, target) == len(indices)
        for i in reversed(indices):
            del items[i]
        self.drop_if_empty(key)

    # -- durability

    def sync(self) -> None:
        self.engine.sync(self.engine.flush())
        self.flushed = {key: list(items) for key, items in self.model.items()}

    def checkpoint(self, split: bool = False) -> None:
        """A checkpoint settles every journal-resident value; ``split`` reads the lists between its steps, as the
        server serves clients while a worker thread runs the middle one."""
        if not split:
            self.engine.checkpoint()
        else:
            cp = self.engine.begin_checkpoint()
            self.check_all("between the steps of a checkpoint")
            self.engine.run_checkpoint(cp)
            self.engine.finish_checkpoint(cp)
        self.flushed = {key: list(items) for key, items in self.model.items()}

    def reopen(self) -> None:
        self.engine.close()
        self.engine = open_engine(self.path)
        self.flushed = {key: list(items) for key, items in self.model.items()}

    def crash(self, flush_first: bool) -> None:
        """kill -9: what was flushed (and synced) comes back, the journal's buffer does not."""
        if flush_first:
            self.sync()
        self.engine.abandon()
        self.engine = open_engine(self.path)
        self.model = {key: list(items) for key, items in self.flushed.items()}

    def check_all(self, when: str = "") -> None:
        assert sorted(self.engine.keys(0)) == sorted(self.model), when
        for key, items in self.model.items():
            log = self.log(key)
            assert log is not None and len(log) == len(items), f"{key!r} {when}"
            check_values(list(log.range(0, -1)), items, f"{key!r} head to tail {when}")
            with log.snapshot(0, -1) as snapshot:
                check_values(list(snapshot), items, f"{key!r} as a snapshot {when}")
            # Tail to head reads every journal run and segment chunk against its push direction.
            check_values([log.index(i) for i in range(len(items) - 1, -1, -1)], items[::-1], f"{key!r} {when}")

    def close(self) -> None:
        self.engine.close()


class BigListValues(RuleBasedStateMachine):
    budget = CI_BYTES // CI_EXAMPLES

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="respq-big-")
        self.lists = Lists(self.dir)
        self.lists.budget = self.budget
        self.saved_backlog = listlog.BACKLOG_VALUES

    @initialize(
        backlog=st.sampled_from([0, 3]),
        side=SIDES,
        sizes=st.lists(value_sizes(), min_size=1, max_size=4),
        sync=st.booleans(),
    )
    def start(self, backlog: int, side: Side, sizes: list[int], sync: bool) -> None:
        """Every example starts with values in a list, in the journal's buffer or file. Sometimes a list of three
        values is a backlog: later pushes go to its segment files at once."""
        if backlog:
            listlog.BACKLOG_VALUES = backlog
        self.lists.push(b"a", side, self.lists.new_values(sizes), "push")
        if sync:
            self.lists.sync()

    def teardown(self) -> None:
        try:
            self.lists.crash(flush_first=True)
            self.lists.check_all("after the last crash")
        finally:
            listlog.BACKLOG_VALUES = self.saved_backlog
            self.lists.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def has(self, key: bytes) -> bool:
        return key in self.lists.model

    @rule(
        key=KEYS,
        side=SIDES,
        sizes=st.lists(value_sizes(), min_size=1, max_size=3),
        how=st.sampled_from(["push", "each", "atomic"]),
    )
    def push(self, key: bytes, side: Side, sizes: list[int], how: str) -> None:
        self.lists.push(key, side, self.lists.new_values(sizes), how)

    @rule(
        keys=st.lists(KEYS, min_size=2, max_size=3, unique=True),
        side=SIDES,
        sizes=st.lists(value_sizes(), min_size=2, max_size=4),
    )
    def spread(self, keys: list[bytes], side: Side, sizes: list[int]) -> None:
        self.lists.spread(keys, side, self.lists.new_values(sizes))

    @precondition(lambda self: self.lists.model)
    @rule(key=KEYS, start=st.integers(-3, 2), stop=st.integers(-3, 3))
    def ltrim(self, key: bytes, start: int, stop: int) -> None:
        self.lists.trim(key, start, stop)

    @precondition(lambda self: self.lists.model)
    @rule(src=KEYS, dst=KEYS)
    def rename(self, src: bytes, dst: bytes) -> None:
        self.lists.rename(src, dst)

    @precondition(lambda self: self.lists.model)
    @rule(key=KEYS, side=SIDES, count=st.integers(1, 4))
    def pop(self, key: bytes, side: Side, count: int) -> None:
        self.lists.pop(key, side, count)

    @precondition(lambda self: self.lists.model)
    @rule(src=KEYS, dst=KEYS, wherefrom=SIDES, whereto=SIDES)
    def move(self, src: bytes, dst: bytes, wherefrom: Side, whereto: Side) -> None:
        self.lists.move(src, dst, wherefrom, whereto)

    @precondition(lambda self: self.lists.model)
    @rule(key=KEYS, start=st.integers(-4, 4), stop=st.integers(-4, 4))
    def lrange(self, key: bytes, start: int, stop: int) -> None:
        self.lists.check_range(key, start, stop)

    @precondition(lambda self: self.lists.model)
    @rule(key=KEYS, pop_first=st.sampled_from([None, LEFT, RIGHT]))
    def snapshot(self, key: bytes, pop_first: Side | None) -> None:
        self.lists.check_snapshot(key, pop_first)

    @precondition(lambda self: self.lists.model)
    @rule(key=KEYS, pick=st.integers(0, 8), rank=st.sampled_from([1, 2, -1, -2]))
    def lpos(self, key: bytes, pick: int, rank: int) -> None:
        self.lists.check_positions(key, pick, rank)

    @precondition(lambda self: self.lists.model)
    @rule(key=KEYS, pick=st.integers(0, 8), size=value_sizes(), before=st.booleans())
    def linsert(self, key: bytes, pick: int, size: int, before: bool) -> None:
        if self.has(key):
            self.lists.insert(key, pick, self.lists.new_values([size])[0], before)

    @precondition(lambda self: self.lists.model)
    @rule(key=KEYS, index=st.integers(0, 8), size=value_sizes())
    def lset(self, key: bytes, index: int, size: int) -> None:
        if self.has(key):
            self.lists.set(key, index, self.lists.new_values([size])[0])

    @precondition(lambda self: self.lists.model)
    @rule(key=KEYS, pick=st.integers(0, 8), count=st.integers(-2, 2))
    def lrem(self, key: bytes, pick: int, count: int) -> None:
        self.lists.remove(key, pick, count)

    @rule()
    def sync(self) -> None:
        self.lists.sync()

    @rule(budget=st.integers(1, 4))
    def settle_some(self, budget: int) -> None:
        self.lists.engine.settle_some(budget)

    @rule(split=st.booleans())
    def checkpoint(self, split: bool) -> None:
        self.lists.checkpoint(split)

    @rule()
    def reopen(self) -> None:
        self.lists.reopen()

    @rule(flush_first=st.booleans())
    def crash(self, flush_first: bool) -> None:
        self.lists.crash(flush_first)

    @invariant()
    def ends_match(self) -> None:
        """Both ends of every list, each read in both directions (a whole check per step would cost too much)."""
        lists = self.lists
        assert sorted(lists.engine.keys(0)) == sorted(lists.model)
        for key in lists.model:
            lists.check_ends(key)


def run_machine(examples: int, steps: int, total_bytes: int) -> None:
    machine = type("Machine", (BigListValues,), {"budget": total_bytes // examples})
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
def test_big_list_values_against_a_model() -> None:
    run_machine(CI_EXAMPLES, CI_STEPS, CI_BYTES)


@pytest.mark.timeout(LONG_TIMEOUT)
def test_big_list_values_long_sweep(long_mode: bool) -> None:
    if not long_mode:
        pytest.skip("the long sweep runs with --long")
    run_machine(LONG_EXAMPLES, LONG_STEPS, LONG_BYTES)


# -- the boundary sizes, every run


@pytest.fixture
def lists(tmp_path: Path) -> Iterator[Lists]:
    harness = Lists(str(tmp_path))
    harness.budget = 1 << 40
    yield harness
    harness.close()


def every_path(lists: Lists, size: int) -> None:
    """Values of ``size`` between small neighbours, pushed at both ends of two lists and read through each place a
    value can live, in both directions, by one and by count."""
    small = lambda: lists.new_values([7])  # noqa: E731
    for key, side in ((b"a", RIGHT), (b"b", LEFT)):
        lists.push(key, side, small() + lists.new_values([size]) + small(), "push")
        lists.push(key, side, lists.new_values([size, size]), "push")
    lists.check_all("in the journal's buffer")
    lists.sync()
    lists.check_all("in the journal file")
    for key, side in ((b"a", RIGHT), (b"b", LEFT)):
        lists.pop(key, side, 1)  # from the end it was pushed to: read against the push direction
        lists.pop(key, Side(1 - side), 1)
        lists.pop(key, side, 2)
        lists.push(key, side, lists.new_values([size, 3, size]), "each")
    lists.check_positions(b"a", 1, -1)
    lists.check_positions(b"b", 1, -1)
    lists.insert(b"a", -1, lists.new_values([size])[0], before=True)  # the pivot compared is the newest value
    lists.sync()
    lists.crash(flush_first=False)
    lists.check_all("in the journal files replayed after a crash")
    lists.move(b"a", b"c", RIGHT, LEFT)
    lists.move(b"b", b"c", LEFT, RIGHT)
    lists.push(b"c", RIGHT, lists.new_values([size, 1]), "atomic")
    lists.check_all("written to segment records by atomic blocks")
    lists.check_snapshot(b"c", LEFT)
    lists.checkpoint(split=True)
    lists.check_all("settled into segment files")
    lists.pop(b"a", RIGHT, 1)
    lists.pop(b"c", LEFT, 1)
    lists.reopen()
    lists.check_all("cold after a clean restart")
    lists.check_snapshot(b"b", RIGHT)
    lists.set(b"a", 0, lists.new_values([size])[0])
    lists.remove(b"b", 1, 0)
    lists.crash(flush_first=True)
    lists.check_all("after LSET and LREM and a crash")
    for key in list(lists.model):
        while key in lists.model:
            lists.pop(key, RIGHT if key == b"a" else LEFT, 3)


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_a_boundary_size_through_every_path(lists: Lists, size: int) -> None:
    every_path(lists, size)


@pytest.mark.parametrize("size", [PENDING_LIMIT - framing.OVERHEAD - 1, READ_AHEAD + 1, SEGMENT_SIZE + 1])
def test_pushes_behind_a_backlog_go_to_segments_whole(lists: Lists, size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listlog, "BACKLOG_VALUES", 2)
    every_path(lists, size)


def test_records_and_values_longer_than_one_read_come_back_whole(lists: Lists, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux returns at most fileio.READ_CAP bytes per read (2 GiB less a page; values and records can be longer
    once proto-max-bulk-len and client-query-buffer-limit allow it), scaled down here to 1 MiB: a journal record
    longer than that was cut at recovery as a torn tail, and a value longer than that could not be read."""
    cap = 1 << 20
    monkeypatch.setattr(fileio, "_os_pread", lambda fd, length, offset: os.pread(fd, min(length, cap), offset))
    monkeypatch.setattr(fileio, "READ_CAP", cap)
    lists.push(b"m", RIGHT, lists.new_values([cap // 2 + 7] * 5), "atomic")  # one batch record of 2.5 MiB
    lists.push(b"n", LEFT, lists.new_values([2 * cap + 3]), "push")
    lists.sync()
    lists.crash(flush_first=False)
    lists.check_all("an atomic block's record longer than one read, replayed")
    every_path(lists, 3 * cap + 1)


@pytest.mark.timeout(LONG_TIMEOUT)
def test_a_100_mb_value_round_trip(tmp_path: Path, long_mode: bool) -> None:
    if not long_mode:
        pytest.skip("runs with --long")
    lists = Lists(str(tmp_path))
    lists.budget = 1 << 40
    size = 100_000_000
    lists.push(b"a", RIGHT, lists.new_values([5, size, 5]), "push")
    lists.sync()
    lists.pop(b"a", RIGHT, 1)
    lists.push(b"a", RIGHT, lists.new_values([size]), "push")
    lists.crash(flush_first=True)
    lists.check_all("a 100 MB value after a crash")
    lists.checkpoint()
    lists.reopen()
    lists.check_all("a 100 MB value settled, after a restart")
    lists.close()
