"""SETBIT, BITFIELD and BITOP against a respq subprocess and a Python model, with clean restarts and kill -9 in
between: replies and contents always match the model (under appendfsync always every acknowledged write survives,
whether replayed from the journal or loaded from a checkpoint)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import ServerProcess, memory_twin, start_respq
from respq.types.strings.bits import Overflow
from tests.unit.test_string_bits import model_bitop, model_get, model_incr, model_put, model_set

KEYS = ("a", "b", "c")
KEY = st.sampled_from(KEYS)
OFFSETS = st.integers(0, 80) | st.sampled_from([1000, 4095])
FIELD_TYPES = st.sampled_from(["u1", "i3", "u8", "i8", "u13", "i16", "u63", "i64"])


class BitsAgainstModel(RuleBasedStateMachine):
    storage_args: tuple[str, ...] = ()  # MEMORY_STORAGE in the twin run in memory (memory_twin)

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, bytes | str] = {}  # a string's bytes, or "list"
        self.data_dir = Path(tempfile.mkdtemp(prefix="respq-bits-model-"))
        self.server: ServerProcess | None = None
        self.client: redis.Redis | None = None

    @initialize()
    def start(self) -> None:
        self.server = start_respq(self.data_dir / "data", *self.storage_args)
        self.client = redis.Redis(port=self.server.port, socket_timeout=10)

    def teardown(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def r(self) -> redis.Redis:
        assert self.client is not None
        return self.client

    def _string(self, key: str) -> bytes | None:
        """The model's string at key; None if missing (or a list, which the caller checks first)."""
        value = self.model.get(key)
        return value if isinstance(value, bytes) or value is None else None

    @rule(key=KEY, offset=OFFSETS, on=st.integers(0, 1))
    def setbit(self, key: str, offset: int, on: int) -> None:
        if self.model.get(key) == "list":
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                self.r.setbit(key, offset, on)
            return
        value = self._string(key) or b""
        expected = model_get(value, offset, 1, False)
        assert self.r.setbit(key, offset, on) == expected
        self.model[key] = model_put(value, offset, 1, on).ljust(len(value), b"\0")

    @rule(
        key=KEY,
        overflow=st.sampled_from(list(Overflow)),
        ops=st.lists(
            st.tuples(st.sampled_from(["GET", "SET", "INCRBY"]), FIELD_TYPES, OFFSETS, st.integers(-300, 300)),
            min_size=1,
            max_size=4,
        ),
    )
    def bitfield(self, key: str, overflow: Overflow, ops: list[tuple[str, str, int, int]]) -> None:
        args: list[str | int] = ["OVERFLOW", overflow.name]
        for kind, ftype, offset, number in ops:
            args += [kind, ftype, offset] + ([] if kind == "GET" else [number])
        if self.model.get(key) == "list":
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                self.r.execute_command("BITFIELD", key, *args)
            return
        value = self._string(key)
        data = value or b""
        writes = [(ftype, offset) for kind, ftype, offset, _ in ops if kind != "GET"]
        if writes:  # grown first to the farthest field written, as Redis does
            data = data.ljust(max((offset + int(ftype[1:]) + 7) // 8 for ftype, offset in writes), b"\0")
        expected: list[int | None] = []
        for kind, ftype, offset, number in ops:
            signed, width = ftype[0] == "i", int(ftype[1:])
            old = model_get(data, offset, width, signed)
            if kind == "GET":
                expected.append(old)
                continue
            if kind == "INCRBY":
                new = model_incr(old, number, width, signed, overflow)
            else:
                new = model_set(number, width, signed, overflow)
            if new is None:
                expected.append(None)
                continue
            expected.append(new if kind == "INCRBY" else old)
            data = model_put(data, offset, width, new).ljust(len(data), b"\0")
        assert self.r.execute_command("BITFIELD", key, *args) == expected
        if writes:
            self.model[key] = data

    @rule(op=st.sampled_from(["AND", "OR", "XOR", "NOT"]), dest=KEY, sources=st.lists(KEY, min_size=1, max_size=3))
    def bitop(self, op: str, dest: str, sources: list[str]) -> None:
        if op == "NOT":
            sources = sources[:1]
        if any(self.model.get(key) == "list" for key in sources):
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                self.r.bitop(op, dest, *sources)
            return
        result = model_bitop(op.lower(), [self._string(key) or b"" for key in sources])
        assert self.r.bitop(op, dest, *sources) == len(result)
        if result:
            self.model[dest] = result
        else:
            self.model.pop(dest, None)

    @rule(key=KEY)
    def make_list(self, key: str) -> None:
        """A key of another type, for BITOP to replace and the other commands to refuse."""
        self.r.delete(key)
        self.r.rpush(key, "x")
        self.model[key] = "list"

    @rule(kill=st.booleans())
    def restart(self, kill: bool) -> None:
        assert self.server is not None
        self.r.close()
        if kill:
            self.server.stop()  # SIGKILL to the process group
        else:
            assert self.server.terminate() == 0
        self.server = start_respq(self.data_dir / "data", *self.storage_args)
        self.client = redis.Redis(port=self.server.port, socket_timeout=10)
        if self.storage_args:  # in memory a restart starts empty
            self.model.clear()

    @invariant()
    def contents_match(self) -> None:
        if self.client is None:
            return
        for key in KEYS:
            expected = self.model.get(key)
            if expected == "list":
                assert self.r.type(key) == b"list"
            else:
                assert self.r.get(key) == expected
        assert self.r.dbsize() == len(self.model)


# Every example starts a server and may restart it: a few long examples in CI, many under HYPOTHESIS_PROFILE=long.
BitsAgainstModel.TestCase.settings = settings(
    settings.default,
    max_examples=6 if settings.default.max_examples <= 100 else settings.default.max_examples // 10,
    stateful_step_count=30,
)
TestBitsAgainstModel = pytest.mark.timeout(600)(BitsAgainstModel.TestCase)
TestBitsAgainstModelInMemory = memory_twin(BitsAgainstModel)
