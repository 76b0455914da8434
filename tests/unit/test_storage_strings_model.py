"""String values in the engine against a plain Python model, across clean reopens and simulated crashes: contents,
expiries, keys replaced by another type and multi-key atomic writes, and the bytes held inline (maxmemory's
figure) always match."""

from __future__ import annotations

import copy
import shutil
import tempfile

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from respq.storage import Engine
from respq.types import REGISTRY
from respq.types.lists.model import RIGHT
from respq.types.strings.model import VALUE_OVERHEAD, StringValue

KEYS = st.sampled_from([b"a", b"b", b"\x00k\xff"])
DBS = st.sampled_from([0, 1])
DATA = st.binary(max_size=30) | st.sampled_from([b"", b"x" * 5000])
OFFSETS = st.integers(min_value=0, max_value=70)
Model = dict[tuple[int, bytes], tuple[str, bytes | list[bytes], int | None]]  # type, contents, expiry


class StringsVsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="respq-strings-model-")
        self.engine = self._open()
        self.model: Model = {}
        self.flushed: Model = {}

    def _open(self) -> Engine:
        return Engine.open(
            self.dir, types=REGISTRY, segment_size=4096, checkpoint_bytes=32768, databases=2, log=lambda *_: None
        )

    def teardown(self) -> None:
        try:
            self.crash(flush_first=True)
            self.contents_match()
        finally:
            self.engine.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _string(self, db: int, key: bytes) -> StringValue | None:
        entry = self.engine.get(db, key)
        return entry if entry is not None and entry.type == "string" else None  # type: ignore[return-value]

    def _replace(self, db: int, key: bytes) -> StringValue:
        """As Keyspace.replace: whatever the key held goes, a new empty string takes its place (in the caller's
        atomic block)."""
        if self.engine.get(db, key) is not None:
            self.engine.delete(db, key)
        return self.engine.create(db, key, "string")  # type: ignore[return-value]

    @rule(db=DBS, key=KEYS, data=DATA)
    def set(self, db: int, key: bytes, data: bytes) -> None:
        value = self._string(db, key)
        if value is not None:
            value.set(data)
            expire = self.model[(db, key)][2]
        else:
            with self.engine.atomic():
                self._replace(db, key).set(data)
            expire = None
        self.model[(db, key)] = ("string", data, expire)

    @rule(db=DBS, key=KEYS, data=DATA)
    def append(self, db: int, key: bytes, data: bytes) -> None:
        value = self._string(db, key)
        if value is None:
            return
        _, old, expire = self.model[(db, key)]
        assert value.append(data) == len(old) + len(data)  # type: ignore[arg-type]
        self.model[(db, key)] = ("string", old + data, expire)  # type: ignore[operator]

    @rule(db=DBS, key=KEYS, offset=OFFSETS, data=DATA)
    def set_range(self, db: int, key: bytes, offset: int, data: bytes) -> None:
        value = self._string(db, key)
        if value is None:
            with self.engine.atomic():
                length = self._replace(db, key).set_range(offset, data)
            old, expire = b"", None
        else:
            length = value.set_range(offset, data)
            _, old, expire = self.model[(db, key)]  # type: ignore[assignment]
        new = bytearray(old)
        if len(new) < offset + len(data):
            new += bytes(offset + len(data) - len(new))
        new[offset : offset + len(data)] = data
        assert length == len(new)
        self.model[(db, key)] = ("string", bytes(new), expire)

    @rule(db=DBS, key=KEYS, values=st.lists(st.binary(max_size=5), min_size=1, max_size=3))
    def push(self, db: int, key: bytes, values: list[bytes]) -> None:
        """A list under one of the keys, so that strings replace lists and lists come back."""
        if (db, key) in self.model:
            return
        self.engine.create(db, key, "list").push(RIGHT, values)  # type: ignore[attr-defined]
        self.model[(db, key)] = ("list", values, None)

    @rule(db=DBS, pairs=st.lists(st.tuples(KEYS, DATA), min_size=1, max_size=3))
    def mset(self, db: int, pairs: list[tuple[bytes, bytes]]) -> None:
        """Several keys in one atomic block: after a crash all of them or none."""
        with self.engine.atomic():
            for key, data in pairs:
                value = self._string(db, key)
                if value is None:
                    value = self._replace(db, key)
                value.set(data)
                if self.engine.get(db, key).expire_ms is not None:  # type: ignore[union-attr]
                    self.engine.set_expire(db, key, None)
        for key, data in pairs:
            self.model[(db, key)] = ("string", data, None)

    @rule(db=DBS, key=KEYS, expire=st.sampled_from([None, 4_102_444_800_000, 4_102_444_800_001]))
    def expire(self, db: int, key: bytes, expire: int | None) -> None:
        if (db, key) not in self.model:
            return
        self.engine.set_expire(db, key, expire)
        kind, contents, _ = self.model[(db, key)]
        self.model[(db, key)] = (kind, contents, expire)

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

    @rule(key=KEYS)
    def move(self, key: bytes) -> None:
        if self.engine.move(0, 1, key):
            self.model[(1, key)] = self.model.pop((0, key))

    @rule()
    def swapdb(self) -> None:
        self.engine.swapdb(0, 1)
        self.model = {(1 - db, key): entry for (db, key), entry in self.model.items()}

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
        inline = 0
        for db in (0, 1):
            keys = sorted(self.engine.keys(db))
            assert keys == sorted(k for d, k in self.model if d == db)
            for key in keys:
                kind, contents, expire = self.model[(db, key)]
                entry = self.engine.get(db, key)
                assert entry is not None
                assert (entry.type, entry.expire_ms) == (kind, expire)
                if kind == "string":
                    assert entry.data == contents  # type: ignore[attr-defined]
                    inline += len(contents) + VALUE_OVERHEAD
                else:
                    assert list(entry.range(0, -1)) == contents  # type: ignore[attr-defined]
        assert self.engine.inline_bytes == inline


TestStringsVsModel = StringsVsModel.TestCase
