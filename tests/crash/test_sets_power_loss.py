"""Simulated power cuts with sets: nothing acknowledged under ``always`` is lost, and a write is all or nothing.

Each cycle runs random set writes (SADD, SREM, an SPOP that builds the rest anew, SMOVE and the STORE forms, the
last two as the commands make them: one atomic batch over two keys) against an in-process engine on a ``SimFS``
disk, with checkpoints in their three steps, cuts the power at a random mutating system call, throws away what was
not durable, reopens, and requires the recovered sets (members and encoding) to be the acknowledged state or the
state after some prefix of the writes since, and ``respq check`` to find the directory clean. The campaign helpers
(``open_engine``, ``Outcome``) are tests/crash/test_power_loss.py's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from respq.storage import Engine
from respq.storage.check import check_directory
from respq.types import REGISTRY
from respq.types.sets.model import SetValue, is_integer, new_set
from tests.crash.conftest import Campaign
from tests.crash.simfs import SimFS, SimulatedCrash
from tests.crash.test_power_loss import DATA, Outcome, open_engine

KEYS = (b"a", b"b", b"c")
POOL = [b"1", b"2", b"-7", b"10", b"m", b"", b"\x00", b"id-" + b"y" * 33]
MAX_ENTRIES = 4
State = dict[bytes, tuple[frozenset[bytes], bool]]  # key -> (members, hashtable)


def read_sets(engine: Engine) -> State:
    state: State = {}
    for key in engine.keys(0):
        value = engine.get(0, key)
        assert isinstance(value, SetValue)
        state[key] = (frozenset(value.members), value.hashtable)
    return state


def _built(members: set[bytes] | frozenset[bytes]) -> tuple[frozenset[bytes], bool]:
    return frozenset(members), len(members) > MAX_ENTRIES or not all(map(is_integer, members))


def _added(state: State, key: bytes, members: list[bytes]) -> None:
    held, hashtable = state.get(key, (frozenset(), False))
    new = set(members) - held
    if key not in state:
        state[key] = _built(set(members))
        return
    after = held | new
    state[key] = (after, hashtable or (bool(new) and (len(after) > MAX_ENTRIES or not all(map(is_integer, new)))))


def _removed(state: State, key: bytes, members: set[bytes], *, rebuilt: bool) -> None:
    left = state[key][0] - members
    if not left:
        del state[key]
    else:
        state[key] = _built(left) if rebuilt else (left, state[key][1])


def _add(engine: Engine, key: bytes, members: list[bytes]) -> None:
    value = engine.get(0, key)
    if value is None:
        new_set(engine, 0, key, dict.fromkeys(members).keys(), MAX_ENTRIES)
    else:
        value.add_many(members, MAX_ENTRIES)  # type: ignore[union-attr]


def _remove(engine: Engine, after: State, key: bytes, members: set[bytes], *, rebuilt: bool) -> None:
    if key not in after:
        engine.delete(0, key)  # the key goes with its last member
        return
    value = engine.get(0, key)
    value.remove_many(sorted(members), hashtable=after[key][1] if rebuilt else None)  # type: ignore[union-attr]


def step(engine: Engine, state: State, rng: random.Random, expect: Callable[[State], None]) -> None:
    """One random write: the model's state after it is handed to ``expect`` first, then the engine makes it."""
    key = rng.choice(KEYS)
    after = dict(state)
    roll = rng.random()
    if roll < 0.4 or key not in state:
        members = rng.sample(POOL, rng.randint(1, 4)) if rng.random() < 0.8 else [b"%d" % n for n in range(150)]
        _added(after, key, members)
        expect(after)
        _add(engine, key, members)
    elif roll < 0.7:
        rebuilt = roll >= 0.6  # SPOP keeping the rest in a new set
        held = sorted(state[key][0])
        gone = set(rng.sample(held, rng.randint(1, len(held))))
        _removed(after, key, gone, rebuilt=rebuilt)
        expect(after)
        _remove(engine, after, key, gone, rebuilt=rebuilt)
    elif roll < 0.85:
        dst = rng.choice([k for k in KEYS if k != key])
        member = rng.choice(sorted(state[key][0]))
        _removed(after, key, {member}, rebuilt=False)
        _added(after, dst, [member])
        expect(after)
        with engine.atomic():  # SMOVE: both keys, or neither
            _remove(engine, after, key, {member}, rebuilt=False)
            _add(engine, dst, [member])
    else:
        sources = [state[k][0] for k in rng.sample(KEYS, rng.randint(1, 3)) if k in state]
        if not sources:
            result: frozenset[bytes] = frozenset()
        elif rng.random() < 0.5:
            result = frozenset().union(*sources)
        else:
            result = frozenset.intersection(*sources)
        dst = rng.choice(KEYS)
        after.pop(dst, None)
        if result:
            after[dst] = _built(result)
        expect(after)
        with engine.atomic():  # the STORE forms: the destination replaced whole, or left as it was
            engine.delete(0, dst)
            if result:
                new_set(engine, 0, dst, sorted(result), MAX_ENTRIES)
    state.clear()
    state.update(after)


@dataclass
class SetsOutcome(Outcome):
    crashes_in_run: int = 0  # cycles the cut ended in the middle of a write, a sync or a checkpoint


def campaign_cycles(rng: random.Random, cycles: int, deadline: float, *, sync_on_ack: bool = True) -> SetsOutcome:
    outcome = SetsOutcome()
    fs = SimFS()
    fs.make_durable_dir(DATA)
    engine = open_engine(fs, rng, outcome, crash_recovery=False)
    acked: State = {}
    while outcome.cycles < cycles and time.monotonic() < deadline:
        outcome.cycles += 1
        state = dict(acked)
        candidates = [dict(acked)]  # what recovery may show: the acknowledged state, or after a prefix of writes
        fs.crash_after = rng.randint(0, 300)
        checkpoint = None
        stage = 0
        try:
            for _ in range(rng.randint(20, 300)):
                step(engine, state, rng, candidates.append)
                if rng.random() < 0.2:
                    if sync_on_ack:
                        engine.sync(engine.flush())
                    else:
                        engine.flush()  # the control: acknowledged before the sync
                    acked = dict(state)
                    outcome.acked_ops += len(candidates) - 1
                    candidates = [dict(acked)]
                roll = rng.random()
                if checkpoint is None and roll < 0.03:
                    checkpoint = engine.begin_checkpoint()
                    stage = 0
                elif checkpoint is not None and roll < 0.2:
                    if stage == 0:
                        engine.run_checkpoint(checkpoint)
                        stage = 1
                    else:
                        engine.finish_checkpoint(checkpoint)
                        checkpoint = None
        except SimulatedCrash:
            outcome.crashes_in_run += 1
        outcome.torn_files += fs.power_cut(rng).torn_files
        engine = open_engine(fs, rng, outcome, crash_recovery=True)
        observed = read_sets(engine)
        problems = [] if observed in candidates else [f"recovered {observed!r:.300}: not the state after any prefix"]
        problems += [f"respq check after recovery: {problem}" for problem in check_directory(DATA, REGISTRY, io=fs)]
        if problems:
            outcome.problems += [f"cycle {outcome.cycles}: {problem}" for problem in problems[:3]]
            break
        acked = observed
    engine.close()
    return outcome


def test_power_cuts_lose_no_acknowledged_set_write(campaign: Campaign) -> None:
    rng = campaign.rng("power-sets")
    cycles = campaign.cycles_or(ci=200, long=5000)
    started = time.monotonic()
    outcome = campaign_cycles(rng, cycles, started + campaign.seconds)
    print(
        f"power cuts (sets): {outcome.cycles} cycles ({outcome.crashes_in_run} cut mid-run), "
        f"{outcome.acked_ops} acknowledged writes, "
        f"{outcome.crashes_in_recovery} cuts during recovery, {outcome.torn_files} torn files, "
        f"{time.monotonic() - started:.1f}s, seed {campaign.seed}"
    )
    assert not outcome.problems, f"seed {campaign.seed}:\n" + "\n".join(outcome.problems)
    assert outcome.cycles >= min(cycles, 10)
    assert outcome.crashes_in_run > 0, "no cut landed inside a cycle: the campaign is not cutting"


def test_control_acknowledging_set_writes_before_the_sync_loses_them(campaign: Campaign) -> None:
    """Proves the campaign bites on sets: replies before fdatasync must lose acknowledged writes."""
    rng = campaign.rng("power-sets-control")
    outcome = campaign_cycles(rng, 40, time.monotonic() + campaign.seconds, sync_on_ack=False)
    assert any("not the state after any prefix" in problem for problem in outcome.problems), (
        f"seed {campaign.seed}: {outcome.cycles} cycles without a sync lost nothing: the simulation does not bite"
    )
