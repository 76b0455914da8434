"""The `server` fixture: a port of a freshly started respq, and of real Redis 7.0 too with RESPQ_CLIENTS_VS_REDIS=1.

Every test here must also pass against real Redis (respq mimics it), so running the matrix against both is a check
of the tests themselves, not only of respq.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import IN_CI, require_tool, start_respq  # the repository's root conftest.py

NODE_DIR = Path(__file__).parent / "node"

SERVER_KINDS = ["respq"] + (["redis"] if os.environ.get("RESPQ_CLIENTS_VS_REDIS") == "1" else [])


@pytest.fixture(params=SERVER_KINDS)
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(server_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    """The port of the server under test; a respq that died during the test fails it, with its log."""
    if server_kind == "redis":
        port = request.getfixturevalue("redis_oracle").port
        # The oracle is shared by the whole session: start each test from an empty database as respq does.
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=10) as oracle_client:
            oracle_client.flushall()
        yield port
        return
    process = start_respq(tmp_path / "data")
    try:
        yield process.port
        if not process.alive():
            pytest.fail(f"respq exited during the test:\n{process.output.decode(errors='replace')}")
    finally:
        process.stop()


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the client packages of node/ installed."""
    node_binary = require_tool("node")
    if not (NODE_DIR / "node_modules").is_dir():
        message = f"node modules missing: run `npm ci` in {NODE_DIR} (scripts/test does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return node_binary
