"""TLS on the RESP port: the tls-* directives, clients with and without certificates, bad peers, reloads."""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, free_port, require_tool, start_respq, start_tls, wait_until
from tests.tls_certs import KEY_PASSWORD, Certs, make_certs

TIMEOUT = 10


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def tls_args(certs: Certs, *, cert: Path | None = None, key: Path | None = None) -> list[str]:
    return [
        "--tls-cert-file",
        str(cert or certs.server_cert),
        "--tls-key-file",
        str(key or certs.server_key),
        "--tls-ca-cert-file",
        str(certs.ca),
    ]


@pytest.fixture
def tls_server(tmp_path: Path, certs: Certs) -> Iterator[tuple[ServerProcess, int]]:
    server, port = start_tls(tmp_path / "data", *tls_args(certs), "--tls-handshake-timeout", "1", plain=True)
    try:
        yield server, port
    finally:
        server.stop()


def client(port: int, certs: Certs, *, cert: Path | None = None, key: Path | None = None, ca: Path | None = None):  # type: ignore[no-untyped-def]
    return redis.Redis(
        host="localhost",
        port=port,
        ssl=True,
        ssl_ca_certs=str(ca or certs.ca),
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
        socket_timeout=TIMEOUT,
        protocol=2,
    )


def tls_client(port: int, certs: Certs):  # type: ignore[no-untyped-def]
    return client(port, certs, cert=certs.client_cert, key=certs.client_key)


def raw_tls(port: int, context: ssl.SSLContext, session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return context.wrap_socket(sock, server_hostname="localhost", session=session)


def client_context(certs: Certs, *, with_cert: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca))
    if with_cert:
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    return context


def roundtrip(sock: ssl.SSLSocket, request: bytes) -> bytes:
    sock.sendall(request)
    return sock.recv(4096)


# ---- clients ----------------------------------------------------------------------------------------------------
def test_redis_py_over_tls_beside_plaintext(tls_server: tuple[ServerProcess, int], certs: Certs) -> None:
    server, tls_port = tls_server
    secure = tls_client(tls_port, certs)
    plain = redis.Redis(port=server.port, socket_timeout=TIMEOUT, protocol=2)
    assert secure.ping() and plain.ping()
    assert secure.lpush("q", "a", "b") == 2
    assert plain.lrange("q", 0, -1) == [b"b", b"a"]
    # Values larger than a TLS record and the socket buffers: partial writes and many records per read.
    big = bytes(range(256)) * 8192  # 2 MiB
    secure.set("big", big)
    assert secure.get("big") == big
    pipe = secure.pipeline(transaction=False)
    for n in range(2000):
        pipe.rpush("many", n)
    assert pipe.execute()[-1] == 2000
    assert len(secure.lrange("many", 0, -1)) == 2000
    info = plain.info("server")
    assert info["tcp_port"] == server.port  # Redis shows the plaintext port when there is one
    listed = {entry["laddr"].rsplit(":", 1)[1] for entry in plain.client_list()}
    assert listed == {str(server.port), str(tls_port)}  # CLIENT LIST shows TLS clients as any other
    secure.close()
    plain.close()


def test_rediss_url_with_client_certificate(tls_server: tuple[ServerProcess, int], certs: Certs) -> None:
    _, tls_port = tls_server
    url = (
        f"rediss://localhost:{tls_port}/0?ssl_ca_certs={certs.ca}&ssl_certfile={certs.client_cert}"
        f"&ssl_keyfile={certs.client_key}"
    )
    r = redis.from_url(url, socket_timeout=TIMEOUT)
    assert r.set("k", "v") and r.get("k") == b"v"
    r.close()


def test_redis_cli_tls(tls_server: tuple[ServerProcess, int], certs: Certs) -> None:
    cli = require_tool("redis-cli")
    _, tls_port = tls_server
    base = [cli, "-p", str(tls_port), "--tls", "--cacert", str(certs.ca), "--cert", str(certs.client_cert)]
    base += ["--key", str(certs.client_key)]
    run = subprocess.run([*base, "rpush", "cli", "x", "y"], capture_output=True, timeout=TIMEOUT, check=True)
    assert run.stdout == b"2\n"
    run = subprocess.run([*base, "lrange", "cli", "0", "-1"], capture_output=True, timeout=TIMEOUT, check=True)
    assert run.stdout == b"x\ny\n"
    # The CA as a directory (redis-cli --cacertdir) also works.
    base[base.index("--cacert") : base.index("--cacert") + 2] = ["--cacertdir", str(certs.ca_dir)]
    run = subprocess.run([*base, "ping"], capture_output=True, timeout=TIMEOUT, check=True)
    assert run.stdout == b"PONG\n"


def test_tls_only_with_port_0(tmp_path: Path, certs: Certs) -> None:
    server, tls_port = start_tls(tmp_path / "data", *tls_args(certs))
    try:
        assert server.port == tls_port  # the ready line names the TLS port
        r = tls_client(tls_port, certs)
        assert r.info("server")["tcp_port"] == tls_port  # as Redis: the TLS port when there is no plaintext one
        assert r.config_get("port") == {"port": "0"}
        r.close()
        assert b"Ready to accept connections tcp" not in server.output
    finally:
        server.stop()


# ---- verification -----------------------------------------------------------------------------------------------
def test_wrong_ca_is_refused_by_the_client(tls_server: tuple[ServerProcess, int], certs: Certs) -> None:
    _, tls_port = tls_server
    r = client(tls_port, certs, cert=certs.client_cert, key=certs.client_key, ca=certs.other_ca)
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        r.ping()
    assert tls_client(tls_port, certs).ping()  # the server goes on serving


def test_expired_server_certificate(tmp_path: Path, certs: Certs) -> None:
    args = tls_args(certs, cert=certs.expired_server_cert, key=certs.expired_server_key)
    server, tls_port = start_tls(tmp_path / "data", *args)
    try:
        with pytest.raises(redis.ConnectionError, match="certificate has expired"):
            tls_client(tls_port, certs).ping()
    finally:
        server.stop()


def test_client_certificate_required(tls_server: tuple[ServerProcess, int], certs: Certs) -> None:
    server, tls_port = tls_server
    with pytest.raises(redis.ConnectionError):
        client(tls_port, certs).ping()  # no client certificate
    with pytest.raises(redis.ConnectionError):
        client(tls_port, certs, cert=certs.other_client_cert, key=certs.other_client_key).ping()  # unknown CA
    wait_until(lambda: server.output.count(b"Error accepting a client connection: ") >= 2)
    assert b"Error accepting a client connection: error:0A0000C7:SSL routines::peer did not return a certificate\n" in (
        server.output
    )  # Redis 7.0's line, byte for byte
    assert tls_client(tls_port, certs).ping()


def test_client_certificate_optional(tmp_path: Path, certs: Certs) -> None:
    server, tls_port = start_tls(tmp_path / "data", *tls_args(certs), "--tls-auth-clients", "optional")
    try:
        assert client(tls_port, certs).ping()  # none given: fine
        assert tls_client(tls_port, certs).ping()
        with pytest.raises(redis.ConnectionError):  # one given must still verify
            client(tls_port, certs, cert=certs.other_client_cert, key=certs.other_client_key).ping()
    finally:
        server.stop()


def test_no_client_certificates_needs_no_ca(tmp_path: Path, certs: Certs) -> None:
    args = ["--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key)]
    server, tls_port = start_tls(tmp_path / "data", *args, "--tls-auth-clients", "no")
    try:
        assert client(tls_port, certs).ping()
    finally:
        server.stop()


# ---- bad peers --------------------------------------------------------------------------------------------------
def test_plaintext_on_the_tls_port(tls_server: tuple[ServerProcess, int], certs: Certs) -> None:
    server, tls_port = tls_server
    with socket.create_connection(("127.0.0.1", tls_port), timeout=TIMEOUT) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert not sock.recv(4096).startswith(b"+PONG")  # an alert or nothing, then the close
        sock.settimeout(TIMEOUT)
        while sock.recv(4096):
            pass
    wait_until(lambda: b"Error accepting a client connection: " in server.output)
    assert b"Error accepting a client connection: error:0A00010B:SSL routines::wrong version number\n" in server.output
    r = tls_client(tls_port, certs)
    assert r.ping()
    assert r.info("clients")["connected_clients"] == 1  # nothing of the failed one stays


def test_stalled_handshake_is_dropped(tls_server: tuple[ServerProcess, int], certs: Certs) -> None:
    server, tls_port = tls_server  # tls-handshake-timeout 1
    stalled = socket.create_connection(("127.0.0.1", tls_port), timeout=TIMEOUT)
    started = time.monotonic()
    r = tls_client(tls_port, certs)
    assert r.ping()  # others are served meanwhile
    assert stalled.recv(1) == b""  # the server closed it
    assert 0.9 <= time.monotonic() - started < TIMEOUT
    wait_until(lambda: b"TLS handshake timed out after 1 seconds" in server.output)  # the log is read by a thread
    assert r.ping()
    stalled.close()


# ---- directives -------------------------------------------------------------------------------------------------
def test_protocols_and_ciphers(tmp_path: Path, certs: Certs) -> None:
    extra = ["--tls-protocols", "TLSv1.2", "--tls-ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"]
    server, tls_port = start_tls(tmp_path / "data", *tls_args(certs), *extra, "--tls-prefer-server-ciphers", "yes")
    try:
        sock = raw_tls(tls_port, client_context(certs))
        assert sock.version() == "TLSv1.2"
        assert sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"  # type: ignore[index]
        assert roundtrip(sock, b"PING\r\n") == b"+PONG\r\n"
        sock.close()
        only13 = client_context(certs)
        only13.minimum_version = ssl.TLSVersion.TLSv1_3
        with pytest.raises(ssl.SSLError):
            raw_tls(tls_port, only13)
    finally:
        server.stop()


def test_encrypted_key_and_ca_dir(tmp_path: Path, certs: Certs) -> None:
    args = ["--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key_encrypted)]
    args += ["--tls-key-file-pass", KEY_PASSWORD, "--tls-ca-cert-dir", str(certs.ca_dir)]
    server, tls_port = start_tls(tmp_path / "data", *args)
    try:
        assert tls_client(tls_port, certs).ping()
    finally:
        server.stop()


def test_dh_params_file(tmp_path: Path, certs: Certs) -> None:
    openssl = require_tool("openssl")
    dh = tmp_path / "dh.pem"
    subprocess.run(
        [openssl, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "dh_param:ffdhe2048", "-out", str(dh)],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    server, tls_port = start_tls(tmp_path / "data", *tls_args(certs), "--tls-dh-params-file", str(dh))
    try:
        assert tls_client(tls_port, certs).ping()
    finally:
        server.stop()


@pytest.mark.parametrize("caching", ["yes", "no"])
def test_session_caching(tmp_path: Path, certs: Certs, caching: str) -> None:
    server, tls_port = start_tls(tmp_path / "data", *tls_args(certs), "--tls-session-caching", caching)
    try:
        context = client_context(certs)
        first = raw_tls(tls_port, context)
        assert roundtrip(first, b"PING\r\n") == b"+PONG\r\n"  # TLSv1.3 tickets come after the handshake
        session = first.session
        first.close()
        second = raw_tls(tls_port, context, session)
        assert roundtrip(second, b"PING\r\n") == b"+PONG\r\n"
        assert second.session_reused is (caching == "yes")
        second.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "lines"),
    [
        (["--tls-key-file", "k"], [b"No tls-cert-file configured!"]),
        (
            ["--tls-cert-file", "c", "--tls-key-file", "k"],
            [b"Either tls-ca-cert-file or tls-ca-cert-dir must be specified"],
        ),
        (
            ["--tls-cert-file", "/nonexistent.crt", "--tls-key-file", "k", "--tls-auth-clients", "no"],
            [b"Failed to load certificate: /nonexistent.crt: error:80000002:system library::No such file or directory"],
        ),
        (
            ["--tls-protocols", "TLSv1.4", "--tls-auth-clients", "no", "--tls-cert-file", "c", "--tls-key-file", "k"],
            [b"Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'."],
        ),
    ],
)
def test_startup_failures(tmp_path: Path, args: list[str], lines: list[bytes]) -> None:
    argv = [sys.executable, "-m", "respq", "serve", "--port", "0", "--dir", str(tmp_path / "d")]
    argv += ["--tls-port", str(free_port()), *args]
    run = subprocess.run(argv, capture_output=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    output = run.stdout + run.stderr
    assert run.returncode != 0
    for line in [*lines, b"Failed to configure TLS. Check logs for more info."]:
        assert line in output, output


def test_restricted_directives_refuse_other_values(tls_server: tuple[ServerProcess, int], certs: Certs) -> None:
    server, _ = tls_server
    r = redis.Redis(port=server.port, socket_timeout=TIMEOUT)
    for name, value in [("tls-ciphersuites", "TLS_AES_128_GCM_SHA256"), ("tls-session-cache-size", "10")]:
        with pytest.raises(redis.ResponseError, match="Python's ssl module cannot set it"):
            r.config_set(name, value)
    assert r.config_set("tls-session-cache-timeout", "300")


def test_config_set_reloads_certificates(tls_server: tuple[ServerProcess, int], certs: Certs) -> None:
    server, tls_port = tls_server
    plain = redis.Redis(port=server.port, socket_timeout=TIMEOUT, decode_responses=True)
    before = tls_client(tls_port, certs)
    assert before.ping()
    # A file that cannot be loaded: Redis's error, the previous values and context stay.
    with pytest.raises(redis.ResponseError) as caught:
        plain.config_set("tls-cert-file", "/nonexistent.crt")
    assert str(caught.value) == (
        "CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. "
        "Check server logs."
    )
    assert plain.config_get("tls-cert-file") == {"tls-cert-file": str(certs.server_cert)}
    assert tls_client(tls_port, certs).ping()
    wait_until(
        lambda: b"Failed applying new configuration. Possibly related to new tls-cert-file setting." in server.output
    )
    # Certificate and key of another CA, in one CONFIG SET: new connections present them.
    plain.execute_command(
        "CONFIG", "SET", "tls-cert-file", str(certs.other_server_cert), "tls-key-file", str(certs.other_server_key)
    )
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        tls_client(tls_port, certs).ping()
    assert client(tls_port, certs, cert=certs.client_cert, key=certs.client_key, ca=certs.other_ca).ping()
    assert before.ping()  # an established connection keeps its session
    plain.config_set("tls-auth-clients", "no")
    with pytest.raises(redis.ConnectionError):
        client(tls_port, certs).ping()
    assert client(tls_port, certs, ca=certs.other_ca).ping()  # no client certificate needed now
    before.close()
    plain.close()


def test_config_set_of_the_same_file_reads_it_again(tls_server: tuple[ServerProcess, int], certs: Certs) -> None:
    """Certificate rotation: the files are replaced, then named again (the value does not change)."""
    server, tls_port = tls_server
    plain = redis.Redis(port=server.port, socket_timeout=TIMEOUT)
    cert, key = certs.dir / "rotating.crt", certs.dir / "rotating.key"
    cert.write_bytes(certs.server_cert.read_bytes())
    key.write_bytes(certs.server_key.read_bytes())
    plain.execute_command("CONFIG", "SET", "tls-cert-file", str(cert), "tls-key-file", str(key))
    assert tls_client(tls_port, certs).ping()
    cert.write_bytes(certs.other_server_cert.read_bytes())
    key.write_bytes(certs.other_server_key.read_bytes())
    assert tls_client(tls_port, certs).ping()  # not read again until asked
    plain.execute_command("CONFIG", "SET", "tls-cert-file", str(cert), "tls-key-file", str(key))
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        tls_client(tls_port, certs).ping()
    plain.close()


def test_handshakes_count_against_maxclients(tmp_path: Path, certs: Certs) -> None:
    extra = ["--maxclients", "2", "--tls-handshake-timeout", "1"]
    server, tls_port = start_tls(tmp_path / "data", *tls_args(certs), *extra, plain=True)
    try:
        plain = redis.Redis(port=server.port, socket_timeout=TIMEOUT)
        assert plain.ping()
        stalled = socket.create_connection(("127.0.0.1", tls_port), timeout=TIMEOUT)  # holds the second slot
        with pytest.raises(OSError):  # closed before the handshake (redis-py would retry until a slot frees)
            raw_tls(tls_port, client_context(certs))
        assert plain.info("stats")["rejected_connections"] == 1
        assert stalled.recv(1) == b""  # dropped after tls-handshake-timeout: its slot is free again
        assert tls_client(tls_port, certs).ping()
        stalled.close()
        plain.close()
    finally:
        server.stop()


def https_get(port: int, context: ssl.SSLContext, path: str = "/healthz") -> tuple[int, bytes]:
    request = urllib.request.Request(f"https://localhost:{port}{path}")
    with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:
        return response.status, response.read()


def test_http_tls_serves_https_with_the_tls_certificates_and_their_reloads(tmp_path: Path, certs: Certs) -> None:
    http_port = free_port()
    server = start_respq(
        tmp_path / "data",
        *tls_args(certs),
        "--tls-auth-clients",
        "no",
        "--http-port",
        str(http_port),
        "--http-tls",
        "yes",
    )
    try:
        assert server.port  # the RESP port stays plaintext: http-tls needs no tls-port
        status, body = https_get(http_port, ssl.create_default_context(cafile=str(certs.ca)))
        assert status == 200 and b'"serving"' in body
        # Plain HTTP to the HTTPS listener gets no answer, and the listener keeps serving.
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=TIMEOUT)
        assert https_get(http_port, ssl.create_default_context(cafile=str(certs.ca)))[0] == 200
        # Certificates rotated with CONFIG SET reach HTTPS too.
        plain = redis.Redis(port=server.port, socket_timeout=TIMEOUT)
        plain.execute_command(
            "CONFIG", "SET", "tls-cert-file", str(certs.other_server_cert), "tls-key-file", str(certs.other_server_key)
        )
        plain.close()
        with pytest.raises(urllib.error.URLError, match="certificate verify failed"):
            https_get(http_port, ssl.create_default_context(cafile=str(certs.ca)))
        assert https_get(http_port, ssl.create_default_context(cafile=str(certs.other_ca)))[0] == 200
    finally:
        server.stop()


def test_http_tls_without_a_certificate_stops_start_up(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "respq", "serve", "--port", "0", "--dir", str(tmp_path / "data")]
    result = subprocess.run(
        [*argv, "--http-port", str(free_port()), "--http-tls", "yes"], capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 1
    assert b"Failed to configure TLS. Check logs for more info." in result.stdout + result.stderr
