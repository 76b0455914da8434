"""The memory store behind the storage port: lists and streams whose values span many 8 KiB segments (and values
larger than one) read back as a plain Python model says, segments are freed once nothing in them is live, and
nothing touches the file system."""

from __future__ import annotations

import random

import pytest

from respq.storage.memory import MEMORY_SEGMENT_SIZE, MemoryEngine
from respq.types import REGISTRY
from respq.types.lists.model import LEFT, RIGHT, ListLog
from respq.types.streams.model import StreamLog


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> MemoryEngine:
    def no_files(*args: object, **kwargs: object) -> None:
        raise AssertionError("the memory store opened a file")

    monkeypatch.setattr("builtins.open", no_files)
    monkeypatch.setattr("os.open", no_files)
    return MemoryEngine.open(databases=2, types=REGISTRY)


def _value(rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 10, 100, 100, 1000, 3000, MEMORY_SEGMENT_SIZE + 100])
    return bytes([rng.randrange(256)]) * size + rng.randbytes(4)


@pytest.mark.parametrize("seed", range(4))
def test_list_against_model(engine: MemoryEngine, seed: int) -> None:
    rng = random.Random(seed)
    log = engine.create(0, b"q", "list")
    assert isinstance(log, ListLog)
    model: list[bytes] = []
    for _ in range(1500):
        op = rng.random()
        if op < 0.45:
            values = [_value(rng) for _ in range(rng.randint(1, 5))]
            if rng.random() < 0.5:
                log.push(LEFT, values)
                model[:0] = values[::-1]
            else:
                log.push(RIGHT, values)
                model += values
        elif op < 0.75:
            count = rng.randint(1, 4)
            if rng.random() < 0.5:
                assert log.pop(LEFT, count) == model[:count]
                del model[:count]
            else:
                taken = model[-count:][::-1] if model else []
                assert log.pop(RIGHT, count) == taken
                del model[len(model) - len(taken) :]
        elif op < 0.8 and model:
            index = rng.randrange(len(model))
            value = _value(rng)
            assert log.set(index, value)
            model[index] = value
        elif op < 0.85 and model:
            pivot = rng.choice(model)
            value = _value(rng)
            assert log.insert(pivot, value, True) == len(model) + 1
            model.insert(model.index(pivot), value)
        elif op < 0.88 and model:
            target = rng.choice(model)
            removed = log.remove(0, target)
            assert removed == model.count(target)
            model = [value for value in model if value != target]
        elif op < 0.9 and model:
            start, stop = rng.randint(-3, 3), rng.randint(-3, len(model))
            log.trim(start, stop)
            model = model[slice(*_bounds(len(model), start, stop))]
        else:
            start, stop = rng.randint(-5, 5), rng.randint(-5, 50)
            assert list(log.range(start, stop)) == model[slice(*_bounds(len(model), start, stop))]
            with log.snapshot(0, -1) as snapshot:
                assert list(snapshot) == model
        assert len(log) == len(model)
    assert list(log) == model
    # Only segments something in the list still refers to stay (bytes consumed from the front of one remain).
    assert set(engine.store.files) == log.files()
    engine.delete(0, b"q")
    assert engine.store.files == {} and engine.store.live_bytes == 0


def _bounds(length: int, start: int, stop: int) -> tuple[int, int]:
    start = max(0, start + length) if start < 0 else start
    stop = stop + length if stop < 0 else stop
    return start, max(start, min(stop, length - 1) + 1)


def test_consumed_queue_frees_its_segments(engine: MemoryEngine) -> None:
    """A queue that producers and a consumer pass through holds about a segment, not what went through it."""
    log = engine.create(0, b"q", "list")
    value = b"x" * 100
    for _ in range(2000):
        log.push(RIGHT, [value] * 10)  # type: ignore[union-attr]
        assert log.pop(LEFT, 10) == [value] * 10  # type: ignore[union-attr]
    assert engine.store.live_bytes <= 2 * MEMORY_SEGMENT_SIZE
    assert engine.used_bytes() == engine.store.live_bytes


def test_stream_across_segments(engine: MemoryEngine) -> None:
    rng = random.Random(7)
    stream = engine.create(0, b"s", "stream")
    assert isinstance(stream, StreamLog)
    model: dict[int, list[bytes]] = {}
    next_id = 1 << 64
    for _ in range(600):
        fields = [b"f", _value(rng)]
        stream.add(next_id, fields)
        model[next_id] = fields
        next_id += rng.randint(1, 3) << 64
    doomed = rng.sample(sorted(model), 100)
    assert stream.delete(doomed) == 100
    for stream_id in doomed:
        del model[stream_id]
    assert stream.range(0, (1 << 128) - 1) == sorted(model.items())
    assert len(engine.store.files) > 10
    engine.flushall()
    assert engine.store.files == {} and engine.dbsize(0) == 0
