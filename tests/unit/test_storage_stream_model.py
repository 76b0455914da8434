"""Streams and consumer groups in the engine against a plain Python model, across clean reopens and crashes."""

from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import dataclass, field

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from respq.storage import Engine
from respq.types import REGISTRY
from respq.types.streams.model import MAX_ID, MAXLEN, MINID, StreamLog, node_settings

KEYS = st.sampled_from([b"s", b"\x00t"])
GROUPS = st.sampled_from([b"g1", b"g2"])
CONSUMERS = st.sampled_from([b"alice", b"bob", b"carol"])
FIELDS = st.lists(st.binary(max_size=30) | st.sampled_from([b"f", b"v" * 700]), min_size=2, max_size=6).filter(
    lambda f: len(f) % 2 == 0
)


@dataclass
class GroupModel:
    last_id: int
    entries_read: int
    consumers: set[bytes] = field(default_factory=set)
    pel: dict[int, tuple[bytes, int, int]] = field(default_factory=dict)  # id -> consumer, delivered, count


@dataclass
class StreamModel:
    entries: dict[int, list[bytes]] = field(default_factory=dict)  # in ID order (inserted ascending)
    last_id: int = 0
    entries_added: int = 0
    max_deleted: int = 0
    groups: dict[bytes, GroupModel] = field(default_factory=dict)


class StreamsVsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="respq-stream-model-")
        self.engine = self._open()
        self.model: dict[bytes, StreamModel] = {}
        self.flushed: dict[bytes, StreamModel] = {}
        self.clock = 1_700_000_000_000

    def _open(self) -> Engine:
        return Engine.open(
            self.dir, types=REGISTRY, segment_size=4096, checkpoint_bytes=32768, databases=1, log=lambda *_: None
        )

    def teardown(self) -> None:
        try:
            self.crash(flush_first=True)
            self.contents_match()
        finally:
            self.engine.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _stream(self, key: bytes, create: bool = False) -> StreamLog | None:
        entry = self.engine.get(0, key)
        if entry is None:
            if not create:
                return None
            self.model[key] = StreamModel()
            return self.engine.create(0, key, "stream")
        return entry.value  # type: ignore[return-value]

    def _tick(self) -> int:
        self.clock += 7
        return self.clock

    # -- entries

    @rule(key=KEYS, step=st.integers(1, 3), same_ms=st.booleans(), fields=FIELDS)
    def add(self, key: bytes, step: int, same_ms: bool, fields: list[bytes]) -> None:
        stream = self._stream(key, create=True)
        assert stream is not None
        model = self.model[key]
        new_id = model.last_id + step if same_ms else ((model.last_id >> 64) + step) << 64
        stream.add(new_id, fields)
        model.entries[new_id] = fields
        model.last_id = new_id
        model.entries_added += 1

    @rule(key=KEYS, picks=st.lists(st.integers(0, 40), max_size=4), junk=st.integers(0, 5))
    def delete(self, key: bytes, picks: list[int], junk: int) -> None:
        stream = self._stream(key)
        if stream is None:
            return
        model = self.model[key]
        ids = list(model.entries)
        targets = [ids[p % len(ids)] for p in picks] if ids else []
        targets.append(model.last_id + junk + 1)
        expected = {i for i in targets if i in model.entries}
        assert stream.delete(targets) == len(expected)
        for stream_id in expected:
            del model.entries[stream_id]
            model.max_deleted = max(model.max_deleted, stream_id)

    @rule(key=KEYS, maxlen=st.integers(0, 30), approx=st.booleans(), limit=st.sampled_from([0, 5, 100]))
    def trim_maxlen(self, key: bytes, maxlen: int, approx: bool, limit: int) -> None:
        stream = self._stream(key)
        if stream is None:
            return
        deleted = stream.trim(MAXLEN, maxlen, approx, limit if approx else 0)
        self._apply_trim(key, deleted, approx)
        remaining = len(self.model[key].entries)
        if approx:
            assert remaining >= maxlen or not deleted  # only whole nodes, never below the bound
        else:
            assert remaining <= maxlen

    @rule(key=KEYS, pick=st.integers(0, 40), approx=st.booleans())
    def trim_minid(self, key: bytes, pick: int, approx: bool) -> None:
        stream = self._stream(key)
        if stream is None or not self.model[key].entries:
            return
        model = self.model[key]
        ids = list(model.entries)
        threshold = ids[pick % len(ids)]
        deleted = stream.trim(MINID, threshold, approx, 0)
        assert all(i < threshold for i in ids[:deleted])
        self._apply_trim(key, deleted, approx)
        if not approx:
            assert all(i >= threshold for i in model.entries)

    def _apply_trim(self, key: bytes, deleted: int, approx: bool) -> None:
        model = self.model[key]
        for stream_id in list(model.entries)[:deleted]:
            del model.entries[stream_id]

    @rule(key=KEYS, bump=st.integers(0, 3), added=st.integers(0, 3))
    def set_id(self, key: bytes, bump: int, added: int) -> None:
        stream = self._stream(key)
        if stream is None:
            return
        model = self.model[key]
        model.last_id += bump
        model.entries_added += added
        stream.set_id(model.last_id, model.entries_added, model.max_deleted)

    # -- groups

    @rule(key=KEYS, name=GROUPS, at_end=st.booleans(), entries_read=st.sampled_from([-1, 0, 3]))
    def set_group(self, key: bytes, name: bytes, at_end: bool, entries_read: int) -> None:
        stream = self._stream(key)
        if stream is None:
            return
        model = self.model[key]
        last_id = model.last_id if at_end else 0
        stream.set_group(name, last_id, entries_read)
        group = model.groups.get(name)
        if group is None:
            model.groups[name] = GroupModel(last_id, entries_read)
        else:
            group.last_id, group.entries_read = last_id, entries_read

    @rule(key=KEYS, name=GROUPS)
    def destroy_group(self, key: bytes, name: bytes) -> None:
        stream = self._stream(key)
        if stream is None:
            return
        assert stream.destroy_group(name) == (name in self.model[key].groups)
        self.model[key].groups.pop(name, None)

    def _group(self, key: bytes, name: bytes):  # type: ignore[no-untyped-def]
        stream = self._stream(key)
        if stream is None or name not in stream.groups:
            return None, None, None
        return stream, stream.groups[name], self.model[key].groups[name]

    @rule(key=KEYS, name=GROUPS, consumer=CONSUMERS, count=st.integers(0, 4), noack=st.booleans())
    def read_new(self, key: bytes, name: bytes, consumer: bytes, count: int, noack: bool) -> None:
        stream, group, model = self._group(key, name)
        if stream is None:
            return
        now = self._tick()
        owner, _ = stream.create_consumer(group, consumer, now)
        model.consumers.add(consumer)
        got = stream.read_group(group, owner, group.last_id, count, noack, now)
        expected = [(i, f) for i, f in self.model[key].entries.items() if i > model.last_id]
        if count:
            expected = expected[:count]
        assert got == expected
        for stream_id, _ in got:
            if not noack:
                model.pel[stream_id] = (consumer, now, 1)
            model.last_id = stream_id
        model.entries_read = group.entries_read  # derived by Redis's rules; what matters is that it persists

    @rule(key=KEYS, name=GROUPS, consumer=CONSUMERS, count=st.integers(0, 3))
    def read_history(self, key: bytes, name: bytes, consumer: bytes, count: int) -> None:
        stream, group, model = self._group(key, name)
        if stream is None or consumer not in model.consumers:
            return
        now = self._tick()
        owner, _ = stream.create_consumer(group, consumer, now)
        got = stream.read_history(group, owner, 0, count, now)
        mine = sorted(i for i, (c, _, _) in model.pel.items() if c == consumer)
        if count:
            mine = mine[:count]
        assert [i for i, _ in got] == mine
        for stream_id, fields in got:
            assert fields == self.model[key].entries.get(stream_id)
            if fields is not None:
                model.pel[stream_id] = (consumer, now, model.pel[stream_id][2] + 1)

    @rule(key=KEYS, name=GROUPS, picks=st.lists(st.integers(0, 20), max_size=3))
    def ack(self, key: bytes, name: bytes, picks: list[int]) -> None:
        stream, group, model = self._group(key, name)
        if stream is None:
            return
        pending = sorted(model.pel)
        ids = [pending[p % len(pending)] for p in picks] if pending else [1]
        expected = {i for i in ids if i in model.pel}
        assert stream.drop_pending(group, ids) == len(expected)
        for stream_id in expected:
            del model.pel[stream_id]

    @rule(key=KEYS, name=GROUPS, consumer=CONSUMERS, pick=st.integers(0, 20), count=st.integers(0, 9))
    def claim(self, key: bytes, name: bytes, consumer: bytes, pick: int, count: int) -> None:
        stream, group, model = self._group(key, name)
        if stream is None or not model.pel:
            return
        stream_id = sorted(model.pel)[pick % len(model.pel)]
        now = self._tick()
        owner, _ = stream.create_consumer(group, consumer, now)
        model.consumers.add(consumer)
        stream.set_pending(group, owner, [(stream_id, now - 3, count)])
        model.pel[stream_id] = (consumer, now - 3, count)

    @rule(key=KEYS, name=GROUPS, consumer=CONSUMERS)
    def delete_consumer(self, key: bytes, name: bytes, consumer: bytes) -> None:
        stream, group, model = self._group(key, name)
        if stream is None or consumer not in group.consumers:
            return
        owned = [i for i, (c, _, _) in model.pel.items() if c == consumer]
        assert stream.delete_consumer(group, group.consumers[consumer]) == len(owned)
        for stream_id in owned:
            del model.pel[stream_id]
        model.consumers.discard(consumer)

    @rule(key=KEYS)
    def delete_key(self, key: bytes) -> None:
        if self.engine.delete(0, key):
            del self.model[key]

    # -- durability

    @rule()
    def sync(self) -> None:
        self.engine.sync(self.engine.flush())
        self.flushed = copy.deepcopy(self.model)
        if self.engine.checkpoint_due():
            self.engine.checkpoint()

    @rule()
    def checkpoint(self) -> None:
        self.engine.checkpoint()
        self.flushed = copy.deepcopy(self.model)

    @rule(entries=st.sampled_from([0, 1, 3, 100, 150]), max_bytes=st.sampled_from([0, 300, 4096]))
    def node_limits(self, entries: int, max_bytes: int) -> None:
        """CONFIG SET stream-node-max-entries / -bytes: listpacks made before keep their shape."""
        self.engine.set_type_settings("stream", node_settings(entries, max_bytes))

    def _listpacks(self) -> dict[bytes, list[object]]:
        """Per stream, each listpack (first and last ID, live, entries added, size, master fields), and the nodes."""
        shapes: dict[bytes, list[object]] = {}
        for key in self.model:
            stream = self._stream(key)
            assert stream is not None
            shapes[key] = [*stream.listpacks(), *stream.nodes()]
        return shapes

    @rule()
    def reopen(self) -> None:
        shapes = self._listpacks()
        self.engine.close()
        self.engine = self._open()
        self.flushed = copy.deepcopy(self.model)
        assert self._listpacks() == shapes

    @rule(flush_first=st.booleans())
    def crash(self, flush_first: bool) -> None:
        """Buffered journal records are lost; everything flushed and synced must come back, listpacks included."""
        shapes = None
        if flush_first:
            self.engine.sync(self.engine.flush())
            self.flushed = copy.deepcopy(self.model)
            shapes = self._listpacks()
        self.engine.abandon()
        self.engine = self._open()
        self.model = copy.deepcopy(self.flushed)
        if shapes is not None:
            assert self._listpacks() == shapes

    @invariant()
    def contents_match(self) -> None:
        assert sorted(self.engine.keys(0)) == sorted(self.model)
        for key, model in self.model.items():
            stream = self._stream(key)
            assert stream is not None
            entries = list(model.entries.items())
            assert stream.range(0, MAX_ID) == entries
            assert stream.range(0, MAX_ID, reverse=True) == entries[::-1]
            if entries:
                middle = entries[len(entries) // 2][0]
                assert stream.range(middle, MAX_ID, 2) == [e for e in entries if e[0] >= middle][:2]
            assert stream.length == len(entries)
            assert stream.first_id == (entries[0][0] if entries else 0)
            assert stream.last_id == model.last_id
            assert stream.entries_added == model.entries_added
            assert stream.max_deleted_id == model.max_deleted
            assert sorted(stream.groups) == sorted(model.groups)
            for name, group_model in model.groups.items():
                group = stream.groups[name]
                assert group.last_id == group_model.last_id
                assert group.entries_read == group_model.entries_read
                assert set(group.consumers) == group_model.consumers
                found = {p.id: (p.consumer.name, p.delivered, p.count) for p in group.iter_pending()}
                assert found == group_model.pel
                assert [p.id for p in group.iter_pending()] == sorted(group_model.pel)


TestStreamsVsModel = StreamsVsModel.TestCase
