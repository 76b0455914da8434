"""``respq cluster create HOST:PORT ...``: gives the 16384 slots to N respq nodes started with ``cluster-enabled
yes`` and pushes the map to every one of them (CLUSTERX SETNODEID, then SETNODES), as redis-cli --cluster create
does for Redis. Running it again re-pushes the same split with a higher version."""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import TextIO

from respq.admin import ReplyError, RespClient
from respq.cluster import SLOTS

USAGE = "respq cluster create HOST:PORT [HOST:PORT ...] [-a password] [--user name]"


def split_slots(count: int) -> list[tuple[int, int]]:
    """The slot ranges of ``count`` nodes, as redis-cli --cluster create splits them (3 nodes: 0-5460,
    5461-10922, 10923-16383)."""
    per_node = SLOTS / count
    ranges, first, cursor = [], 0, 0.0
    for index in range(count):
        last = int(cursor + per_node - 1 + 0.5)  # C's lround for these positive values
        if last > SLOTS - 1 or index == count - 1:
            last = SLOTS - 1
        ranges.append((first, last))
        first, cursor = last + 1, cursor + per_node
    return ranges


def node_id(client: RespClient, address: str) -> str:
    """The node's id if it has one already, else one derived from its address (the same on every run)."""
    reply = client.call("CLUSTER", "MYID")
    if isinstance(reply, bytes) and len(reply) == 40:
        return reply.decode()
    return hashlib.sha1(address.encode()).hexdigest()


def create(addresses: list[str], password: str | None, user: str | None, out: TextIO) -> int:
    clients: list[RespClient] = []
    try:
        for address in addresses:
            host, _, port = address.rpartition(":")
            client = RespClient(host, int(port))
            clients.append(client)
            if password is not None:
                client.checked(*(["AUTH", user, password] if user else ["AUTH", password]))
        versions = [client.checked("CLUSTERX", "VERSION") for client in clients]
        ids = [node_id(client, address) for client, address in zip(clients, addresses, strict=True)]
        ranges = split_slots(len(addresses))
        lines = []
        for address, identifier, (first, last) in zip(addresses, ids, ranges, strict=True):
            host, _, port = address.rpartition(":")
            lines.append(f"{identifier} {host} {port} master - {first}-{last}")
        text = "\n".join(lines)
        version = max(versions) + 1
        for client, identifier in zip(clients, ids, strict=True):
            client.checked("CLUSTERX", "SETNODEID", identifier)
            client.checked("CLUSTERX", "SETNODES", text, version)
    except (OSError, ValueError, ReplyError) as error:
        print(f"respq cluster create: {error}", file=sys.stderr)
        return 1
    finally:
        for client in clients:
            client.close()
    print(f"Slot map version {version} pushed to {len(addresses)} nodes:", file=out)
    print(text, file=out)
    return 0


def run(argv: list[str], out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="respq cluster", usage=USAGE, description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["create"])
    parser.add_argument("nodes", nargs="+", metavar="HOST:PORT")
    parser.add_argument("-a", dest="password", help="password (AUTH), the same on every node")
    parser.add_argument("--user", help="ACL user name, with -a")
    args = parser.parse_args(argv)
    return create(args.nodes, args.password, args.user, out)
