"""pytest plugin: a real respq server for an application's test suite (where fakeredis or a container would go).

Installed with respq (the ``pytest11`` entry point ``respq``); ``-p no:respq`` disables it. Fixtures:

- ``respq_server`` (session): a respq subprocess on a free loopback port, its data in a temporary directory,
  started on first use and stopped at the end of the session. ``--respq-storage`` chooses where it keeps its data.
- ``respq_url``: ``redis://127.0.0.1:<port>/0``, the server emptied (FLUSHALL) before the test.
- ``respq_client``: a redis-py client on that URL (needs the ``redis`` package), the server emptied before the test.

Importing this module costs nothing but the standard library and pytest: the plugin loads in every pytest run of
an environment where respq is installed, and starts nothing until a test asks for a fixture.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

READY_LINE = re.compile(rb"Ready to accept connections.*?port=(\d+)")
START_TIMEOUT = 60.0  # seconds: a loaded CI machine, and the first import of respq's modules
STOP_TIMEOUT = 30.0
HOST = "127.0.0.1"
# Where the server keeps its data. "memory" (the ``storage memory`` directive) waits for the memory-only mode.
STORAGES = {"disk": [], "memory": ["--storage", "memory"]}
PR_SET_PDEATHSIG = 1


@dataclass
class RespqServer:
    """A respq server process started for the test session."""

    host: str
    port: int
    data_dir: str
    startup_seconds: float  # from spawn to ready: what the session paid for it
    process: subprocess.Popen[bytes] = field(repr=False)
    output: bytearray = field(default_factory=bytearray, repr=False)  # what it logged, for failure reports

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("respq", "respq server fixtures (respq.testing)")
    group.addoption(
        "--respq-storage",
        choices=sorted(STORAGES),
        default="disk",
        help="where the respq_server fixture keeps its data: disk (a temporary directory, the default) or memory",
    )


def _die_with_parent() -> None:
    """In the child before exec: a test run killed (timeout, ^C, kill -9) takes its server with it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start_server(data_dir: str, storage: str = "disk", *extra: str) -> RespqServer:
    """Starts ``respq serve`` on a free loopback port with its data in ``data_dir``; returns once it answers."""
    argv = [
        sys.executable, "-m", "respq", "serve",
        "--port", "0", "--bind", HOST, "--dir", data_dir,
        # A test suite needs semantics, not crash safety: the journal is written, never synced.
        "--appendfsync", "no",
        *STORAGES[storage], *extra,
    ]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    output = bytearray()
    ready = threading.Event()
    port: list[int] = []

    def pump() -> None:  # reads the log to the end, so that a chatty server never blocks on a full pipe
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            if len(output) < 1 << 20:
                output.extend(line)
            match = READY_LINE.search(line) if not port else None
            if match:
                port.append(int(match.group(1)))
                ready.set()
        ready.set()

    threading.Thread(target=pump, name="respq-server-log", daemon=True).start()
    if not ready.wait(START_TIMEOUT) or not port or process.poll() is not None:
        _stop(process)
        raise RuntimeError(f"respq did not start ({' '.join(argv)}):\n{output.decode(errors='replace')}")
    return RespqServer(HOST, port[0], data_dir, time.monotonic() - started, process, output)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)


def flushall(host: str, port: int) -> None:
    """Empties every database, over a plain socket (respq_url needs no client library)."""
    with socket.create_connection((host, port), timeout=STOP_TIMEOUT) as sock:
        sock.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    if reply != b"+OK\r\n":
        raise RuntimeError(f"FLUSHALL answered {reply!r}")


@pytest.fixture(scope="session")
def respq_server(request: pytest.FixtureRequest) -> Iterator[RespqServer]:
    """A respq server for the whole session (started on first use)."""
    storage = request.config.getoption("respq_storage")
    data_dir = tempfile.mkdtemp(prefix="respq-pytest-")
    try:
        server = start_server(os.path.join(data_dir, "data"), storage)
        try:
            yield server
        finally:
            _stop(server.process)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def respq_url(respq_server: RespqServer) -> str:
    """The session server's URL, every database emptied before the test."""
    flushall(respq_server.host, respq_server.port)
    return respq_server.url


@pytest.fixture
def respq_client(respq_url: str) -> Iterator[Any]:
    """A redis-py client of the session server, every database emptied before the test."""
    import redis

    client = redis.Redis.from_url(respq_url)
    try:
        yield client
    finally:
        client.close()
