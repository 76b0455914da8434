"""Sorted sets' memory: RSS growth per member, respq beside redis-server, for one key of many members and for many
keys of 100 members (36-byte ids, float scores), and the restart time of the big key (respq's checkpoint and
journal against Redis loading its AOF). Not part of CI: ``python -m bench.zset_memory [--members N]``."""

from __future__ import annotations

import argparse
import json
import random
import time

from bench.client import Client, encode
from bench.memory import _send_all
from bench.servers import SERVERS, Server

BATCH = 100  # members per ZADD


def _member(index: int) -> bytes:
    return b"%036d" % index  # a 36-byte id, as a UUID's text is


def _zadds(key_of: object, members: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    commands = []
    for start in range(0, members, BATCH):
        args: list[bytes] = []
        for index in range(start, min(start + BATCH, members)):
            args += [repr(rng.random() * 1e9).encode(), _member(index)]
        commands.append(encode(b"ZADD", key_of(start), *args))  # type: ignore[operator]
    return commands


def _growth(server: Server, commands: list[bytes], settle: float) -> int:
    time.sleep(settle)
    idle = server.sample().rss_bytes
    with Client(server.port) as client:
        _send_all(client, iter(commands))
    time.sleep(settle)
    return server.sample().rss_bytes - idle


def measure(kind: str, members: int, keys: int, settle: float) -> dict[str, float]:
    """Each scenario on a fresh server, so that neither sees what the other's writes left in the allocator."""
    result: dict[str, float] = {}
    with SERVERS[kind]("everysec") as server:
        growth = _growth(server, _zadds(lambda start: b"k:%d" % (start // 100), keys * 100, 2), settle)
        result["small_keys_bytes_per_member"] = growth / (keys * 100)
    with SERVERS[kind]("everysec") as server:
        growth = _growth(server, _zadds(lambda start: b"big", members, 1), settle)
        result["one_key_bytes_per_member"] = growth / members
        server.shutdown()
        started = time.monotonic()
        server.start()
        with Client(server.port) as client:
            while client.call("ZCARD", "big") != members:
                time.sleep(0.01)
        result["restart_seconds"] = time.monotonic() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000, help="members of the one big key")
    parser.add_argument("--keys", type=int, default=10_000, help="keys of 100 members")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait before each RSS sample")
    args = parser.parse_args()
    results = {kind: measure(kind, args.members, args.keys, args.settle) for kind in ("redis", "respq")}
    for name in ("one_key_bytes_per_member", "small_keys_bytes_per_member", "restart_seconds"):
        results.setdefault("ratio", {})[name] = results["respq"][name] / results["redis"][name]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
