"""Sorted sets in the engine against a plain Python model, across clean reopens and simulated crashes: members,
scores (signed zeros and infinities included), their order and the listpack/skiplist encoding all come back as they
were acknowledged, the bytes the engine counts as held in memory add up, and ``respq check`` finds the directory
clean."""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from respq.storage import Engine
from respq.storage.check import check_directory
from respq.types import REGISTRY
from respq.types.lists.model import RIGHT
from respq.types.zsets.model import ZSET, ZSetValue, new_zset, store_zset

KEYS = st.sampled_from([b"a", b"\x00k\xff", b"c"])
DBS = st.sampled_from([0, 1])
MEMBERS = st.sampled_from([b"m", b"n", b"", b"\x00", b"long-member-name", b"o", b"\xff"])
SCORES = st.sampled_from([0.0, -0.0, 1.0, -1.5, 0.1, math.inf, -math.inf, 1e300, 5e-324])
PAIRS = st.lists(st.tuples(MEMBERS, SCORES), min_size=1, max_size=4)
# Small limits so that writes cross them: a sorted set converts past 4 members or with a member over 8 bytes.
MAX_ENTRIES, MAX_VALUE = 4, 8


@dataclass
class ModelZSet:
    scores: dict[bytes, float] = field(default_factory=dict)
    skiplist: bool = False

    def set(self, pairs: list[tuple[bytes, float]]) -> None:
        for member, score in pairs:
            new = member not in self.scores
            if new and (len(self.scores) + 1 > MAX_ENTRIES or len(member) > MAX_VALUE):
                self.skiplist = True
            if new or self.scores[member] != score:
                self.scores[member] = score + 0.0 if not self.skiplist else score  # a listpack keeps -0 as 0
            elif not self.skiplist:
                self.scores[member] += 0.0

    def ordered(self) -> list[tuple[float, bytes]]:
        return sorted((score, member) for member, score in self.scores.items())


def _same(a: list[tuple[float, bytes]], b: list[tuple[float, bytes]]) -> bool:
    """Equal pairs, the sign of each zero included."""
    return a == b and all(math.copysign(1, x[0]) == math.copysign(1, y[0]) for x, y in zip(a, b, strict=True))


class ZSetsVsModel(RuleBasedStateMachine):
    """A sorted set key exists exactly while it has members; another key may hold a list, so types mix."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="respq-zset-model-")
        self.engine = self._open()
        self.model: dict[tuple[int, bytes], ModelZSet | list[bytes]] = {}
        self.flushed: dict[tuple[int, bytes], ModelZSet | list[bytes]] = {}

    def _open(self) -> Engine:
        return Engine.open(
            self.dir, types=REGISTRY, segment_size=4096, checkpoint_bytes=16384, databases=2, log=lambda *_: None
        )

    def teardown(self) -> None:
        try:
            self.crash(flush_first=True)
            self.contents_match()
            self.engine.close()
            assert check_directory(self.dir, REGISTRY) == []
        finally:
            self.engine.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _zset(self, db: int, key: bytes) -> ZSetValue | None:
        entry = self.engine.get(db, key)
        return entry if isinstance(entry, ZSetValue) else None

    @rule(db=DBS, key=KEYS, pairs=PAIRS)
    def zadd(self, db: int, key: bytes, pairs: list[tuple[bytes, float]]) -> None:
        expected = self.model.get((db, key))
        if isinstance(expected, list):
            return
        if expected is None:
            expected = self.model[(db, key)] = ModelZSet()
            new_zset(self.engine, db, key, pairs, MAX_ENTRIES, MAX_VALUE)
        else:
            value = self._zset(db, key)
            assert value is not None
            value.set_scores(pairs, MAX_ENTRIES, MAX_VALUE)
        expected.set(pairs)

    @rule(db=DBS, key=KEYS, members=st.lists(MEMBERS, min_size=1, max_size=4))
    def zrem(self, db: int, key: bytes, members: list[bytes]) -> None:
        expected = self.model.get((db, key))
        value = self._zset(db, key)
        if not isinstance(expected, ModelZSet):
            assert value is None
            return
        assert value is not None
        removed = [m for m in dict.fromkeys(members) if m in expected.scores]
        if len(removed) == len(expected.scores):  # the command layer's part: the key goes with its last member
            self.engine.delete(db, key)
            del self.model[(db, key)]
            return
        assert value.remove(members) == removed
        for member in removed:
            del expected.scores[member]

    @rule(db=DBS, key=KEYS, count=st.integers(1, 3), highest=st.booleans())
    def pop(self, db: int, key: bytes, count: int, highest: bool) -> None:
        expected = self.model.get((db, key))
        if not isinstance(expected, ModelZSet) or count >= len(expected.scores):
            return  # the command layer deletes the key when a pop takes every member
        value = self._zset(db, key)
        assert value is not None
        ordered = expected.ordered()
        taken = ordered[::-1][:count] if highest else ordered[:count]
        assert _same(value.pop(count, highest), taken)
        for _, member in taken:
            del expected.scores[member]

    @rule(db=DBS, src=KEYS, dst=KEYS)
    def store(self, db: int, src: bytes, dst: bytes) -> None:
        """A STORE form: the destination replaced whole inside one atomic block."""
        expected = self.model.get((db, src))
        if not isinstance(expected, ModelZSet):
            return
        pairs = list(expected.scores.items())
        with self.engine.atomic():
            if self.engine.get(db, dst) is not None:
                self.engine.delete(db, dst)
            value = self.engine.create(db, dst, ZSET.name)
            assert isinstance(value, ZSetValue)
            store_zset(self.engine, value, pairs, MAX_ENTRIES, MAX_VALUE)
        stored = ModelZSet(skiplist=len(pairs) > MAX_ENTRIES or max(len(m) for m, _ in pairs) > MAX_VALUE)
        stored.scores = {m: s if stored.skiplist else s + 0.0 for m, s in pairs}
        self.model[(db, dst)] = stored

    @rule(db=DBS, key=KEYS, values=st.lists(MEMBERS, min_size=1, max_size=3))
    def rpush(self, db: int, key: bytes, values: list[bytes]) -> None:
        expected = self.model.get((db, key))
        if isinstance(expected, ModelZSet):
            return
        entry = self.engine.get(db, key) or self.engine.create(db, key, "list")
        entry.push(RIGHT, values)  # type: ignore[union-attr]
        self.model.setdefault((db, key), []).extend(values)  # type: ignore[union-attr]

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

    @rule(db=DBS, src=KEYS, dst=KEYS)
    def copy(self, db: int, src: bytes, dst: bytes) -> None:
        if (db, src) not in self.model or src == dst or (1 - db, dst) in self.model:
            return
        assert self.engine.copy(db, src, 1 - db, dst, replace=False)
        self.model[(1 - db, dst)] = copy.deepcopy(self.model[(db, src)])

    @rule()
    def swapdb(self) -> None:
        self.engine.swapdb(0, 1)
        self.model = {(1 - db, key): value for (db, key), value in self.model.items()}

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
        held = 0
        for db in (0, 1):
            keys = sorted(self.engine.keys(db))
            assert keys == sorted(k for d, k in self.model if d == db)
            for key in keys:
                expected = self.model[(db, key)]
                entry = self.engine.get(db, key)
                if isinstance(expected, list):
                    assert list(entry.range(0, -1)) == expected  # type: ignore[union-attr]
                    continue
                assert isinstance(entry, ZSetValue)
                assert _same(list(entry.index), expected.ordered())
                assert entry.scores == expected.scores
                assert entry.encoding() == (b"skiplist" if expected.skiplist else b"listpack")
                held += entry.inline_size()
        assert self.engine.inline_bytes == held


ZSetsVsModel.TestCase.settings = settings(settings.default, max_examples=40, stateful_step_count=40)
TestZSetsVsModel = ZSetsVsModel.TestCase
