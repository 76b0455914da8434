"""COPY, RENAME, RENAMENX, MOVE, SWAPDB, SORT ... STORE, DEL and expiry over lists, streams (with consumer
groups), strings and hashes against a respq subprocess and a Python model, with clean restarts and kill -9 in
between: replies and contents always match the model (under appendfsync always every acknowledged command survives)."""

from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import ServerProcess, memory_twin, start_respq

KEYS = st.sampled_from(["a", "b", "c"])
DBS = st.sampled_from([0, 1])
VALUES = st.binary(min_size=0, max_size=8)
TTL = 100_000  # seconds: far enough that nothing expires during a run


@dataclass
class Value:
    kind: str  # "list", "stream", "string" or "hash"
    items: Any = field(default_factory=list)  # list values, (id, [field, value]) entries, bytes, or a dict
    ttl: bool = False
    last: int = 0  # streams: the last ID's milliseconds (IDs are "<n>-0")
    groups: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (last delivered ms, pending)


class GenericAgainstModel(RuleBasedStateMachine):
    storage_args: tuple[str, ...] = ()  # MEMORY_STORAGE in the twin run in memory (memory_twin)

    def __init__(self) -> None:
        super().__init__()
        self.dbs: list[dict[str, Value]] = [{}, {}]
        self.data_dir = Path(tempfile.mkdtemp(prefix="respq-generic-model-"))
        self.server: ServerProcess | None = None
        self.clients: list[redis.Redis] = []

    @initialize()
    def start(self) -> None:
        self._start()

    def _start(self) -> None:
        self.server = start_respq(self.data_dir / "data", *self.storage_args, "--appendfsync", "always")
        self.clients = [redis.Redis(port=self.server.port, db=db, socket_timeout=10) for db in (0, 1)]

    def teardown(self) -> None:
        for client in self.clients:
            client.close()
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _error(self, call: Any) -> str | None:
        try:
            call()
        except redis.ResponseError as error:
            return str(error)
        return None

    # -- values

    @rule(db=DBS, key=KEYS, values=st.lists(VALUES, min_size=1, max_size=3))
    def rpush(self, db: int, key: str, values: list[bytes]) -> None:
        value = self.dbs[db].get(key)
        if value is not None and value.kind != "list":
            assert self._error(lambda: self.clients[db].rpush(key, *values)) is not None
            return
        value = self.dbs[db].setdefault(key, Value("list"))
        value.items += values
        assert self.clients[db].rpush(key, *values) == len(value.items)

    @rule(db=DBS, key=KEYS, count=st.integers(1, 3))
    def lpop(self, db: int, key: str, count: int) -> None:
        value = self.dbs[db].get(key)
        if value is None or value.kind != "list":
            return
        assert self.clients[db].lpop(key, count) == value.items[:count]
        del value.items[:count]
        if not value.items:
            del self.dbs[db][key]

    @rule(db=DBS, key=KEYS, payload=VALUES)
    def xadd(self, db: int, key: str, payload: bytes) -> None:
        value = self.dbs[db].get(key)
        if value is not None and value.kind != "stream":
            return
        value = self.dbs[db].setdefault(key, Value("stream"))
        value.last += 1
        value.items.append((f"{value.last}-0".encode(), [b"f", payload]))
        assert self.clients[db].xadd(key, {b"f": payload}, id=f"{value.last}-0") == f"{value.last}-0".encode()

    @rule(db=DBS, key=KEYS, payload=VALUES, keep_ttl=st.booleans())
    def set_string(self, db: int, key: str, payload: bytes, keep_ttl: bool) -> None:
        old = self.dbs[db].get(key)
        assert self.clients[db].set(key, payload, keepttl=keep_ttl)
        self.dbs[db][key] = Value("string", payload, ttl=keep_ttl and old is not None and old.ttl)

    @rule(db=DBS, key=KEYS, name=st.sampled_from([b"f", b"g"]), payload=VALUES)
    def hset(self, db: int, key: str, name: bytes, payload: bytes) -> None:
        value = self.dbs[db].get(key)
        if value is not None and value.kind != "hash":
            return
        value = self.dbs[db].setdefault(key, Value("hash", {}))
        assert self.clients[db].hset(key, name, payload) == (name not in value.items)
        value.items[name] = payload

    @rule(db=DBS, key=KEYS, group=st.sampled_from(["g", "h"]))
    def group_reads_one(self, db: int, key: str, group: str) -> None:
        value = self.dbs[db].get(key)
        if value is None or value.kind != "stream":
            return
        client = self.clients[db]
        if group not in value.groups:
            client.xgroup_create(key, group, "0")
            value.groups[group] = (0, 0)
        delivered, pending = value.groups[group]
        after = [entry for entry in value.items if int(entry[0].split(b"-")[0]) > delivered]
        got = client.xreadgroup(group, "consumer", {key: ">"}, count=1)
        if not after:
            assert not got
            return
        entry_id, fields = after[0]
        assert got == [[key.encode(), [(entry_id, dict(zip(fields[::2], fields[1::2], strict=True)))]]]
        value.groups[group] = (int(after[0][0].split(b"-")[0]), pending + 1)

    # -- generic commands

    @rule(db=DBS, src=KEYS, dst_db=DBS, dst=KEYS, replace=st.booleans())
    def copy(self, db: int, src: str, dst_db: int, dst: str, replace: bool) -> None:
        client = self.clients[db]
        if (db, src) == (dst_db, dst):
            assert self._error(lambda: client.copy(src, dst, dst_db, replace)) is not None
            return
        value = self.dbs[db].get(src)
        done = value is not None and (replace or dst not in self.dbs[dst_db])
        assert client.copy(src, dst, dst_db, replace) == done
        if done:
            self.dbs[dst_db][dst] = copy.deepcopy(value)  # type: ignore[arg-type]

    @rule(db=DBS, src=KEYS, dst=KEYS, only_if_new=st.booleans())
    def rename(self, db: int, src: str, dst: str, only_if_new: bool) -> None:
        client = self.clients[db]
        keys = self.dbs[db]
        if src not in keys:
            assert self._error(lambda: client.renamenx(src, dst) if only_if_new else client.rename(src, dst))
            return
        if only_if_new:
            done = dst not in keys
            assert client.renamenx(src, dst) == done
        else:
            done = True
            assert client.rename(src, dst)
        if done and src != dst:
            keys[dst] = keys.pop(src)

    @rule(db=DBS, key=KEYS)
    def move(self, db: int, key: str) -> None:
        other = 1 - db
        done = key in self.dbs[db] and key not in self.dbs[other]
        assert self.clients[db].move(key, other) == done
        if done:
            self.dbs[other][key] = self.dbs[db].pop(key)

    @rule()
    def swapdb(self) -> None:
        assert self.clients[0].swapdb(0, 1)
        self.dbs.reverse()

    @rule(db=DBS, src=KEYS, dst=KEYS, desc=st.booleans())
    def sort_store(self, db: int, src: str, dst: str, desc: bool) -> None:
        client = self.clients[db]
        value = self.dbs[db].get(src)
        if value is not None and value.kind != "list":
            assert self._error(lambda: client.sort(src, store=dst, alpha=True, desc=desc)) is not None
            return
        items = sorted(value.items if value is not None else [], reverse=desc)
        assert client.sort(src, store=dst, alpha=True, desc=desc) == len(items)
        if items:
            self.dbs[db][dst] = Value("list", items)
        else:
            self.dbs[db].pop(dst, None)

    @rule(db=DBS, key=KEYS)
    def delete(self, db: int, key: str) -> None:
        assert self.clients[db].delete(key) == (self.dbs[db].pop(key, None) is not None)

    @rule(db=DBS, key=KEYS, persist=st.booleans())
    def expiry(self, db: int, key: str, persist: bool) -> None:
        value = self.dbs[db].get(key)
        client = self.clients[db]
        if persist:
            assert client.persist(key) == (value is not None and value.ttl)
            if value is not None:
                value.ttl = False
        else:
            assert client.expire(key, TTL) == (value is not None)
            if value is not None:
                value.ttl = True

    @precondition(lambda self: self.server is not None)
    @rule(kill=st.booleans())
    def restart(self, kill: bool) -> None:
        assert self.server is not None
        for client in self.clients:
            client.close()
        if kill:
            self.server.stop()  # SIGKILL to the process group
        else:
            assert self.server.terminate() == 0
        self._start()
        if self.storage_args:  # in memory a restart starts empty
            self.dbs = [{}, {}]

    @invariant()
    def contents_match(self) -> None:
        if not self.clients:
            return
        for db, keys in enumerate(self.dbs):
            client = self.clients[db]
            assert client.dbsize() == len(keys)
            for key, value in keys.items():
                assert client.type(key) == value.kind.encode()
                ttl = client.ttl(key)
                assert (ttl > 0) if value.ttl else ttl == -1
                if value.kind == "list":
                    assert client.lrange(key, 0, -1) == value.items
                    continue
                if value.kind == "string":
                    assert client.get(key) == value.items
                    continue
                if value.kind == "hash":
                    assert client.hgetall(key) == value.items
                    continue
                assert [(entry_id, fields) for entry_id, fields in client.xrange(key)] == [
                    (entry_id, dict(zip(fields[::2], fields[1::2], strict=True))) for entry_id, fields in value.items
                ]
                groups = {
                    group["name"].decode(): (int(group["last-delivered-id"].split(b"-")[0]), group["pending"])
                    for group in client.xinfo_groups(key)
                }
                assert groups == value.groups


# Every example starts a server and may restart it: a few long examples in CI, many under HYPOTHESIS_PROFILE=long.
GenericAgainstModel.TestCase.settings = settings(
    settings.default,
    max_examples=6 if settings.default.max_examples <= 100 else settings.default.max_examples // 10,
    stateful_step_count=30,
)
TestGenericAgainstModel = pytest.mark.timeout(600)(GenericAgainstModel.TestCase)
TestGenericAgainstModelInMemory = memory_twin(GenericAgainstModel)
