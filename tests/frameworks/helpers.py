"""Workers and waiting for the framework tests: subprocesses in their own process group, logs kept for failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conftest import PR_SET_PDEATHSIG  # the repository's root conftest.py

REPO = Path(__file__).resolve().parents[2]
# A scenario waits on observable state up to this long; the whole test is bounded by pytest-timeout as well.
SCENARIO_TIMEOUT = 30.0


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Worker:
    """A framework's worker (or scheduler) process; its output is kept in a log file for failure reports."""

    def __init__(self, argv: list[str], log_path: Path, *, env: dict[str, str] | None = None, cwd: Path = REPO) -> None:
        self.argv = argv
        self.log_path = log_path
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join([str(REPO), environment.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        environment["PYTHONUNBUFFERED"] = "1"
        environment.update(env or {})
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=environment, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = SCENARIO_TIMEOUT) -> int:
        """Waits for a worker that ends by itself (burst mode)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.argv} did not finish in {timeout} s:\n{self.output()}") from None

    def stop(self, graceful: float = 10.0) -> None:
        """SIGTERM (a warm shutdown for every framework here), then SIGKILL for the whole group."""
        if self.alive() and graceful > 0:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(graceful)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self._log.close()

    def kill(self) -> None:
        """kill -9 of the whole group, as a crash."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


class Workers:
    """Starts workers for one test and stops every one of them at its end, printing their logs if it failed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Worker] = []

    def start(self, *argv: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> Worker:
        log_path = self.tmp_path / f"worker-{len(self.started)}.log"
        worker = Worker(list(argv), log_path, env=env, cwd=cwd)
        self.started.append(worker)
        return worker

    def python(self, *args: str, env: dict[str, str] | None = None) -> Worker:
        """A console script of this virtualenv's frameworks, run as `python -m`."""
        return self.start(sys.executable, *args, env=env)

    def logs(self) -> str:
        return "\n".join(f"--- {' '.join(w.argv)}\n{w.output()[-6000:]}" for w in self.started)

    def stop_all(self) -> None:
        """At the end of a test nothing is left to finish: kill, rather than wait for each graceful shutdown."""
        for worker in self.started:
            if not worker._log.closed:
                worker.stop(graceful=0)


def eventually(predicate: Callable[[], object], timeout: float = SCENARIO_TIMEOUT, what: str = "condition") -> object:
    """Polls observable state (a job's status, a counter) until truthy; never a fixed sleep for ordering."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        time.sleep(0.02)
