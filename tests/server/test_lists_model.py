"""Random list commands against a respq subprocess and a Python model, with clean restarts and kill -9 in between:
replies and contents always match the model (under appendfsync always every acknowledged command survives)."""

from __future__ import annotations

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
VALUES = st.binary(min_size=0, max_size=12)
INDEXES = st.integers(min_value=-6, max_value=6)


class ListsAgainstModel(RuleBasedStateMachine):
    storage_args: tuple[str, ...] = ()  # MEMORY_STORAGE in the twin run in memory (memory_twin)

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, list[bytes]] = {}
        self.data_dir = Path(tempfile.mkdtemp(prefix="respq-lists-model-"))
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

    def _drop_if_empty(self, key: str) -> None:
        if not self.model.get(key):
            self.model.pop(key, None)

    @rule(key=KEYS, values=st.lists(VALUES, min_size=1, max_size=4), left=st.booleans())
    def push(self, key: str, values: list[bytes], left: bool) -> None:
        items = self.model.setdefault(key, [])
        if left:
            for value in values:
                items.insert(0, value)
            assert self.r.lpush(key, *values) == len(items)
        else:
            items.extend(values)
            assert self.r.rpush(key, *values) == len(items)

    @rule(key=KEYS, count=st.integers(min_value=1, max_value=4), left=st.booleans())
    def pop(self, key: str, count: int, left: bool) -> None:
        items = self.model.get(key, [])
        expected = items[:count] if left else items[::-1][:count]
        got = self.r.lpop(key, count) if left else self.r.rpop(key, count)
        if key not in self.model:
            assert got is None
            return
        assert got == expected
        if left:
            del items[: len(expected)]
        else:
            del items[len(items) - len(expected) :]
        self._drop_if_empty(key)

    @rule(src=KEYS, dst=KEYS, wherefrom=st.sampled_from(["LEFT", "RIGHT"]), whereto=st.sampled_from(["LEFT", "RIGHT"]))
    def lmove(self, src: str, dst: str, wherefrom: str, whereto: str) -> None:
        items = self.model.get(src)
        got = self.r.lmove(src, dst, wherefrom, whereto)
        if not items:
            assert got is None
            return
        element = items.pop(0 if wherefrom == "LEFT" else -1)
        self._drop_if_empty(src)
        target = self.model.setdefault(dst, [])
        if whereto == "LEFT":
            target.insert(0, element)
        else:
            target.append(element)
        assert got == element

    @rule(key=KEYS, index=INDEXES, value=VALUES)
    def lset(self, key: str, index: int, value: bytes) -> None:
        items = self.model.get(key)
        try:
            self.r.lset(key, index, value)
            raised = None
        except redis.ResponseError as error:
            raised = str(error)
        if items is None:
            assert raised == "no such key"
        elif -len(items) <= index < len(items):
            assert raised is None
            items[index] = value
        else:
            assert raised == "index out of range"

    @rule(key=KEYS, before=st.booleans(), value=VALUES)
    def linsert(self, key: str, before: bool, value: bytes) -> None:
        items = self.model.get(key)
        pivot = items[len(items) // 2] if items else b"absent"
        got = self.r.linsert(key, "BEFORE" if before else "AFTER", pivot, value)
        if not items:
            assert got == 0
            return
        position = items.index(pivot) + (0 if before else 1)
        items.insert(position, value)
        assert got == len(items)

    @rule(key=KEYS, count=st.integers(min_value=-2, max_value=2))
    def lrem(self, key: str, count: int) -> None:
        items = self.model.get(key, [])
        value = items[0] if items else b"absent"
        positions = [i for i, item in enumerate(items) if item == value]
        if count > 0:
            positions = positions[:count]
        elif count < 0:
            positions = positions[count:]
        for i in reversed(positions):
            del items[i]
        assert self.r.lrem(key, count, value) == len(positions)
        self._drop_if_empty(key)

    @rule(key=KEYS, start=INDEXES, stop=INDEXES)
    def ltrim(self, key: str, start: int, stop: int) -> None:
        assert self.r.ltrim(key, start, stop)
        if key in self.model:
            self.model[key] = _redis_range(self.model[key], start, stop)
            self._drop_if_empty(key)

    @rule(key=KEYS, start=INDEXES, stop=INDEXES)
    def lrange(self, key: str, start: int, stop: int) -> None:
        assert self.r.lrange(key, start, stop) == _redis_range(self.model.get(key, []), start, stop)

    @precondition(lambda self: self.server is not None)
    @rule(kill=st.booleans())
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
            assert self.r.lrange(key, 0, -1) == self.model.get(key, [])
        assert self.r.dbsize() == len(self.model)


def _redis_range(items: list[bytes], start: int, stop: int) -> list[bytes]:
    length = len(items)
    start = max(start + length, 0) if start < 0 else start
    stop = stop + length if stop < 0 else stop
    stop = min(stop, length - 1)
    return items[start : stop + 1] if start <= stop else []


# Every example starts a server and may restart it: a few long examples in CI, many under HYPOTHESIS_PROFILE=long.
ListsAgainstModel.TestCase.settings = settings(
    settings.default,
    max_examples=6 if settings.default.max_examples <= 100 else settings.default.max_examples // 10,
    stateful_step_count=30,
)
TestListsAgainstModel = pytest.mark.timeout(600)(ListsAgainstModel.TestCase)
TestListsAgainstModelInMemory = memory_twin(ListsAgainstModel)
