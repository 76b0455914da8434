"""Random sorted set commands against a respq subprocess and a Python model, with clean restarts and kill -9 in
between: replies and contents (members, scores, order) always match the model; under appendfsync always every
acknowledged command survives; ``respq check`` finds the directory clean at the end."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import ServerProcess, memory_twin, start_respq
from respq.storage.check import check_directory
from respq.types import REGISTRY

KEYS = st.sampled_from(["a", "b", "c"])
MEMBERS = st.sampled_from([b"m", b"n", b"", b"\x00x", b"o", b"member-" + b"y" * 60])
# Halves and infinities: exact in any binary float, so sums are the same whatever the order of additions.
SCORES = st.sampled_from([0.0, 1.0, -1.5, 2.5, 100.0, math.inf, -math.inf])
PAIRS = st.lists(st.tuples(SCORES, MEMBERS), min_size=1, max_size=4)
FLAGS = st.sampled_from([(), ("NX",), ("XX",), ("GT",), ("LT",), ("XX", "GT"), ("CH",), ("XX", "LT", "CH")])


def _arg(score: float) -> bytes:
    return b"inf" if score == math.inf else b"-inf" if score == -math.inf else repr(score).encode()


class ZSetsAgainstModel(RuleBasedStateMachine):
    storage_args: tuple[str, ...] = ()  # MEMORY_STORAGE in the twin run in memory (memory_twin)

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, dict[bytes, float]] = {}
        self.data_dir = Path(tempfile.mkdtemp(prefix="respq-zsets-model-"))
        self.server: ServerProcess | None = None
        self.client: redis.Redis | None = None

    @initialize()
    def start(self) -> None:
        self._start()

    def _start(self) -> None:
        self.server = start_respq(self.data_dir / "data", *self.storage_args, "--appendfsync", "always")
        self.client = redis.Redis(port=self.server.port, socket_timeout=10)

    def teardown(self) -> None:
        if self.client is not None:
            self.client.close()
        try:
            if self.server is not None:
                assert self.server.terminate() == 0
                if self.storage_args:  # in memory there is no directory to check: none was made
                    assert not (self.data_dir / "data").exists()
                else:
                    assert check_directory(self.data_dir / "data", REGISTRY) == []
        finally:
            if self.server is not None:
                self.server.stop()
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def r(self) -> redis.Redis:
        assert self.client is not None
        return self.client

    @rule(key=KEYS, pairs=PAIRS, flags=FLAGS)
    def zadd(self, key: str, pairs: list[tuple[float, bytes]], flags: tuple[str, ...]) -> None:
        held = self.model.get(key, {})
        added = changed = 0
        after = dict(held)
        for score, member in pairs:
            current = after.get(member)
            if current is None:
                if "XX" in flags:
                    continue
                added += 1
            elif "NX" in flags or ("GT" in flags and score <= current) or ("LT" in flags and score >= current):
                continue
            elif score != current:
                changed += 1
            after[member] = score
        args = [item for score, member in pairs for item in (_arg(score), member)]
        got = self.r.execute_command("ZADD", key, *flags, *args)
        assert got == (added + changed if "CH" in flags else added)
        if after:
            self.model[key] = after

    @rule(key=KEYS, member=MEMBERS, increment=SCORES)
    def zincrby(self, key: str, member: bytes, increment: float) -> None:
        current = self.model.get(key, {}).get(member, 0.0)
        total = current + increment
        try:
            got = self.r.zincrby(key, increment if math.isfinite(increment) else _arg(increment), member)
        except redis.ResponseError as error:
            assert math.isnan(total), error
            return
        assert not math.isnan(total) and got == total
        self.model.setdefault(key, {})[member] = total

    @rule(key=KEYS, members=st.lists(MEMBERS, min_size=1, max_size=4))
    def zrem(self, key: str, members: list[bytes]) -> None:
        held = self.model.get(key, {})
        removed = [member for member in dict.fromkeys(members) if member in held]
        for member in removed:
            del held[member]
        if not held:
            self.model.pop(key, None)
        assert self.r.zrem(key, *members) == len(removed)

    @rule(key=KEYS, count=st.integers(1, 3), highest=st.booleans())
    def zpop(self, key: str, count: int, highest: bool) -> None:
        ordered = sorted((score, member) for member, score in self.model.get(key, {}).items())
        taken = (ordered[::-1] if highest else ordered)[:count]
        got = (self.r.zpopmax if highest else self.r.zpopmin)(key, count)
        assert got == [(member, score) for score, member in taken]
        for _, member in taken:
            del self.model[key][member]
        if key in self.model and not self.model[key]:
            del self.model[key]

    @rule(key=KEYS, low=SCORES, high=SCORES)
    def zremrangebyscore(self, key: str, low: float, high: float) -> None:
        held = self.model.get(key, {})
        removed = [member for member, score in held.items() if low <= score <= high]
        for member in removed:
            del held[member]
        if not held:
            self.model.pop(key, None)
        assert self.r.zremrangebyscore(key, _arg(low), _arg(high)) == len(removed)

    @rule(dst=KEYS, sources=st.lists(KEYS, min_size=1, max_size=2), op=st.sampled_from(["UNION", "INTER", "DIFF"]))
    def store(self, dst: str, sources: list[str], op: str) -> None:
        inputs = [self.model.get(key, {}) for key in sources]
        result: dict[bytes, float] = {}
        if op == "UNION":
            for held in sorted(inputs, key=len):
                for member, score in held.items():
                    total = result.get(member, 0.0) + score if member in result else score
                    result[member] = 0.0 if math.isnan(total) else total
        elif op == "INTER":
            smallest, *rest = sorted(inputs, key=len)
            for member, score in smallest.items():
                if all(member in other for other in rest):
                    total = score
                    for other in rest:
                        total += other[member]
                        total = 0.0 if math.isnan(total) else total
                    result[member] = total
        else:
            first, *rest = inputs
            result = {m: s for m, s in first.items() if not any(m in other for other in rest)}
        got = self.r.execute_command(f"Z{op}STORE", dst, len(sources), *sources)
        assert got == len(result)
        if result:
            self.model[dst] = result
        else:
            self.model.pop(dst, None)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        assert self.r.delete(key) == int(self.model.pop(key, None) is not None)

    @precondition(lambda self: self.server is not None)
    @rule(kill=st.sampled_from([True, True, False]))  # a clean stop checkpoints: kill -9 replays the journal
    def restart(self, kill: bool) -> None:
        assert self.server is not None
        self.r.close()
        if kill:
            self.server.stop()  # SIGKILL to the process group
        else:
            assert self.server.terminate() == 0
        self._start()
        if self.storage_args:  # in memory a restart starts empty
            self.model.clear()

    @invariant()
    def contents_match(self) -> None:
        if self.client is None:
            return
        for key in ("a", "b", "c"):
            held = self.model.get(key, {})
            expected = [(member, score) for score, member in sorted((s, m) for m, s in held.items())]
            assert self.r.zrange(key, 0, -1, withscores=True) == expected
            assert self.r.zcard(key) == len(held)
        assert self.r.dbsize() == len(self.model)


# Every example starts a server and may restart it: a few long examples in CI, many under HYPOTHESIS_PROFILE=long.
ZSetsAgainstModel.TestCase.settings = settings(
    settings.default,
    max_examples=6 if settings.default.max_examples <= 100 else settings.default.max_examples // 10,
    stateful_step_count=30,
)
TestZSetsAgainstModel = pytest.mark.timeout(600)(ZSetsAgainstModel.TestCase)
TestZSetsAgainstModelInMemory = memory_twin(ZSetsAgainstModel)
