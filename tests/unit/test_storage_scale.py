"""Memory and descriptor bounds: backlogs live on disk, not in Python objects; descriptors stay capped."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

from respq.storage import Engine
from respq.types import REGISTRY
from respq.types.lists.model import LEFT, RIGHT


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_backlog_is_not_held_in_python_memory(tmp_path: Path) -> None:
    messages, size = 200_000, 1024
    value = b"m" * size
    engine = Engine.open(str(tmp_path), types=REGISTRY, log=lambda *_: None)
    log = engine.create(0, b"backlog", "list")
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        batch = [value] * 4  # LPUSH with several values, as producers batching their writes do
        for i in range(messages // len(batch)):
            log.push(LEFT, batch)
            if i % 256 == 255:  # one flush + sync per busy event-loop pass
                engine.sync(engine.flush())
                if engine.checkpoint_due():
                    engine.checkpoint()
        engine.sync(engine.flush())
        held = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert len(log) == messages
    assert held < messages * size * 0.05, held
    assert log.pop(RIGHT, 2) == [value, value]
    engine.close()


# Python objects of a list holding one value still in the journal (its key, catalog slot, list, chunk, journal
# run): 620 bytes per queue on CPython 3.11, measured with 10k queues.
IDLE_QUEUE_BYTES = 660


def test_an_idle_queue_costs_a_few_hundred_bytes_of_python_objects(tmp_path: Path) -> None:
    queues = 10_000
    engine = Engine.open(str(tmp_path), types=REGISTRY, log=lambda *_: None)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for q in range(queues):
            engine.create(0, b"idle:%d" % q, "list").push(RIGHT, [b"m" * 100])
            if q % 256 == 255:
                engine.flush()
        engine.flush()
        held = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert engine.dbsize(0) == queues
    assert held / queues < IDLE_QUEUE_BYTES, held / queues
    assert engine.get(0, b"idle:7").value.pop(LEFT, 1) == [b"m" * 100]  # type: ignore[union-attr]
    engine.close()


def test_thousand_queues_under_a_descriptor_cap(tmp_path: Path) -> None:
    cap = 32
    queues = 1000
    before = open_fds()
    engine = Engine.open(str(tmp_path), types=REGISTRY, max_open_files=cap, segment_size=4096, log=lambda *_: None)
    peak = 0
    for q in range(queues):
        engine.create(0, b"queue:%d" % q, "list").push(RIGHT, [b"%d:%d" % (q, i) for i in range(3)])
        peak = max(peak, open_fds())
    engine.sync(engine.flush())
    engine.close()
    engine = Engine.open(str(tmp_path), types=REGISTRY, max_open_files=cap, segment_size=4096, log=lambda *_: None)
    assert engine.dbsize(0) == queues and engine.stats()["queues"] == queues
    for q in range(queues):
        log = engine.get(0, b"queue:%d" % q).value  # type: ignore[union-attr]
        assert log.pop(LEFT, 2) == [b"%d:0" % q, b"%d:1" % q]
        assert log.pop(RIGHT, 1) == [b"%d:2" % q]
        engine.delete(0, b"queue:%d" % q)
        peak = max(peak, open_fds())
    assert engine.stats()["open_fds"] <= cap + 3  # type: ignore[operator]
    engine.checkpoint()
    engine.close()
    assert peak <= before + cap + 4, (peak, before)
    assert not any((tmp_path / "queues").iterdir())
