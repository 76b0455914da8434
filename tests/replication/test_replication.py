"""Replication: respq replicas of a respq primary, a real redis-server replica of a respq primary, compared key by
key with the primary; the effects of scripts, transactions, blocking pops and XREADGROUP; WAIT; read-only replicas;
partial resync through a proxy that cuts the link."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from conftest import ServerProcess, free_port, require_tool, start_redis, start_respq, wait_until

pytestmark = pytest.mark.timeout(120)


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, protocol=2, socket_timeout=10)


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_respq(tmp_path / "primary")
    try:
        yield server
    finally:
        server.stop()


def populate(r: redis.Redis, tag: str = "") -> None:
    """Every type, with what is hardest to carry: TTLs, stream groups with pending entries and idle consumers, an
    emptied stream, deleted entries."""
    r.rpush(f"list{tag}", *[f"v{i}" for i in range(150)])
    r.set(f"str{tag}", "plain")
    r.set(f"ttl{tag}", "expiring", ex=1000)
    r.hset(f"hash{tag}", mapping={f"f{i}": f"v{i}" for i in range(100)})
    r.sadd(f"set{tag}", *[f"m{i}" for i in range(70)], 5, 7)
    r.zadd(f"zset{tag}", {"a": 1.5, "b": -2, "c": float("inf"), "d": 0.1})
    stream = f"stream{tag}"
    ids = [r.xadd(stream, {"f": str(i), "g": "x"}) for i in range(10)]
    r.xdel(stream, ids[3])
    r.xgroup_create(stream, "g1", id="0")
    r.xgroup_create(stream, "g2", id="$")
    r.xreadgroup("g1", "alice", {stream: ">"}, count=4)
    r.xreadgroup("g1", "bob", {stream: ">"}, count=2)
    r.xack(stream, "g1", ids[0])
    r.xgroup_createconsumer(stream, "g2", "idle")
    empty = f"empty{tag}"
    r.xadd(empty, {"f": "1"}, id="5-1")
    r.xgroup_create(empty, "g", id="0")
    r.xdel(empty, "5-1")


def snapshot(r: redis.Redis) -> dict[bytes, Any]:
    """Each key's type, contents and absolute expiry; streams with their counters, groups and pending entries
    (consumers' seen times excluded: a replica records when it learned of them)."""
    found: dict[bytes, Any] = {}
    for key in r.keys("*"):
        kind = r.type(key)
        if kind == b"list":
            value: Any = r.lrange(key, 0, -1)
        elif kind == b"string":
            value = r.get(key)
        elif kind == b"hash":
            value = r.hgetall(key)
        elif kind == b"set":
            value = sorted(r.smembers(key))
        elif kind == b"zset":
            value = r.zrange(key, 0, -1, withscores=True)
        else:
            info = r.execute_command("XINFO", "STREAM", key, "FULL")
            info = dict(zip(info[::2], info[1::2], strict=True))
            groups = []
            for group in info[b"groups"]:
                group = dict(zip(group[::2], group[1::2], strict=True))
                consumers = sorted(
                    (c[1], c[5], [p[:3] for p in c[7]]) if len(c) > 7 else (c[1],) for c in group[b"consumers"]
                )
                groups.append((group[b"name"], group[b"last-delivered-id"], group[b"entries-read"], group[b"pending"]))
                groups.append(consumers)
            value = (
                info[b"entries"],
                info[b"last-generated-id"],
                info[b"max-deleted-entry-id"],
                info[b"entries-added"],
                groups,
            )
        found[key] = (kind, value, r.pexpiretime(key))
    return found


def wait_synced(primary: redis.Redis, replica: redis.Redis) -> None:
    """The replica applied everything the primary produced (offsets equal), then its data equals the primary's."""
    wait_until(lambda: _offset(replica, "slave_repl_offset") == _offset(primary, "master_repl_offset"), timeout=30)


def _offset(r: redis.Redis, field: str) -> int:
    return int(r.info("replication").get(field, -1))


def follow(replica: redis.Redis, primary_port: int) -> None:
    replica.execute_command("REPLICAOF", "127.0.0.1", primary_port)
    wait_until(lambda: replica.info("replication").get("master_link_status") == "up", timeout=30)


def test_respq_replica_catches_up_and_survives_kills(primary: ServerProcess, tmp_path: Path) -> None:
    p = _client(primary.port)
    populate(p, "a")
    replica = start_respq(tmp_path / "replica")
    try:
        r = _client(replica.port)
        follow(r, primary.port)
        populate(p, "b")  # through the stream
        wait_synced(p, r)
        assert snapshot(r) == snapshot(p)
        for round_ in range(2):  # killed, restarted: a full sync again (replication state is not kept on disk)
            replica.kill()
            replica.stop()
            populate(p, f"c{round_}")
            p.lpop("lista", 3)
            replica = start_respq(tmp_path / "replica")
            r = _client(replica.port)
            follow(r, primary.port)
            wait_synced(p, r)
            assert snapshot(r) == snapshot(p)
        assert r.role()[0] == b"slave"
        assert p.role()[0] == b"master" and len(p.role()[2]) == 1
    finally:
        replica.stop()


def test_effects_of_nondeterministic_commands(primary: ServerProcess, tmp_path: Path) -> None:
    p = _client(primary.port)
    replica = start_respq(tmp_path / "replica")
    try:
        r = _client(replica.port)
        follow(r, primary.port)
        p.set("f", "1.5")
        p.incrbyfloat("f", 0.1)
        p.sadd("s", *range(20))
        p.spop("s", 5)
        p.spop("s")
        p.set("e", "x", px=500_000)
        p.setex("e2", 1000, "y")
        p.expire("f", 2000)
        p.xadd("x", {"a": "1"}, maxlen=3, approximate=True)
        for i in range(10):
            p.xadd("x", {"a": str(i)}, maxlen=3, approximate=True)
        p.xgroup_create("x", "g", id="0")
        p.xreadgroup("g", "c", {"x": ">"}, count=2)
        p.eval("redis.call('rpush', 'sl', 'a'); redis.call('incr', 'cnt'); return 1", 0)
        with p.pipeline(transaction=True) as tx:
            tx.rpush("tl", "x").lpush("tl", "y").incr("cnt")
            tx.execute()
        # A blocked BLPOP and a blocked XREADGROUP served later: the replica gets the pops, the pending entry
        blocked = _client(primary.port)
        results: list[Any] = []
        threads = [
            threading.Thread(target=lambda: results.append(blocked.blpop(["bl"], timeout=20))),
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: p.info("clients")["blocked_clients"] == 1)
        p.rpush("bl", "one", "two")
        for thread in threads:
            thread.join(20)
        assert results == [(b"bl", b"one")]
        blocked2 = _client(primary.port)
        p.xgroup_create("x", "g2", id="$")
        t2 = threading.Thread(
            target=lambda: results.append(blocked2.xreadgroup("g2", "late", {"x": ">"}, count=1, block=20_000))
        )
        t2.start()
        wait_until(lambda: p.info("clients")["blocked_clients"] == 1)
        p.xadd("x", {"late": "1"})
        t2.join(20)
        wait_synced(p, r)
        assert snapshot(r) == snapshot(p)
    finally:
        replica.stop()


def test_migrate_reaches_replicas_as_the_deletions_it_made(primary: ServerProcess, tmp_path: Path) -> None:
    """A replica running MIGRATE itself would send the keys to the target a second time (there: BUSYKEY, and the
    replica keeps them); it gets DEL of the keys the move took, nothing for COPY."""
    p = _client(primary.port)
    target = start_respq(tmp_path / "target")
    replica = start_respq(tmp_path / "replica")
    try:
        r = _client(replica.port)
        follow(r, primary.port)
        p.rpush("moved", "a", "b")
        p.set("copied", "c")
        p.set("stays", "d")
        assert p.migrate("127.0.0.1", target.port, "moved", 0, 5000) == b"OK"
        assert p.migrate("127.0.0.1", target.port, "copied", 0, 5000, copy=True) == b"OK"
        wait_synced(p, r)
        assert sorted(r.keys()) == [b"copied", b"stays"]
        assert _client(target.port).lrange("moved", 0, -1) == [b"a", b"b"]
        assert snapshot(r) == snapshot(p)
    finally:
        replica.stop()
        target.stop()


def test_messages_published_on_the_primary_reach_the_replica_s_subscribers(
    primary: ServerProcess, tmp_path: Path
) -> None:
    p = _client(primary.port)
    replica = start_respq(tmp_path / "replica")
    try:
        r = _client(replica.port)
        follow(r, primary.port)
        subscriber = r.pubsub()
        subscriber.subscribe("news")
        subscriber.execute_command("SSUBSCRIBE", "shard-news")
        wait_until(lambda: r.pubsub_numsub("news") == [(b"news", 1)])
        assert p.publish("news", "hello") == 0  # no subscriber on the primary itself
        assert p.execute_command("SPUBLISH", "shard-news", "sharded") == 0
        received = []
        while len(received) < 4:  # two confirmations, then the messages
            message = subscriber.get_message(timeout=10)
            assert message is not None, received
            received.append((message["type"], message["data"]))
        assert received[2:] == [("message", b"hello"), ("smessage", b"sharded")]
    finally:
        replica.stop()


def test_replica_is_read_only_and_wait_counts_acks(primary: ServerProcess, tmp_path: Path) -> None:
    p = _client(primary.port)
    assert p.execute_command("WAIT", 0, 0) == 0
    assert p.execute_command("WAIT", 1, 100) == 0  # no replica: the timeout's answer
    replica = start_respq(tmp_path / "replica", "--appendfsync", "always")
    try:
        r = _client(replica.port)
        follow(r, primary.port)
        with pytest.raises(redis.ReadOnlyError, match=re.escape("You can't write against a read only replica.")):
            r.set("k", "v")
        p.set("k", "v")
        assert p.execute_command("WAIT", 1, 10_000) == 1
        assert r.get("k") == b"v"  # acknowledged: applied (and synced) on the replica
        assert p.execute_command("WAIT", 2, 200) == 1
        with pytest.raises(redis.ResponseError, match="WAIT cannot be used with replica instances"):
            r.execute_command("WAIT", 1, 0)
        p.config_set("min-replicas-to-write", 2)
        with pytest.raises(redis.ResponseError, match=re.escape("NOREPLICAS Not enough good replicas to write.")):
            p.set("k", "w")
        p.config_set("min-replicas-to-write", 1)
        p.set("k", "w")
        info = p.info("replication")
        assert info["connected_slaves"] == 1 and info["slave0"]["state"] == "online"
        assert r.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
        r.set("k", "mine")  # a master again: writable
        assert r.info("replication")["master_replid2"] == info["master_replid"]
    finally:
        replica.stop()


class _CuttableProxy:
    """A TCP proxy between a replica and its primary whose connections the test can cut."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for sock in (a, b):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.sockets = []

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_partial_resync_after_a_cut(primary: ServerProcess, tmp_path: Path) -> None:
    p = _client(primary.port)
    populate(p, "a")
    proxy = _CuttableProxy(primary.port)
    replica = start_respq(tmp_path / "replica")
    try:
        r = _client(replica.port)
        follow(r, proxy.port)
        wait_synced(p, r)
        proxy.cut()
        wait_until(lambda: r.info("replication")["master_link_status"] == "down", timeout=10)
        populate(p, "b")  # while cut: kept in the primary's backlog
        wait_until(lambda: r.info("replication")["master_link_status"] == "up", timeout=30)
        wait_synced(p, r)
        assert snapshot(r) == snapshot(p)
        assert b"Partial resynchronization request" in primary.output
    finally:
        replica.stop()
        proxy.close()


def test_redis_replica_of_respq(primary: ServerProcess, tmp_path: Path) -> None:
    p = _client(primary.port)
    populate(p, "a")
    # --dir: a replica keeps the RDB it loaded as dump.rdb there
    replica = start_redis("--replicaof", "127.0.0.1", str(primary.port), "--dir", str(tmp_path))
    try:
        r = _client(replica.port)
        wait_until(lambda: r.info("replication").get("master_link_status") == "up", timeout=30)
        populate(p, "b")
        p.eval("redis.call('rpush', 'sl', 'a'); redis.call('incr', 'cnt'); return 1", 0)
        wait_synced(p, r)
        assert snapshot(r) == snapshot(p)
        assert p.execute_command("WAIT", 1, 10_000) == 1
    finally:
        replica.stop()


def test_a_promoted_replica_lets_the_others_continue(primary: ServerProcess, tmp_path: Path) -> None:
    p = _client(primary.port)
    populate(p, "a")
    first, second = start_respq(tmp_path / "first"), start_respq(tmp_path / "second")
    try:
        b, c = _client(first.port), _client(second.port)
        follow(b, primary.port)
        follow(c, primary.port)
        populate(p, "b")
        wait_synced(p, b)
        wait_synced(p, c)
        old_replid = p.info("replication")["master_replid"]
        assert b.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
        info = b.info("replication")
        assert info["role"] == "master" and info["master_replid2"] == old_replid
        follow(c, first.port)  # PSYNC with the old master's ID: the promoted one continues it
        b.rpush("after", "x")
        wait_synced(b, c)
        assert snapshot(c) == snapshot(b)
        assert b"Partial resynchronization request" in first.output
        assert b"Full resync" not in first.output
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize("storage", ["disk", "memory"])
def test_pipelined_runs_reach_the_replica(storage: str, tmp_path: Path) -> None:
    """Consecutive calls on one key run as one operation (dispatch.execute_run): their effects still go out, one by
    one, pops that found nothing excepted."""
    primary = start_respq(tmp_path / "primary", *(("--storage", "memory") if storage == "memory" else ()))
    replica = start_respq(tmp_path / "replica")
    try:
        p, r = _client(primary.port), _client(replica.port)
        follow(r, primary.port)
        with p.pipeline(transaction=False) as pipe:
            for i in range(50):
                pipe.lpush("q", f"v{i}")
            for _ in range(60):
                pipe.rpop("q")
            for i in range(20):
                pipe.rpush("q", f"w{i}")
            for i in range(30):
                pipe.xadd("s", {"i": str(i)})
            for i in range(20):
                pipe.set("k", str(i))
            for i in range(20):
                pipe.sadd("set", str(i))
            pipe.execute()
        wait_synced(p, r)
        assert snapshot(r) == snapshot(p)
    finally:
        replica.stop()
        primary.stop()


def test_sentinel_promotes_the_replica_and_no_acknowledged_write_is_lost(tmp_path: Path) -> None:
    """Redis Sentinel 7.0 (redis-server --sentinel) monitors a respq primary with a respq replica; after kill -9 of
    the primary it promotes the replica through its MULTI/SLAVEOF NO ONE/CONFIG REWRITE/CLIENT KILL/EXEC, and every
    write WAIT confirmed before the kill is there."""
    primary = start_respq(tmp_path / "primary", "--appendfsync", "always")
    replica = start_respq(tmp_path / "replica", "--appendfsync", "always")
    sentinel_port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\n"
        f"sentinel monitor mymaster 127.0.0.1 {primary.port} 1\n"
        "sentinel down-after-milliseconds mymaster 1000\n"
        "sentinel failover-timeout mymaster 10000\n"
    )
    sentinel = ServerProcess([require_tool("redis-server"), str(conf), "--sentinel"], port=sentinel_port)
    try:
        p, r, s = _client(primary.port), _client(replica.port), _client(sentinel_port)
        wait_until(lambda: b"+monitor master" in sentinel.output, timeout=30)  # a sentinel logs no ready line
        follow(r, primary.port)
        wait_until(lambda: len(s.execute_command("SENTINEL", "REPLICAS", "mymaster")) == 1, timeout=30)
        for i in range(100):
            p.rpush("jobs", f"job{i}")
        p.xadd("events", {"n": "1"})
        assert p.execute_command("WAIT", 1, 10_000) == 1
        primary.kill()
        promoted = str(replica.port).encode()
        wait_until(lambda: s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")[1] == promoted, 60)
        wait_until(lambda: r.info("replication")["role"] == "master", timeout=30)
        assert r.llen("jobs") == 100 and r.xlen("events") == 1
        r.rpush("jobs", "after")  # writable once promoted
    finally:
        sentinel.stop()
        replica.stop()
        primary.stop()


def test_respq_follows_an_empty_redis_and_refuses_an_rdb_with_keys(tmp_path: Path) -> None:
    master = start_redis("--dir", str(tmp_path))  # diskless sync after 5 s: newlines keep the link alive meanwhile
    replica = start_respq(tmp_path / "replica")
    try:
        m, r = _client(master.port), _client(replica.port)
        m.set("k", "v")
        r.execute_command("REPLICAOF", "127.0.0.1", master.port)
        wait_until(lambda: b"the master sent an RDB holding data" in replica.output, timeout=30)
        assert r.info("replication")["master_link_status"] == "down"
        m.flushall()  # an empty master: its RDB has no keys, the stream follows
        wait_until(lambda: r.info("replication")["master_link_status"] == "up", timeout=30)
        m.rpush("q", "a", "b")
        m.set("s", "v", px=100_000)
        wait_synced(m, r)
        assert snapshot(r) == snapshot(m)
    finally:
        replica.stop()
        master.stop()
