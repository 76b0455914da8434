"""python -m bench.cluster: redis-benchmark --cluster against three respq nodes and three redis-server nodes.

Each side is a fresh three-node cluster on the server core (respq formed by ``respq cluster create``, Redis by
``redis-cli --cluster create``), loaded by one redis-benchmark on the client core with the issue's row:
``--cluster -P 16 -r 10000 LPUSH 'q:{tag}:__rand_int__' <100 B>`` (redis-benchmark gives each node its own tag).
Runs alternate between the sides; it prints requests per second and respq's ratio to Redis.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import time

import redis

from bench.servers import CLIENT_CORE, RedisServer, RespqServer, Server, free_port

VALUE = "x" * 100
NODES = 3


class RespqNode(RespqServer):
    def argv(self) -> list[str]:
        return [*super().argv(), "--cluster-enabled", "yes"]


class RedisNode(RedisServer):
    def argv(self) -> list[str]:
        return [*super().argv(), "--cluster-enabled", "yes", "--cluster-port", str(free_port())]


def _form(kind: str, nodes: list[Server]) -> None:
    addresses = [f"127.0.0.1:{node.port}" for node in nodes]
    if kind == "respq":
        create = [sys.executable, "-m", "respq", "cluster", "create", *addresses]
        subprocess.run(create, check=True, capture_output=True)
        return
    subprocess.run(["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    for node in nodes:  # every node must know the whole map before redis-benchmark reads it
        with redis.Redis(port=node.port) as client:
            while b"cluster_known_nodes:3" not in client.execute_command("CLUSTER", "INFO") or (
                b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO")
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the redis-server cluster did not settle")
                time.sleep(0.05)


def run_once(kind: str, policy: str, requests: int) -> float:
    """Requests per second of one redis-benchmark run against a fresh cluster of ``kind``."""
    node_class = RespqNode if kind == "respq" else RedisNode
    nodes = [node_class(policy) for _ in range(NODES)]
    try:
        for node in nodes:
            node.start()
        _form(kind, nodes)
        argv = ["taskset", "-c", CLIENT_CORE, "redis-benchmark", "--cluster", "-p", str(nodes[0].port), "-P", "16",
                "-r", "10000", "-n", str(requests), "--csv", "LPUSH", "q:{tag}:__rand_int__", VALUE]
        done = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600)
        rows = list(csv.reader(io.StringIO(done.stdout.strip().splitlines()[-1])))
        return float(rows[0][1])
    finally:
        for node in nodes:
            node.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--policy", default="always", choices=("always", "everysec", "no"))
    args = parser.parse_args()
    results: dict[str, list[float]] = {"respq": [], "redis": []}
    for repeat in range(args.repeats):
        for kind in ("respq", "redis") if repeat % 2 == 0 else ("redis", "respq"):
            results[kind].append(run_once(kind, args.policy, args.requests))
    best = {kind: max(values) for kind, values in results.items()}
    for kind, values in results.items():
        print(f"{kind:6} {' '.join(f'{value:10.0f}' for value in values)} requests/s (best {best[kind]:.0f})")
    print(f"respq/redis {best['respq'] / best['redis']:.2f}x ({NODES} nodes, appendfsync {args.policy})")


if __name__ == "__main__":
    main()
