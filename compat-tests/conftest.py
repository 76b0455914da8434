"""Server pairs for the differential tests: Debian's redis-server (the oracle) and the subject (respq).

RESPQ_COMPAT_SUBJECT=redis swaps respq for a second redis-server: every case must then pass, which validates the
runner and the cases themselves.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from compat_runner import Pair, make_pair

SUBJECT = os.environ.get("RESPQ_COMPAT_SUBJECT", "respq")
_observed: dict[str, str] = {}


def _root_fixtures(config: pytest.Config) -> ModuleType:
    """The repository's root conftest (server starters); pytest registers conftests under their path."""
    module = config.pluginmanager.get_plugin(str(config.rootpath / "conftest.py"))
    assert module is not None, "the root conftest.py provides start_redis/start_respq"
    return module


def pytest_report_header(config: pytest.Config) -> str:
    try:
        version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        version = "redis-server not found"
    return f"compat oracle: {version.strip()}; subject: {SUBJECT}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _observed:
        terminalreporter.write_line(
            f"compat: oracle Redis {_observed['oracle']} (INFO server), subject {_observed['subject']}"
        )


class _PairProcesses:
    """Starts an oracle and a subject with the same extra server arguments and stops both."""

    def __init__(
        self, config: pytest.Config, data_dir: Path, server_args: tuple[str, ...] = (), storage: str = "disk"
    ) -> None:
        self.config, self.data_dir, self.server_args, self.storage = config, data_dir, server_args, storage
        self._start()

    def _start(self) -> None:
        config, data_dir, server_args = self.config, self.data_dir, self.server_args
        root = _root_fixtures(config)
        self.processes = []
        try:
            oracle = root.start_redis(*server_args)
            self.processes.append(oracle)
            if SUBJECT == "redis":
                subject, label = root.start_redis(*server_args), "redis (as subject)"
            else:
                # Configured like the oracle: start_redis() turns RDB snapshots off, so respq reports the same.
                storage_args = root.STORAGE_MODES[self.storage]
                subject, label = root.start_respq(data_dir, "--save", "", *storage_args, *server_args), "respq"
            self.processes.append(subject)
        except BaseException:
            self.stop()
            raise
        self.subject_process = subject
        self.pair = make_pair(oracle.port, subject.port, label, server_args, subject_is_redis=SUBJECT == "redis")
        _observed.update(oracle=self.pair.oracle_version, subject=label)

    def died(self) -> str | None:
        """The subject's last output if it has exited."""
        if self.subject_process.alive():
            return None
        output = self.subject_process.output.decode(errors="replace")[-3000:]
        return f"the subject server exited ({self.subject_process.proc.returncode}):\n{output}"

    def restart(self) -> None:
        self.stop()
        self.data_dir = self.data_dir.with_name(self.data_dir.name + "-restarted")
        self._start()

    def stop(self) -> None:
        if hasattr(self, "pair"):
            self.pair.close()
        for process in self.processes:
            process.stop()


@pytest.fixture(scope="session", params=["disk", "memory"])
def storage(request: pytest.FixtureRequest) -> str:
    """The subject's storage directive: every case runs against both (the oracle has no disk either way)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def compat_servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, storage: str
) -> Iterator[_PairProcesses]:
    processes = _PairProcesses(request.config, tmp_path_factory.mktemp("respq-compat"), storage=storage)
    try:
        yield processes
    finally:
        processes.stop()


@pytest.fixture
def compat_pair(compat_servers: _PairProcesses) -> Iterator[Pair]:
    """The shared pair, flushed and with no client of an earlier test still connected.

    If a case makes the subject exit, that case errors with the subject's output and the pair is restarted, so
    one crash does not fail every case after it.
    """
    if compat_servers.died():
        compat_servers.restart()
    compat_servers.pair.reset()
    yield compat_servers.pair
    crash = compat_servers.died()
    if crash:
        pytest.fail(crash)


@pytest.fixture
def isolated_pair(request: pytest.FixtureRequest, tmp_path: Path, storage: str) -> Iterator[Callable[..., Pair]]:
    """A fresh pair for tests that change server state (CONFIG SET, requirepass, CLIENT KILL, SHUTDOWN, fuzzing)."""
    started: list[_PairProcesses] = []

    def start(*server_args: str) -> Pair:
        processes = _PairProcesses(request.config, tmp_path / f"data{len(started)}", tuple(server_args), storage)
        started.append(processes)
        processes.pair.reset()  # both sides get their control connection, so client counts match
        return processes.pair

    try:
        yield start
    finally:
        for processes in started:
            processes.stop()
