"""The kill -9 campaign's entries for sets and sorted sets: their steps, and how to read a key of each back whole.

As for strings and hashes (tests/crash/kv_types.py), each step picks one of the client's keys whose type allows the
command, queues it with the reply and the state the model expects, and returns False when no key fits. Only
commands whose effect the client can predict before the reply are sent: SPOP takes the whole set (or its only
member), the pops of sorted sets take from the ends. The multi-key writes (SMOVE, the STORE forms) are what the
prefix check of tests/crash/kv_model.py proves all or nothing.

A set is modelled as its members sorted; a sorted set as its (member, score) pairs in Redis's order (score, then
member bytes). Scores are halves and small integers, and weights positive integers, so every sum is exact in a
double and no -0 appears: the model's floats are the server's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.crash.kv_model import Item, KvClient, KvType

SET, ZSET = b"set", b"zset"
# Integers (an intset while a set holds only them), words, an id as the frameworks use, and one too long for a
# listpack sorted set (it makes a skiplist).
SET_POOL = (b"1", b"2", b"-7", b"10", b"300", b"m", b"n", b"job-" + b"7" * 32)
ZSET_POOL = (b"a", b"b", b"c", b"d", b"e", b"f", b"-3", b"job-" + b"7" * 32)
LONG_MEMBER = b"x" * 70
SCORES = (0.0, 1.0, 2.0, 2.5, -1.0, 7.0, 0.5)
INCREMENTS = (1.0, 0.5, -2.0, 3.0)


class Unordered:
    """A reply whose order the server chooses (SPOP of a hashtable set): equal to a list holding the same items."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = sorted(items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, list) and sorted(other) == self.items

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Unordered({self.items!r})"


def _type(item: Item | None) -> bytes | None:
    return None if item is None else item.type


def _expire(client: KvClient, key: bytes, now: int) -> tuple[int, int] | None:
    item = client.live(key, now)
    return None if item is None else item.expire


def _keys(client: KvClient, now: int, types: tuple[bytes | None, ...], count: int) -> list[bytes] | None:
    """``count`` distinct usable keys holding one of ``types`` (None in it: or absent), or None if there are fewer."""
    keys = [k for k in client.usable(now) if _type(client.live(k, now)) in types]
    return client.rng.sample(keys, count) if len(keys) >= count else None


# -- sets


def _members(client: KvClient, key: bytes, now: int) -> set[bytes]:
    item = client.live(key, now)
    return set() if item is None or item.type != SET else set(item.value)  # type: ignore[arg-type]


def _set(members: set[bytes], expire: tuple[int, int] | None) -> Item | None:
    return Item(SET, tuple(sorted(members)), expire) if members else None


def step_sadd(client: KvClient, now: int) -> bool:
    key = client.pick(now, (SET, None))
    if key is None:
        return False
    members = _members(client, key, now)
    given = client.rng.sample(SET_POOL, client.rng.randint(1, 4))
    if client.rng.random() < 0.3:
        given.append(client.value())  # a member never seen before, so sets keep changing
    new = set(given) - members
    client.queue(("SADD", key, *given), len(new), {key: _set(members | new, _expire(client, key, now))}, now)
    return True


def step_srem(client: KvClient, now: int) -> bool:
    """SREM of a member or two (sometimes all, the key going with them) and one that is not there."""
    key = client.pick(now, (SET,))
    if key is None:
        return False
    members = _members(client, key, now)
    gone = client.rng.sample(sorted(members), min(len(members), client.rng.choice((1, 1, 2, len(members)))))
    left = members - set(gone)
    client.queue(("SREM", key, *gone, b"missing"), len(gone), {key: _set(left, _expire(client, key, now))}, now)
    return True


def step_spop(client: KvClient, now: int) -> bool:
    """SPOP with a count at least the set's size (all of it, the key goes), or without one of a single member."""
    key = client.pick(now, (SET,))
    if key is None:
        return False
    members = _members(client, key, now)
    if len(members) == 1 and client.rng.random() < 0.5:
        client.queue(("SPOP", key), next(iter(members)), {key: None}, now)
    else:
        count = len(members) + client.rng.choice((0, 0, 3))
        client.queue(("SPOP", key, count), Unordered(members), {key: None}, now)
    return True


def step_smove(client: KvClient, now: int) -> bool:
    """SMOVE of a member (sometimes one the source lacks: nothing moves) to another set or a new key."""
    src = client.pick(now, (SET,))
    dst = client.pick(now, (SET, None))
    if src is None or dst is None or src == dst:
        return False
    source, target = _members(client, src, now), _members(client, dst, now)
    member = client.rng.choice(sorted(source)) if client.rng.random() < 0.85 else b"missing"
    if member not in source:
        client.queue(("SMOVE", src, dst, member), 0, {}, now)
        return True
    changes = {
        src: _set(source - {member}, _expire(client, src, now)),
        dst: _set(target | {member}, _expire(client, dst, now)),
    }
    client.queue(("SMOVE", src, dst, member), 1, changes, now)
    return True


def step_sstore(client: KvClient, now: int) -> bool:
    """SINTERSTORE, SUNIONSTORE or SDIFFSTORE over 1-3 sets (or missing keys) onto any key, a source included."""
    sources = _keys(client, now, (SET, None), client.rng.randint(1, 3))
    dst = client.pick(now)
    if sources is None or dst is None:
        return False
    held = [_members(client, key, now) for key in sources]
    name = client.rng.choice(("SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"))
    if name == "SINTERSTORE":
        result = set.intersection(*held)
    elif name == "SUNIONSTORE":
        result = set.union(*held)
    else:
        result = held[0].difference(*held[1:])
    client.queue((name, dst, *sources), len(result), {dst: _set(result, None)}, now)
    return True


def step_sread(client: KvClient, now: int) -> bool:
    key = client.pick(now, (SET, None))
    if key is None:
        return False
    member = client.rng.choice(SET_POOL)
    client.queue(("SISMEMBER", key, member), int(member in _members(client, key, now)), {}, now)
    return True


SETS = KvType(
    "sets",
    SET,
    read=lambda key: ("SMEMBERS", key),
    decode=lambda reply: tuple(sorted(reply)),
    steps=(
        (2.5, step_sadd),
        (1.0, step_srem),
        (0.5, step_spop),
        (1.0, step_smove),
        (1.0, step_sstore),
        (0.3, step_sread),
    ),
    required=("SADD", "SREM", "SPOP", "SMOVE", "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"),
)


# -- sorted sets


def score_text(score: float) -> bytes:
    """A score as Redis 7.0 replies it (``%.17g``; the campaign's scores are never infinite)."""
    return b"%.17g" % score


def _scores(client: KvClient, key: bytes, now: int) -> dict[bytes, float]:
    item = client.live(key, now)
    return {} if item is None or item.type != ZSET else dict(item.value)  # type: ignore[arg-type]


def _ordered(scores: dict[bytes, float]) -> list[tuple[bytes, float]]:
    return sorted(scores.items(), key=lambda pair: (pair[1], pair[0]))


def _zset(scores: dict[bytes, float], expire: tuple[int, int] | None) -> Item | None:
    return Item(ZSET, tuple(_ordered(scores)), expire) if scores else None


def _flat(pairs: Iterable[tuple[bytes, float]]) -> list[bytes]:
    return [part for member, score in pairs for part in (member, score_text(score))]


ZADD_FLAGS = ((), (), ("NX",), ("XX",), ("GT",), ("LT",), ("CH",), ("GT", "CH"), ("XX", "LT"), ("NX", "CH"))


def step_zadd(client: KvClient, now: int) -> bool:
    """ZADD with its options (not the conflicting ones), sometimes INCR; a member given twice: the last wins."""
    rng = client.rng
    key = client.pick(now, (ZSET, None))
    if key is None:
        return False
    scores = _scores(client, key, now)
    flags = rng.choice(ZADD_FLAGS)
    incr = rng.random() < 0.15
    members = [rng.choice(ZSET_POOL) for _ in range(1 if incr else rng.randint(1, 4))]
    if rng.random() < 0.1:
        members[-1] = LONG_MEMBER
    given = [(member, rng.choice(SCORES)) for member in members]
    added = changed = processed = 0
    score = 0.0
    for member, score in given:
        current = scores.get(member)
        if current is None:
            if "XX" in flags:
                continue
            added += 1
        else:
            if "NX" in flags:
                continue
            if incr:
                score += current
            if ("GT" in flags and score <= current) or ("LT" in flags and score >= current):
                continue
            changed += score != current
        processed += 1
        scores[member] = score
    if incr:
        reply: Any = score_text(score) if processed else None
    else:
        reply = added + changed if "CH" in flags else added
    args = [part for member, score in given for part in (score_text(score), member)]
    command = ("ZADD", key, *flags, *(("INCR",) if incr else ()), *args)
    client.queue(command, reply, {key: _zset(scores, _expire(client, key, now))}, now)
    return True


def step_zincrby(client: KvClient, now: int) -> bool:
    key = client.pick(now, (ZSET, None))
    if key is None:
        return False
    scores = _scores(client, key, now)
    member, by = client.rng.choice(ZSET_POOL), client.rng.choice(INCREMENTS)
    scores[member] = scores.get(member, 0.0) + by
    reply = score_text(scores[member])
    client.queue(("ZINCRBY", key, score_text(by), member), reply, {key: _zset(scores, _expire(client, key, now))}, now)
    return True


def step_zrem(client: KvClient, now: int) -> bool:
    key = client.pick(now, (ZSET,))
    if key is None:
        return False
    scores = _scores(client, key, now)
    gone = client.rng.sample(sorted(scores), min(len(scores), client.rng.choice((1, 1, 2, len(scores)))))
    for member in gone:
        del scores[member]
    client.queue(("ZREM", key, *gone, b"missing"), len(gone), {key: _zset(scores, _expire(client, key, now))}, now)
    return True


def step_zpop(client: KvClient, now: int) -> bool:
    """ZPOPMIN/ZPOPMAX with or without a count, or BZPOPMIN/BZPOPMAX over keys of which one holds members (served
    at once: the first such key in the order given)."""
    rng = client.rng
    roll = rng.random()
    if roll < 0.4:
        keys = _keys(client, now, (ZSET, None), rng.randint(1, 3))
        if keys is None or not any(_scores(client, key, now) for key in keys):
            return False
        key = next(key for key in keys if _scores(client, key, now))
        highest = rng.random() < 0.3
        scores = _scores(client, key, now)
        ordered = _ordered(scores)
        member, score = ordered[-1] if highest else ordered[0]
        del scores[member]
        command: tuple[Any, ...] = ("BZPOPMAX" if highest else "BZPOPMIN", *keys, 1)
        reply: Any = [key, member, score_text(score)]
    else:
        key = client.pick(now, (ZSET,))
        if key is None:
            return False
        scores = _scores(client, key, now)
        highest = rng.random() < 0.4
        count = rng.choice((None, 1, 2, 5))
        ordered = _ordered(scores)
        taken = (ordered[::-1] if highest else ordered)[: count or 1]
        for member, _ in taken:
            del scores[member]
        command = ("ZPOPMAX" if highest else "ZPOPMIN", key, *(() if count is None else (count,)))
        reply = _flat(taken)
    client.queue(command, reply, {key: _zset(scores, _expire(client, key, now))}, now)
    return True


SCORE_BOUNDS = (("-inf", None, False), ("(0", 0.0, True), ("0", 0.0, False), ("1", 1.0, False), ("(2", 2.0, True))
SCORE_BOUNDS += (("2.5", 2.5, False), ("+inf", None, False))
LEX_BOUNDS = (b"[a", b"(b", b"[c", b"(d", b"[f")


def _in_score_range(score: float, low: tuple[str, float | None, bool], high: tuple[str, float | None, bool]) -> bool:
    _, at, exclusive = low
    if at is not None and (score < at or (exclusive and score == at)):
        return False
    _, at, exclusive = high
    return at is None or score < at or (not exclusive and score == at)


def _rank_range(size: int, start: int, stop: int) -> range:
    """The ranks Redis's start/stop select (negative from the end, clamped)."""
    start, stop = start + size if start < 0 else start, stop + size if stop < 0 else stop
    start = max(start, 0)
    if start > stop or start >= size:
        return range(0)
    return range(start, min(stop, size - 1) + 1)


def step_zremrange(client: KvClient, now: int) -> bool:
    """ZREMRANGEBYRANK, ZREMRANGEBYSCORE, or ZREMRANGEBYLEX (bounds within a set of equal scores, or - +)."""
    rng = client.rng
    key = client.pick(now, (ZSET, None))
    if key is None:
        return False
    scores = _scores(client, key, now)
    ordered = _ordered(scores)
    roll = rng.random()
    if roll < 0.35:
        start, stop = rng.randint(-4, 3), rng.randint(-4, 3)
        gone = [ordered[i][0] for i in _rank_range(len(ordered), start, stop)]
        command: tuple[Any, ...] = ("ZREMRANGEBYRANK", key, start, stop)
    elif roll < 0.7:
        low, high = sorted(rng.sample(range(len(SCORE_BOUNDS)), 2))
        low_bound, high_bound = SCORE_BOUNDS[low], SCORE_BOUNDS[high]
        gone = [m for m, s in ordered if _in_score_range(s, low_bound, high_bound)]
        command = ("ZREMRANGEBYSCORE", key, low_bound[0], high_bound[0])
    elif len(set(scores.values())) <= 1 and rng.random() < 0.8:
        low_text, high_text = sorted(rng.sample(LEX_BOUNDS, 2), key=lambda b: b[1:])

        def within(member: bytes) -> bool:
            above = member > low_text[1:] or (low_text[:1] == b"[" and member == low_text[1:])
            below = member < high_text[1:] or (high_text[:1] == b"[" and member == high_text[1:])
            return above and below

        gone = [m for m, _ in ordered if within(m)]
        command = ("ZREMRANGEBYLEX", key, low_text, high_text)
    else:
        gone = [m for m, _ in ordered]
        command = ("ZREMRANGEBYLEX", key, "-", "+")
    for member in gone:
        del scores[member]
    client.queue(command, len(gone), {key: _zset(scores, _expire(client, key, now))}, now)
    return True


def _source(client: KvClient, key: bytes, now: int) -> dict[bytes, float]:
    """A STORE form's input: a sorted set's scores, a set's members scored 1, or nothing."""
    item = client.live(key, now)
    if item is not None and item.type == SET:
        return dict.fromkeys(item.value, 1.0)  # type: ignore[arg-type]
    return _scores(client, key, now)


def step_zstore(client: KvClient, now: int) -> bool:
    """ZUNIONSTORE/ZINTERSTORE (WEIGHTS, AGGREGATE) or ZDIFFSTORE over sorted sets, sets and missing keys, onto any
    key (a source included); an empty result deletes the destination."""
    rng = client.rng
    sources = _keys(client, now, (ZSET, SET, None), rng.randint(1, 3))
    dst = client.pick(now)
    if sources is None or dst is None:
        return False
    inputs = [_source(client, key, now) for key in sources]
    name = rng.choice(("ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"))
    options: list[Any] = []
    result: dict[bytes, float] = {}
    if name == "ZDIFFSTORE":
        result = {m: s for m, s in inputs[0].items() if not any(m in other for other in inputs[1:])}
    else:
        # Sums and weights keep scores exact while they are small; past that the server's order of additions
        # (sources by size) would round differently from the model's, so only MIN and MAX then.
        exact = all(abs(score) < 1 << 20 for given in inputs for score in given.values())
        weights = [1.0] * len(inputs)
        if exact and rng.random() < 0.4:
            weights = [float(rng.choice((1, 2, 3))) for _ in inputs]
            options += ["WEIGHTS", *(int(w) for w in weights)]
        aggregate = rng.choice(("SUM", "SUM", "MIN", "MAX") if exact else ("MIN", "MAX"))
        if aggregate != "SUM" or rng.random() < 0.3:
            options += ["AGGREGATE", aggregate]
        combine = {"SUM": lambda a, b: a + b, "MIN": min, "MAX": max}[aggregate]
        members = set().union(*inputs) if name == "ZUNIONSTORE" else set(inputs[0]).intersection(*inputs[1:])
        for member in members:
            found = [w * given[member] for w, given in zip(weights, inputs, strict=True) if member in given]
            total = found[0]
            for score in found[1:]:
                total = combine(total, score)
            result[member] = total
    client.queue((name, dst, len(sources), *sources, *options), len(result), {dst: _zset(result, None)}, now)
    return True


def step_zrangestore(client: KvClient, now: int) -> bool:
    """ZRANGESTORE by rank or BYSCORE (REV, LIMIT) from a sorted set or a missing key onto any key."""
    rng = client.rng
    src = client.pick(now, (ZSET, None))
    dst = client.pick(now)
    if src is None or dst is None:
        return False
    ordered = _ordered(_scores(client, src, now))
    rev = rng.random() < 0.3
    walk = ordered[::-1] if rev else ordered
    if rng.random() < 0.5:
        start, stop = rng.randint(-3, 2), rng.randint(-2, 4)
        taken = [walk[i] for i in _rank_range(len(walk), start, stop)]
        command: tuple[Any, ...] = ("ZRANGESTORE", dst, src, start, stop, *(("REV",) if rev else ()))
    else:
        low, high = sorted(rng.sample(range(len(SCORE_BOUNDS)), 2))
        low_bound, high_bound = SCORE_BOUNDS[low], SCORE_BOUNDS[high]
        taken = [(m, s) for m, s in walk if _in_score_range(s, low_bound, high_bound)]
        bounds = (high_bound[0], low_bound[0]) if rev else (low_bound[0], high_bound[0])
        limit: tuple[Any, ...] = ()
        if rng.random() < 0.4:
            offset, count = rng.randint(0, 2), rng.choice((1, 2, -1))
            taken = taken[offset:] if count < 0 else taken[offset : offset + count]
            limit = ("LIMIT", offset, count)
        command = ("ZRANGESTORE", dst, src, *bounds, "BYSCORE", *(("REV",) if rev else ()), *limit)
    client.queue(command, len(taken), {dst: _zset(dict(taken), None)}, now)
    return True


def step_zread(client: KvClient, now: int) -> bool:
    key = client.pick(now, (ZSET, None))
    if key is None:
        return False
    member = client.rng.choice(ZSET_POOL)
    score = _scores(client, key, now).get(member)
    client.queue(("ZSCORE", key, member), None if score is None else score_text(score), {}, now)
    return True


def decode_zset(reply: list[bytes]) -> tuple[tuple[bytes, float], ...]:
    return tuple((member, float(score)) for member, score in zip(reply[::2], reply[1::2], strict=True))


ZSETS = KvType(
    "sorted sets",
    ZSET,
    read=lambda key: ("ZRANGE", key, 0, -1, "WITHSCORES"),
    decode=decode_zset,
    steps=(
        (2.5, step_zadd),
        (1.0, step_zincrby),
        (0.8, step_zrem),
        (1.2, step_zpop),
        (1.0, step_zremrange),
        (1.0, step_zstore),
        (0.6, step_zrangestore),
        (0.3, step_zread),
    ),
    required=(
        *("ZADD", "ZINCRBY", "ZREM", "ZPOPMIN", "BZPOPMIN", "ZREMRANGEBYSCORE", "ZREMRANGEBYRANK"),
        *("ZREMRANGEBYLEX", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "ZRANGESTORE"),
    ),
)
