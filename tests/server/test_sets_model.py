"""Random set commands against a respq subprocess and a Python model, with clean restarts and kill -9 in between:
replies, members and encodings (and an intset's numeric order) always match the model; under appendfsync always
every acknowledged command survives, the STORE forms and SMOVE included; ``respq check`` finds the directory clean
at the end. Written after tests/server/test_hashes_model.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import ServerProcess, memory_twin, start_respq
from respq.types.sets.model import is_integer

KEYS = st.sampled_from(["a", "b", "c"])
MEMBERS = st.sampled_from([b"1", b"2", b"-3", b"40", b"m", b"", b"\x00x", b"007", b"id-" + b"y" * 33])
MEMBER_LISTS = st.lists(MEMBERS, min_size=1, max_size=4)
KEY_LISTS = st.lists(KEYS, min_size=1, max_size=3)
# Removals, moves and stores are each sometimes followed at once by kill -9 and a restart: what they journaled must
# replay (a restart rule alone seldom lands right after one).
KILL = st.sampled_from([False, False, True])
MAX_INTSET = 4  # set-max-intset-entries, small so that writes cross it


class Model:
    """A set as Redis holds it: its members and whether it has become a hashtable."""

    def __init__(self) -> None:
        self.members: set[bytes] = set()
        self.hashtable = False

    def add(self, members: list[bytes]) -> int:
        new = set(members) - self.members
        self.members |= new
        if new and (len(self.members) > MAX_INTSET or not all(map(is_integer, new))):
            self.hashtable = True
        return len(new)


def _built(members: set[bytes]) -> Model:
    model = Model()
    model.add(sorted(members))
    return model


class SetsAgainstModel(RuleBasedStateMachine):
    storage_args: tuple[str, ...] = ()  # MEMORY_STORAGE in the twin run in memory (memory_twin)

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, Model] = {}
        self.data_dir = Path(tempfile.mkdtemp(prefix="respq-sets-model-"))
        self.server: ServerProcess | None = None
        self.client: redis.Redis | None = None

    @initialize()
    def start(self) -> None:
        self._start()

    def _start(self) -> None:
        self.server = start_respq(
            self.data_dir / "data", *self.storage_args, "--set-max-intset-entries", str(MAX_INTSET)
        )
        self.client = redis.Redis(port=self.server.port, socket_timeout=10)
        self.client.set_response_callback("SMEMBERS", lambda response, **_: response)  # keep the order

    def teardown(self) -> None:
        if self.client is not None:
            self.client.close()
        try:
            if self.server is not None:
                assert self.server.terminate() == 0
                self.server = None
                if self.storage_args:  # in memory there is no directory to check: none was made
                    assert not (self.data_dir / "data").exists()
                    return
                result = subprocess.run(
                    [sys.executable, "-m", "respq", "check", str(self.data_dir / "data")],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert result.returncode == 0, result.stdout + result.stderr
        finally:
            if self.server is not None:
                self.server.stop()
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def r(self) -> redis.Redis:
        assert self.client is not None
        return self.client

    def _forget_if_empty(self, key: str) -> None:
        if key in self.model and not self.model[key].members:
            del self.model[key]

    @rule(key=KEYS, members=MEMBER_LISTS)
    def sadd(self, key: str, members: list[bytes]) -> None:
        added = self.model.setdefault(key, Model()).add(members)
        assert self.r.sadd(key, *members) == added

    @rule(key=KEYS, start=st.integers(0, 300), count=st.integers(100, 200))
    def sadd_range(self, key: str, start: int, count: int) -> None:
        """Many members at once: past 128 a set's members move from a sorted list to a Python set."""
        self.sadd(key, [b"%d" % n for n in range(start, start + count)])

    @rule(key=KEYS, members=MEMBER_LISTS, kill=KILL)
    def srem(self, key: str, members: list[bytes], kill: bool) -> None:
        try:
            held = self.model.get(key, Model()).members
            removed = held & set(members)
            held -= removed
            self._forget_if_empty(key)
            assert self.r.srem(key, *members) == len(removed)
        finally:
            if kill:
                self.restart(kill=True)

    @rule(key=KEYS, count=st.none() | st.integers(0, 6), kill=KILL)
    def spop(self, key: str, count: int | None, kill: bool) -> None:
        try:
            expected = self.model.get(key)
            got = self.r.spop(key, count)
            if expected is None:
                assert got == (None if count is None else [])
                return
            popped = {got} if count is None else set(got)
            assert len(popped) == (1 if count is None else min(count, len(expected.members)))
            assert popped <= expected.members
            size = len(expected.members)
            expected.members -= popped
            if count is not None and 0 < count < size and (size - count) * 5 <= count:
                self.model[key] = _built(expected.members)  # Redis keeps the rest in a new set
            self._forget_if_empty(key)
        finally:
            if kill:
                self.restart(kill=True)

    @rule(src=KEYS, dst=KEYS, member=MEMBERS, kill=KILL)
    def smove(self, src: str, dst: str, member: bytes, kill: bool) -> None:
        try:
            source = self.model.get(src)
            moved = source is not None and member in source.members
            assert self.r.smove(src, dst, member) == moved
            if moved and src != dst:
                assert source is not None
                source.members.discard(member)
                self._forget_if_empty(src)
                self.model.setdefault(dst, Model()).add([member])
        finally:
            if kill:
                self.restart(kill=True)

    @rule(op=st.sampled_from(["sinterstore", "sunionstore", "sdiffstore"]), dst=KEYS, keys=KEY_LISTS, kill=KILL)
    def store(self, op: str, dst: str, keys: list[str], kill: bool) -> None:
        try:
            sets = [self.model[key].members if key in self.model else set() for key in keys]
            if op == "sinterstore":
                result = set.intersection(*sets)
            elif op == "sunionstore":
                result = set.union(*sets)
            else:
                result = sets[0].difference(*sets[1:])
            assert self.r.execute_command(op.upper(), dst, *keys) == len(result)
            if result:
                self.model[dst] = _built(result)
            else:
                self.model.pop(dst, None)
        finally:
            if kill:
                self.restart(kill=True)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        assert self.r.delete(key) == int(self.model.pop(key, None) is not None)

    @rule(key=KEYS, members=MEMBER_LISTS)
    def reads(self, key: str, members: list[bytes]) -> None:
        held = self.model.get(key, Model()).members
        assert self.r.smismember(key, members) == [int(member in held) for member in members]
        assert self.r.sismember(key, members[0]) == (members[0] in held)
        assert self.r.scard(key) == len(held)
        picked = self.r.srandmember(key, 3)
        assert len(picked) == min(3, len(held)) and set(picked) <= held
        assert self.r.sintercard(2, [key, key], limit=1) == min(1, len(held))

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
            expected = self.model.get(key)
            got = self.r.execute_command("SMEMBERS", key)
            if expected is None:
                assert got in ([], set())
                continue
            assert set(got) == expected.members
            assert self.r.object("encoding", key) == (b"hashtable" if expected.hashtable else b"intset")
            if not expected.hashtable:
                assert list(got) == sorted(expected.members, key=int)  # an intset answers in numeric order
        assert self.r.dbsize() == len(self.model)


# Every example starts a server and may restart it: a few long examples in CI, many under HYPOTHESIS_PROFILE=long.
SetsAgainstModel.TestCase.settings = settings(
    settings.default,
    max_examples=6 if settings.default.max_examples <= 100 else settings.default.max_examples // 10,
    stateful_step_count=30,
)
TestSetsAgainstModel = pytest.mark.timeout(600)(SetsAgainstModel.TestCase)


@pytest.mark.timeout(120)
def test_each_kind_of_set_write_survives_kill_9() -> None:
    """One of each write, each followed by kill -9 and a restart (the random walk above may not line them up)."""
    machine = SetsAgainstModel()
    try:
        machine.start()
        machine.sadd("a", [b"1", b"2", b"3", b"m"])
        machine.srem("a", [b"1"], kill=True)
        machine.contents_match()
        machine.spop("a", None, kill=True)
        machine.contents_match()
        machine.smove("a", "b", next(iter(machine.model["a"].members)), kill=True)
        machine.contents_match()
        machine.sadd("c", [b"40", b"2"])
        machine.store("sunionstore", "a", ["b", "c"], kill=True)
        machine.contents_match()
        machine.store("sinterstore", "b", ["a", "c"], kill=True)
        machine.contents_match()
        machine.store("sdiffstore", "c", ["a", "b"], kill=True)
        machine.contents_match()
    finally:
        machine.teardown()
TestSetsAgainstModelInMemory = memory_twin(SetsAgainstModel)
