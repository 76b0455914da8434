"""Start respq and redis-server pinned to one core, and read their CPU, disk writes, RSS and descriptors from /proc."""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path

from bench.client import wait_serving

SERVER_CORE = "0"
CLIENT_CORE = "1"
START_TIMEOUT = 600.0  # a 10M-message restart is part of what is measured
READY_LINE = re.compile(rb"Ready to accept connections.*?port=(\d+)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
REPO_ROOT = Path(__file__).resolve().parent.parent
MEMORY = "memory"  # the policy name of runs without a disk: respq --storage memory, redis --appendonly no


@dataclass(frozen=True)
class ProcSample:
    """Cumulative counters of one process at one moment."""

    when: float
    cpu_seconds: float
    write_bytes: int
    rss_bytes: int

    def cpu_since(self, earlier: ProcSample) -> float:
        return self.cpu_seconds - earlier.cpu_seconds


def sample(pid: int) -> ProcSample:
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / CLOCK_TICKS
    rss = int(stat[21]) * PAGE_SIZE
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return ProcSample(time.monotonic(), cpu, int(io["write_bytes"]), rss)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]

    respq_version = subprocess.run(
        [sys.executable, "-c", "import respq; print(respq.__version__)"],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT,
    ).stdout.strip()
    return {
        "redis-server": first_line(["redis-server", "--version"]),
        "redis-benchmark": first_line(["redis-benchmark", "--version"]),
        "respq": respq_version or "unknown",
        "python": sys.version.split()[0],
    }


def machine() -> dict[str, str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"nproc": str(os.cpu_count()), "cpu": model, "kernel": os.uname().release}


class Server:
    """One server process in its own session and temporary directory, on SERVER_CORE."""

    kind = ""

    def __init__(self, policy: str, data_dir: Path | None = None) -> None:
        self.policy = policy
        self.owns_dir = data_dir is None
        self.dir = data_dir or Path(tempfile.mkdtemp(prefix=f"bench-{self.kind}-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.output = bytearray()
        self.started_at = 0.0

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> float:
        """Starts the server; returns seconds from spawn until PING answers."""
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *self.argv()],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._pump, args=(ready,), daemon=True).start()
        if not ready.wait(START_TIMEOUT) or self.proc.poll() is not None:
            self.kill()
            raise RuntimeError(f"{self.kind} did not start:\n{self.output.decode(errors='replace')}")
        wait_serving(self.port, START_TIMEOUT)
        return time.monotonic() - self.started_at

    def _pump(self, ready: threading.Event) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            if len(self.output) < 1 << 20:
                self.output += line
            if not ready.is_set():
                match = READY_LINE.search(line)
                if match:
                    self.port = self.port or int(match.group(1))
                    ready.set()
                elif self.port and b"Ready to accept connections" in line:
                    ready.set()
        ready.set()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # taskset execs the server, so this is the server itself

    def sample(self) -> ProcSample:
        return sample(self.pid)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def shutdown(self, timeout: float = 600.0) -> None:
        """Graceful stop (respq checkpoints, Redis fsyncs its AOF), keeping the directory for a restart."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)

    def cleanup(self) -> None:
        self.kill()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class RespqServer(Server):
    kind = "respq"

    def argv(self) -> list[str]:
        # The "memory" policy: respq's memory store against Redis without persistence.
        durability = ["--storage", "memory"] if self.policy == MEMORY else ["--appendfsync", self.policy]
        return [sys.executable, "-m", "respq", "serve", "--port", str(self.port), "--dir", str(self.dir / "data"),
                *durability]


class RedisServer(Server):
    kind = "redis"

    def argv(self) -> list[str]:
        self.port = self.port or free_port()
        return [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            *(["--appendonly", "no"] if self.policy == MEMORY else
              ["--appendonly", "yes", "--appendfsync", self.policy, "--auto-aof-rewrite-percentage", "0"]),
            "--save", "", "--daemonize", "no", "--logfile", "",
        ]


SERVERS: dict[str, type[Server]] = {"respq": RespqServer, "redis": RedisServer}
