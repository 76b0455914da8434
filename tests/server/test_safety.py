"""Authentication, client limits, random bytes on the wire, graceful shutdown."""

from __future__ import annotations

import os
import signal
import socket

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ServerProcess, start_respq
from tests.server.helpers import make_client


def test_requirepass_gates_everything_but_auth(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = start_respq(tmp_path / "data", "--requirepass", "s3cret")
    try:
        raw = socket.create_connection(("127.0.0.1", server.port))
        raw.settimeout(10)
        raw.sendall(b"PING\r\nAUTH wrong\r\nAUTH s3cret\r\nPING\r\n")
        expected = (
            b"-NOAUTH Authentication required.\r\n"
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
            b"+OK\r\n+PONG\r\n"
        )
        data = b""
        while len(data) < len(expected):
            data += raw.recv(4096)
        assert data == expected
        raw.close()
        assert redis.Redis(port=server.port, password="s3cret").ping()
    finally:
        server.stop()


def test_maxclients_refuses_the_extra_client(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = start_respq(tmp_path / "data", "--maxclients", "2")
    try:
        first = socket.create_connection(("127.0.0.1", server.port))
        second = socket.create_connection(("127.0.0.1", server.port))
        third = socket.create_connection(("127.0.0.1", server.port))
        third.settimeout(10)
        assert third.recv(100) == b"-ERR max number of clients reached\r\n"
        first.sendall(b"PING\r\n")
        first.settimeout(10)
        assert first.recv(100) == b"+PONG\r\n"
        for sock in (first, second, third):
            sock.close()
    finally:
        server.stop()


def test_unauthenticated_big_multibulk_is_cut_off(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = start_respq(tmp_path / "data", "--requirepass", "pw")
    try:
        raw = socket.create_connection(("127.0.0.1", server.port))
        raw.settimeout(10)
        raw.sendall(b"*20\r\n")
        assert raw.recv(200) == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
        assert raw.recv(10) == b""
        raw.close()
    finally:
        server.stop()


def test_sigterm_shuts_down_cleanly_and_keeps_data(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    server = start_respq(data_dir)
    client = make_client(server)
    client.rpush("q", *[f"m{i}" for i in range(100)])
    client.close()
    assert server.terminate() == 0
    server = start_respq(data_dir)
    try:
        assert make_client(server).llen("q") == 100
    finally:
        server.stop()


def test_shutdown_command_exits_zero(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = start_respq(tmp_path / "data")
    client = make_client(server)
    try:
        client.shutdown()
    except redis.ConnectionError:
        pass
    assert server.proc.wait(30) == 0


_frames = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.sampled_from(
            [
                b"*",
                b"$",
                b"\r\n",
                b"*-1\r\n",
                b"*1\r\n",
                b"$-5\r\n",
                b"*3\r\n$3\r\nSET\r\n",
                b'"',
                b"'",
                b"*2147483648\r\n",
                b"$99999999999\r\n",
                b"PING\r\n",
                b":1\r\n",
                b"+OK\r\n",
                b"\x00",
            ]
        ),
    ),
    max_size=20,
).map(b"".join)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=_frames)
def test_random_bytes_never_hurt_other_clients(respq_server: ServerProcess, garbage: bytes) -> None:
    raw = socket.create_connection(("127.0.0.1", respq_server.port))
    raw.settimeout(2)
    try:
        raw.sendall(garbage)
        raw.shutdown(socket.SHUT_WR)
        while raw.recv(65536):
            pass
    except (TimeoutError, ConnectionError):
        pass
    finally:
        raw.close()
    healthy = redis.Redis(port=respq_server.port, socket_timeout=10)
    assert healthy.ping()
    assert healthy.echo(b"still here") == b"still here"
    healthy.close()
    assert os.kill(respq_server.proc.pid, 0) is None


def test_sigterm_lets_a_pipelined_batch_finish(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Commands already read are executed and answered before the server exits."""
    data_dir = tmp_path / "data"
    server = start_respq(data_dir)
    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.settimeout(10)
    batch = b"".join(b"*3\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(2000))
    raw.sendall(batch)
    first = raw.recv(4)  # the server is working on the batch
    server.kill(signal.SIGTERM)
    data = first
    while True:
        chunk = raw.recv(65536)
        if not chunk:
            break
        data += chunk
    raw.close()
    assert server.proc.wait(30) == 0
    answered = data.count(b"\r\n")
    server = start_respq(data_dir)
    try:
        assert make_client(server).llen("q") >= answered
    finally:
        server.stop()


def test_normal_client_over_its_output_limit_is_closed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = start_respq(tmp_path / "data", "--client-output-buffer-limit", "normal 100kb 0 0")
    try:
        client = make_client(server)
        client.rpush("big", *[b"x" * 1000 for _ in range(300)])  # a 300 KB LRANGE reply
        small = client.lrange("big", 0, 9)
        assert len(small) == 10
        greedy = make_client(server)
        try:
            greedy.lrange("big", 0, -1)
            closed = False
        except redis.ConnectionError:
            closed = True
        assert closed
        assert client.ping()
    finally:
        server.stop()
