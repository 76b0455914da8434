"""BullMQ (Node.js, pinned by node/package-lock.json): Queue, Worker, QueueEvents, FlowProducer, the rate limiter and
job schedulers, driven by node/bullmq_scenarios.js. Every BullMQ operation is a Lua script on the server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import IN_CI, ServerProcess, require_tool

NODE_DIR = Path(__file__).parent / "node"
SCRIPT_TIMEOUT = 60.0  # the script's own watchdog fires at 40 s

EXPECTED = {
    "basics": {
        "before": {"waiting": 3, "prioritized": 3, "delayed": 1, "completed": 0, "failed": 0},
        "after": {"waiting": 0, "prioritized": 0, "delayed": 0, "completed": 6, "failed": 1},
        "order": ["p-high", "p-mid", "p-low"],
        "attempts": {"sum": 1, "flaky": 3, "boom": 2, "p-high": 1, "p-mid": 1, "p-low": 1, "later": 1},
        "delayed": [42, True],
        "failed": ["boom on purpose", 2],
        "events": ["flaky", "later", "p-high", "p-low", "p-mid", "sum"],
        "cleaned": 6,
        "afterClean": {"completed": 0, "failed": 1},
        "afterObliterate": {"completed": 0, "failed": 0, "waiting": 0},
    },
    "flow": {"parentState": "waiting-children", "children": 3, "result": 60},
    "limiter": {"completed": 6, "atLeast800ms": True},
    "schedulers": {"schedulers": [["every-200ms", 200, "tick"]], "repeated": True, "removed": True, "left": 0},
}


@pytest.fixture(scope="module")
def node() -> str:
    binary = require_tool("node")
    if not (NODE_DIR / "node_modules" / "bullmq").is_dir():
        message = f"BullMQ missing: run `npm ci` in {NODE_DIR} (scripts/test does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_bullmq_scenario(node: str, server: ServerProcess, scenario: str) -> None:
    completed = subprocess.run(
        [node, "bullmq_scenarios.js", str(server.port), scenario], cwd=NODE_DIR, capture_output=True,
        timeout=SCRIPT_TIMEOUT, check=False, stdin=subprocess.DEVNULL,
    )
    details = f"exit {completed.returncode}\n{completed.stdout.decode(errors='replace')}\n" + completed.stderr.decode(
        errors="replace")
    assert completed.returncode == 0, details
    assert json.loads(completed.stdout.decode().strip().splitlines()[-1]) == EXPECTED[scenario], details
