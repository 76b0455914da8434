"""Pub/sub delivery across clients, RESP2 and RESP3, and the output-buffer limit for slow subscribers."""

from __future__ import annotations

import socket

import pytest
import redis

from conftest import ServerProcess, start_respq, wait_until
from tests.server.helpers import make_client


def _numsub(client: redis.Redis, channel: str) -> int:
    return dict(client.pubsub_numsub(channel))[channel.encode()]


@pytest.mark.parametrize("protocol", [2, 3])
def test_messages_reach_channel_and_pattern_subscribers(
    respq_server: ServerProcess, r: redis.Redis, protocol: int
) -> None:
    subscriber = make_client(respq_server, protocol)
    pubsub = subscriber.pubsub()
    pubsub.subscribe("news")
    pubsub.psubscribe("ne*")
    wait_until(lambda: _numsub(r, "news") == 1 and r.pubsub_numpat() == 1)
    assert r.publish("news", "hello") == 2
    received = []
    while len(received) < 4:
        message = pubsub.get_message(timeout=5)
        assert message is not None
        received.append((message["type"], message["data"]))
    assert ("subscribe", 1) in received
    assert ("psubscribe", 2) in received
    assert ("message", b"hello") in received
    assert ("pmessage", b"hello") in received
    pubsub.close()


def test_commands_refused_in_resp2_subscribed_mode(respq_server: ServerProcess) -> None:
    raw = socket.create_connection(("127.0.0.1", respq_server.port))
    raw.settimeout(10)
    raw.sendall(b"SUBSCRIBE c\r\nLLEN x\r\n")
    expected = (
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
        b"-ERR Can't execute 'llen': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
        b"this context\r\n"
    )
    data = b""
    while len(data) < len(expected):
        data += raw.recv(4096)
    assert data == expected
    raw.close()


def test_slow_subscriber_is_disconnected_at_the_hard_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = start_respq(tmp_path / "data", "--client-output-buffer-limit", "pubsub 64kb 0 0")
    try:
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", server.port))
        raw.sendall(b"SUBSCRIBE flood\r\n")
        publisher = make_client(server)
        wait_until(lambda: _numsub(publisher, "flood") == 1)
        payload = b"x" * 16384
        for _ in range(2000):  # 32 MB offered to a reader that never reads
            if publisher.publish("flood", payload) == 0:
                break
        wait_until(lambda: _numsub(publisher, "flood") == 0)
        assert publisher.ping()
        raw.close()
    finally:
        server.stop()


def _info_stat(client: redis.Redis, name: str) -> int:
    return int(client.info("stats")[name])


@pytest.mark.parametrize("protocol", [2, 3])
def test_shard_subscriptions_in_info_and_client_list(
    respq_server: ServerProcess, r: redis.Redis, protocol: int
) -> None:
    subscriber = make_client(respq_server, protocol)
    pubsub = subscriber.pubsub()
    pubsub.ssubscribe("a", "b")
    pubsub.subscribe("c")
    wait_until(lambda: _info_stat(r, "pubsubshard_channels") == 2)
    assert _info_stat(r, "pubsub_channels") == 1
    line = next(c for c in r.client_list() if c["sub"] == "1")
    assert (line["ssub"], line["psub"], "P" in line["flags"]) == ("2", "0", True)
    pubsub.sunsubscribe("a", "b")
    wait_until(lambda: _info_stat(r, "pubsubshard_channels") == 0)
    pubsub.close()
