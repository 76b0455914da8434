"""The engine against a plain Python model, across clean reopens and simulated crashes."""

from __future__ import annotations

import copy
import shutil
import tempfile

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from respq.storage import Engine
from respq.types import REGISTRY
from respq.types.lists.model import LEFT, RIGHT, Side

KEYS = st.sampled_from([b"a", b"\x00k\xff"])
DBS = st.sampled_from([0, 1])
VALUES = st.binary(max_size=40) | st.sampled_from([b"x", b"y", b"z" * 300])
SIDES = st.sampled_from([LEFT, RIGHT])
INDEX = st.integers(min_value=-12, max_value=12)


def model_range(items: list[bytes], start: int, stop: int) -> list[bytes]:
    length = len(items)
    if start < 0:
        start = max(0, start + length)
    if stop < 0:
        stop += length
    stop = min(stop, length - 1)
    return items[start : stop + 1] if start <= stop else []


class EngineVsModel(RuleBasedStateMachine):
    """Keyspace-like use of the engine: a list key exists exactly while it is non-empty."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="respq-model-")
        self.engine = self._open()
        self.model: dict[tuple[int, bytes], list[bytes]] = {}
        self.flushed: dict[tuple[int, bytes], list[bytes]] = {}

    def _open(self) -> Engine:
        return Engine.open(
            self.dir, types=REGISTRY, segment_size=4096, checkpoint_bytes=32768, databases=2, log=lambda *_: None
        )

    def teardown(self) -> None:
        try:
            # Every run ends with a crash after a sync: whatever followed the last checkpoint is replayed.
            self.crash(flush_first=True)
            self.contents_match()
        finally:
            self.engine.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _list(self, db: int, key: bytes, create: bool = False):  # type: ignore[no-untyped-def]
        entry = self.engine.get(db, key)
        if entry is None:
            return self.engine.create(db, key, "list") if create else None
        return entry.value

    def _drop_if_empty(self, db: int, key: bytes) -> None:
        log = self._list(db, key)
        if log is not None and not len(log):
            self.engine.delete(db, key)
            del self.model[(db, key)]

    @rule(db=DBS, key=KEYS, side=SIDES, values=st.lists(VALUES, min_size=1, max_size=6))
    def push(self, db: int, key: bytes, side: Side, values: list[bytes]) -> None:
        items = self.model.setdefault((db, key), [])
        length = self._list(db, key, create=True).push(side, values)
        for value in values:
            if side == LEFT:
                items.insert(0, value)
            else:
                items.append(value)
        assert length == len(items)

    @rule(db=DBS, key=KEYS, side=SIDES, count=st.integers(1, 5))
    def pop(self, db: int, key: bytes, side: Side, count: int) -> None:
        log = self._list(db, key)
        items = self.model.get((db, key), [])
        if log is None:
            assert not items
            return
        got = log.pop(side, count)
        if side == LEFT:
            expected, items[:] = items[:count], items[count:]
        else:
            expected = items[-count:][::-1]
            del items[-count:]
        assert got == expected
        self._drop_if_empty(db, key)

    @rule(db=DBS, key=KEYS, index=INDEX, value=VALUES)
    def lset(self, db: int, key: bytes, index: int, value: bytes) -> None:
        log = self._list(db, key)
        if log is None:
            return
        items = self.model[(db, key)]
        ok = -len(items) <= index < len(items)
        assert log.set(index, value) == ok
        if ok:
            items[index] = value

    @rule(db=DBS, key=KEYS, pivot_index=INDEX, value=VALUES, before=st.booleans())
    def linsert(self, db: int, key: bytes, pivot_index: int, value: bytes, before: bool) -> None:
        log = self._list(db, key)
        if log is None:
            return
        items = self.model[(db, key)]
        pivot = items[pivot_index % len(items)] if pivot_index >= 0 else b"not there"
        result = log.insert(pivot, value, before)
        if pivot in items:
            position = items.index(pivot)
            items.insert(position if before else position + 1, value)
            assert result == len(items)
        else:
            assert result == -1

    @rule(db=DBS, key=KEYS, count=st.integers(-3, 3), pick=INDEX)
    def lrem(self, db: int, key: bytes, count: int, pick: int) -> None:
        log = self._list(db, key)
        if log is None:
            return
        items = self.model[(db, key)]
        value = items[pick % len(items)]
        indices = [i for i, v in enumerate(items) if v == value]
        if count > 0:
            indices = indices[:count]
        elif count < 0:
            indices = indices[count:]
        assert log.remove(count, value) == len(indices)
        for i in reversed(indices):
            del items[i]
        self._drop_if_empty(db, key)

    @rule(db=DBS, key=KEYS, start=INDEX, stop=INDEX)
    def ltrim(self, db: int, key: bytes, start: int, stop: int) -> None:
        log = self._list(db, key)
        if log is None:
            return
        items = self.model[(db, key)]
        log.trim(start, stop)
        items[:] = model_range(items, start, stop)
        self._drop_if_empty(db, key)

    @rule(db=DBS, key=KEYS, start=INDEX, stop=INDEX)
    def lrange(self, db: int, key: bytes, start: int, stop: int) -> None:
        log = self._list(db, key)
        items = self.model.get((db, key), [])
        if log is not None:
            assert list(log.range(start, stop)) == model_range(items, start, stop)
            assert log.index(start) == (items[start] if -len(items) <= start < len(items) else None)

    @rule(db=DBS, key=KEYS, pick=INDEX, rank=st.sampled_from([1, 2, -1, -2]), count=st.integers(0, 3))
    def lpos(self, db: int, key: bytes, pick: int, rank: int, count: int) -> None:
        log = self._list(db, key)
        if log is None:
            return
        items = self.model[(db, key)]
        value = items[pick % len(items)]
        indices = [i for i, v in enumerate(items) if v == value]
        if rank < 0:
            indices.reverse()
        indices = indices[abs(rank) - 1 :]
        if count:
            indices = indices[:count]
        assert log.positions(value, rank, count) == indices

    @rule(db=DBS, key=KEYS)
    def delete(self, db: int, key: bytes) -> None:
        assert self.engine.delete(db, key) == ((db, key) in self.model)
        self.model.pop((db, key), None)

    @rule(db=DBS, src=KEYS, dst=KEYS)
    def rename(self, db: int, src: bytes, dst: bytes) -> None:
        if (db, src) not in self.model:
            return
        self.engine.rename(db, src, dst)
        self.model[(db, dst)] = self.model.pop((db, src))

    @rule(src=KEYS, dst=KEYS, from_side=SIDES, to_side=SIDES)
    def lmove(self, src: bytes, dst: bytes, from_side: Side, to_side: Side) -> None:
        source = self._list(0, src)
        if source is None:
            return
        with self.engine.atomic():
            (value,) = source.pop(from_side, 1)
            self._list(0, dst, create=True).push(to_side, [value])
        items = self.model[(0, src)]
        items.pop(0 if from_side == LEFT else -1)
        target = self.model.setdefault((0, dst), [])
        target.insert(0 if to_side == LEFT else len(target), value)
        self._drop_if_empty(0, src)

    @rule()
    def swapdb(self) -> None:
        self.engine.swapdb(0, 1)
        self.model = {(1 - db, key): items for (db, key), items in self.model.items()}

    @rule(db=DBS)
    def flushdb(self, db: int) -> None:
        self.engine.flushdb(db)
        self.model = {k: v for k, v in self.model.items() if k[0] != db}

    @rule()
    def flush_and_sync(self) -> None:
        self.engine.sync(self.engine.flush())
        self.flushed = copy.deepcopy(self.model)
        if self.engine.checkpoint_due():
            self.engine.checkpoint()

    @rule()
    def checkpoint(self) -> None:
        self.engine.checkpoint()
        self.flushed = copy.deepcopy(self.model)

    @rule()
    def clean_reopen(self) -> None:
        self.engine.close()
        self.engine = self._open()
        self.flushed = copy.deepcopy(self.model)

    @rule(flush_first=st.booleans())
    def crash(self, flush_first: bool) -> None:
        """Buffered journal records are lost; everything flushed and synced must come back."""
        if flush_first:
            self.engine.sync(self.engine.flush())
            self.flushed = copy.deepcopy(self.model)
        self.engine.abandon()
        self.engine = self._open()
        self.model = copy.deepcopy(self.flushed)

    @invariant()
    def contents_match(self) -> None:
        for db in (0, 1):
            keys = sorted(self.engine.keys(db))
            assert keys == sorted(k for d, k in self.model if d == db)
            for key in keys:
                log = self.engine.get(db, key).value  # type: ignore[union-attr]
                assert len(log) == len(self.model[(db, key)])
                assert list(log.range(0, -1)) == self.model[(db, key)]


TestEngineVsModel = EngineVsModel.TestCase
