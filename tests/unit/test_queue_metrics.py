"""The pieces /metrics reads queues with: a stream's next live entry after an ID (through deletions, trims and
node boundaries), a cold list's size, and the bounded worst-N heap."""

from __future__ import annotations

import random
from pathlib import Path

from respq.http.metrics import QueueScan, Worst
from respq.storage import Engine
from respq.types import REGISTRY
from respq.types.lists.model import RIGHT
from respq.types.streams.model import MAX_ID, MAXLEN, id_of, node_settings


def open_engine(path: Path) -> Engine:
    return Engine.open(str(path), types=REGISTRY, segment_size=4096, databases=1, log=lambda *_: None)


def test_next_live_id_matches_a_scan_through_deletions_and_trims(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    engine.set_type_settings("stream", node_settings(4, 4096))  # many small nodes
    stream = engine.create(0, b"s", "stream")
    ids = [id_of(1_000 + n // 3, n % 3) for n in range(60)]
    for stream_id in ids:
        stream.add(stream_id, [b"f", b"v"])
    rng = random.Random(7)
    stream.delete(rng.sample(ids[5:], 15))
    stream.trim(MAXLEN, 40, False, 0)  # cuts into the first node left, whose first ID is then gone
    live = [stream_id for stream_id, _ in stream.range(0, MAX_ID)]
    assert live and live[0] > ids[0]
    for after in [0, *ids, ids[-1] + 1]:
        expected = next((stream_id for stream_id in live if stream_id > after), None)
        assert stream.next_live_id(after) == expected, after
    engine.close()


def test_a_scan_reads_cold_lists_without_thawing_them(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    for n in range(3):
        engine.create(0, b"l%d" % n, "list").push(RIGHT, [b"x" * 100] * (n + 1))
    engine.close()
    engine = open_engine(tmp_path)  # reopened: lists load as cold catalog entries
    assert all(type(entry) is bytes for entry in engine.catalog[0].values())
    scan = QueueScan(engine, 1, per_queue=True)
    while not scan.step(1.0):
        pass
    assert {q.key: q.depth for q in scan.selected} == {b"l0": 1, b"l1": 2, b"l2": 3}
    assert all(q.disk_bytes >= 100 * q.depth for q in scan.selected)
    assert all(type(entry) is bytes for entry in engine.catalog[0].values())  # still cold
    assert scan.totals["list"].messages == 6
    assert all(q.oldest_seconds is not None and 0 <= q.oldest_seconds < 60 for q in scan.selected)  # push times
    engine.close()


def test_worst_keeps_the_largest_scores_in_order() -> None:
    worst = Worst(3)
    for score, item in [(5, "a"), (0, "zero"), (9, "b"), (1, "c"), (9, "d"), (7, "e")]:
        worst.offer(score, item)
    assert worst.items() == [(9, "b"), (9, "d"), (7, "e")]
    assert Worst(0).items() == []


def test_the_next_undelivered_entry_is_remembered_only_while_exact(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    stream = engine.create(0, b"s", "stream")
    ids = [id_of(1_000 + n, 0) for n in range(6)]
    for stream_id in ids:
        stream.add(stream_id, [b"f", b"v"])
    stream.set_group(b"g", ids[1], 2)  # delivered up to the second entry: the third is next

    def lag_ms() -> dict[tuple[int, bytes, bytes], int]:
        scan = QueueScan(engine, 1, next_ids=memo)
        while not scan.step(1.0):
            pass
        memo.clear()
        memo.update(scan.next_ids)
        return {where: found >> 64 for where, (_, found) in scan.next_ids.items()}

    memo: dict = {}
    assert lag_ms() == {(0, b"s", b"g"): 1_002}
    stream.add(id_of(2_000, 0), [b"f", b"v"])  # an addition leaves the next entry where it was
    assert lag_ms() == {(0, b"s", b"g"): 1_002}
    stream.delete([ids[2]])  # the next entry goes: the one after it is next
    assert lag_ms() == {(0, b"s", b"g"): 1_003}
    stream.set_group(b"g", ids[4], 5)
    assert lag_ms() == {(0, b"s", b"g"): 1_005}
    engine.close()
