"""StreamLog storage: sparse index, segment liveness, PEL size, persistence of group state."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from respq.storage import Engine
from respq.storage.check import check_directory
from respq.types import REGISTRY
from respq.types.streams.model import (
    MAX_ID,
    MAXLEN,
    MINID,
    NODE_ENTRIES,
    PEL_BYTES_PER_ENTRY,
    StreamLog,
    id_of,
    node_settings,
    radix_tree_nodes,
)


def _open(path: Path, **options: int) -> Engine:
    segment_size = options.pop("segment_size", 4096)
    return Engine.open(str(path), types=REGISTRY, segment_size=segment_size, log=lambda *_: None, **options)


def _fill(stream: StreamLog, count: int, start_ms: int = 1) -> None:
    for ms in range(start_ms, start_ms + count):
        stream.add(id_of(ms, 0), [b"field", b"value-%d" % ms])


def _segment_files(path: Path) -> list[str]:
    return [name for _, _, names in os.walk(path / "queues") for name in names]


def test_index_is_sparse_and_old_ids_are_read_from_disk(tmp_path: Path) -> None:
    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.create(0, b"s", "stream")
    _fill(stream, 5000)
    # One index node per NODE_ENTRIES entries, not one object per entry.
    assert stream.node_count == 5000 // NODE_ENTRIES
    assert stream.range(id_of(17, 0), id_of(19, 0)) == [
        (id_of(ms, 0), [b"field", b"value-%d" % ms]) for ms in (17, 18, 19)
    ]
    assert stream.range(0, MAX_ID, 2, reverse=True)[0][0] == id_of(5000, 0)
    engine.close()


def test_trimming_and_xdel_free_whole_segments(tmp_path: Path) -> None:
    engine = _open(tmp_path)
    stream = engine.create(0, b"s", "stream")
    _fill(stream, 600)
    files_before = len(stream.files())
    assert files_before > 3
    assert stream.trim(MAXLEN, 100, False, 0) == 500
    assert stream.length == 100
    engine.checkpoint()  # dead segments are unlinked once a durable checkpoint no longer needs them
    assert len(_segment_files(tmp_path)) < files_before
    assert len(stream.files()) < files_before
    remaining = [stream_id for stream_id, _ in stream.range(0, MAX_ID)]
    assert stream.delete(remaining[:-1]) == 99
    engine.checkpoint()
    assert len(stream.files()) == 1
    assert stream.range(0, MAX_ID) == [(id_of(600, 0), [b"field", b"value-600"])]
    engine.close()
    assert check_directory(str(tmp_path), REGISTRY) == []


def test_approximate_trim_removes_whole_nodes_only(tmp_path: Path) -> None:
    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.create(0, b"s", "stream")
    _fill(stream, 350)
    assert stream.trim(MAXLEN, 290, True, 10000) == 0
    assert stream.trim(MAXLEN, 200, True, 10000) == 100
    assert stream.trim(MINID, id_of(250, 0), True, 10000) == 100
    assert stream.length == 150
    assert stream.first_id == id_of(201, 0)
    engine.close()


def test_radix_tree_nodes_match_redis_counts() -> None:
    # Counts that redis-server 7.0 reports in XINFO STREAM for streams of n nodes starting at IDs 1, 101, 201, ...
    for nodes, expected in ((0, 1), (1, 2), (2, 6), (3, 8), (5, 14), (9, 23), (17, 42)):
        assert radix_tree_nodes([id_of(1 + 100 * i, 0) for i in range(nodes)]) == expected


def test_group_state_survives_crash_and_checkpoint(tmp_path: Path) -> None:
    engine = _open(tmp_path)
    stream = engine.create(0, b"s", "stream")
    _fill(stream, 10)
    group = stream.set_group(b"g", 0, -1)
    alice, _ = stream.create_consumer(group, b"alice", 1000)
    delivered = stream.read_group(group, alice, group.last_id, 4, False, 2000)
    assert [i for i, _ in delivered] == [id_of(ms, 0) for ms in (1, 2, 3, 4)]
    assert stream.drop_pending(group, [id_of(2, 0)]) == 1
    bob, _ = stream.create_consumer(group, b"bob", 3000)
    stream.set_pending(group, bob, [(id_of(3, 0), 3000, 5)])
    engine.sync(engine.flush())
    engine.abandon()

    engine = _open(tmp_path)
    stream = engine.get(0, b"s").value  # type: ignore[union-attr,assignment]
    group = stream.groups[b"g"]
    assert group.last_id == id_of(4, 0)
    assert group.entries_read == 4
    pending = {p.id: (p.consumer.name, p.delivered, p.count) for p in group.iter_pending()}
    assert pending == {
        id_of(1, 0): (b"alice", 2000, 1),
        id_of(3, 0): (b"bob", 3000, 5),
        id_of(4, 0): (b"alice", 2000, 1),
    }
    engine.close()  # checkpoint: the state is in the manifest, nothing to replay
    engine = _open(tmp_path)
    stream = engine.get(0, b"s").value  # type: ignore[union-attr,assignment]
    assert len(stream.groups[b"g"].pel) == 3
    assert stream.groups[b"g"].consumers[b"bob"].seen == 3000
    engine.close()
    assert check_directory(str(tmp_path), REGISTRY) == []


def test_acknowledging_keeps_each_consumers_pel_in_order_whichever_entries_go(tmp_path: Path) -> None:
    """Acks of a consumer's oldest entries cut its PEL's front in one step; others are removed one by one; an ack
    may span consumers. Each consumer's PEL stays exactly its pending IDs, in order."""
    engine = _open(tmp_path)
    stream = engine.create(0, b"s", "stream")
    _fill(stream, 20)
    group = stream.set_group(b"g", 0, -1)
    alice, _ = stream.create_consumer(group, b"alice", 1000)
    bob, _ = stream.create_consumer(group, b"bob", 1000)
    stream.read_group(group, alice, group.last_id, 10, False, 2000)  # 1..10
    stream.read_group(group, bob, group.last_id, 10, False, 2000)  # 11..20

    def owned(consumer):  # type: ignore[no-untyped-def]
        return [stream_id >> 64 for stream_id in consumer.pel]

    assert stream.drop_pending(group, [id_of(ms, 0) for ms in (3, 1, 2, 2)]) == 3  # alice's oldest, unordered
    assert owned(alice) == [4, 5, 6, 7, 8, 9, 10]
    assert stream.drop_pending(group, [id_of(ms, 0) for ms in (5, 7, 99)]) == 2  # from the middle
    assert owned(alice) == [4, 6, 8, 9, 10]
    assert stream.drop_pending(group, [id_of(ms, 0) for ms in (4, 11, 12, 15)]) == 4  # both consumers
    assert (owned(alice), owned(bob)) == ([6, 8, 9, 10], [13, 14, 16, 17, 18, 19, 20])
    stream.set_pending(group, bob, [(id_of(6, 0), 3000, 2), (id_of(8, 0), 3000, 2)])  # claimed from alice
    assert (owned(alice), owned(bob)) == ([9, 10], [6, 8, 13, 14, 16, 17, 18, 19, 20])
    assert set(group.pel) == {id_of(ms, 0) for ms in (6, 8, 9, 10, 13, 14, 16, 17, 18, 19, 20)}
    engine.close()


def test_pel_bytes_per_entry(tmp_path: Path) -> None:
    """The one structure that grows with data: measured here, documented in docs/storage.md, reported in INFO."""
    engine = _open(tmp_path, segment_size=4 << 20)
    stream = engine.create(0, b"s", "stream")
    count = 20000
    base = 1_700_000_000_000
    for i in range(count):
        stream.add(id_of(base + i // 3, i % 3), [b"f", b"v"])
    group = stream.set_group(b"g", 0, -1)
    consumers = [stream.create_consumer(group, b"c%d" % n, base)[0] for n in range(4)]
    # The ID ints are made inside the measured region: the PEL is what keeps them alive.
    ids = [(stream_id >> 64, stream_id & (1 << 64) - 1) for stream_id, _ in stream.range(0, MAX_ID)]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for index, (ms, seq) in enumerate(ids):
            group.set_pending_many(consumers[index % 4], [(id_of(ms, seq), base + index, 1)])
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_entry = (after - before) / count
    assert per_entry < 150
    assert abs(per_entry - PEL_BYTES_PER_ENTRY) < 25, per_entry
    assert engine.stats()["stream_pending_entries"] == count
    engine.close()


def _layout(stream: StreamLog) -> list[tuple[int, ...]]:
    return [(n.fid, n.start, n.end, n.total, n.live, n.first, n.last) for n in stream._nodes]


def _listpacks(stream: StreamLog) -> list[tuple[object, ...]]:
    """Each listpack's state, and the nodes."""
    return [*stream.listpacks(), *_layout(stream)]


def test_add_many_is_add_one_by_one(tmp_path: Path) -> None:
    """Pipelined XADDs go through add_many: the same nodes, segment bytes and recovery as single adds, across node
    boundaries and segment rolls in the middle of a batch, with one journal record per batch and file."""
    one, many = _open(tmp_path / "one"), _open(tmp_path / "many")
    single, batched = one.create(0, b"s", "stream"), many.create(0, b"s", "stream")
    ms = 1
    for size in (1, 7, 16, 150, 40, 3, 260):
        ids = [id_of(ms + n, n % 3) for n in range(size)]
        fields = [[b"field", b"v" * (n % 90), b"n", b"%d" % n] for n in range(size)]
        ms += size
        for stream_id, entry in zip(ids, fields, strict=True):
            single.add(stream_id, entry)
        assert batched.add_many(ids, fields) == size
        assert _layout(batched) == _layout(single)
        assert _listpacks(batched) == _listpacks(single)
    assert len(single.files()) > 3  # the batches crossed segment rolls
    for name in ("length", "first_id", "last_id", "entries_added"):
        assert getattr(batched, name) == getattr(single, name), name
    assert batched.range(0, MAX_ID) == single.range(0, MAX_ID)
    one.flush()
    many.flush()
    segment_bytes = [
        [file.read_bytes() for file in sorted((path / "queues").rglob("*.seg"))]
        for path in (tmp_path / "one", tmp_path / "many")
    ]
    assert segment_bytes[0] == segment_bytes[1]
    journal_sizes = [
        sum(file.stat().st_size for file in (path / "journal").iterdir())
        for path in (tmp_path / "one", tmp_path / "many")
    ]
    assert journal_sizes[1] < journal_sizes[0] / 10  # where the entries are, not the entries
    expected = single.range(0, MAX_ID)
    one.close()
    many.close()
    reopened = _open(tmp_path / "many")  # recovery replays the journal records add_many wrote
    stream = reopened.get(0, b"s")
    assert isinstance(stream, StreamLog)
    assert stream.range(0, MAX_ID) == expected
    reopened.close()
    assert check_directory(str(tmp_path / "many"), REGISTRY) == []


def test_compact_ids_survive_any_distance_from_their_node_and_every_way_of_reading(tmp_path: Path) -> None:
    """IDs are stored relative to their node's first: near ones in two bytes, far ones and big sequence numbers as
    longer varints; reads forward, backward, by ID and after a crash or a checkpoint all give them back."""
    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.create(0, b"s", "stream")
    ids = [id_of(5, 0), id_of(5, 1), id_of(5, 300), id_of(131, 0), id_of(10**12, (1 << 64) - 1), id_of(10**13, 7)]
    ids += [id_of(10**13 + ms, ms % 200) for ms in range(1, 250)]  # node boundaries
    expected = [(stream_id, [b"f", b"%d" % index]) for index, stream_id in enumerate(ids)]
    for stream_id, fields in expected[:3]:
        stream.add(stream_id, fields)
    stream.add_many(ids[3:], [fields for _, fields in expected[3:]])

    def check(stream: StreamLog) -> None:
        assert stream.range(0, MAX_ID) == expected
        assert stream.range(0, MAX_ID, reverse=True) == expected[::-1]
        assert all(stream.get(stream_id) == fields for stream_id, fields in expected[::37])
        assert stream.node_count == 3

    check(stream)
    engine.flush()
    file_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(tmp_path / "queues") for f in names)
    assert file_bytes < 24 + len(ids) * 24  # most records: 13 framing, 2 for the ID, 2 + 1 + 3 for the fields
    engine.abandon()
    engine = _open(tmp_path, segment_size=1 << 20)
    check(engine.get(0, b"s"))  # type: ignore[arg-type]
    stream = engine.get(0, b"s")
    assert isinstance(stream, StreamLog)
    assert stream.delete([ids[0], ids[200]]) == 2
    del expected[200], expected[0]
    engine.checkpoint()
    engine.close()
    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.get(0, b"s")
    assert isinstance(stream, StreamLog)
    assert stream.range(0, MAX_ID) == expected
    engine.close()
    assert check_directory(str(tmp_path), REGISTRY) == []


def test_nodes_and_journals_written_before_compact_records_are_still_read(tmp_path: Path) -> None:
    """A data directory from before: nodes of REC_STREAM_ENTRY records (whole IDs, u32 lengths) in the manifest,
    and OP_XADD journal records holding the entries themselves. Both read back; new entries start a compact node."""
    from respq.storage import framing, journal
    from respq.types.streams import model as streamlog

    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.create(0, b"s", "stream")
    store = stream.store
    old = [(id_of(ms, 0), [b"f", b"old %d" % ms]) for ms in range(1, 6)]
    payloads = [streamlog._pack_id(i) + journal.encode_values(fields) for i, fields in old]
    fid = stream._fid = store.create(stream.qid)
    data = framing.frame_values(streamlog.REC_STREAM_ENTRY, payloads)
    offset = store.append(fid, data)
    stream._nodes.append(streamlog.Node(fid, offset, offset + len(data), 5, 5, old[0][0], old[-1][0], compact=False))
    stream._lp.extend((1, 0, 5, 0, 5, 5, streamlog.LP_UNKNOWN))  # a listpack of unknown size
    stream._lp_fields.append(None)
    stream._keys.append(old[0][0])
    stream.length = stream.entries_added = 5
    stream.first_id, stream.last_id = old[0][0], old[-1][0]
    engine.checkpoint()  # the manifest names a node of the old records
    journaled = (id_of(6, 0), [b"f", b"journaled whole"])
    entry = streamlog.QID.pack(stream.qid) + streamlog._pack_id(journaled[0]) + journal.encode_values(journaled[1])
    engine.log(streamlog.OP_XADD, entry)
    engine.flush()
    engine.abandon()
    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.get(0, b"s")  # type: ignore[assignment]
    assert isinstance(stream, StreamLog)
    assert stream.range(0, MAX_ID) == [*old, journaled]
    assert [node.compact for node in stream._nodes] == [False, True]
    stream.add(id_of(7, 0), [b"f", b"new"])
    assert stream.range(0, MAX_ID, reverse=True)[:3] == [(id_of(7, 0), [b"f", b"new"]), journaled, old[-1]]
    engine.checkpoint()
    engine.close()
    engine = _open(tmp_path, segment_size=1 << 20)
    assert [node.compact for node in engine.get(0, b"s")._nodes] == [False, True]  # type: ignore[union-attr]
    engine.close()


def test_a_crash_of_an_earlier_build_leaves_stale_copies_that_replay_of_its_journal_replaces(tmp_path: Path) -> None:
    """An earlier build wrote each entry to its segment and, whole, to the journal (OP_XADD), and recovery cut the
    segment back to its checkpointed size before replaying. Its files after a crash hold those copies past that
    size: replay of such a journal cuts them rather than finding entries there (or failing on what is left)."""
    from respq.storage import framing, journal
    from respq.types.streams import model as streamlog

    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.create(0, b"s", "stream")
    stream.add(id_of(1, 0), [b"f", b"a" * 50])
    engine.checkpoint()
    store, fid = stream.store, stream._fid
    later = [(id_of(ms, 0), [b"f", b"b"]) for ms in range(2, 22)]
    for entry_id, fields in later:
        payload = streamlog._pack_id(entry_id) + journal.encode_values(fields)
        store.append(fid, framing.frame_values(streamlog.REC_STREAM_ENTRY, [payload]))  # the earlier build's copy
        engine.log(streamlog.OP_XADD, streamlog.QID.pack(stream.qid) + payload)
    engine.flush()
    engine.abandon()  # killed: the copies are on disk past the checkpointed size, the journal names the entries
    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.get(0, b"s")  # type: ignore[assignment]
    assert stream.range(0, MAX_ID) == [(id_of(1, 0), [b"f", b"a" * 50]), *later]
    engine.close()
    engine = _open(tmp_path, segment_size=1 << 20)
    assert len(engine.get(0, b"s").range(0, MAX_ID)) == 21  # type: ignore[union-attr]
    engine.close()
    assert check_directory(str(tmp_path), REGISTRY) == []


def test_entries_added_after_replaying_an_earlier_builds_journal_survive_the_next_crash(tmp_path: Path) -> None:
    """The stale copies are cut once: the recovery that replays the earlier build's journal retires it with a
    checkpoint, so a second recovery cannot cut entries appended in between (they lie where the copies were)."""
    from respq.storage import framing, journal
    from respq.types.streams import model as streamlog

    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.create(0, b"s", "stream")
    stream.add(id_of(1, 0), [b"f", b"a" * 50])
    engine.checkpoint()
    store, fid = stream.store, stream._fid
    for ms in range(2, 22):
        payload = streamlog._pack_id(id_of(ms, 0)) + journal.encode_values([b"f", b"b"])
        store.append(fid, framing.frame_values(streamlog.REC_STREAM_ENTRY, [payload]))  # the earlier build's copy
        engine.log(streamlog.OP_XADD, streamlog.QID.pack(stream.qid) + payload)
    engine.flush()
    engine.abandon()
    engine = _open(tmp_path, segment_size=1 << 20)
    engine.get(0, b"s").add(id_of(30, 0), [b"f", b"after the upgrade"])  # type: ignore[union-attr]
    engine.sync(engine.flush())
    engine.abandon()
    engine = _open(tmp_path, segment_size=1 << 20)
    assert [i >> 64 for i, _ in engine.get(0, b"s").range(0, MAX_ID)] == [*range(1, 22), 30]  # type: ignore[union-attr]
    engine.close()


def _grow(stream: StreamLog, ms: int, count: int, size: int) -> int:
    for n in range(count):
        stream.add(id_of(ms + n, n % 2), [b"f", b"v" * (size + n % 5), b"n", b"%d" % n])
    return ms + count


def test_listpacks_survive_restarts_and_crashes(tmp_path: Path) -> None:
    """Where listpacks start was decided with the directives of the time, which the journal records: a restart
    (clean, or a crash that replays the journal and finds unnoted entries) decides the same again, with the limits
    replay meets, including after the newest listpack went with XDEL (the next entry joins the one before)."""
    engine = _open(tmp_path)  # 4 KiB segment files: entries of a few hundred bytes roll them often
    stream = engine.create(0, b"s", "stream")
    ms = _grow(stream, 1, 60, 300)  # 4096-byte listpacks of ~12 entries
    engine.set_type_settings("stream", node_settings(250, 0))  # listpacks of 250 entries, however many bytes
    ms = _grow(stream, ms, 400, 20)
    engine.checkpoint()
    engine.set_type_settings("stream", node_settings(3, 4096))
    ms = _grow(stream, ms, 10, 100)
    tail = [stream_id for stream_id, _ in stream.range(0, MAX_ID)][-1:]
    assert stream.delete(tail) == 1  # the newest listpack held one entry: it goes
    engine.set_type_settings("stream", node_settings(100, 4096))
    ms = _grow(stream, ms, 5, 10)  # these join the listpack before it (it held 3 of 3; now the limit is 100)
    shape = _listpacks(stream)
    assert [pack[3] for pack in stream.listpacks()][-3:] == [3, 3, 8]
    engine.sync(engine.flush())
    engine.abandon()  # a crash: the journal since the checkpoint is replayed, the newest entries found unnoted
    engine = _open(tmp_path)
    stream = engine.get(0, b"s")  # type: ignore[assignment]
    assert _listpacks(stream) == shape
    engine.close()  # a clean shutdown: all of it from the manifest
    engine = _open(tmp_path)
    stream = engine.get(0, b"s")  # type: ignore[assignment]
    assert _listpacks(stream) == shape
    engine.close()
    assert check_directory(str(tmp_path), REGISTRY) == []


_DUMP = StreamLog.dump


def _dump_as_earlier_builds(stream: StreamLog) -> bytes:
    """The stream state as builds before listpacks wrote it: no flags, nor the listpacks after the groups."""
    from respq.types.streams import model as streamlog

    dumped = _DUMP(stream)
    head = list(streamlog.STATE_HEAD.unpack_from(dumped, 0))
    head[8] = 0
    listpacks = stream._dump_listpacks()
    assert dumped.endswith(listpacks)
    return streamlog.STATE_HEAD.pack(*head) + dumped[streamlog.STATE_HEAD.size : -len(listpacks)]


def test_streams_of_earlier_builds_open_and_trim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest written before listpacks (each node then counted as one): it loads with each node as a listpack
    whose size is unknown, so no entry joins it; new entries start listpacks of their own, and trimming works."""
    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.create(0, b"s", "stream")
    engine.set_type_settings("stream", node_settings(100, 0))  # nodes of 100 entries, as earlier builds made them
    _grow(stream, 1, 250, 50)
    stream.delete([id_of(3, 0)])
    monkeypatch.setattr(StreamLog, "dump", _dump_as_earlier_builds)
    engine.close()
    monkeypatch.undo()
    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.get(0, b"s")  # type: ignore[assignment]
    assert stream.length == 249
    assert [pack[2:5] for pack in stream.listpacks()] == [(99, 100, None), (100, 100, None), (50, 50, None)]
    _grow(stream, 251, 30, 50)  # the last node is closed: a listpack of 4096 bytes starts
    assert [pack[3] for pack in stream.listpacks()] == [100, 100, 50, 30]
    assert stream.trim(MAXLEN, 100, True, 0) == 99  # whole listpacks: the next would leave fewer than 100
    assert stream.trim(MAXLEN, 50, True, 0) == 100
    assert stream.length == 80
    engine.close()
    engine = _open(tmp_path, segment_size=1 << 20)
    assert engine.get(0, b"s").length == 80  # type: ignore[union-attr]
    engine.close()
    assert check_directory(str(tmp_path), REGISTRY) == []


def test_listpacks_of_entries_found_after_a_crash_survive_the_next_crash(tmp_path: Path) -> None:
    """Entries appended with the journal clean are found at the end of the file after a crash and named in the next
    journal file, which a second crash (before any checkpoint) may leave empty: replay carries the limits from one
    file to the next, so they are placed under the limits of their time again."""
    engine = _open(tmp_path, segment_size=1 << 20)
    stream = engine.create(0, b"s", "stream")
    engine.checkpoint()
    engine.set_type_settings("stream", node_settings(3, 0))
    _grow(stream, 1, 1, 10)  # journals the limits and where the entry is
    engine.sync(engine.flush())
    _grow(stream, 2, 9, 10)  # the journal is clean: these are found at the end of the file, unnoted
    engine.sync(engine.flush())
    shape = _listpacks(stream)
    assert [pack[3] for pack in stream.listpacks()] == [3, 3, 3, 1]
    for _ in range(2):
        engine.abandon()
        engine = _open(tmp_path, segment_size=1 << 20)
        stream = engine.get(0, b"s")  # type: ignore[assignment]
        assert _listpacks(stream) == shape
    # Limits journaled before a checkpoint hold after it: the manifest says what replay starts with.
    engine.set_type_settings("stream", node_settings(5, 0))
    _grow(stream, 20, 1, 10)
    engine.checkpoint()
    engine.sync(engine.flush())
    _grow(stream, 21, 9, 10)  # no record needed: the limits are those journaled
    engine.sync(engine.flush())
    shape = _listpacks(stream)
    assert [pack[3] for pack in stream.listpacks()][-3:] == [5, 5, 1]
    engine.abandon()
    engine = _open(tmp_path, segment_size=1 << 20)
    assert _listpacks(engine.get(0, b"s")) == shape  # type: ignore[arg-type]
    engine.close()


def test_a_copied_stream_has_listpacks_and_keeps_them(tmp_path: Path) -> None:
    """COPY places the copied entries in listpacks as XADD would, under the settings in force (journaled first), so
    the copy trims by whole listpacks and replay of its records after a crash makes the same ones."""
    engine = _open(tmp_path)
    stream = engine.create(0, b"s", "stream")
    _grow(stream, 1, 30, 10)
    engine.checkpoint()
    engine.set_type_settings("stream", node_settings(4, 0))
    copied = engine.copy(0, b"s", 0, b"t")
    assert [pack[3] for pack in copied.listpacks()] == [4] * 7 + [2]  # type: ignore[attr-defined]
    shape = _listpacks(copied)  # type: ignore[arg-type]
    engine.sync(engine.flush())
    engine.abandon()
    engine = _open(tmp_path)
    copied = engine.get(0, b"t")
    assert _listpacks(copied) == shape  # type: ignore[arg-type]
    assert copied.trim(MAXLEN, 10, True, 0) == 20  # type: ignore[union-attr]
    engine.close()
    assert check_directory(str(tmp_path), REGISTRY) == []


def test_type_settings_are_generic_in_the_manifest_and_journal(tmp_path: Path) -> None:
    """The engine keeps settings as opaque payloads by type code: a manifest names only those not the defaults
    (one at the defaults reads as a directory of format 1 does), and a payload for a type without settings, or of a
    type this build does not know, is refused."""
    from respq.storage import manifest
    from respq.storage.errors import StorageError
    from respq.types.streams.model import STREAM

    engine = _open(tmp_path)
    engine.checkpoint()
    assert manifest.read(engine.io, str(tmp_path)).settings == {}  # type: ignore[union-attr]
    engine.set_type_settings("stream", node_settings(7, 300))
    stream = engine.create(0, b"s", "stream")
    _grow(stream, 1, 1, 10)  # journals the settings
    engine.checkpoint()
    state = manifest.read(engine.io, str(tmp_path))
    assert state is not None and state.settings == {STREAM.code: node_settings(7, 300)}
    with pytest.raises(ValueError):
        engine.set_type_settings("list", b"")
    engine.close()
    state.settings[99] = b"x"
    state.settings[STREAM.code] = b"short"
    manifest.write(engine.io, str(tmp_path), manifest.encode(state))
    assert {
        "settings of key type 99, which this build does not support",
        "stream settings: malformed (stream settings of 5 bytes, not 16)",
    } <= set(check_directory(str(tmp_path), REGISTRY))  # with the journal gap this older manifest leaves
    with pytest.raises(StorageError):
        _open(tmp_path)
