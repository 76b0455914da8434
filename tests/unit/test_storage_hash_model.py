"""Hashes in the engine against a plain Python model, across clean reopens and simulated crashes: fields, their
order (Redis's listpack order) and the listpack/hashtable encoding all come back as they were acknowledged, and the
bytes the engine counts as held in memory always add up to what the hashes hold."""

from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import dataclass, field

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from respq.storage import Engine
from respq.types import REGISTRY
from respq.types.hashes.model import HashValue, new_hash
from respq.types.lists.model import RIGHT

KEYS = st.sampled_from([b"a", b"\x00k\xff", b"c"])
DBS = st.sampled_from([0, 1])
FIELDS = st.sampled_from([b"f", b"g", b"", b"\x00", b"long-field-name", b"h"])
VALUES = st.binary(max_size=10) | st.sampled_from([b"1", b"v" * 40])
PAIRS = st.lists(st.tuples(FIELDS, VALUES), min_size=1, max_size=4)
# Small limits so that writes cross them: a hash converts past 4 fields or with a field or value over 8 bytes.
MAX_ENTRIES, MAX_VALUE = 4, 8


@dataclass
class ModelHash:
    fields: dict[bytes, bytes] = field(default_factory=dict)
    hashtable: bool = False


def flat(pairs: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [item for pair in pairs for item in pair]


class HashesVsModel(RuleBasedStateMachine):
    """A hash key exists exactly while it has fields; another key holds a list, so types mix in the catalog."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="respq-hash-model-")
        self.engine = self._open()
        self.model: dict[tuple[int, bytes], ModelHash | list[bytes]] = {}
        self.flushed: dict[tuple[int, bytes], ModelHash | list[bytes]] = {}

    def _open(self) -> Engine:
        return Engine.open(
            self.dir, types=REGISTRY, segment_size=4096, checkpoint_bytes=16384, databases=2, log=lambda *_: None
        )

    def teardown(self) -> None:
        try:
            self.crash(flush_first=True)
            self.contents_match()
        finally:
            self.engine.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _hash(self, db: int, key: bytes) -> HashValue | None:
        entry = self.engine.get(db, key)
        return entry if isinstance(entry, HashValue) else None

    @rule(db=DBS, key=KEYS, pairs=PAIRS)
    def hset(self, db: int, key: bytes, pairs: list[tuple[bytes, bytes]]) -> None:
        expected = self.model.get((db, key))
        if isinstance(expected, list):
            return  # a list: HSET would answer WRONGTYPE
        args = flat(pairs)
        if expected is None:
            expected = self.model[(db, key)] = ModelHash()
            value = new_hash(self.engine, db, key, args, MAX_ENTRIES, MAX_VALUE)
            added = len(value)
        else:
            value = self._hash(db, key)
            assert value is not None
            added = value.set_many(args, MAX_ENTRIES, MAX_VALUE)
        before = len(expected.fields)
        expected.fields.update(pairs)
        assert added == len(expected.fields) - before
        if len(expected.fields) > MAX_ENTRIES or any(len(arg) > MAX_VALUE for arg in args):
            expected.hashtable = True

    @rule(db=DBS, key=KEYS, fields=st.lists(FIELDS, min_size=1, max_size=4))
    def hdel(self, db: int, key: bytes, fields: list[bytes]) -> None:
        expected = self.model.get((db, key))
        value = self._hash(db, key)
        if not isinstance(expected, ModelHash):
            assert value is None
            return
        assert value is not None
        removed = [f for f in dict.fromkeys(fields) if f in expected.fields]
        assert value.delete_many(fields) == len(removed)
        for f in removed:
            del expected.fields[f]
        if not expected.fields:  # the command layer's part: the key goes with its last field
            self.engine.delete(db, key)
            del self.model[(db, key)]

    @rule(db=DBS, key=KEYS, values=st.lists(VALUES, min_size=1, max_size=3))
    def rpush(self, db: int, key: bytes, values: list[bytes]) -> None:
        expected = self.model.get((db, key))
        if isinstance(expected, ModelHash):
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
        held = 0  # what the engine counts as held in memory (maxmemory): every hash's own figure, nothing else
        for db in (0, 1):
            keys = sorted(self.engine.keys(db))
            assert keys == sorted(k for d, k in self.model if d == db)
            for key in keys:
                expected = self.model[(db, key)]
                entry = self.engine.get(db, key)
                if isinstance(expected, list):
                    assert list(entry.range(0, -1)) == expected  # type: ignore[union-attr]
                    continue
                assert isinstance(entry, HashValue)
                assert list(entry.items()) == list(expected.fields.items())  # the order too
                assert entry.encoding() == (b"hashtable" if expected.hashtable else b"listpack")
                held += entry.inline_size()
        assert self.engine.inline_bytes == held


TestHashesVsModel = HashesVsModel.TestCase
