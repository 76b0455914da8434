"""The hardened configuration of docs/security.md, as written there, starts and gives each service user exactly
its rights, seen from redis-py."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from conftest import ServerProcess, free_port
from tests.tls_certs import Certs, make_certs

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
PASSWORDS = {name: f"{name}-example-secret" for name in ("admin", "producer", "worker", "dashboard")}


def _block(marker: str) -> str:
    match = re.search(rf"<!-- {re.escape(marker)} -->\n```\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert match, f"docs/security.md has no block marked {marker}"
    return match.group(1)


@pytest.fixture
def hardened(tmp_path: Path) -> Iterator[tuple[ServerProcess, Certs]]:
    certs = make_certs(tmp_path / "certs")
    users = tmp_path / "users.acl"
    users.write_text(_block("hardened-users.acl"))
    conf_text = _block("hardened-respq.conf")
    for written, real in (
        ("/etc/respq/users.acl", users),
        ("/etc/respq/tls/server.crt", certs.server_cert),
        ("/etc/respq/tls/server.key", certs.server_key),
        ("/etc/respq/tls/ca.crt", certs.ca),
    ):
        assert written in conf_text
        conf_text = conf_text.replace(written, str(real))
    conf = tmp_path / "respq.conf"
    conf.write_text(conf_text.replace("tls-port 6379", f"tls-port {free_port()}") + f"dir {tmp_path / 'data'}\n")
    (tmp_path / "data").mkdir()
    server = ServerProcess([sys.executable, "-m", "respq", "serve", str(conf)])
    server.wait_ready()
    try:
        yield server, certs
    finally:
        server.stop()


def _connect(hardened: tuple[ServerProcess, Certs], **kwargs: Any) -> redis.Redis:
    """A client with the deployment's client certificate, as every service has one."""
    server, certs = hardened
    return redis.Redis(
        host="localhost",
        port=server.port,
        ssl=True,
        ssl_ca_certs=str(certs.ca),
        ssl_certfile=str(certs.client_cert),
        ssl_keyfile=str(certs.client_key),
        socket_timeout=10,
        **kwargs,
    )


def _as(hardened: tuple[ServerProcess, Certs], name: str, protocol: int = 3) -> redis.Redis:
    return _connect(hardened, username=name, password=PASSWORDS[name], protocol=protocol)


def test_the_documented_hardened_configuration(hardened: tuple[ServerProcess, Certs]) -> None:
    plaintext = redis.Redis(port=hardened[0].port, socket_timeout=10)
    with pytest.raises(redis.exceptions.ConnectionError):
        plaintext.ping()  # TLS only
    plaintext.close()
    anonymous = _connect(hardened, protocol=2)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()  # the default user is off: nothing runs before AUTH
    anonymous.close()
    with pytest.raises(redis.exceptions.AuthenticationError):
        _connect(hardened, username="default", password="").ping()

    producer = _as(hardened, "producer")
    assert producer.rpush("jobs:email", "1") == 1
    assert producer.xadd("jobs:events", {"f": "v"})
    with pytest.raises(redis.exceptions.NoPermissionError):
        producer.rpush("other", "1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        producer.lpop("jobs:email")
    with pytest.raises(redis.exceptions.NoPermissionError):
        producer.publish("other", "m")
    assert producer.publish("jobs:done", "m") == 0

    worker = _as(hardened, "worker", protocol=2)
    assert worker.blpop(["jobs:email"], timeout=1) == (b"jobs:email", b"1")
    assert worker.xgroup_create("jobs:events", "g", id="0")
    assert len(worker.xreadgroup("g", "c", {"jobs:events": ">"})) == 1
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.rpush("jobs:email", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.flushall()

    dashboard = _as(hardened, "dashboard")
    assert dashboard.xlen("jobs:events") == 1
    for denied in (lambda: dashboard.set("k", "v"), lambda: dashboard.keys("*"), lambda: dashboard.config_get("*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            denied()

    admin = _as(hardened, "admin", protocol=2)
    assert admin.acl_whoami() == "admin"
    assert admin.acl_users() == ["admin", "dashboard", "default", "producer", "worker"]
    reasons = {(entry["username"], entry["reason"]) for entry in admin.acl_log(count=50)}
    assert {("producer", "key"), ("producer", "command"), ("producer", "channel"), ("dashboard", "command")} <= reasons
    for client in (producer, worker, dashboard, admin):
        client.close()
