"""The hardened configuration of docs/security.md, as written there, starts and gives each service user exactly
its rights, seen from redis-py."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
PASSWORDS = {name: f"{name}-example-secret" for name in ("admin", "producer", "worker", "dashboard")}


def _block(marker: str) -> str:
    match = re.search(rf"<!-- {re.escape(marker)} -->\n```\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert match, f"docs/security.md has no block marked {marker}"
    return match.group(1)


@pytest.fixture
def hardened(tmp_path: Path) -> Iterator[ServerProcess]:
    users = tmp_path / "users.acl"
    users.write_text(_block("hardened-users.acl"))
    conf_text = _block("hardened-respq.conf").replace("/etc/respq/users.acl", str(users))
    conf = tmp_path / "respq.conf"
    conf.write_text(conf_text + f"dir {tmp_path / 'data'}\n")
    (tmp_path / "data").mkdir()
    server = ServerProcess([sys.executable, "-m", "respq", "serve", str(conf), "--port", "0"])
    server.wait_ready()
    try:
        yield server
    finally:
        server.stop()


def _as(server: ServerProcess, name: str, protocol: int = 3) -> redis.Redis:
    return redis.Redis(
        port=server.port, username=name, password=PASSWORDS[name], protocol=protocol, socket_timeout=10
    )


def test_the_documented_hardened_configuration(hardened: ServerProcess) -> None:
    anonymous = redis.Redis(port=hardened.port, protocol=2, socket_timeout=10)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()  # the default user is off: nothing runs before AUTH
    anonymous.close()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=hardened.port, username="default", password="", socket_timeout=10).ping()

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
