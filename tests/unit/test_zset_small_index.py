"""Small sorted sets keep their order in a SmallIndex (two columns, no tuple per member) and move to a SortedList as
they grow: the same order, ranks and ranges either way, and less memory per member while small."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

from sortedcontainers import SortedList

from respq.storage import Engine
from respq.types import REGISTRY
from respq.types.zsets.model import SMALL_ZSET, SmallIndex, ZSetValue, new_zset


def test_a_small_index_answers_as_a_sorted_list() -> None:
    rng = random.Random(7)
    small, sorted_list = SmallIndex(), SortedList()
    members = [b"", b"a", b"ab", b"b", b"\xff", b"m%d" % 5, b"id-" + b"9" * 33]
    scores = [0.0, -1.5, 1.0, 2.0, float("inf"), float("-inf"), 1e300]
    for _ in range(3000):
        roll = rng.random()
        if roll < 0.45 or not sorted_list:
            item = (rng.choice(scores), rng.choice(members) + b"%d" % rng.randrange(20))
            if item[1] in {m for _, m in sorted_list}:
                continue
            small.add(item)
            sorted_list.add(item)
        elif roll < 0.7:
            item = sorted_list[rng.randrange(len(sorted_list))]
            small.remove(item)
            sorted_list.remove(item)
        elif roll < 0.8:
            rank = rng.choice((0, -1))
            assert small.pop(rank) == sorted_list.pop(rank)
        for key in ((rng.choice(scores),), (rng.choice(scores), rng.choice(members))):
            assert small.bisect_left(key) == sorted_list.bisect_left(key)
        start, stop, reverse = rng.randrange(-2, 10), rng.choice((None, rng.randrange(12))), rng.random() < 0.5
        if start >= 0:
            assert list(small.islice(start, stop, reverse)) == list(sorted_list.islice(start, stop, reverse))
        assert list(small) == list(sorted_list) and list(reversed(small)) == list(reversed(sorted_list))
        if sorted_list:
            assert small[-1] == sorted_list[-1] and small[0] == sorted_list[0]


def _per_member(tmp_path: Path, members: int, keys: int) -> tuple[float, list[ZSetValue]]:
    engine = Engine.open(str(tmp_path / "data"), types=REGISTRY, log=lambda _level, _message: None)
    rng = random.Random(1)
    pairs = [[(b"%036d" % (k * members + i), rng.random() * 1e9) for i in range(members)] for k in range(keys)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    values = [new_zset(engine, 0, b"z:%d" % k, pairs[k], 128, 64) for k in range(keys)]
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    engine.close()
    return grown / (keys * members), values


def test_a_small_sorted_set_holds_its_members_in_two_columns(tmp_path: Path) -> None:
    """100-member sorted sets of 36-byte ids, as traced: 216 bytes per member with a SortedList of tuples, 143 now."""
    per_member, values = _per_member(tmp_path, 100, 300)
    assert per_member < 160, f"{per_member:.0f} bytes per member"
    assert all(type(value.index) is SmallIndex for value in values)


def test_a_growing_sorted_set_moves_to_a_sorted_list_past_the_small_size(tmp_path: Path) -> None:
    engine = Engine.open(str(tmp_path / "data"), types=REGISTRY, log=lambda _level, _message: None)
    value = new_zset(engine, 0, b"z", [(b"m%03d" % i, float(-i)) for i in range(SMALL_ZSET)], 1000, 64)
    assert type(value.index) is SmallIndex
    value.set_scores([(b"last", 0.5)], 1000, 64)
    assert type(value.index) is SortedList
    assert [m for _, m in value.index][-2:] == [b"m000", b"last"]
    assert value.rank(b"m000") == SMALL_ZSET - 1 and value.by_rank(0, 1) == [(float(1 - SMALL_ZSET), b"m127")]
    engine.close()
