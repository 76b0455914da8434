"""Simulated power cuts through the storage I/O seam: nothing acknowledged under ``always`` may be lost.

Each cycle runs a random queue workload against an in-process engine on a ``SimFS`` disk, cuts the power at a
random mutating system call (inside writes, syncs, renames and checkpoints alike), throws away everything not yet
durable (keeping, at random, a torn prefix of unsynced appends and a garbage tail), sometimes cuts the power again
during recovery, then reopens and checks the recovered lists, stream, hashes, strings, sets and sorted sets (their
encodings too) against everything the workload was told.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from respq.storage import Engine
from respq.storage.check import check_directory
from respq.types import REGISTRY
from tests.crash.conftest import Campaign
from tests.crash.model import SIZE_MIXES, SizeMix
from tests.crash.simfs import SimFS, SimulatedCrash
from tests.crash.simworkload import SIM_TYPES, Workload, read_all, run_until_crash

DATA = "/disk/respq"
DISK_LIFETIME = 25  # power cuts one simulated disk goes through


@dataclass
class Outcome:
    cycles: int = 0
    crashes_in_recovery: int = 0
    acked_ops: int = 0
    acked_by_type: Counter[str] = field(default_factory=Counter)  # of the SIM_TYPES rows (the rest are lists')
    torn_files: int = 0
    lost_replied_ops: list[int] = field(default_factory=list)  # everysec: replied ops a cut took away
    problems: list[str] = field(default_factory=list)


def open_engine(fs: SimFS, rng: random.Random, outcome: Outcome, *, crash_recovery: bool, **options: object) -> Engine:
    """Opens the engine; sometimes the power fails again during recovery (recovery must be restartable)."""
    for _ in range(5):
        if crash_recovery and rng.random() < 0.25:
            fs.crash_after = rng.randint(0, 40)
        try:
            engine = Engine.open(
                DATA, types=REGISTRY, io=fs, segment_size=4096, log=lambda _level, _message: None, **options
            )
        except SimulatedCrash:
            outcome.crashes_in_recovery += 1
            fs.power_cut(rng)
            continue
        fs.crash_after = None
        return engine
    fs.crash_after = None
    return Engine.open(DATA, types=REGISTRY, io=fs, segment_size=4096, log=lambda _level, _message: None, **options)


def power_cut_campaign(
    rng: random.Random,
    cycles: int,
    deadline: float,
    *,
    ack_every: tuple[int, int] = (1, 8),
    sync_on_ack: bool = True,
    sync_stream_files: bool = True,
    honour_sync: bool = True,
    stop_at_first_problem: bool = False,
    sizes: SizeMix = SIZE_MIXES["small"],
) -> Outcome:
    outcome = Outcome()
    while outcome.cycles < cycles and time.monotonic() < deadline:
        if outcome.cycles % DISK_LIFETIME == 0:
            # A fresh disk now and then: the check is linear in the data, so long runs stay linear in cycles.
            fs = SimFS(honour_sync=honour_sync)
            fs.make_durable_dir(DATA)
            workload = Workload(queues=rng.randint(3, 10), producers=rng.randint(1, 4), sizes=sizes)
            engine = open_engine(fs, rng, outcome, crash_recovery=False)
            workload.start_run(read_all(engine))
        outcome.cycles += 1
        fs.crash_after = rng.randint(0, 1500)
        if not sync_stream_files:
            # The control: the sync makes the journal durable but not the stream files its records point into.
            engine.journal.before_sync = lambda: None
        if not sync_on_ack:
            # The control: "acknowledge" after writing the journal but without waiting for the sync.
            workload.acknowledge = lambda engine, w=workload: (engine.flush(), w.mark_acknowledged())  # type: ignore[method-assign]
        try:
            run_until_crash(
                engine, workload, rng, steps=rng.randint(50, 600), ack_every=lambda: rng.randint(*ack_every)
            )
        except SimulatedCrash:
            pass
        outcome.acked_ops += workload.history.acked_operations() + sum(workload.type_acked.values())
        outcome.acked_by_type.update(workload.type_acked)
        workload.type_acked.clear()
        outcome.torn_files += fs.power_cut(rng).torn_files
        engine = open_engine(fs, rng, outcome, crash_recovery=True)
        observed = read_all(engine)
        problems, kept = workload.check(observed)
        problems += [f"respq check after recovery: {problem}" for problem in check_directory(DATA, REGISTRY, io=fs)]
        if problems:
            outcome.problems += [f"cycle {outcome.cycles}: {problem}" for problem in problems[:5]]
            if stop_at_first_problem:
                break
        if kept >= 0:
            outcome.lost_replied_ops.append(len(workload.pending_at_crash) - kept)
        workload.start_run(observed)
    return outcome


def test_power_cuts_under_always_lose_nothing_acknowledged(campaign: Campaign) -> None:
    rng = campaign.rng("power-always")
    cycles = campaign.cycles_or(ci=40, long=1000)
    started = time.monotonic()
    outcome = power_cut_campaign(rng, cycles, started + campaign.seconds, sizes=campaign.sizes)
    elapsed = time.monotonic() - started
    print(
        f"power cuts (always): {outcome.cycles} cycles, {outcome.acked_ops} acknowledged ops "
        f"({', '.join(f'{name} {count}' for name, count in sorted(outcome.acked_by_type.items()))}), "
        f"{outcome.crashes_in_recovery} cuts during recovery, {outcome.torn_files} torn files, {elapsed:.1f}s, "
        f"seed {campaign.seed}"
    )
    assert not outcome.problems, f"seed {campaign.seed}:\n" + "\n".join(outcome.problems[:20])
    assert outcome.cycles >= min(cycles, 10)
    idle = [sim.name for sim in SIM_TYPES if not outcome.acked_by_type[sim.name]]
    assert not idle, f"seed {campaign.seed}: no acknowledged operation of {idle}: the campaign did not cover them"


def test_power_cuts_with_large_values_lose_nothing_acknowledged(campaign: Campaign) -> None:
    """The campaign with messages around the storage's blocks: a value cut, shifted or damaged by a read window, a
    replay scan or a torn write is no message, and a lost one is missing."""
    rng = campaign.rng("power-always-large")
    cycles = campaign.cycles_or(ci=8, long=300)
    started = time.monotonic()
    # Stops at the first problem: a damaged value taken as the new truth would trip the workload's own checks.
    outcome = power_cut_campaign(
        rng, cycles, started + campaign.seconds, sizes=SIZE_MIXES["large"], stop_at_first_problem=True
    )
    print(
        f"power cuts (always, large values): {outcome.cycles} cycles, {outcome.acked_ops} acknowledged ops, "
        f"{outcome.torn_files} torn files, {time.monotonic() - started:.1f}s, seed {campaign.seed}"
    )
    assert not outcome.problems, f"seed {campaign.seed}:\n" + "\n".join(outcome.problems[:20])
    assert outcome.cycles >= min(cycles, 4)


def test_control_acknowledging_before_the_sync_loses_data(campaign: Campaign) -> None:
    """Proves the seam bites: the same campaign with replies sent before fdatasync must lose acknowledged data."""
    rng = campaign.rng("power-control")
    outcome = power_cut_campaign(
        rng, 30, time.monotonic() + campaign.seconds, sync_on_ack=False, stop_at_first_problem=True
    )
    # Acknowledged pushes, pops or LMOVEs undone; or a recovered state (the stream's and hashes' too) that no prefix of
    # the operations since the last acknowledgement gives.
    undone = ("missing", "belongs in", "back in", "found in", "not the state after any prefix")
    assert any(any(kind in problem for kind in undone) for problem in outcome.problems), (
        f"seed {campaign.seed}: {outcome.cycles} cycles without a sync lost nothing: the simulation does not bite"
    )


def test_control_stream_entries_need_their_segment_synced(campaign: Campaign) -> None:
    """Proves the stream files' sync is needed: skip it, keep the journal's, and acknowledged entries are lost."""
    rng = campaign.rng("power-control-streams")
    outcome = power_cut_campaign(
        rng, 60, time.monotonic() + campaign.seconds, sync_stream_files=False, stop_at_first_problem=True
    )
    assert outcome.problems, f"seed {campaign.seed}: {outcome.cycles} cycles without syncing stream files lost nothing"


def test_control_a_disk_that_ignores_fsync_loses_data(campaign: Campaign) -> None:
    rng = campaign.rng("power-control-nosync")
    outcome = power_cut_campaign(
        rng, 10, time.monotonic() + campaign.seconds, honour_sync=False, stop_at_first_problem=True
    )
    assert outcome.problems, f"seed {campaign.seed}: a disk that never persists anything lost nothing"


def test_everysec_loss_window_is_bounded_by_the_sync_interval(campaign: Campaign) -> None:
    """Under everysec replies go out before the sync; a cut loses at most what was replied since the last one.

    Here a sync happens every 50-200 operations (the server syncs once a second); the synced prefix is still
    checked like ``always``, and the replied-but-lost operations are measured.
    """
    rng = campaign.rng("power-everysec")
    cycles = campaign.cycles_or(ci=20, long=500)
    outcome = power_cut_campaign(
        rng, cycles, time.monotonic() + campaign.seconds, ack_every=(50, 200), sizes=campaign.sizes
    )
    assert not outcome.problems, f"seed {campaign.seed}:\n" + "\n".join(outcome.problems[:20])
    lost = outcome.lost_replied_ops
    print(
        f"everysec loss window: {len(lost)} cuts, replied ops lost per cut: max {max(lost)}, "
        f"mean {statistics.mean(lost):.1f}, median {statistics.median(lost)} (sync every 50-200 ops)"
    )
    assert max(lost) <= 200
    assert max(lost) > 0, "no cut ever landed between two syncs: the measurement is not measuring"
