"""Queue frameworks run unchanged against respq and, as the oracle, against redis-server.

Every scenario runs once per server kind with the same assertions, so what a framework's public API reports must be
the same on both. Workers are the frameworks' own command-line workers (tests/frameworks/helpers.py).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import IN_CI, ServerProcess, start_respq  # the repository's root conftest.py
from tests.frameworks.helpers import Workers

SERVER_KINDS = ["respq", "redis"]

# The Python frameworks come from tests/frameworks/requirements.txt (scripts/test installs it). Without them a module
# is left out locally; under CI=true it is collected anyway, so the import error fails the run.
_NEEDS = {
    "test_celery.py": ["celery"], "test_rq.py": ["rq"], "test_arq.py": ["arq"], "test_dramatiq.py": ["dramatiq"],
    "test_taskiq.py": ["taskiq", "taskiq_redis"], "test_durability.py": ["celery", "rq"],
}
collect_ignore = [] if IN_CI else [
    module for module, packages in _NEEDS.items()
    if any(importlib.util.find_spec(package) is None for package in packages)
]


@pytest.fixture(params=SERVER_KINDS)
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(server_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh respq, or the session's redis-server emptied; a respq that died during the test fails it."""
    if server_kind == "redis":
        oracle: ServerProcess = request.getfixturevalue("redis_oracle")
        with redis.Redis(port=oracle.port, socket_timeout=10) as client:
            client.flushall()
            client.script_flush()
        yield oracle
        return
    process = start_respq(tmp_path / "data")
    try:
        yield process
        if not process.alive():
            pytest.fail(f"respq exited during the test:\n{process.output.decode(errors='replace')}")
    finally:
        process.stop()


@pytest.fixture
def url(server: ServerProcess) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


@pytest.fixture
def client(server: ServerProcess) -> Iterator[redis.Redis]:
    """A raw client, for assertions only: the scenarios drive the frameworks' own APIs."""
    with redis.Redis(port=server.port, socket_timeout=10, decode_responses=True) as raw:
        yield raw


@pytest.fixture
def workers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    pool = Workers(tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()
        report = getattr(request.node, "rep_call", None)
        if report is not None and (report.failed or os.environ.get("RESPQ_FRAMEWORK_LOGS")):
            print(pool.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


