"""redis-py 8 against the server over TCP: sync and asyncio clients, RESP2 and RESP3.

Sync clients block, so these are plain tests (a sync client inside a Trio test would block the Trio loop it needs);
asyncio runs under asyncio.run() inside a plain test for the same reason.
"""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

import respq
import respq.speedups
from conftest import wait_until

PROTOCOLS = [2, 3]
# A server that stops answering fails the test in seconds instead of at the global pytest timeout.
SOCKET_TIMEOUT = 10.0


def connect(port: int, protocol: int, **options: object) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=port, protocol=protocol, decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT, **options,
    )


@pytest.fixture(params=PROTOCOLS, ids=lambda protocol: f"resp{protocol}")
def protocol(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def client(server: int, protocol: int) -> redis.Redis:
    with connect(server, protocol) as connection:
        yield connection


def test_ping_and_echo(client: redis.Redis) -> None:
    assert client.ping() is True
    assert client.echo("hello world") == "hello world"
    assert client.echo("") == ""


def test_echo_is_binary_safe(server: int, protocol: int) -> None:
    payload = bytes(range(256)) + b"\r\n*1\r\n$-1\r\n"
    with redis.Redis(port=server, protocol=protocol, socket_timeout=SOCKET_TIMEOUT) as raw_client:
        assert raw_client.echo(payload) == payload


def test_hello_reports_protocol_and_version(client: redis.Redis, protocol: int) -> None:
    reply = client.execute_command("HELLO", protocol)
    # RESP2 has no maps: the same fields come as a flat list of names and values.
    hello = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))
    assert hello["proto"] == protocol
    assert hello["version"].startswith("7.0.")
    assert isinstance(hello["id"], int)
    assert hello["mode"] == "standalone"
    assert hello["role"] == "master"


def test_client_setname_and_getname(client: redis.Redis) -> None:
    assert client.client_getname() is None
    assert client.client_setname("worker-1") is True
    assert client.client_getname() == "worker-1"


def test_client_name_given_at_connect(server: int, protocol: int) -> None:
    with connect(server, protocol, client_name="billing-consumer") as named:
        assert named.client_getname() == "billing-consumer"


def test_client_ids_are_distinct_and_increasing(server: int, protocol: int) -> None:
    with connect(server, protocol) as first, connect(server, protocol) as second:
        first_id, second_id = first.client_id(), second.client_id()
        assert isinstance(first_id, int) and first_id > 0
        assert second_id > first_id
        assert first.client_id() == first_id


def test_select(client: redis.Redis) -> None:
    assert client.execute_command("SELECT", 0) is True
    with pytest.raises(redis.ResponseError) as out_of_range:
        client.execute_command("SELECT", 16)
    assert str(out_of_range.value) == "DB index is out of range"
    with pytest.raises(redis.ResponseError) as not_a_number:
        client.execute_command("SELECT", "zero")
    assert str(not_a_number.value) == "value is not an integer or out of range"


def test_info_server(client: redis.Redis, server_kind: str) -> None:
    info = client.info("server")
    assert str(info["redis_version"]).startswith("7.0.")
    assert info["tcp_port"] == client.connection_pool.connection_kwargs["port"]
    if server_kind == "respq":
        assert info["respq_version"] == respq.__version__
        assert info["respq_request_parser"] == respq.speedups.REQUEST_PARSER
        assert info["redis_version"] == respq.REDIS_COMPAT_VERSION


def test_dbsize_of_a_fresh_server(client: redis.Redis) -> None:
    assert client.dbsize() == 0


@pytest.mark.parametrize("transaction", [False, True], ids=["pipeline", "multi-exec"])
def test_pipeline(client: redis.Redis, transaction: bool) -> None:
    with client.pipeline(transaction=transaction) as pipe:
        pipe.ping().echo("one").echo("two").ping()
        assert pipe.execute() == [True, "one", "two", True]


def test_transaction_with_an_unknown_command_is_discarded(client: redis.Redis) -> None:
    with client.pipeline(transaction=True) as pipe:
        pipe.echo("kept?").execute_command("NOSUCHCOMMAND", "arg")
        with pytest.raises(redis.ResponseError, match="unknown command 'NOSUCHCOMMAND'"):
            pipe.execute()
    # The connection is still usable and outside MULTI afterwards.
    assert client.echo("after") == "after"


def test_unknown_command_error_text(client: redis.Redis) -> None:
    with pytest.raises(redis.ResponseError) as raised:
        client.execute_command("NOSUCHCOMMAND", "a", "b")
    assert str(raised.value) == "unknown command 'NOSUCHCOMMAND', with args beginning with: 'a' 'b' "


def test_publish_reaches_a_subscriber(server: int, protocol: int) -> None:
    channel = "orders.created"
    with connect(server, protocol) as subscriber_client, connect(server, protocol) as publisher:
        subscriber = subscriber_client.pubsub()
        try:
            subscriber.subscribe(channel)
            confirmation = subscriber.get_message(timeout=SOCKET_TIMEOUT)
            assert confirmation is not None
            assert (confirmation["type"], confirmation["channel"], confirmation["data"]) == ("subscribe", channel, 1)
            wait_until(lambda: publisher.pubsub_numsub(channel) == [(channel, 1)])
            assert publisher.publish(channel, "order 17") == 1
            message = subscriber.get_message(timeout=SOCKET_TIMEOUT)
            assert message is not None
            assert (message["type"], message["channel"], message["data"]) == ("message", channel, "order 17")
            assert publisher.publish("nobody.listens", "x") == 0
        finally:
            subscriber.close()
        wait_until(lambda: publisher.pubsub_numsub(channel) == [(channel, 0)])


def test_sharded_publish_reaches_a_shard_subscriber_only(server: int, protocol: int) -> None:
    channel = "orders.sharded"
    with connect(server, protocol) as subscriber_client, connect(server, protocol) as publisher:
        subscriber = subscriber_client.pubsub()
        try:
            subscriber.ssubscribe(channel)
            subscriber.subscribe("orders.plain")
            confirmations = [subscriber.get_message(timeout=SOCKET_TIMEOUT) for _ in range(2)]
            # Shard subscriptions are counted apart: each confirmation counts one.
            assert [(m["type"], m["channel"], m["data"]) for m in confirmations if m] == [
                ("ssubscribe", channel, 1),
                ("subscribe", "orders.plain", 1),
            ]
            wait_until(lambda: publisher.pubsub_shardnumsub(channel) == [(channel, 1)])
            assert publisher.pubsub_shardchannels() == [channel]
            assert publisher.publish(channel, "not sharded") == 0
            assert publisher.spublish(channel, "order 18") == 1
            message = subscriber.get_message(timeout=SOCKET_TIMEOUT)
            assert message is not None
            assert (message["type"], message["channel"], message["data"]) == ("smessage", channel, "order 18")
            subscriber.sunsubscribe(channel)
            confirmation = subscriber.get_message(timeout=SOCKET_TIMEOUT)
            assert confirmation is not None
            assert (confirmation["type"], confirmation["channel"], confirmation["data"]) == ("sunsubscribe", channel, 0)
            assert publisher.pubsub_shardnumsub(channel) == [(channel, 0)]
        finally:
            subscriber.close()


async def asyncio_scenario(port: int, protocol: int) -> None:
    """The sync tests' main points once more through redis.asyncio: its connection and parser code is separate."""
    options = {"host": "127.0.0.1", "port": port, "protocol": protocol, "decode_responses": True,
               "socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": SOCKET_TIMEOUT}
    async with redis.asyncio.Redis(client_name="async-worker", **options) as client, \
            redis.asyncio.Redis(**options) as publisher:
        assert await client.ping() is True
        assert await client.echo("async hello") == "async hello"
        assert await client.client_getname() == "async-worker"
        assert await client.client_setname("async-worker-2") is True
        assert await client.client_getname() == "async-worker-2"
        assert await client.client_id() != await publisher.client_id()
        assert await client.execute_command("SELECT", 0) is True
        assert str((await client.info("server"))["redis_version"]).startswith("7.0.")
        assert await client.dbsize() == 0
        for transaction in (False, True):
            async with client.pipeline(transaction=transaction) as pipe:
                pipe.ping().echo("a").echo("b")
                assert await pipe.execute() == [True, "a", "b"]

        subscriber = client.pubsub()
        try:
            await subscriber.subscribe("async.channel")
            confirmation = await subscriber.get_message(timeout=SOCKET_TIMEOUT)
            assert confirmation is not None and confirmation["type"] == "subscribe"
            async with asyncio.timeout(SOCKET_TIMEOUT):
                while await publisher.pubsub_numsub("async.channel") != [("async.channel", 1)]:
                    await asyncio.sleep(0.005)
            assert await publisher.publish("async.channel", "payload") == 1
            message = await subscriber.get_message(timeout=SOCKET_TIMEOUT)
            assert message is not None
            assert (message["type"], message["data"]) == ("message", "payload")
        finally:
            await subscriber.aclose()


def test_asyncio_client(server: int, protocol: int) -> None:
    asyncio.run(asyncio_scenario(server, protocol))
