"""Cluster mode: one RESP connection to each other node of the slot map, carrying PUBLISH so that a message reaches
the subscribers of every node, as Redis Cluster delivers it cluster-wide over its bus.

A message goes to a peer as ``CLUSTERX PUBLISH channel message``, which delivers it there and is never forwarded again.
Messages are sent in order per peer; while a peer is unreachable its messages are dropped (a node that is down has no
subscribers to miss them), and the link reconnects every second."""

from __future__ import annotations

import trio

from respq.log import Logger
from respq.protocol import encode_command

RETRY_SECONDS = 1.0
MAX_PENDING = 100_000  # messages queued for one peer that does not keep up: past this, new ones are dropped


class _Link:
    def __init__(self, host: str, port: int, password: str, log: Logger) -> None:
        self.host, self.port, self.password, self.log = host, port, password, log
        self.pending: list[bytes] = []
        self.wakeup = trio.Event()
        self.cancel_scope = trio.CancelScope()

    def send(self, data: bytes) -> None:
        if len(self.pending) < MAX_PENDING:
            self.pending.append(data)
            self.wakeup.set()

    async def run(self) -> None:
        with self.cancel_scope:
            while True:
                try:
                    await self._connected()
                except* (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as group:  # from its nursery
                    self.log("verbose", f"Cluster link to {self.host}:{self.port} down: {group.exceptions[0]}")
                self.pending.clear()
                await trio.sleep(RETRY_SECONDS)

    async def _connected(self) -> None:
        stream = await trio.open_tcp_stream(self.host, self.port)
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(self._discard_replies, stream)
            if self.password:
                await stream.send_all(encode_command([b"AUTH", self.password.encode()]))
            while True:
                await self.wakeup.wait()
                self.wakeup = trio.Event()
                data, self.pending = b"".join(self.pending), []
                await stream.send_all(data)

    @staticmethod
    async def _discard_replies(stream: trio.SocketStream) -> None:
        while await stream.receive_some(65536):
            pass
        raise trio.BrokenResourceError("closed by the peer")


class PeerLinks:
    """The links to the other nodes of the map; ``update`` follows the map's changes."""

    def __init__(self, nursery: trio.Nursery, password: str, log: Logger) -> None:
        self.nursery, self.password, self.log = nursery, password, log
        self.links: dict[tuple[str, int], _Link] = {}

    def update(self, peers: set[tuple[str, int]]) -> None:
        for address in set(self.links) - peers:
            self.links.pop(address).cancel_scope.cancel()
        for address in peers - set(self.links):
            link = self.links[address] = _Link(*address, self.password, self.log)
            self.nursery.start_soon(link.run)

    def publish(self, channel: bytes, message: bytes) -> None:
        if self.links:
            data = encode_command([b"CLUSTERX", b"PUBLISH", channel, message])
            for link in self.links.values():
                link.send(data)
