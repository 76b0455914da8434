"""What clients were told, and the check that a recovered data set honours it.

Shared by the kill -9 loop (replies recorded by socket clients) and the power-loss simulation (engine calls).
Messages are ``b"<producer>:<seq>"`` with ``seq`` increasing per producer for the life of a data directory, so the
order of one producer's messages inside a list can be checked from the values alone. Under a size mix other than
``small`` some are padded to sizes around the storage's blocks (``SIZE_MIXES``), with bytes that depend on the
producer, the sequence number and the size: a message cut, shifted or damaged anywhere is no message.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from respq.storage import framing, journal
from tests.bigvalues import boundary_sizes, make_value, show

# Lists read head to tail hold one producer's messages in this direction: +1 ascending (RPUSH, LMOVE ... RIGHT
# destinations), -1 descending (LPUSH).
Direction = int


def message(producer: int, seq: int, size: int = 0) -> bytes:
    """``b"<producer>:<seq>"``; with ``size``, ``b"<producer>:<seq>:<size>:"`` and padding up to that many bytes."""
    head = b"%d:%d:%d:" % (producer, seq, size)
    if size < len(head):
        return b"%d:%d" % (producer, seq)
    return head + make_value(producer << 40 | seq, size - len(head))


def parse_message(value: bytes) -> tuple[int, int]:
    """(producer, seq) of a campaign message; ValueError for anything else, a padded message cut or damaged too."""
    producer, _, rest = value.partition(b":")
    seq, padded, rest = rest.partition(b":")
    parsed = int(producer), int(seq)
    if padded:
        size = int(rest.partition(b":")[0])
        if len(value) != size or value != message(*parsed, size):
            raise ValueError(f"a message of {size} bytes, cut or damaged: {show(value)} ({len(value)} bytes)")
    return parsed


@dataclass(frozen=True)
class SizeMix:
    """How long messages are: a ``share`` of them padded to one of ``sizes``, the others a few bytes."""

    share: float
    sizes: tuple[int, ...] = ()

    def pick(self, rng: random.Random) -> int:
        """A message size (0: unpadded). The ``small`` mix draws nothing: old seeds replay as they did."""
        if not self.share or rng.random() >= self.share:
            return 0
        return rng.choice(self.sizes)


# Around the journal's read block, the segments' read-ahead and append buffer, the 4 KiB segment files of the
# power-loss simulation and the 1 MiB replay scan: larger ones would make a cycle too slow to run many.
LARGE_SIZES = tuple(boundary_sizes([journal.SPARSE_GAP, journal.READ_BLOCK, framing.SCAN_BLOCK]))
SIZE_MIXES = {"small": SizeMix(0.0), "large": SizeMix(0.05, LARGE_SIZES)}


@dataclass
class History:
    """Every operation of one run between two crashes, marked acknowledged or not.

    A value of ``None`` means the reply never arrived, so what it took is unknown (socket clients); the
    simulation knows every value and records them even for unacknowledged operations.
    """

    pushes: list[tuple[bytes, list[bytes], bool]] = field(default_factory=list)  # key, values, acked
    pops: list[tuple[bytes, list[bytes] | None, int, bool]] = field(default_factory=list)  # key, values, count, acked
    moves: list[tuple[bytes, bytes, bytes | None, bool]] = field(default_factory=list)  # src, dst, value, acked

    def acked_operations(self) -> int:
        return sum(p[2] for p in self.pushes) + sum(p[3] for p in self.pops) + sum(m[3] for m in self.moves)

    def unacked_operations(self) -> int:
        return sum(not p[2] for p in self.pushes) + sum(not p[3] for p in self.pops) + sum(not m[3] for m in self.moves)


def check_recovery(
    baseline: dict[bytes, list[bytes]],
    history: History,
    observed: dict[bytes, list[bytes]],
    directions: dict[bytes, Direction],
) -> list[str]:
    """Violations of the durability promise (an empty list means none).

    - a message whose push was acknowledged (or that was there before) is present exactly once, in its list,
      unless an acknowledged pop took it; an unacknowledged pop may have taken it (at-most-once delivery), an
      unacknowledged LMOVE may have moved it, and nothing else may make it disappear;
    - an acknowledged pop is never undone, and no message is delivered twice by acknowledged pops;
    - an LMOVE'd message is in exactly one of the two lists (in the destination if the LMOVE was acknowledged);
    - no message appears twice or out of nowhere; each producer's messages keep their order inside every list.
    """
    problems: list[str] = []
    home: dict[bytes, bytes] = {}
    required: set[bytes] = set()  # must still exist somewhere unless a pop took it
    for key, values in baseline.items():
        for value in values:
            home[value] = key
            required.add(value)
    for key, values, acked in history.pushes:
        for value in values:
            if value in home:
                problems.append(f"test bug: {show(value)} pushed twice")
            home[value] = key
            if acked:
                required.add(value)

    taken_acked: Counter[bytes] = Counter()
    taken_maybe: set[bytes] = set()
    unknown_pop_capacity: Counter[bytes] = Counter()
    for key, values, count, acked in history.pops:
        if values is None:
            unknown_pop_capacity[key] += count
        elif acked:
            taken_acked.update(values)
        else:
            taken_maybe.update(values)
    moved_acked: dict[bytes, bytes] = {}
    moved_maybe: dict[bytes, bytes] = {}
    unknown_moves: Counter[tuple[bytes, bytes]] = Counter()
    for src, dst, value, acked in history.moves:
        if value is None:
            unknown_moves[(src, dst)] += 1
        elif acked:
            moved_acked[value] = dst
        else:
            moved_maybe[value] = dst
    for value, times in taken_acked.items():
        if times > 1:
            problems.append(f"{show(value)} was delivered {times} times by acknowledged pops")

    where: defaultdict[bytes, list[bytes]] = defaultdict(list)
    for key, values in observed.items():
        for value in values:
            where[value].append(key)
    for value, keys in where.items():
        if value not in home:
            problems.append(f"{show(value)} in {keys} was never pushed (resurrected from an earlier run, or garbage)")
        elif len(keys) > 1:
            problems.append(f"{show(value)} appears {len(keys)} times: in {keys}")

    unknown_pops_used: Counter[bytes] = Counter()
    unknown_moves_used: Counter[tuple[bytes, bytes]] = Counter()
    for value, key in home.items():
        found = where.get(value, [])
        place = found[0] if len(found) == 1 else None
        if value in taken_acked:
            if found:
                problems.append(f"{show(value)} was popped (acknowledged) but is back in {found}")
            continue
        if value in moved_acked:
            if place != moved_acked[value]:
                problems.append(f"{show(value)} was LMOVE'd (acknowledged) to {moved_acked[value]!r}, found in {found}")
            continue
        if place == key or (place is not None and moved_maybe.get(value) == place):
            continue
        if place is not None:
            if unknown_moves[(key, place)]:
                unknown_moves_used[(key, place)] += 1
                continue
            problems.append(f"{show(value)} belongs in {key!r} but is in {place!r}")
            continue
        if found:
            continue  # duplicates were reported above
        if value not in required or value in taken_maybe:
            continue
        if value in moved_maybe:
            problems.append(f"{show(value)} was being LMOVE'd to {moved_maybe[value]!r} and is now in neither list")
            continue
        unknown_pops_used[key] += 1
    for key, used in unknown_pops_used.items():
        if used > unknown_pop_capacity[key]:
            problems.append(
                f"{used} acknowledged messages are missing from {key!r}; unanswered pops could take at most "
                f"{unknown_pop_capacity[key]}"
            )
    for pair, used in unknown_moves_used.items():
        if used > unknown_moves[pair]:
            problems.append(
                f"{used} messages moved {pair[0]!r} -> {pair[1]!r}, unanswered LMOVEs were {unknown_moves[pair]}"
            )

    problems += check_order(observed, directions)
    return problems


def check_order(observed: dict[bytes, list[bytes]], directions: dict[bytes, Direction]) -> list[str]:
    problems = []
    for key, values in observed.items():
        direction = directions.get(key, 1)
        last: dict[int, int] = {}
        for value in values:
            try:
                producer, seq = parse_message(value)
            except ValueError:
                problems.append(f"{key!r} holds {show(value)}, not a campaign message")
                continue
            previous = last.get(producer)
            if previous is not None and (seq - previous) * direction <= 0:
                problems.append(f"{key!r}: producer {producer} message {seq} follows {previous} (order broken)")
                break
            last[producer] = seq
    return problems
