"""Random hash commands against a respq subprocess and a Python model, with clean restarts and kill -9 in between:
replies and contents (fields, values and their order) always match the model; under appendfsync always every
acknowledged command survives."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import ServerProcess, memory_twin, start_respq

KEYS = st.sampled_from(["a", "b", "c"])
FIELDS = st.sampled_from([b"f", b"g", b"n", b"", b"\x00x", b"field-" + b"y" * 60])
VALUES = st.binary(max_size=8) | st.sampled_from([b"1", b"-2", b"0.5", b"v" * 70])
PAIRS = st.lists(st.tuples(FIELDS, VALUES), min_size=1, max_size=4)
_LLONG = 1 << 63


def _as_int(value: bytes) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    # Redis's strict form only: no sign '+', no leading zeros or spaces, within 64 bits.
    return number if str(number).encode() == value and -_LLONG <= number < _LLONG else None


class HashesAgainstModel(RuleBasedStateMachine):
    storage_args: tuple[str, ...] = ()  # MEMORY_STORAGE in the twin run in memory (memory_twin)

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, dict[bytes, bytes]] = {}
        self.data_dir = Path(tempfile.mkdtemp(prefix="respq-hashes-model-"))
        self.server: ServerProcess | None = None
        self.client: redis.Redis | None = None

    @initialize()
    def start(self) -> None:
        self._start()

    def _start(self) -> None:
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

    @rule(key=KEYS, pairs=PAIRS, legacy=st.booleans())
    def hset(self, key: str, pairs: list[tuple[bytes, bytes]], legacy: bool) -> None:
        fields = self.model.setdefault(key, {})
        before = len(fields)
        fields.update(pairs)
        args = [item for pair in pairs for item in pair]
        if legacy:
            assert self.r.execute_command("HMSET", key, *args) in (True, b"OK")
        else:
            assert self.r.execute_command("HSET", key, *args) == len(fields) - before

    @rule(key=KEYS, field=FIELDS, value=VALUES)
    def hsetnx(self, key: str, field: bytes, value: bytes) -> None:
        fields = self.model.setdefault(key, {})
        new = field not in fields
        fields.setdefault(field, value)
        assert self.r.hsetnx(key, field, value) == int(new)

    @rule(key=KEYS, fields=st.lists(FIELDS, min_size=1, max_size=4))
    def hdel(self, key: str, fields: list[bytes]) -> None:
        held = self.model.get(key, {})
        removed = [field for field in dict.fromkeys(fields) if field in held]
        for field in removed:
            del held[field]
        if not held:
            self.model.pop(key, None)
        assert self.r.hdel(key, *fields) == len(removed)

    @rule(key=KEYS, field=FIELDS, increment=st.integers(-(1 << 62), 1 << 62) | st.sampled_from([1, -1]))
    def hincrby(self, key: str, field: bytes, increment: int) -> None:
        current = self.model.get(key, {}).get(field, b"0")
        number = _as_int(current)
        try:
            got = self.r.hincrby(key, field, increment)
        except redis.ResponseError as error:
            assert number is None or not -_LLONG <= number + increment < _LLONG, error
            return
        assert number is not None and got == number + increment
        self.model.setdefault(key, {})[field] = str(got).encode()

    @rule(key=KEYS, field=FIELDS, halves=st.integers(-8, 8))
    def hincrbyfloat(self, key: str, field: bytes, halves: int) -> None:
        """Increments of halves: exact in any binary float, so the expected text does not depend on precision."""
        current = self.model.get(key, {}).get(field, b"0")
        plain = re.fullmatch(rb"-?[0-9]{1,15}(?:\.[0-9]{1,3})?", current)  # what both sides surely read alike
        try:
            got = self.r.hincrbyfloat(key, field, halves / 2)
        except redis.ResponseError:
            assert plain is None
            return
        if plain is not None:
            assert got == float(current) + halves / 2
        text = self.r.hget(key, field)
        assert text is not None and float(text) == got
        self.model.setdefault(key, {})[field] = text

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        assert self.r.delete(key) == int(self.model.pop(key, None) is not None)

    @rule(key=KEYS, fields=st.lists(FIELDS, min_size=1, max_size=3))
    def reads(self, key: str, fields: list[bytes]) -> None:
        held = self.model.get(key, {})
        assert self.r.hmget(key, fields) == [held.get(field) for field in fields]
        field = fields[0]
        assert self.r.hget(key, field) == held.get(field)
        assert self.r.hexists(key, field) == (field in held)
        assert self.r.hstrlen(key, field) == len(held.get(field, b""))
        assert self.r.hkeys(key) == list(held)
        assert self.r.hvals(key) == list(held.values())

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
            assert list(self.r.hgetall(key).items()) == list(self.model.get(key, {}).items())  # order too
            assert self.r.hlen(key) == len(self.model.get(key, {}))
        assert self.r.dbsize() == len(self.model)


# Every example starts a server and may restart it: a few long examples in CI, many under HYPOTHESIS_PROFILE=long.
HashesAgainstModel.TestCase.settings = settings(
    settings.default,
    max_examples=6 if settings.default.max_examples <= 100 else settings.default.max_examples // 10,
    stateful_step_count=30,
)
TestHashesAgainstModel = pytest.mark.timeout(600)(HashesAgainstModel.TestCase)
TestHashesAgainstModelInMemory = memory_twin(HashesAgainstModel)
