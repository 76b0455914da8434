"""The core of the kill -9 campaign: cycles of load, SIGKILL, restart and checks, over a table of per-type parts.

A cycle starts every part's client threads against one respq under ``appendfsync always``, waits until enough
replies came back (and every part says it is ready), SIGKILLs the process group with hundreds of commands unanswered,
restarts the server on the same data directory, and asks each part to read its keys back and check them against
what its clients were told. What was read becomes the next cycle's baseline. Every key the restarted server holds
must belong to some part: a key out of nowhere is a violation too.

The per-type parts come from a table (``TYPES`` in tests/crash/test_kill9.py); an entry is one of two things:

- a ``Part`` subclass, for a type whose check needs its own concurrent model (lists: producers and consumers
  sharing queues; streams: consumer groups). It is instantiated per campaign with the size mix, and implements
  ``clients`` (the bodies of its threads for one cycle, each connecting through ``Cycle.connect``), ``owns``,
  ``read``, ``check`` and ``report``, and optionally ``prepare`` (once, on the empty server), ``ready`` (may the
  kill land) and ``got_going`` (a campaign in which its workload never got going fails);
- a ``KvType`` (tests/crash/kv_model.py), for a type whose value one command reads whole (strings, hashes, and
  next sets and sorted sets): its ``TYPE`` name, its read command, the decoding of that read into a comparable
  value, and its weighted steps (each queues one command with the reply and state the model expects). The
  campaign's key-value clients draw from every such entry's steps and from the generic ones (DEL, RENAME, COPY,
  EXPIRE, PEXPIREAT, PERSIST) over keys they own, so renames and copies cross types; the check is that each client's
  keys hold the state after a prefix of its commands including every answered one (kv_model.py says why that covers
  lost writes, half-visible multi-key writes and expiry).

Adding a type is adding one entry to ``TYPES``: for a key-value type, a ``KvType`` with its steps (see
tests/crash/kv_types.py); nothing here changes.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from conftest import ServerProcess, start_respq
from tests.crash.conftest import Campaign
from tests.crash.kv_model import GENERIC_STEPS, ClientRun, Item, KvClient, KvType, State, check_client, now_ms
from tests.crash.model import SizeMix
from tests.crash.pipeline import Pipeline

SERVER_OPTIONS = ("--appendfsync", "always", "--checkpoint-bytes", "1mb", "--segment-size", "64kb")


@dataclass
class Recorder:
    """What one client thread was told, in its part's own form (``history``), merged by the part after the kill."""

    part: str
    history: Any
    errors: list[str] = field(default_factory=list)
    acked: int = 0


@dataclass
class Cycle:
    port: int
    stop: threading.Event = field(default_factory=threading.Event)
    recorders: list[Recorder] = field(default_factory=list)
    pipelines: list[Pipeline] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stream_rounds: int = 0  # stream consumer pipelines answered (whole or cut by the kill)

    def connect(self, part: str, history: Any) -> tuple[Pipeline, Recorder]:
        pipe, recorder = Pipeline(self.port), Recorder(part, history)
        with self.lock:
            self.pipelines.append(pipe)
            self.recorders.append(recorder)
        return pipe, recorder

    def in_flight(self) -> int:
        with self.lock:
            return sum(pipe.in_flight for pipe in self.pipelines)

    def acked(self) -> int:
        with self.lock:
            return sum(recorder.acked for recorder in self.recorders)

    def of(self, part: str) -> list[Recorder]:
        return [recorder for recorder in self.recorders if recorder.part == part]


class Part:
    """One type's share of the campaign (see the module docstring); one instance per campaign."""

    name = ""

    def __init__(self, sizes: SizeMix) -> None:
        self.sizes = sizes

    def prepare(self, port: int) -> None:
        """Once, on the fresh server, before the first cycle."""

    def clients(self, cycle: Cycle, rng: random.Random) -> list[Callable[[], None]]:
        raise NotImplementedError

    def ready(self, cycle: Cycle) -> bool:
        """Whether the kill may land (enough of this part's workload ran this cycle)."""
        return True

    def owns(self, key: bytes) -> bool:
        raise NotImplementedError

    def read(self, port: int) -> Any:
        """This part's keys after a restart (the next cycle's baseline)."""
        raise NotImplementedError

    def check(self, baseline: Any, cycle: Cycle, observed: Any) -> list[str]:
        """Violations (an empty list means none); may also tally what the report shows."""
        raise NotImplementedError

    def report(self) -> str:
        return ""

    def got_going(self) -> str | None:
        """None, or why this part's workload does not count as having run."""
        return None


# -- the key-value part: the clients driving every KvType entry

KV_CLIENTS = 2
KV_KEYS = 16  # per client
KV_BATCH = (20, 150)  # commands per pipelined round
# Commands every campaign must have had answered (what the issue promises to survive), and the key-value checks
# that must have bitten at least once.
KV_REQUIRED = ("SET", "APPEND", "SETRANGE", "INCRBYFLOAT", "MSET", "MSETNX", "HSET", "HDEL", "HINCRBY")
KV_REQUIRED += ("RENAME", "COPY", "PEXPIREAT", "EVAL")


def kv_key(client: int, index: int) -> bytes:
    return b"kv:%d:%d" % (client, index)


class KeyValuePart(Part):
    name = "key-value"

    def __init__(self, sizes: SizeMix, types: Sequence[KvType]) -> None:
        super().__init__(sizes)
        self.types = {kv_type.type: kv_type for kv_type in types}
        steps = [*GENERIC_STEPS, *(step for kv_type in types for step in kv_type.steps)]
        self.steps = [step for _, step in steps]
        self.weights = [weight for weight, _ in steps]
        self.keys = {client: [kv_key(client, i) for i in range(KV_KEYS)] for client in range(KV_CLIENTS)}
        self.answered: Counter[str] = Counter()
        self.baseline: dict[int, State] = {client: {} for client in self.keys}  # as the last restart showed
        self.kept = self.unanswered = self.expired = self.checked_keys = 0
        self.matched_expiries = 0  # recovered keys with an expiry time, compared with the model's window

    def clients(self, cycle: Cycle, rng: random.Random) -> list[Callable[[], None]]:
        return [partial(self.client, cycle, n, rng.random()) for n in range(KV_CLIENTS)]

    def client(self, cycle: Cycle, number: int, seed: int | float) -> None:
        rng = random.Random(seed)
        state = self.baseline[number]
        run = ClientRun(number, state, [], 0, [])
        pipe, recorder = cycle.connect(self.name, run)
        kv = KvClient(number, self.keys[number], dict(state), rng)
        while not cycle.stop.is_set():
            kv.queued = []
            size = rng.randint(*KV_BATCH)
            for _ in range(size * 3):  # a step that finds no key for it queues nothing
                if len(kv.queued) >= size:
                    break
                rng.choices(self.steps, self.weights)[0](kv, now_ms())
            ops = kv.queued
            replies, complete = pipe.run([op.command for op in ops])
            run.ops += ops
            for op, reply in zip(ops, replies, strict=False):
                if isinstance(reply, Exception) or reply != op.reply:
                    run.wrong_replies.append(f"client {number}: {op.command} answered {reply!r}, expected {op.reply!r}")
            run.answered += len(replies)
            recorder.acked += len(replies)
            if not complete:
                return

    def owns(self, key: bytes) -> bool:
        return key.startswith(b"kv:")

    def read(self, port: int) -> tuple[dict[int, State], tuple[int, int]]:
        """Each client's keys: TYPE and PEXPIRETIME, then the type's own read; and when the read ran."""
        pipe = Pipeline(port)
        try:
            keys = [key for client in sorted(self.keys) for key in self.keys[client]]
            started = now_ms()
            replies, complete = pipe.run([c for key in keys for c in (("TYPE", key), ("PEXPIRETIME", key))])
            assert complete
            present = {key: (kind, expire) for key, kind, expire in zip(keys, replies[::2], replies[1::2], strict=True)}
            reads = [(key, kind) for key, (kind, _) in present.items() if kind != b"none"]
            unknown = [kind for _, kind in reads if kind not in self.types]
            assert not unknown, f"key-value keys of types no entry reads: {unknown}"
            replies, complete = pipe.run([self.types[kind].read(key) for key, kind in reads])
            assert complete
            ended = now_ms()
            states: dict[int, State] = {client: {} for client in self.keys}
            for (key, kind), reply in zip(reads, replies, strict=True):
                if isinstance(reply, Exception):
                    raise AssertionError(f"reading {key!r}: {reply}")
                if reply is None or reply == []:
                    continue  # expired between TYPE and the read
                expire = present[key][1]
                client = int(key.split(b":")[1])
                states[client][key] = Item(
                    kind, self.types[kind].decode(reply), None if expire < 0 else (expire, expire)
                )
            return states, (started, ended)
        finally:
            pipe.close()

    def check(self, baseline: Any, cycle: Cycle, observed: Any) -> list[str]:
        states, window = observed
        runs = {recorder.history.number: recorder.history for recorder in cycle.of(self.name)}
        problems: list[str] = []
        for client in self.keys:
            run = runs.get(client) or ClientRun(client, self.baseline[client], [], 0, [])
            found, kept = check_client(run, states[client], window)
            problems += found
            self.kept += max(kept, 0)
            self.unanswered += len(run.ops) - run.answered
            self.answered.update(op.command[0] for op in run.ops[: run.answered])
            last = run.ops[run.answered - 1].after if run.answered else run.baseline
            self.expired += sum(
                1 for key, item in last.items() if item.expire is not None and key not in states[client]
            )
            self.checked_keys += len(states[client])
            self.matched_expiries += sum(item.expire is not None for item in states[client].values())
        self.baseline = states
        return problems

    def report(self) -> str:
        answered = sum(self.answered.values())
        return (
            f"key-value ({', '.join(kind.name for kind in self.types.values())}): {answered} commands answered "
            f"({', '.join(f'{name} {self.answered[name]}' for name in KV_REQUIRED)}), {self.unanswered} "
            f"unanswered at the kills ({self.kept} of them kept), "
            f"{self.checked_keys} keys checked after restarts ({self.matched_expiries} with an expiry), "
            f"{self.expired} gone by expiry"
        )

    def got_going(self) -> str | None:
        missing = [name for name in KV_REQUIRED if not self.answered[name]]
        if missing:
            return f"key-value commands never answered: {missing}"
        if not self.expired or not self.matched_expiries:
            return "no key expired across a restart, or none kept its expiry"
        return None


# -- the campaign


@dataclass
class CycleResult:
    cycle: Cycle
    in_flight: int  # unanswered commands when the kill landed
    acked: int  # replies received


def run_cycle(server: ServerProcess, rng: random.Random, parts: Sequence[Part]) -> CycleResult:
    """Load, then SIGKILL once enough replies came back; returns what the clients were told and the load figures."""
    cycle = Cycle(server.port)
    bodies = [body for part in parts for body in part.clients(cycle, rng)]
    threads = [threading.Thread(target=body, daemon=True) for body in bodies]
    for thread in threads:
        thread.start()
    target = rng.randint(1000, 5000)
    deadline = time.monotonic() + 20
    while (cycle.acked() < target or not all(part.ready(cycle) for part in parts)) and time.monotonic() < deadline:
        time.sleep(0.005)  # polling the replies received, not ordering anything
    in_flight = cycle.in_flight()
    # A server that died on its own would pass for a killed one: its exit must be the kill's.
    assert server.alive(), "the server exited under load:\n" + server.output.decode(errors="replace")[-4000:]
    server.stop()  # SIGKILL to the process group, mid-load
    cycle.stop.set()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "a client thread did not notice the kill"
    return CycleResult(cycle, in_flight, cycle.acked())


def make_parts(types: Sequence[type[Part] | KvType], sizes: SizeMix) -> list[Part]:
    parts = [entry(sizes) for entry in types if not isinstance(entry, KvType)]
    kv_types = [entry for entry in types if isinstance(entry, KvType)]
    if kv_types:
        parts.append(KeyValuePart(sizes, kv_types))
    return parts


def stray_keys(port: int, parts: Sequence[Part]) -> list[str]:
    pipe = Pipeline(port)
    try:
        (keys,), complete = pipe.run([("KEYS", "*")])
        assert complete
    finally:
        pipe.close()
    return [f"{key!r} belongs to no part of the campaign" for key in keys if not any(p.owns(key) for p in parts)]


def kill9_campaign(
    tmp_path: Path,
    campaign: Campaign,
    rng: random.Random,
    cycles: int,
    sizes: SizeMix,
    types: Sequence[type[Part] | KvType],
) -> None:
    data_dir = tmp_path / "data"
    parts = make_parts(types, sizes)
    server = start_respq(data_dir, *SERVER_OPTIONS)
    for part in parts:
        part.prepare(server.port)
    baselines = [part.read(server.port) for part in parts]
    done, in_flight_total, acked_total, restarts = 0, 0, 0, []
    deadline = time.monotonic() + campaign.seconds
    try:
        while done < cycles and time.monotonic() < deadline:
            result = run_cycle(server, rng, parts)
            done += 1
            in_flight_total += result.in_flight
            acked_total += result.acked
            started = time.monotonic()
            server = start_respq(data_dir, *SERVER_OPTIONS)
            restarts.append(time.monotonic() - started)
            observed = [part.read(server.port) for part in parts]
            problems = [error for recorder in result.cycle.recorders for error in recorder.errors]
            for part, before, after in zip(parts, baselines, observed, strict=True):
                problems += part.check(before, result.cycle, after)
            problems += stray_keys(server.port, parts)
            assert not problems, f"seed {campaign.seed}, cycle {done}:\n" + "\n".join(problems[:20])
            baselines = observed
    finally:
        server.stop()
    print(
        f"kill -9 ({'large' if sizes.share else 'small'} values): {done} cycles, {acked_total} replies checked, "
        f"{in_flight_total / max(done, 1):.0f} commands in flight per kill on average, restart (process start to "
        f"ready) max {max(restarts):.2f}s, seed {campaign.seed}"
    )
    for part in parts:
        if part.report():
            print(f"  {part.report()}")
    assert in_flight_total / max(done, 1) >= 100, "the kills did not land under real in-flight load"
    not_going = [reason for part in parts if (reason := part.got_going()) is not None]
    assert not not_going, "; ".join(not_going)
