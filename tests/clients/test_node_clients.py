"""ioredis and node-redis against the server, through the smoke scripts in node/ (installed by `npm ci` there)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import start_tls
from tests.clients.conftest import NODE_DIR
from tests.tls_certs import make_certs

SCRIPT_TIMEOUT = 90.0  # the scripts' own watchdog fires at 60 s and still prints a summary

# Queue commands respq does not answer yet: the scripts' checks for them run against real Redis only, and against
# respq as expected failures. Drop a name from here once respq implements it.
RESPQ_LACKS: set[str] = set()

CLIENTS = [
    pytest.param("ioredis_smoke.js", 2, id="ioredis"),
    pytest.param("node_redis_smoke.js", 2, id="node-redis-resp2"),
    pytest.param("node_redis_smoke.js", 3, id="node-redis-resp3"),
]


def run_smoke(node: str, script: str, port: int, resp: int, *flags: str) -> dict[str, object]:
    completed = subprocess.run(
        [node, script, str(port), "--resp", str(resp), *flags],
        cwd=NODE_DIR, capture_output=True, timeout=SCRIPT_TIMEOUT, check=False, stdin=subprocess.DEVNULL,
    )
    output = completed.stdout.decode(errors="replace")
    details = f"exit {completed.returncode}\nstdout: {output}\nstderr: {completed.stderr.decode(errors='replace')}"
    summary_line = output.strip().splitlines()[-1] if output.strip() else ""
    try:
        summary = json.loads(summary_line)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON summary from {script}: {details}")
    failures = {name: result for name, result in summary["checks"].items() if result != "ok"}
    assert completed.returncode == 0 and summary["ok"] and not failures, f"{failures}\n{details}"
    return summary


@pytest.mark.parametrize(("script", "resp"), CLIENTS)
def test_connection_commands_and_pubsub(node: str, server: int, script: str, resp: int) -> None:
    summary = run_smoke(node, script, server, resp)
    assert {"handshake_with_name", "ping_echo", "multi_exec", "client_setname", "subscribe_publish"} <= set(
        summary["checks"]  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("feature", ["lists", "streams"])
@pytest.mark.parametrize(("script", "resp"), CLIENTS)
def test_queue_commands(
    node: str, server: int, server_kind: str, script: str, resp: int, feature: str, request: pytest.FixtureRequest
) -> None:
    if server_kind == "respq" and feature in RESPQ_LACKS:
        request.applymarker(pytest.mark.xfail(reason=f"respq has no {feature} commands yet", strict=False))
    summary = run_smoke(node, script, server, resp, f"--{feature}")
    expected_check = {"lists": "brpop", "streams": "xreadgroup"}[feature]
    assert summary["checks"][expected_check] == "ok"  # type: ignore[index]


@pytest.mark.parametrize(("script", "resp"), CLIENTS)
def test_over_tls_with_a_client_certificate(node: str, tmp_path: Path, script: str, resp: int) -> None:
    certs = make_certs(tmp_path / "certs")
    args = ["--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key)]
    server, port = start_tls(tmp_path / "data", *args, "--tls-ca-cert-file", str(certs.ca))
    try:
        summary = run_smoke(node, script, port, resp, "--lists", "--tls", str(certs.dir))
        assert summary["checks"]["brpop"] == "ok"  # type: ignore[index]
    finally:
        server.stop()
