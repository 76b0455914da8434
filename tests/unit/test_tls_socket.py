"""respq.tls_socket.TLSSocket as the reactor uses it: a non-blocking socket's recv_into/send/sendmsg over TLS, with
small socket buffers so that sends are partial and reads see many records or half of one."""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
from pathlib import Path

import pytest

from respq.tls import TLSSettings, server_context
from respq.tls_socket import TLSSocket
from tests.tls_certs import Certs, make_certs

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _pair(certs: Certs) -> tuple[TLSSocket, ssl.SSLSocket, threading.Thread]:
    """A TLSSocket (server side, non-blocking, handshake done) and a blocking client SSLSocket."""
    server_raw, client_raw = socket.socketpair()
    for sock in (server_raw, client_raw):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server_raw.setblocking(False)
    context = server_context(
        TLSSettings(cert_file=str(certs.server_cert), key_file=str(certs.server_key), auth_clients="no")
    )
    tls = TLSSocket(server_raw, context)
    client_context = ssl.create_default_context(cafile=str(certs.ca))
    client_raw.settimeout(TIMEOUT)
    holder: dict[str, ssl.SSLSocket] = {}
    thread = threading.Thread(
        target=lambda: holder.setdefault("sock", client_context.wrap_socket(client_raw, server_hostname="localhost"))
    )
    thread.start()
    while True:
        step = tls.handshake()
        if step:
            break
        ready = select.select([server_raw] if step is False else [], [server_raw] if step is None else [], [], TIMEOUT)
        assert ready != ([], [], []), "handshake stalled"
    thread.join(TIMEOUT)
    return tls, holder["sock"], thread


def _echo(tls: TLSSocket, total: int, use_sendmsg: bool) -> None:
    """Echoes ``total`` bytes back as a reactor would: partial sends re-offered from where they stopped."""
    buffer = bytearray(256 * 1024)
    pending = bytearray()
    echoed = 0
    while echoed < total:
        want_write = [tls.sock] if pending else []
        readable, writable, _ = select.select([tls.sock], want_write, [], TIMEOUT)
        assert readable or writable, "stalled"
        if readable:
            try:
                count = tls.recv_into(buffer)
            except BlockingIOError:
                count = -1
            assert count != 0, "peer closed early"
            if count > 0:
                pending += buffer[:count]
        if pending:
            try:
                if use_sendmsg:
                    half = len(pending) // 2
                    sent = tls.sendmsg([bytes(pending[:half]), bytes(pending[half:])])
                else:
                    sent = tls.send(bytes(pending))
            except BlockingIOError:
                continue
            del pending[:sent]
            echoed += sent


@pytest.mark.parametrize("use_sendmsg", [False, True])
def test_echo_with_partial_sends_and_reads(certs: Certs, use_sendmsg: bool) -> None:
    tls, client, _ = _pair(certs)
    payload = os.urandom(3 * 1024 * 1024 + 17)
    received = bytearray()

    def talk() -> None:  # one thread per SSL object: OpenSSL's are not safe to read and write concurrently
        for start in range(0, len(payload), 100_000):
            chunk = payload[start : start + 100_000]
            client.sendall(chunk)
            wanted = len(received) + len(chunk)
            while len(received) < wanted:
                data = client.recv(65536)
                if not data:
                    return
                received.extend(data)

    talker = threading.Thread(target=talk)
    talker.start()
    _echo(tls, len(payload), use_sendmsg)
    talker.join(TIMEOUT)
    assert bytes(received) == payload
    client.close()
    tls.close()


def test_end_of_stream_and_nothing_yet(certs: Certs) -> None:
    tls, client, _ = _pair(certs)
    with pytest.raises(BlockingIOError):
        tls.recv_into(bytearray(1024))
    client.sendall(b"PING\r\n")
    buffer = bytearray(256 * 1024)
    select.select([tls.sock], [], [], TIMEOUT)
    assert buffer[: tls.recv_into(buffer)] == b"PING\r\n"
    closing = threading.Thread(target=client.unwrap)  # sends close_notify, then waits for ours
    closing.start()
    select.select([tls.sock], [], [], TIMEOUT)
    assert tls.recv_into(buffer) == 0
    tls.close()  # answers with close_notify
    closing.join(TIMEOUT)
    assert not closing.is_alive()
    client.close()


def test_plaintext_peer_fails_the_handshake(certs: Certs, tmp_path: Path) -> None:
    server_raw, client_raw = socket.socketpair()
    server_raw.setblocking(False)
    context = server_context(
        TLSSettings(cert_file=str(certs.server_cert), key_file=str(certs.server_key), auth_clients="no")
    )
    tls = TLSSocket(server_raw, context)
    client_raw.sendall(b"*1\r\n$4\r\nPING\r\n")
    select.select([server_raw], [], [], TIMEOUT)
    with pytest.raises(ssl.SSLError):
        tls.handshake()
    tls.close()
    client_raw.close()
