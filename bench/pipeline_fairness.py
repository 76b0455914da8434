"""python -m bench.pipeline_fairness: one client's huge pipeline against another client's PING latency.

A pipelining client writes COMMANDS ``RPUSH k x`` before reading any reply (as redis-py's pipeline.execute() does),
then reads them all. Meanwhile another client sends PING one at a time and records each round trip. Prints the
pipeline's duration and the PING latency percentiles while it ran, for respq and redis-server (same core, one at a
time). The target: PING p99 under 50 ms while the pipeline runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time

from bench.servers import CLIENT_CORE, SERVERS
from respq.protocol import encode_command


def recv_exactly(sock: socket.socket, size: int) -> None:
    left = size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("server closed the connection")
        left -= len(chunk)


def pipeline(port: int, commands: int, done: threading.Event, result: dict[str, float]) -> None:
    request = encode_command([b"RPUSH", b"k", b"x"]) * commands
    replies = sum(len(b":%d\r\n" % (i + 1)) for i in range(commands))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(300)
        started = time.monotonic()
        sock.sendall(request)
        result["written"] = time.monotonic() - started
        recv_exactly(sock, replies)
        result["total"] = time.monotonic() - started
    done.set()


def ping_latencies(port: int, done: threading.Event) -> list[float]:
    latencies = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(60)
        while not done.is_set():
            started = time.monotonic()
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            recv_exactly(sock, 7)
            latencies.append(time.monotonic() - started)
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(kind: str, policy: str, commands: int) -> None:
    with SERVERS[kind](policy) as server:
        done = threading.Event()
        result: dict[str, float] = {}
        writer = threading.Thread(target=pipeline, args=(server.port, commands, done, result), daemon=True)
        started = server.sample()
        writer.start()
        latencies = ping_latencies(server.port, done)
        writer.join()
        cpu = server.sample().cpu_since(started)
    ms = [latency * 1000 for latency in latencies]
    print(
        f"{kind:5} {policy:8} {commands:,} commands: written in {result['written']:.1f} s, all replies in "
        f"{result['total']:.1f} s ({commands / result['total']:,.0f}/s), server CPU {cpu:.1f} s; "
        f"PING x{len(ms):,} p50 {percentile(ms, 0.5):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
        f"max {max(ms):.2f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_fairness", description=__doc__)
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--policy", default="always", choices=("always", "everysec", "no"))
    parser.add_argument("--servers", default="respq,redis")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(CLIENT_CORE)})  # the clients on the other core, as the throughput rows
    for kind in args.servers.split(","):
        run(kind, args.policy, args.commands)


if __name__ == "__main__":
    main()
