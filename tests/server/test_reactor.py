"""Connections leave the reactor for a task of their own when a step must wait, then come back, replies in order."""

from __future__ import annotations

import pytest

from conftest import ServerProcess, wait_until
from tests.server.helpers import blocked_clients, make_client
from tests.server.test_large_replies import RawClient

pytestmark = pytest.mark.timeout(60)

ELEMENTS = 1000  # under the streaming threshold: each LRANGE reply is built whole
VALUE = b"v" * 100
PIPELINED = 300  # about 32 MB of replies: far more than the socket buffers take while nobody reads


def test_a_reader_that_stalls_gets_every_reply_in_order_while_others_are_served(respq_server: ServerProcess) -> None:
    server = respq_server
    other = make_client(server)
    other.rpush("big", *[VALUE + b"%04d" % i for i in range(ELEMENTS)])
    reader = RawClient(server.port)
    reader.send(*[[b"LRANGE", b"big", b"%d" % (i % 7), b"-1"] for i in range(PIPELINED)], [b"ECHO", b"end"])
    # The reader's socket is full; the server keeps serving everyone else.
    for i in range(50):
        assert other.rpush("side", i) == i + 1
    assert other.ping()
    for i in range(PIPELINED):
        start = i % 7
        assert reader.line() == b"*%d" % (ELEMENTS - start)
        assert list(reader.bulks(ELEMENTS - start)) == [VALUE + b"%04d" % n for n in range(start, ELEMENTS)]
    assert reader.line() == b"$3" and reader.exactly(5) == b"end\r\n"
    # Caught up: the connection is served as before.
    reader.send([b"LLEN", b"side"])
    assert reader.line() == b":50"
    reader.close()


def test_a_blocking_pop_inside_a_pipeline_keeps_the_replies_in_order(respq_server: ServerProcess) -> None:
    pusher = make_client(respq_server)
    client = RawClient(respq_server.port)
    client.send([b"RPUSH", b"before", b"a"], [b"BLPOP", b"later", b"10"], [b"ECHO", b"after"])
    assert client.line() == b":1"  # written before the client waits
    wait_until(lambda: blocked_clients(pusher) == 1)
    assert pusher.rpush("later", "x") == 1
    assert client.line() == b"*2"
    assert list(client.bulks(2)) == [b"later", b"x"]
    assert client.line() == b"$5" and client.exactly(7) == b"after\r\n"
    client.send([b"PING"])
    assert client.line() == b"+PONG"
    wait_until(lambda: blocked_clients(pusher) == 0)
    client.close()


def test_a_push_landing_before_the_popper_task_starts_still_serves_it(respq_server: ServerProcess) -> None:
    # Both commands arrive in the same reactor pass: the pop is registered as it runs, so the push serves it.
    popper = RawClient(respq_server.port)
    pusher = RawClient(respq_server.port)
    for round_ in range(20):
        popper.send([b"BLPOP", b"k", b"5"])
        pusher.send([b"RPUSH", b"k", b"%d" % round_])
        assert pusher.line() == b":1"
        assert popper.line() == b"*2"
        assert list(popper.bulks(2)) == [b"k", b"%d" % round_]
    popper.close()
    pusher.close()
