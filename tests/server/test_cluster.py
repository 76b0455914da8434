"""Cluster mode with a static slot map: three respq nodes against a real three-node redis-server 7.0 cluster for the
replies, redis-py's RedisCluster spreading queues over them, a map change under a blocked client, a restart."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from conftest import ServerProcess, free_port, require_tool, start_redis, start_respq, wait_until
from respq import cluster_admin
from respq.cluster_admin import split_slots
from tests.server.helpers import blocked_clients, in_thread

pytestmark = pytest.mark.timeout(120)

IDS = ["a" * 40, "b" * 40, "c" * 40]
RANGES = ["0-5460", "5461-10922", "10923-16383"]  # what redis-cli --cluster create gives three masters


def node_map(ports: list[int], ranges: list[str] = RANGES) -> str:
    return "\n".join(f"{node} 127.0.0.1 {port} master - {r}" for node, port, r in zip(IDS, ports, ranges, strict=True))


def push_map(ports: list[int], text: str, version: int, *force: str) -> None:
    for port in ports:
        with redis.Redis(port=port) as client:
            assert client.execute_command("CLUSTERX", "SETNODES", text, version, *force) == b"OK"


def start_nodes(root: Path, count: int = 3) -> list[ServerProcess]:
    return [start_respq(root / f"node{i}", "--cluster-enabled", "yes") for i in range(count)]


@pytest.fixture(scope="module")
def started_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    servers = start_nodes(tmp_path_factory.mktemp("respq-cluster"))
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def nodes(started_nodes: list[ServerProcess]) -> list[ServerProcess]:
    """Three respq nodes, empty, with the map version 1 (forced over whatever a test before pushed)."""
    ports = [server.port for server in started_nodes]
    push_map(ports, node_map(ports), 1, "FORCE")
    for port in ports:
        with redis.Redis(port=port) as client:
            client.flushall()
    return started_nodes


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Three redis-server 7.0 masters joined by redis-cli --cluster create (slots 0-5460, 5461-10922, ...)."""
    cli = require_tool("redis-cli")
    root = tmp_path_factory.mktemp("redis-cluster")
    servers: list[ServerProcess] = []
    try:
        for index in range(3):
            directory = root / str(index)
            directory.mkdir()
            servers.append(
                start_redis("--cluster-enabled", "yes", "--dir", str(directory), "--cluster-port", str(free_port()))
            )
        addresses = [f"127.0.0.1:{server.port}" for server in servers]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-yes"], check=True, capture_output=True, timeout=60
        )

        def settled() -> bool:
            for server in servers:
                with redis.Redis(port=server.port) as client:
                    info = client.execute_command("CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info or "cluster_known_nodes:3" not in info:
                        return False
            return True

        wait_until(settled, timeout=30, interval=0.05)
        yield servers
    finally:
        for server in servers:
            server.stop()


# ---- replies compared with Redis ---------------------------------------------------------------------------------
def raw_replies(port: int, commands: list[list[str]], protocol: int) -> list[bytes]:
    """Each command's raw reply bytes (commands sent one at a time over one connection)."""
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        if protocol == 3:
            sock.sendall(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
            _read_reply(reader)
        for args in commands:
            sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
            replies.append(_read_reply(reader))
    return replies


def _read_reply(reader) -> bytes:  # type: ignore[no-untyped-def]
    line = reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind in (b"$", b"=", b"!"):
        return line + (reader.read(int(rest) + 2) if int(rest) >= 0 else b"")
    if kind in (b"*", b"~", b">"):
        return line + b"".join(_read_reply(reader) for _ in range(max(int(rest), 0)))
    if kind in (b"%", b"|"):
        return line + b"".join(_read_reply(reader) for _ in range(2 * int(rest)))
    return line


def masked(reply: bytes, ids: list[str], ports: list[int]) -> bytes:
    """Node ids, ports and the bus port as placeholders of the same length; CLUSTER NODES' times and epochs
    masked and its lines sorted (Redis lists nodes in hash order); CLUSTER INFO's message counters dropped (no bus)."""
    for index, node_id in enumerate(ids):
        reply = reply.replace(node_id.encode(), (b"ID%d" % index).ljust(40, b"-"))
    for index, port in enumerate(ports):
        reply = re.sub(rb"(?<![0-9])%d(?![0-9])" % port, b"%05d" % index, reply)
    reply = re.sub(rb"@[0-9]+ ", b"@CPORT ", reply)
    reply = re.sub(rb"(master|slave) - [0-9]+ [0-9]+ [0-9]+ connected", rb"\1 - PING PONG EPOCH connected", reply)
    reply = re.sub(rb"cluster_stats_messages_\w+:[0-9]+\r\n", b"", reply)
    reply = re.sub(rb"(cluster_current_epoch|cluster_my_epoch):[0-9]+", rb"\1:EPOCH", reply)
    if b"connected" in reply or b"cluster_state" in reply:  # a text reply: compare its lines, not its length header
        kind, body = reply[:1], reply.split(b"\n", 1)[1]
        verbatim = body.startswith(b"txt:")  # RESP3's verbatim string: its format first
        reply = kind + (b"txt:" if verbatim else b"") + b"\n".join(sorted(body.removeprefix(b"txt:").split(b"\n")))
    return reply


REPLIES = [
    ["CLUSTER", "SLOTS"],
    ["CLUSTER", "NODES"],
    ["CLUSTER", "INFO"],
    ["CLUSTER", "MYID"],
    ["CLUSTER", "KEYSLOT", "{user1000}.following"],
    ["CLUSTER", "COUNTKEYSINSLOT", "16384"],
    ["CLUSTER", "GETKEYSINSLOT", "0", "-1"],
    ["CLUSTER", "NOSUCH"],
    ["READONLY"],
    ["READWRITE"],
    ["ASKING"],
    ["LPUSH", "foo", "x"],  # slot 12182: the third node's
    ["MGET", "a", "b"],
    ["BLMOVE", "a", "b", "LEFT", "RIGHT", "0"],
    ["XREAD", "STREAMS", "s1", "s2", "0", "0"],
    ["EVAL", "return 1", "2", "a", "b"],
    ["LPUSH", "b", "x"],
    ["DEL", "b"],
    ["SELECT", "1"],
    ["SELECT", "0"],
    ["SWAPDB", "0", "1"],
    ["MOVE", "b", "1"],  # the key's slot is served here: MOVE itself is refused
    ["COPY", "b", "{b}c", "DB", "1"],
    ["MULTI"],
    ["LPUSH", "b", "x"],
    ["LPUSH", "foo", "x"],
    ["EXEC"],
    ["MULTI"],
    ["LPUSH", "b", "x"],
    ["LPUSH", "c", "x"],  # both served here, in different slots: EXEC refuses the transaction
    ["EXEC"],
    ["MULTI"],
    ["LPUSH", "b", "x"],
    ["LPOP", "{b}2"],
    ["EXEC"],
    ["DEL", "b"],
    # the slot index follows keys as they come and go ("b" and "{b}..." share slot 3300)
    ["LPUSH", "b", "x"],
    ["CLUSTER", "COUNTKEYSINSLOT", "3300"],
    ["CLUSTER", "GETKEYSINSLOT", "3300", "10"],
    ["CLUSTER", "GETKEYSINSLOT", "3300", "0"],
    ["SET", "{b}2", "x"],
    ["RENAME", "{b}2", "{b}3"],
    ["CLUSTER", "COUNTKEYSINSLOT", "3300"],
    ["DEL", "b", "{b}3"],
    ["CLUSTER", "COUNTKEYSINSLOT", "3300"],
    ["CLUSTER", "GETKEYSINSLOT", "3300", "10"],
    ["INFO", "CLUSTER"],
    # scripts: keys touched must be served here and share one slot ("b" 3300 and "f" 3168 are this node's)
    ["EVAL", "return redis.call('get','a')", "0"],
    ["EVAL", "return redis.call('get',KEYS[1])", "1", "a"],
    ["EVAL", "redis.call('get','b') return redis.call('get','f')", "0"],
    ["EVAL", "return redis.call('get','f')", "1", "b"],
    ["EVAL", "return redis.call('get','{b}x')", "1", "b"],
    ["EVAL", "return redis.call('mget','b','f')", "0"],
    ["EVAL", "#!lua flags=allow-cross-slot-keys\nredis.call('get','b') return redis.call('get','f')", "0"],
    ["EVAL", "#!lua flags=allow-cross-slot-keys\nreturn redis.call('get','a')", "0"],
    ["EVAL", "#!lua\nredis.call('get','b') return redis.call('get','f')", "0"],
    ["EVAL", "#!lua\nreturn redis.call('get','f')", "1", "b"],
    ["EVAL", "#!lua flags=no-cluster\nreturn 1", "0"],
    # shard channels route by their slot like keys
    ["SPUBLISH", "foo", "x"],
    ["SPUBLISH", "b", "x"],
    ["SSUBSCRIBE", "b", "a"],
    ["SSUBSCRIBE", "foo"],
    ["SUNSUBSCRIBE", "foo"],
    ["EVAL", "return redis.call('spublish','foo','x')", "0"],
    ["MULTI"],
    ["SPUBLISH", "b", "x"],
    ["SPUBLISH", "foo", "x"],
    ["EXEC"],
    ["SSUBSCRIBE", "b"],
    ["SUNSUBSCRIBE", "b"],
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_replies_match_a_redis_cluster(
    nodes: list[ServerProcess], redis_cluster: list[ServerProcess], protocol: int
) -> None:
    with redis.Redis(port=redis_cluster[0].port) as client:
        redis_ids = [client.execute_command("CLUSTER", "MYID").decode()]
    for server in redis_cluster[1:]:
        with redis.Redis(port=server.port) as client:
            redis_ids.append(client.execute_command("CLUSTER", "MYID").decode())
    expected = raw_replies(redis_cluster[0].port, REPLIES, protocol)
    actual = raw_replies(nodes[0].port, REPLIES, protocol)
    for args, want, got in zip(REPLIES, expected, actual, strict=True):
        want = masked(want, redis_ids, [server.port for server in redis_cluster])
        got = masked(got, IDS, [server.port for server in nodes])
        assert got == want, f"{' '.join(args)}: respq {got!r} != redis {want!r}"


def _shards(port: int, ids: list[str], ports: list[int]) -> list[str]:
    with redis.Redis(port=port, protocol=3) as client:
        shards = client.execute_command("CLUSTER", "SHARDS")
    return sorted(masked(repr(shard).encode(), ids, ports).decode() for shard in shards)


def test_shards_match_a_redis_cluster(nodes: list[ServerProcess], redis_cluster: list[ServerProcess]) -> None:
    redis_ports = [server.port for server in redis_cluster]
    redis_ids = []
    for port in redis_ports:
        with redis.Redis(port=port) as client:
            redis_ids.append(client.execute_command("CLUSTER", "MYID").decode())
    assert _shards(nodes[0].port, IDS, [s.port for s in nodes]) == _shards(redis_ports[0], redis_ids, redis_ports)


# ---- a cluster client over respq nodes ---------------------------------------------------------------------------
def test_redis_py_cluster_spreads_and_drains_queues_exactly_once(nodes: list[ServerProcess], long_mode: bool) -> None:
    queues, streams = (10_000, 1000) if long_mode else (1000, 100)  # --long: the sizes the cluster issue names
    cluster = RedisCluster(host="127.0.0.1", port=nodes[0].port, socket_timeout=10)
    try:
        for i in range(queues):
            cluster.rpush(f"q:{i}", f"{i}:a", f"{i}:b")
        for i in range(streams):
            cluster.xgroup_create(f"s:{i}", "g", id="0", mkstream=True)
            cluster.xadd(f"s:{i}", {"n": i})
        counts = []
        for server in nodes:  # every key on its slot's owner only
            with redis.Redis(port=server.port) as direct:
                counts.append(direct.dbsize())
        assert sum(counts) == queues + streams and min(counts) > (queues + streams) // 4
        popped = [cluster.blpop([f"q:{i}"], timeout=1) for i in range(queues) for _ in range(2)]
        values = [value.decode() for _, value in popped]  # type: ignore[misc]
        assert sorted(values) == sorted(f"{i}:{s}" for i in range(queues) for s in "ab")
        read = []
        for i in range(streams):
            reply = cluster.xreadgroup("g", "c", {f"s:{i}": ">"}, count=10, block=1000)
            for _, entries in reply:
                for entry_id, fields in entries:
                    read.append(int(fields[b"n"]))
                    cluster.xack(f"s:{i}", "g", entry_id)
        assert sorted(read) == list(range(streams))
        assert all(cluster.llen(f"q:{i}") == 0 for i in range(0, queues, 97))
    finally:
        cluster.close()


def test_map_change_redirects_a_blocked_client(nodes: list[ServerProcess]) -> None:
    ports = [server.port for server in nodes]
    key = "foo"  # slot 12182, the third node's
    waiter = redis.Redis(port=ports[2], socket_timeout=30)
    watcher = redis.Redis(port=ports[2])
    try:
        thread, result = in_thread(waiter.blpop, [key], 0)
        wait_until(lambda: blocked_clients(watcher) == 1)
        moved = ["0-5460", "5461-10922 12182", "10923-12181 12183-16383"]
        with pytest.raises(redis.ResponseError, match="Invalid cluster version"):
            watcher.execute_command("CLUSTERX", "SETNODES", node_map(ports, moved), 0)
        push_map(ports, node_map(ports, moved), 2)
        thread.join(10)
        assert isinstance(result.get("error"), redis.exceptions.ResponseError)
        assert str(result["error"]) == f"12182 127.0.0.1:{ports[1]}"  # redis-py strips the MOVED prefix
        assert blocked_clients(watcher) == 0
    finally:
        waiter.close()
        watcher.close()


def test_keys_of_a_slot_moved_away_are_hidden_not_removed(nodes: list[ServerProcess]) -> None:
    ports = [server.port for server in nodes]
    with redis.Redis(port=ports[2]) as third:
        third.rpush("{foo}q", "job")  # slot 12182, which moves to the second node
        third.rpush("y", "other")  # slot 12222, which stays
        moved = ["0-5460", "5461-10922 12182", "10923-12181 12183-16383"]
        push_map(ports, node_map(ports, moved), 2)
        assert third.dbsize() == 1 and third.keys("*") == [b"y"] and third.scan(0, count=100) == (0, [b"y"])
        assert third.randomkey() == b"y" and third.info("keyspace")["db0"]["keys"] == 1
        # counted apart (a field Redis never shows, as it keeps no such keys), and not in the slot's count
        assert third.info("cluster") == {"cluster_enabled": 1, "cluster_unserved_keys": 1}
        assert third.execute_command("CLUSTER", "COUNTKEYSINSLOT", 12182) == 0
        assert third.execute_command("CLUSTER", "GETKEYSINSLOT", 12182, 10) == []
        with pytest.raises(redis.ResponseError, match=f"12182 127.0.0.1:{ports[1]}"):
            third.lrange("{foo}q", 0, -1)
        push_map(ports, node_map(ports), 3)  # the slot comes back: its keys were kept
        assert third.dbsize() == 2 and third.lrange("{foo}q", 0, -1) == [b"job"]
        assert third.info("cluster") == {"cluster_enabled": 1}
        assert third.execute_command("CLUSTER", "COUNTKEYSINSLOT", 12182) == 1
        assert third.execute_command("CLUSTER", "GETKEYSINSLOT", 12182, 10) == [b"{foo}q"]


def test_restart_keeps_the_map_and_the_data(tmp_path: Path) -> None:
    servers = start_nodes(tmp_path, 1)
    port = servers[0].port
    text = f"{IDS[0]} 127.0.0.1 {port} master - 0-16383"
    try:
        with redis.Redis(port=port) as client:
            client.execute_command("CLUSTERX", "SETNODES", text, 7)
            client.rpush("q", "job")
        servers[0].terminate()
        servers[0] = start_respq(tmp_path / "node0", "--cluster-enabled", "yes", port=port)
        with redis.Redis(port=port) as client:
            assert client.execute_command("CLUSTERX", "VERSION") == 7
            assert client.execute_command("CLUSTER", "MYID") == IDS[0].encode()
            assert client.lrange("q", 0, -1) == [b"job"]
    finally:
        servers[0].stop()


def test_publish_reaches_subscribers_of_every_node(nodes: list[ServerProcess]) -> None:
    clients = [redis.Redis(port=server.port, socket_timeout=10) for server in nodes]
    subscribers = [client.pubsub() for client in clients[1:]]
    try:
        subscribers[0].subscribe("events")
        subscribers[1].psubscribe("ev*")
        for subscriber in subscribers:
            assert subscriber.get_message(timeout=10)["type"] in ("subscribe", "psubscribe")  # type: ignore[index]
        assert clients[0].publish("events", "one") == 0  # the reply counts this node's receivers, as in Redis
        assert clients[0].publish("events", "two") == 0
        received = [[], []]  # type: list[list[bytes]]
        for subscriber, got in zip(subscribers, received, strict=True):
            while len(got) < 2:
                message = subscriber.get_message(timeout=10)
                assert message is not None, f"received only {got}"
                got.append(message["data"])
        assert received == [[b"one", b"two"], [b"one", b"two"]]
        assert clients[1].publish("events", "three") == 1  # delivered here, and forwarded to the others
        message = subscribers[1].get_message(timeout=10)
        assert message is not None and message["data"] == b"three"
    finally:
        for subscriber in subscribers:
            subscriber.close()
        for client in clients:
            client.close()


def test_shard_channels_stay_on_their_node_and_leave_with_their_slot(nodes: list[ServerProcess]) -> None:
    ports = [server.port for server in nodes]
    clients = [redis.Redis(port=port, socket_timeout=10) for port in ports]
    subscriber = clients[0].pubsub()
    try:
        subscriber.ssubscribe("b", "{b}x")  # slot 3300, the first node's
        for _ in range(2):
            assert subscriber.get_message(timeout=10)["type"] == "ssubscribe"  # type: ignore[index]
        with pytest.raises(redis.ResponseError, match=f"3300 127.0.0.1:{ports[0]}"):
            clients[1].spublish("b", "elsewhere")  # MOVED, never forwarded like PUBLISH
        assert clients[0].spublish("b", "here") == 1
        assert subscriber.get_message(timeout=10)["data"] == b"here"  # type: ignore[index]
        for port in ports:  # slot 3300 to the second node
            with redis.Redis(port=port) as client:
                client.execute_command("CLUSTERX", "SETSLOT", 3300, "NODE", IDS[1], 2)
        gone = [subscriber.get_message(timeout=10) for _ in range(2)]
        assert [(m["type"], m["channel"], m["data"]) for m in gone] == [  # type: ignore[index]
            ("sunsubscribe", b"b", 1),
            ("sunsubscribe", b"{b}x", 0),
        ]
        assert clients[0].execute_command("PUBSUB", "SHARDNUMSUB", "b") == [b"b", 0]
    finally:
        subscriber.close()
        for client in clients:
            client.close()


def _pending(client: redis.Redis, key: str) -> list[tuple[bytes, bytes, int]]:
    """XPENDING's entries without their age (it grows while the test runs)."""
    entries = client.xpending_range(key, "g", "-", "+", 10)
    return [(entry["message_id"], entry["consumer"], entry["times_delivered"]) for entry in entries]


def test_move_slot_copies_queues_and_groups_then_flips_the_map(nodes: list[ServerProcess]) -> None:
    ports = [server.port for server in nodes]
    slot = 3300  # "{b}...": the first node's, moved to the second
    source, target = redis.Redis(port=ports[0]), redis.Redis(port=ports[1])
    cluster = RedisCluster(host="127.0.0.1", port=ports[0])
    try:
        cluster.rpush("{b}q", *range(5))
        cluster.pexpire("{b}q", 600_000)
        cluster.rpush("{b}q2", "x")
        for n in range(4):
            cluster.xadd("{b}s", {"n": n}, id=f"1-{n + 1}")
        cluster.xgroup_create("{b}s", "g", id="0")
        cluster.xreadgroup("g", "alice", {"{b}s": ">"}, count=3)  # 3 pending, one entry still new
        cluster.xack("{b}s", "g", "1-1")
        before = {
            "lists": [source.lrange(key, 0, -1) for key in ("{b}q", "{b}q2")],
            "stream": source.execute_command("XINFO", "STREAM", "{b}s", "FULL"),
            "pending": _pending(source, "{b}s"),
        }
        out = io.StringIO()
        assert cluster_admin.run(["move-slot", str(slot), f"127.0.0.1:{ports[1]}"], out) == 0, out.getvalue()
        assert "3 keys copied" in out.getvalue() and "3 removed" in out.getvalue()
        after = {
            "lists": [target.lrange(key, 0, -1) for key in ("{b}q", "{b}q2")],
            "stream": target.execute_command("XINFO", "STREAM", "{b}s", "FULL"),
            "pending": _pending(target, "{b}s"),
        }
        assert after == before
        assert 0 < target.pttl("{b}q") <= 600_000 and target.pttl("{b}q2") == -1
        assert source.dbsize() == 0 and source.execute_command("CLUSTERX", "DELKEYSINSLOT", slot) == 0
        with pytest.raises(redis.ResponseError, match="served or imported by this node"):
            target.execute_command("CLUSTERX", "DELKEYSINSLOT", slot)
        for port in ports:
            with redis.Redis(port=port) as client:
                assert client.execute_command("CLUSTERX", "VERSION") == 2
        with pytest.raises(redis.ResponseError, match=f"{slot} 127.0.0.1:{ports[1]}"):
            source.lpop("{b}q")
        # The cluster client, whose map still gives the slot to the first node, follows MOVED to the new owner.
        assert cluster.lpop("{b}q") == b"0"
        reply = cluster.xreadgroup("g", "bob", {"{b}s": ">"})
        assert reply == [[b"{b}s", [(b"1-4", {b"n": b"3"})]]]
        assert cluster.xack("{b}s", "g", "1-2", "1-3", "1-4") == 3
        assert cluster.xpending("{b}s", "g")["pending"] == 0
    finally:
        cluster.close()
        source.close()
        target.close()


def test_kill_9_of_one_node_leaves_the_others_slots_working(nodes: list[ServerProcess]) -> None:
    ports = [server.port for server in nodes]
    cluster = RedisCluster(host="127.0.0.1", port=ports[0], socket_timeout=5)
    try:
        queues = [f"q:{i}" for i in range(60)]
        owner = {queue: cluster.keyslot(queue) // 5461 for queue in queues}  # the map gives ~5461 slots to each node
        for queue in queues:
            cluster.rpush(queue, "before")
        victim = nodes[1]
        victim.kill()
        victim.proc.wait(10)
        survivors = [queue for queue in queues if owner[queue] != 1]
        for _ in range(3):  # every call on the other nodes' slots succeeds while the node is dead
            for queue in survivors:
                cluster.rpush(queue, "during")
        assert all(cluster.llen(queue) == 4 for queue in survivors)
        assert nodes[0].alive() and nodes[2].alive()
        directory = victim.argv[victim.argv.index("--dir") + 1]
        nodes[1] = start_respq(Path(directory), "--cluster-enabled", "yes", port=ports[1])  # its map and data back
        with redis.Redis(port=ports[1]) as restarted:
            assert restarted.execute_command("CLUSTERX", "VERSION") == 1
        assert all(cluster.lrange(queue, 0, -1) == [b"before"] for queue in queues if owner[queue] == 1)
    finally:
        cluster.close()


def test_respq_cluster_create_splits_the_slots_and_pushes_the_map(nodes: list[ServerProcess]) -> None:
    assert split_slots(3) == [(0, 5460), (5461, 10922), (10923, 16383)]  # as redis-cli --cluster create
    assert split_slots(5) == [(0, 3276), (3277, 6553), (6554, 9829), (9830, 13106), (13107, 16383)]
    addresses = [f"127.0.0.1:{server.port}" for server in nodes]
    done = subprocess.run(
        [sys.executable, "-m", "respq", "cluster", "create", *addresses], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    for server, node in zip(nodes, IDS, strict=True):
        with redis.Redis(port=server.port) as client:
            assert client.execute_command("CLUSTERX", "VERSION") == 2  # one past the map the nodes had
            assert client.execute_command("CLUSTER", "MYID") == node.encode()  # ids already set are kept
            slots = client.execute_command("CLUSTER", "SLOTS")
            assert [(start, end, entry[1]) for start, end, entry in slots] == [
                (0, 5460, nodes[0].port),
                (5461, 10922, nodes[1].port),
                (10923, 16383, nodes[2].port),
            ]
