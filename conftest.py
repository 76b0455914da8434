"""Fixtures shared by tests/ and compat-tests/: servers under test run as subprocesses in their own process group."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest
from hypothesis import settings

IN_CI = os.environ.get("CI", "").lower() == "true"

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("long", max_examples=2000, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=60, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "dev"))

# This module, as `from conftest import ...` in test modules means it.
_SHARED_HELPERS = sys.modules.get(__name__)


def pytest_plugin_registered(plugin: object) -> None:
    """Keep `from conftest import ...` resolving to this file.

    pytest imports every conftest.py that is not inside a package under the one module name `conftest`, replacing the
    previous one in sys.modules: loading compat-tests/conftest.py would otherwise hide these helpers from tests/.
    """
    if _SHARED_HELPERS is not None and plugin is not _SHARED_HELPERS and getattr(plugin, "__name__", "") == "conftest":
        sys.modules["conftest"] = _SHARED_HELPERS


READY_LINE = re.compile(rb"Ready to accept connections.*?port=(\d+)")
START_TIMEOUT = 30.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", help="full sizes and many cycles instead of the CI sizes")


@pytest.fixture(scope="session")
def long_mode(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long"))


def _unavailable(message: str) -> NoReturn:
    """Something a test needs is missing: skips locally, fails under CI=true."""
    if IN_CI:
        pytest.fail(message + " (CI=true: missing tools fail the run)")
    pytest.skip(message)


def require_tool(name: str) -> str:
    """The path of an external tool; a missing tool skips locally and fails under CI=true."""
    path = shutil.which(name)
    if path is None:
        _unavailable(f"{name} is not installed")
    return path


def require_speedups() -> ModuleType:
    """respq's C module (respq/_speedups.c), whose functions the tests compare with their Python twins."""
    try:
        import respq._speedups as module
    except ImportError:
        _unavailable("respq._speedups is not built")
    return module


def _die_with_parent() -> None:
    """Runs in the child before exec: a test run killed mid-way (timeout, ^C) must not leave servers behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


PR_SET_PDEATHSIG = 1


class ServerProcess:
    """A server subprocess in its own process group, killed (the whole group) on stop()."""

    def __init__(
        self, argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None, port: int = 0
    ) -> None:
        """With ``port`` known in advance any ready line will do; otherwise the port is read from it."""
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.output = bytearray()
        self._ready = threading.Event()
        self.port = port
        self._known_port = port
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self.output += line
            if not self._ready.is_set():
                match = READY_LINE.search(line)
                if match:
                    self.port = int(match.group(1))
                    self._ready.set()
                elif self._known_port and b"Ready to accept connections" in line:
                    self._ready.set()
        self._ready.set()  # EOF: wake the waiter so it can report the exit

    def wait_ready(self, timeout: float = START_TIMEOUT) -> int:
        if not self._ready.wait(timeout) or not self.alive():
            self.stop()
            raise RuntimeError(f"{self.argv[0]} did not become ready:\n{self.output.decode(errors='replace')}")
        return self.port

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ends the process group; returns the exit code."""
        if self.alive():
            self.kill(signal.SIGKILL)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(timeout)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for a graceful exit."""
        self.kill(signal.SIGTERM)
        return self.proc.wait(timeout)


def start_respq(data_dir: Path, *extra: str, port: int = 0) -> ServerProcess:
    argv = [sys.executable, "-m", "respq", "serve", "--port", str(port), "--dir", str(data_dir), *extra]
    server = ServerProcess(argv)
    server.wait_ready()
    return server


def start_tls(data_dir: Path, *extra: str, plain: bool = False) -> tuple[ServerProcess, int]:
    """A respq with a TLS port (extra names the certificates), and a plaintext one with ``plain``; returns it and
    its TLS port. The ports are picked free beforehand (``port 0`` would mean no plaintext port), so retry."""
    last: Exception | None = None
    for _ in range(5):
        tls_port = free_port()
        try:
            server = start_respq(data_dir, "--tls-port", str(tls_port), *extra, port=free_port() if plain else 0)
        except RuntimeError as error:
            last = error
            continue
        return server, tls_port
    raise RuntimeError(f"respq with TLS did not start: {last}")


# The server arguments of each storage mode: suites that must hold in both run once per mode.
STORAGE_MODES: dict[str, tuple[str, ...]] = {"disk": (), "memory": ("--storage", "memory")}
MEMORY_STORAGE = STORAGE_MODES["memory"]


def memory_twin(machine: type) -> type:
    """The TestCase of a server model machine run against ``storage memory``: its ``storage_args`` are given to the
    server, and its ``restart`` rule empties the model (nothing survives a restart in memory)."""
    twin = type(machine.__name__ + "InMemory", (machine,), {"storage_args": MEMORY_STORAGE})
    twin.TestCase.settings = machine.TestCase.settings  # type: ignore[attr-defined]
    return pytest.mark.timeout(600)(twin.TestCase)  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(*extra: str) -> ServerProcess:
    """Debian's redis-server without persistence. redis-server has no `--port 0`, so pick a free port and retry."""
    binary = require_tool("redis-server")
    last_error: Exception | None = None
    for _ in range(5):
        port = free_port()
        argv = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
            *extra,
        ]
        server = ServerProcess(argv, port=port)
        try:
            server.wait_ready()
        except RuntimeError as error:
            last_error = error
            continue
        return server
    raise RuntimeError(f"redis-server did not start: {last_error}")


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.005) -> None:  # type: ignore[no-untyped-def]
    """Poll observable state (INFO fields, subscriber counts) until true; never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


@pytest.fixture
def respq_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_respq(tmp_path / "data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_oracle() -> Iterator[ServerProcess]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()
