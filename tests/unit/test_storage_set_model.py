"""Sets in the engine against a plain Python model, across clean reopens and simulated crashes: members and the
intset/hashtable encoding come back as they were acknowledged, a replace-and-fill (the STORE forms) and a move
between two sets (SMOVE) are all or nothing, and the bytes the engine counts as held in memory always add up to
what the sets hold. Written after tests/unit/test_storage_hash_model.py; ``respq check`` finds the directory clean
at the end."""

from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import dataclass, field

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from respq.storage import Engine
from respq.storage.check import check_directory
from respq.types import REGISTRY
from respq.types.lists.model import RIGHT
from respq.types.sets.model import SetValue, is_integer, new_set

KEYS = st.sampled_from([b"a", b"\x00k\xff", b"c"])
DBS = st.sampled_from([0, 1])
MEMBERS = st.sampled_from([b"1", b"2", b"-7", b"10", b"m", b"", b"\x00", b"01", b"x" * 40])
MEMBER_LISTS = st.lists(MEMBERS, min_size=1, max_size=4)
MAX_ENTRIES = 4  # small, so that writes cross it


@dataclass
class ModelSet:
    members: set[bytes] = field(default_factory=set)
    hashtable: bool = False

    def add(self, members: list[bytes]) -> int:
        new = set(members) - self.members
        self.members |= new
        if new and (len(self.members) > MAX_ENTRIES or not all(map(is_integer, new))):
            self.hashtable = True
        return len(new)


class SetsVsModel(RuleBasedStateMachine):
    """A set key exists exactly while it has members; another key may hold a list, so types mix in the catalog."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="respq-set-model-")
        self.engine = self._open()
        self.model: dict[tuple[int, bytes], ModelSet | list[bytes]] = {}
        self.flushed: dict[tuple[int, bytes], ModelSet | list[bytes]] = {}

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

    def _set(self, db: int, key: bytes) -> SetValue | None:
        entry = self.engine.get(db, key)
        return entry if isinstance(entry, SetValue) else None

    def _add(self, db: int, key: bytes, members: list[bytes]) -> int:
        value = self._set(db, key)
        if value is None:
            return len(new_set(self.engine, db, key, dict.fromkeys(members).keys(), MAX_ENTRIES))
        return value.add_many(members, MAX_ENTRIES)

    @rule(db=DBS, key=KEYS, members=MEMBER_LISTS)
    def sadd(self, db: int, key: bytes, members: list[bytes]) -> None:
        expected = self.model.get((db, key))
        if isinstance(expected, list):
            return  # a list: SADD would answer WRONGTYPE
        if expected is None:
            expected = self.model[(db, key)] = ModelSet()
        assert self._add(db, key, members) == expected.add(members)

    @rule(db=DBS, key=KEYS, start=st.integers(0, 300), count=st.integers(1, 200))
    def sadd_range(self, db: int, key: bytes, start: int, count: int) -> None:
        """Many members at once: a set crosses from the small sorted list to a Python set (SMALL_SET)."""
        self.sadd(db, key, [b"%d" % n for n in range(start, start + count)])

    @rule(db=DBS, key=KEYS, start=st.integers(0, 300), count=st.integers(1, 200))
    def srem_range(self, db: int, key: bytes, start: int, count: int) -> None:
        self.srem(db, key, [b"%d" % n for n in range(start, start + count)], rebuilt=False)

    @rule(db=DBS, key=KEYS, members=MEMBER_LISTS, rebuilt=st.booleans())
    def srem(self, db: int, key: bytes, members: list[bytes], rebuilt: bool) -> None:
        """``rebuilt``: as SPOP does when it keeps the rest in a new set, the encoding is derived again."""
        expected = self.model.get((db, key))
        value = self._set(db, key)
        if not isinstance(expected, ModelSet):
            assert value is None
            return
        assert value is not None
        left = expected.members - set(members)
        if not left:  # the command layer's part: the key goes with its last member
            self.engine.delete(db, key)
            del self.model[(db, key)]
            return
        hashtable = (len(left) > MAX_ENTRIES or not all(map(is_integer, left))) if rebuilt else None
        removed = value.remove_many(members, hashtable=hashtable)
        assert set(removed) == expected.members & set(members)
        expected.members = left
        if hashtable is not None:
            expected.hashtable = hashtable

    @rule(db=DBS, src=KEYS, dst=KEYS, member=MEMBERS)
    def smove(self, db: int, src: bytes, dst: bytes, member: bytes) -> None:
        """Removal and addition in one atomic batch, as SMOVE does."""
        source, target = self.model.get((db, src)), self.model.get((db, dst))
        if src == dst or not isinstance(source, ModelSet) or isinstance(target, list):
            return
        if member not in source.members:
            return
        with self.engine.atomic():
            value = self._set(db, src)
            assert value is not None
            if len(source.members) == 1:
                self.engine.delete(db, src)
                del self.model[(db, src)]
            else:
                value.remove_many([member])
                source.members.discard(member)
            self._add(db, dst, [member])
        self.model.setdefault((db, dst), ModelSet()).add([member])  # type: ignore[union-attr]

    @rule(db=DBS, key=KEYS, members=MEMBER_LISTS)
    def store(self, db: int, key: bytes, members: list[bytes]) -> None:
        """The STORE forms: whatever the key held replaced by a new set, in one atomic batch."""
        with self.engine.atomic():
            self.engine.delete(db, key)
            new_set(self.engine, db, key, dict.fromkeys(members).keys(), MAX_ENTRIES)
        fresh = self.model[(db, key)] = ModelSet()
        fresh.add(members)

    @rule(db=DBS, key=KEYS, values=st.lists(MEMBERS, min_size=1, max_size=3))
    def rpush(self, db: int, key: bytes, values: list[bytes]) -> None:
        expected = self.model.get((db, key))
        if isinstance(expected, ModelSet):
            return
        entry = self.engine.get(db, key) or self.engine.create(db, key, "list")
        entry.push(RIGHT, values)  # type: ignore[union-attr]
        self.model.setdefault((db, key), []).extend(values)  # type: ignore[union-attr]

    @rule(db=DBS, src=KEYS, dst=KEYS)
    def copy_key(self, db: int, src: bytes, dst: bytes) -> None:
        if src == dst or not isinstance(self.model.get((db, src)), ModelSet):
            return
        self.engine.copy(db, src, db, dst, replace=True)
        self.model[(db, dst)] = copy.deepcopy(self.model[(db, src)])

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

    @rule()
    def swapdb(self) -> None:
        self.engine.swapdb(0, 1)
        self.model = {(1 - db, key): value for (db, key), value in self.model.items()}

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
        held = 0  # what the engine counts as held in memory (maxmemory): every set's own figure, nothing else
        for db in (0, 1):
            keys = sorted(self.engine.keys(db))
            assert keys == sorted(k for d, k in self.model if d == db)
            for key in keys:
                expected = self.model[(db, key)]
                entry = self.engine.get(db, key)
                if isinstance(expected, list):
                    assert list(entry.range(0, -1)) == expected  # type: ignore[union-attr]
                    continue
                assert isinstance(entry, SetValue)
                assert set(entry.members) == expected.members
                assert entry.encoding() == (b"hashtable" if expected.hashtable else b"intset")
                if not expected.hashtable:
                    assert list(entry) == sorted(expected.members, key=int)  # an intset reads in numeric order
                held += entry.inline_size()
        assert self.engine.inline_bytes == held


TestSetsVsModel = SetsVsModel.TestCase
