"""ioredis's Cluster client over three respq nodes in cluster mode (node/ioredis_cluster.js): every message of the
list queues and streams it spreads from one startup node is read back exactly once."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_respq
from tests.clients.conftest import NODE_DIR
from tests.clients.test_node_clients import SCRIPT_TIMEOUT

SIZES = (1000, 100)  # list queues, streams with a group
LONG_SIZES = (10_000, 1000)  # --long: the sizes the cluster issue names
LONG_WATCHDOG_S = 300


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    servers = [start_respq(tmp_path / f"node{i}", "--cluster-enabled", "yes") for i in range(3)]
    try:
        ranges = ["0-5460", "5461-10922", "10923-16383"]
        text = "\n".join(
            f"{str(i) * 40} 127.0.0.1 {server.port} master - {r}"
            for i, (server, r) in enumerate(zip(servers, ranges, strict=True))
        )
        for server in servers:
            with redis.Redis(port=server.port) as client:
                client.execute_command("CLUSTERX", "SETNODES", text, 1)
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_ioredis_cluster_spreads_and_drains_exactly_once(
    node: str, nodes: list[ServerProcess], long_mode: bool
) -> None:
    queues, streams = LONG_SIZES if long_mode else SIZES
    watchdog = [str(LONG_WATCHDOG_S * 1000)] if long_mode else []
    completed = subprocess.run(
        [node, "ioredis_cluster.js", str(nodes[0].port), str(queues), str(streams), *watchdog],
        cwd=NODE_DIR, capture_output=True, check=False, stdin=subprocess.DEVNULL,
        timeout=LONG_WATCHDOG_S + 30 if long_mode else SCRIPT_TIMEOUT,
    )
    output = completed.stdout.decode(errors="replace").strip()
    summary = json.loads(output.splitlines()[-1]) if output else {}
    assert completed.returncode == 0 and summary.get("ok"), f"{output}\n{completed.stderr.decode(errors='replace')}"
    assert summary["nodes"] == 3
    assert sorted(summary["popped"]) == sorted(f"{i}:{s}" for i in range(queues) for s in "ab")
    assert sorted(summary["read"]) == list(range(streams))
    sizes = []
    for server in nodes:  # every key was created on its slot's owner, and drained there
        with redis.Redis(port=server.port) as client:
            sizes.append(client.dbsize())
    assert sum(sizes) == streams and all(size > 0 for size in sizes)  # the drained lists are gone, the streams stay
