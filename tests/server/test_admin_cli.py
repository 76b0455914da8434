"""``respq stat`` and ``respq queues`` against a running server, as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_respq, start_tls
from tests.tls_certs import make_certs

TIMEOUT = 30.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = start_respq(tmp_path / "data", "--requirepass", "sesame")
    try:
        client = redis.Redis(port=process.port, password="sesame", protocol=2, socket_timeout=10)
        client.rpush("emails", *[f"m{i}" for i in range(5)])
        client.rpush("sms", "a", "b")
        client.xadd("orders", {"id": "1"}, id="1000-0")  # an entry from 1970: its age is decades
        client.xadd("orders", {"id": "2"}, id="1001-0")
        client.xgroup_create("orders", "billing", id="0")
        client.close()
        yield process
    finally:
        process.stop()


def respq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "respq", *args], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def test_queues_lists_depth_age_and_lag(server: ServerProcess) -> None:
    done = respq("queues", "-p", str(server.port), "-a", "sesame")
    assert done.returncode == 0, done
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["queue", "type", "depth", "oldest", "lag"]
    assert [row.split() for row in rows] == [
        ["emails", "list", "5", "-", "-"],
        ["sms", "list", "2", "-", "-"],
        ["orders", "stream", "2", rows[2].split()[3], "2"],
    ]
    assert rows[2].split()[3].endswith("d")  # days old
    port = str(server.port)
    by_lag = respq("queues", "-p", port, "--user", "default", "-a", "sesame", "--sort", "lag", "--count", "1")
    assert [row.split()[0] for row in by_lag.stdout.splitlines()[1:]] == ["orders"]


def test_stat_prints_a_line_per_interval_with_queue_totals(server: ServerProcess) -> None:
    done = respq("stat", "-p", str(server.port), "-a", "sesame", "-i", "0.05", "--lines", "2")
    assert done.returncode == 0, done
    header, first, second = done.stdout.splitlines()
    assert header.split() == ["keys", "mem", "clients", "blocked", "requests", "connections", "queues", "depth",
                              "oldest", "lag"]
    for line in (first, second):
        fields = line.split()
        assert fields[0] == "3" and fields[7:9] == ["3", "9"] and fields[-1] == "2", line  # 3 queues, 9 items


def test_wrong_password_is_refused_clearly(server: ServerProcess) -> None:
    wrong = respq("queues", "-p", str(server.port), "-a", "nope")
    assert wrong.returncode == 1 and "WRONGPASS" in wrong.stderr


def test_stat_and_queues_over_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    args = ["--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key)]
    process, port = start_tls(tmp_path / "data", *args, "--tls-ca-cert-file", str(certs.ca), "--requirepass", "pw")
    try:
        client = redis.Redis(
            port=port,
            password="pw",
            ssl=True,
            ssl_ca_certs=str(certs.ca),
            socket_timeout=10,
            ssl_certfile=str(certs.client_cert),
            ssl_keyfile=str(certs.client_key),
        )
        client.rpush("jobs", "a", "b", "c")
        client.close()
        tls = ["-p", str(port), "-a", "pw", "--tls", "--cert", str(certs.client_cert), "--key", str(certs.client_key)]
        done = respq("queues", *tls, "--cacert", str(certs.ca))
        assert done.returncode == 0, done
        assert [row.split()[:3] for row in done.stdout.splitlines()[1:]] == [["jobs", "list", "3"]]
        done = respq("stat", *tls, "--cacertdir", str(certs.ca_dir), "--sni", "localhost", "--lines", "1")
        assert done.returncode == 0, done
        assert done.stdout.splitlines()[1].split()[-3] == "3"  # the depth column
        done = respq("queues", *tls, "--insecure")  # no CA: the server's certificate is not checked
        assert done.returncode == 0, done
        unknown = respq("queues", *tls, "--cacert", str(certs.other_ca))
        assert unknown.returncode == 1 and "certificate verify failed" in unknown.stderr, unknown
        plain = respq("queues", "-p", str(port), "-a", "pw")  # plaintext on the TLS port
        assert plain.returncode == 1, plain
    finally:
        process.stop()
