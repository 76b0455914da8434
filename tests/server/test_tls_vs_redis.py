"""The tls-* directives compared with a real redis-server started with TLS and the same certificates: CONFIG GET
replies and CONFIG SET errors, byte for byte in RESP2 and RESP3."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest
import redis

from conftest import ServerProcess, free_port, start_redis, start_tls
from tests.tls_certs import Certs, make_certs

# Every tls-* directive of Redis 7.0 (respq's own tls-handshake-timeout is not one).
REDIS_TLS_DIRECTIVES = [
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
    "tls-dh-params-file",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-auth-clients",
    "tls-protocols",
    "tls-ciphers",
    "tls-ciphersuites",
    "tls-prefer-server-ciphers",
    "tls-session-caching",
    "tls-session-cache-size",
    "tls-session-cache-timeout",
    "tls-cluster",
    "tls-replication",
]
# CONFIG SET calls whose replies must match; each is undone (or fails) so the next starts from the same state.
SETS = [
    ["tls-auth-clients", "maybe"],
    ["tls-auth-clients", "optional"],
    ["tls-auth-clients", "yes"],
    ["tls-prefer-server-ciphers", "2"],
    ["tls-session-caching", "nope"],
    ["tls-protocols", "TLSv1.4"],
    ["tls-protocols", "TLSv1.2 TLSv1.3"],
    ["tls-cert-file", "/nonexistent.crt"],
    ["tls-key-file", "/nonexistent.key"],
    ["tls-ca-cert-file", "/nonexistent.crt"],
    ["tls-dh-params-file", "/nonexistent.pem"],
    ["tls-ciphers", "NOT-A-CIPHER"],
    ["tls-session-cache-size", "abc"],
    ["tls-session-cache-timeout", "-1"],
]
# Not compared: CONFIG SET tls-port, which Redis applies live and respq refuses as immutable (as it does `port`).


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _args(certs: Certs) -> list[str]:
    return [
        "--tls-cert-file",
        str(certs.server_cert),
        "--tls-key-file",
        str(certs.server_key),
        "--tls-ca-cert-file",
        str(certs.ca),
    ]


TLS_PORTS: dict[str, int] = {}


@pytest.fixture(scope="module")
def servers(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    oracle_tls = free_port()
    oracle = start_redis("--tls-port", str(oracle_tls), *_args(certs))
    respq, respq_tls = start_tls(tmp_path_factory.mktemp("respq") / "data", *_args(certs), plain=True)
    TLS_PORTS.update(redis=oracle_tls, respq=respq_tls)
    try:
        yield oracle, respq
    finally:
        oracle.stop()
        respq.stop()


def _reply(port: int, protocol: int, *command: str) -> object:
    with redis.Redis(port=port, protocol=protocol, socket_timeout=10) as client:
        try:
            return client.execute_command(*command)
        except redis.ResponseError as error:
            return ("error", str(error))


@pytest.mark.parametrize("protocol", [2, 3])
def test_config_get(servers: tuple[ServerProcess, ServerProcess], protocol: int) -> None:
    oracle, respq = servers
    for name in REDIS_TLS_DIRECTIVES:
        if name == "tls-port":
            continue  # each server has its own
        assert _reply(respq.port, protocol, "CONFIG", "GET", name) == _reply(
            oracle.port, protocol, "CONFIG", "GET", name
        )


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("pair", SETS, ids=" ".join)
def test_config_set(servers: tuple[ServerProcess, ServerProcess], protocol: int, pair: list[str]) -> None:
    oracle, respq = servers
    name = pair[0]
    expected = _reply(oracle.port, protocol, "CONFIG", "SET", *pair)
    assert _reply(respq.port, protocol, "CONFIG", "SET", *pair) == expected
    assert _reply(respq.port, protocol, "CONFIG", "GET", name) == _reply(oracle.port, protocol, "CONFIG", "GET", name)


def _negotiate(port: int, certs: Certs, ciphers: str | None) -> tuple[str | None, str | None]:
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers:
        context.set_ciphers(ciphers)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            cipher = sock.cipher()
            return sock.version(), cipher[0] if cipher else None
    except ssl.SSLError as error:
        return None, error.reason


@pytest.mark.parametrize("ciphers", [None, "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-CHACHA20-POLY1305"])
def test_negotiated_protocol_and_cipher(
    servers: tuple[ServerProcess, ServerProcess], certs: Certs, ciphers: str | None
) -> None:
    """With tls-ciphers unset both offer OpenSSL's default list (not Python's stricter one)."""
    assert _negotiate(TLS_PORTS["respq"], certs, ciphers) == _negotiate(TLS_PORTS["redis"], certs, ciphers)
