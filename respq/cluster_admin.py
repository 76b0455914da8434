"""``respq cluster create HOST:PORT ...``: gives the 16384 slots to N respq nodes started with ``cluster-enabled
yes`` and pushes the map to every one of them (CLUSTERX SETNODEID, then SETNODES), as redis-cli --cluster create
does for Redis. Running it again re-pushes the same split with a higher version.

``respq cluster move-slot SLOT HOST:PORT``: moves a slot with its keys to the node at HOST:PORT (docs/cluster.md)."""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import TextIO

from respq.admin import ReplyError, RespClient
from respq.cluster import SLOTS

USAGE = """respq cluster create HOST:PORT [HOST:PORT ...] [-a password] [--user name]
       respq cluster move-slot SLOT HOST:PORT [-a password] [--user name] [--pause-ms N]"""
PAUSE_MS = 60_000  # how long the old owner holds writes at most if this tool dies mid-copy


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


def connect(address: str, password: str | None, user: str | None) -> RespClient:
    host, _, port = address.rpartition(":")
    client = RespClient(host, int(port))
    if password is not None:
        client.checked(*(["AUTH", user, password] if user else ["AUTH", password]))
    return client


def create(addresses: list[str], password: str | None, user: str | None, out: TextIO) -> int:
    clients: list[RespClient] = []
    try:
        for address in addresses:
            clients.append(connect(address, password, user))
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


def _map_nodes(client: RespClient) -> dict[str, tuple[str, list[tuple[int, int]]]]:
    """Each node of the map (CLUSTER NODES): its id -> its address and slot ranges."""
    nodes = {}
    for line in client.checked("CLUSTER", "NODES").decode().splitlines():
        fields = line.split()
        address = fields[1].split("@")[0]
        ranges = []
        for text in fields[8:]:
            first, _, last = text.partition("-")
            ranges.append((int(first), int(last or first)))
        nodes[fields[0]] = (address, ranges)
    return nodes


def _copy_slot(source: RespClient, target: RespClient, slot: int) -> int:
    """Copies every key of ``slot`` with its value (DUMP carries a stream's groups, PELs and consumers) and its
    time to live; the new owner takes them after ASKING, as the slot is being imported there."""
    count = source.checked("CLUSTER", "COUNTKEYSINSLOT", slot)
    keys = source.checked("CLUSTER", "GETKEYSINSLOT", slot, count) if count else []
    copied = 0
    for start in range(0, len(keys), 100):
        batch = keys[start : start + 100]
        dumped = source.pipeline([command for key in batch for command in (["DUMP", key], ["PTTL", key])])
        restores: list[list[str | bytes | int]] = []
        for key, payload, ttl in zip(batch, dumped[::2], dumped[1::2], strict=True):
            if payload is None:  # expired since it was listed
                continue
            restores += [["ASKING"], ["RESTORE", key, max(ttl, 0), payload, "REPLACE"]]
        for reply in target.pipeline(restores):
            if isinstance(reply, ReplyError):
                raise reply
        copied += len(restores) // 2
    return copied


def move_slot(slot: int, address: str, password: str | None, user: str | None, pause_ms: int, out: TextIO) -> int:
    """Holds writes on the slot's owner (CLIENT PAUSE WRITE), copies the slot's keys to the new owner, gives it the
    slot in a map of the next version on every node, lets writes go on (those held to the slot then get MOVED),
    and last deletes the copies the old owner keeps."""
    clients: dict[str, RespClient] = {}
    source = target = None
    try:
        target = connect(address, password, user)
        nodes = _map_nodes(target)
        target_id = target.checked("CLUSTER", "MYID").decode()
        owner = next((nid for nid, (_, ranges) in nodes.items() if any(a <= slot <= b for a, b in ranges)), None)
        if owner is None or target_id not in nodes:
            raise ValueError(f"slot {slot} or the node {address} is not in the map")
        if owner == target_id:
            print(f"Slot {slot} is already served by {address}", file=out)
            return 0
        clients = {nid: connect(node_address, password, user) for nid, (node_address, _) in nodes.items()}
        source = clients[owner]
        version = target.checked("CLUSTERX", "VERSION") + 1
        source.checked("CLIENT", "PAUSE", pause_ms, "WRITE")
        target.checked("CLUSTERX", "IMPORT", slot, 0)
        try:
            copied = _copy_slot(source, target, slot)
        except BaseException:
            target.call("CLUSTERX", "IMPORT", slot, 2)
            source.call("CLIENT", "UNPAUSE")
            raise
        # The new owner first, so that a client redirected by another node finds the slot served there.
        for nid in [target_id, *(nid for nid in clients if nid != target_id)]:
            clients[nid].checked("CLUSTERX", "SETSLOT", slot, "NODE", target_id, version)
        target.checked("CLUSTERX", "IMPORT", slot, 1)
        source.checked("CLIENT", "UNPAUSE")
        removed = source.checked("CLUSTERX", "DELKEYSINSLOT", slot)
    except (OSError, ValueError, ReplyError) as error:
        print(f"respq cluster move-slot: {error}", file=sys.stderr)
        return 1
    finally:
        for client in [*clients.values(), *([target] if target is not None else [])]:
            client.close()
    print(f"Slot {slot}: {copied} keys copied to {address}, map version {version}, {removed} removed", file=out)
    return 0


def run(argv: list[str], out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="respq cluster", usage=USAGE, description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["create", "move-slot"])
    parser.add_argument("args", nargs="+", metavar="HOST:PORT", help="create: the nodes; move-slot: SLOT HOST:PORT")
    parser.add_argument("-a", dest="password", help="password (AUTH), the same on every node")
    parser.add_argument("--user", help="ACL user name, with -a")
    parser.add_argument("--pause-ms", type=int, default=PAUSE_MS, help="move-slot: longest hold of writes")
    args = parser.parse_args(argv)
    if args.action == "create":
        return create(args.args, args.password, args.user, out)
    if len(args.args) != 2 or not args.args[0].isdigit() or not 0 <= int(args.args[0]) < SLOTS:
        parser.error("move-slot takes SLOT (0-16383) and the new owner's HOST:PORT")
    return move_slot(int(args.args[0]), args.args[1], args.password, args.user, args.pause_ms, out)
