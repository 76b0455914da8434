"""Random string commands against a respq subprocess and a Python model, with clean restarts and kill -9 in
between: replies and contents always match the model (under appendfsync always every acknowledged command
survives, multi-key writes whole or not at all), lists replaced by strings and back included."""

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
VALUES = st.binary(max_size=12) | st.sampled_from([b"7", b"-3", b"0.5", b"x" * 3000])
FAR = 4_102_444_800_000  # 2100-01-01: an expiry that never falls due while the test runs
Entry = tuple[str, bytes | list[bytes], int]  # type, contents, PEXPIRETIME (-1: none)


class StringsAgainstModel(RuleBasedStateMachine):
    storage_args: tuple[str, ...] = ()  # MEMORY_STORAGE in the twin run in memory (memory_twin)

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, Entry] = {}
        self.data_dir = Path(tempfile.mkdtemp(prefix="respq-strings-model-"))
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

    def _string(self, key: str) -> bytes | None:
        entry = self.model.get(key)
        return entry[1] if entry is not None and entry[0] == "string" else None  # type: ignore[return-value]

    def _expect_wrongtype(self, key: str, call: object) -> bool:
        """True (and the call checked to fail) when ``key`` holds a list."""
        if key in self.model and self.model[key][0] != "string":
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                call()  # type: ignore[operator]
            return True
        return False

    @rule(key=KEYS, value=VALUES, option=st.sampled_from([None, "keepttl", "pxat", "nx", "xx", "get"]))
    def set(self, key: str, value: bytes, option: str | None) -> None:
        entry = self.model.get(key)
        if option == "get" and self._expect_wrongtype(key, lambda: self.r.set(key, value, get=True)):
            return
        expire = -1
        if option == "keepttl" and entry is not None:
            expire = entry[2]
        elif option == "pxat":
            expire = FAR
        got = self.r.set(
            key,
            value,
            keepttl=option == "keepttl",
            pxat=FAR if option == "pxat" else None,
            nx=option == "nx",
            xx=option == "xx",
            get=option == "get",
        )
        if option == "get":
            assert got == self._string(key)
        elif (option == "nx" and entry is not None) or (option == "xx" and entry is None):
            assert got is None
            return
        else:
            assert got is True
        self.model[key] = ("string", value, expire)

    @rule(key=KEYS, value=VALUES)
    def append(self, key: str, value: bytes) -> None:
        if self._expect_wrongtype(key, lambda: self.r.append(key, value)):
            return
        entry = self.model.get(key)
        new = (self._string(key) or b"") + value
        assert self.r.append(key, value) == len(new)
        self.model[key] = ("string", new, entry[2] if entry is not None else -1)

    @rule(key=KEYS, offset=st.integers(0, 40), value=VALUES)
    def setrange(self, key: str, offset: int, value: bytes) -> None:
        if self._expect_wrongtype(key, lambda: self.r.setrange(key, offset, value)):
            return
        entry = self.model.get(key)
        old = self._string(key)
        if old is None and not value:
            assert self.r.setrange(key, offset, value) == 0
            return
        new = bytearray(old or b"")
        if len(new) < offset + len(value):
            new += bytes(offset + len(value) - len(new))
        new[offset : offset + len(value)] = value
        assert self.r.setrange(key, offset, value) == len(new)
        self.model[key] = ("string", bytes(new), entry[2] if entry is not None else -1)

    @rule(key=KEYS, by=st.integers(-5, 5))
    def incrby(self, key: str, by: int) -> None:
        if self._expect_wrongtype(key, lambda: self.r.incrby(key, by)):
            return
        entry = self.model.get(key)
        old = self._string(key)
        try:
            current = int(old) if old is not None else 0
            valid = old is None or old == b"%d" % current
        except ValueError:
            valid = False
        if not valid:
            with pytest.raises(redis.ResponseError, match="not an integer"):
                self.r.incrby(key, by)
            return
        assert self.r.incrby(key, by) == current + by
        self.model[key] = ("string", b"%d" % (current + by), entry[2] if entry is not None else -1)

    @rule(pairs=st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=3), only_new=st.booleans())
    def mset(self, pairs: list[tuple[str, bytes]], only_new: bool) -> None:
        mapping = dict(pairs)
        if only_new:
            done = self.r.msetnx(mapping)
            assert done == (not any(key in self.model for key in mapping))
            if not done:
                return
        else:
            assert self.r.mset(mapping) is True
        for key, value in mapping.items():
            self.model[key] = ("string", value, -1)

    @rule(key=KEYS)
    def getdel(self, key: str) -> None:
        if self._expect_wrongtype(key, lambda: self.r.getdel(key)):
            return
        assert self.r.getdel(key) == self._string(key)
        self.model.pop(key, None)

    @rule(key=KEYS, persist=st.booleans())
    def getex(self, key: str, persist: bool) -> None:
        if self._expect_wrongtype(key, lambda: self.r.getex(key, persist=True)):
            return
        got = self.r.getex(key, persist=True) if persist else self.r.getex(key, pxat=FAR)
        assert got == self._string(key)
        if key in self.model:
            self.model[key] = ("string", self.model[key][1], -1 if persist else FAR)

    @rule(key=KEYS, values=st.lists(st.binary(max_size=5), min_size=1, max_size=3))
    def rpush(self, key: str, values: list[bytes]) -> None:
        """Lists under the same keys: SET replaces them, and they come back after DEL."""
        entry = self.model.get(key)
        if entry is not None and entry[0] != "list":
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                self.r.rpush(key, *values)
            return
        items = list(entry[1]) if entry is not None else []  # type: ignore[arg-type]
        items += values
        assert self.r.rpush(key, *values) == len(items)
        self.model[key] = ("list", items, entry[2] if entry is not None else -1)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        assert self.r.delete(key) == (key in self.model)
        self.model.pop(key, None)

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
            entry = self.model.get(key)
            if entry is None:
                assert self.r.exists(key) == 0
                continue
            kind, contents, expire = entry
            assert self.r.type(key) == kind.encode()
            if kind == "string":
                assert self.r.get(key) == contents
            else:
                assert self.r.lrange(key, 0, -1) == contents
            assert self.r.pexpiretime(key) == expire
        assert self.r.dbsize() == len(self.model)
        assert self.r.mget("a", "b", "c") == [self._string(key) for key in ("a", "b", "c")]


# Every example starts a server and may restart it: a few long examples in CI, many under HYPOTHESIS_PROFILE=long.
StringsAgainstModel.TestCase.settings = settings(
    settings.default,
    max_examples=6 if settings.default.max_examples <= 100 else settings.default.max_examples // 10,
    stateful_step_count=30,
)
TestStringsAgainstModel = pytest.mark.timeout(600)(StringsAgainstModel.TestCase)
TestStringsAgainstModelInMemory = memory_twin(StringsAgainstModel)
