"""python -m bench.setmemory: RSS growth per set member, respq beside redis-server (not part of CI or the default run).

Two shapes, each on a fresh server: one key of 1M members, and 10k keys of 100 members, every member a 36-byte id
(``job:`` and 32 digits, as job ids are). Growth is the settled RSS after loading minus the idle server's; the
issue's target is respq <= 1.25x Redis's growth.

    PYTHONPATH=$PWD python -m bench.setmemory [--members 1000000] [--keys 10000] [--per-key 100] [--policy always]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

from bench.client import Client, encode
from bench.servers import SERVERS, Server
from bench.workloads import CheckFailed

SETTLE_SECONDS = 2.0
BATCH = 1000  # members per SADD when loading one big set


def _member(index: int) -> bytes:
    return b"job:%032d" % index


def _send_all(client: Client, commands: Iterator[bytes], pipeline: int = 16) -> None:
    """Sends the commands ``pipeline`` at a time; every reply must be a count, never an error."""
    batch: list[bytes] = []
    for command in commands:
        batch.append(command)
        if len(batch) == pipeline:
            _exchange(client, batch)
            batch = []
    if batch:
        _exchange(client, batch)


def _exchange(client: Client, batch: list[bytes]) -> None:
    for reply in client.exchange(b"".join(batch), len(batch)):
        if isinstance(reply, Exception):
            raise CheckFailed(f"error reply while loading: {reply}")


def _settled(server: Server) -> int:
    time.sleep(SETTLE_SECONDS)
    return server.sample().rss_bytes


def _load(server: Server, commands: Iterator[bytes], expected_keys: int, members: int) -> dict[str, float]:
    idle = _settled(server)
    with Client(server.port) as client:
        _send_all(client, commands)
        if client.call("DBSIZE") != expected_keys:
            raise CheckFailed("DBSIZE after loading the sets")
    growth = _settled(server) - idle
    return {"idle_rss": idle, "growth": growth, "bytes_per_member": growth / members}


def one_big_set(server: Server, members: int) -> dict[str, float]:
    commands = (
        encode(b"SADD", b"big", *(_member(i) for i in range(start, min(start + BATCH, members))))
        for start in range(0, members, BATCH)
    )
    return _load(server, commands, 1, members)


def many_small_sets(server: Server, keys: int, per_key: int) -> dict[str, float]:
    commands = (
        encode(b"SADD", b"set:%d" % key, *(_member(key * per_key + i) for i in range(per_key))) for key in range(keys)
    )
    return _load(server, commands, keys, keys * per_key)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.setmemory", description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000, help="members of the one big set")
    parser.add_argument("--keys", type=int, default=10_000, help="number of small sets")
    parser.add_argument("--per-key", type=int, default=100, help="members per small set")
    parser.add_argument("--policy", default="always", choices=("always", "everysec", "no"))
    args = parser.parse_args()
    shapes = {
        f"one set of {args.members:,} members": lambda server: one_big_set(server, args.members),
        f"{args.keys:,} sets of {args.per_key} members": (
            lambda server: many_small_sets(server, args.keys, args.per_key)
        ),
    }
    for title, shape in shapes.items():
        measured = {}
        for kind in ("respq", "redis"):
            with SERVERS[kind](args.policy) as server:
                measured[kind] = shape(server)
        respq, redis = measured["respq"], measured["redis"]
        print(
            f"{title}: respq {respq['bytes_per_member']:.0f} B/member ({respq['growth'] / 2**20:.1f} MiB), "
            f"redis {redis['bytes_per_member']:.0f} B/member ({redis['growth'] / 2**20:.1f} MiB), "
            f"ratio {respq['growth'] / redis['growth']:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
