"""Channel and pattern subscriptions, and delivery of published messages as push replies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from respq.glob import compile_glob
from respq.replies import Push

if TYPE_CHECKING:
    from respq.client import Client


class PubSub:
    def __init__(self) -> None:
        # Insertion-ordered so subscribers receive messages in the order they subscribed, as in Redis.
        self.channels: dict[bytes, dict[int, Client]] = {}
        self.patterns: dict[bytes, dict[int, Client]] = {}

    def subscribe(self, client: Client, channel: bytes) -> bool:
        if channel in client.channels:
            return False
        client.channels.add(channel)
        self.channels.setdefault(channel, {})[client.id] = client
        return True

    def unsubscribe(self, client: Client, channel: bytes) -> bool:
        if channel not in client.channels:
            return False
        client.channels.discard(channel)
        _remove(self.channels, channel, client.id)
        return True

    def psubscribe(self, client: Client, pattern: bytes) -> bool:
        if pattern in client.patterns:
            return False
        client.patterns.add(pattern)
        self.patterns.setdefault(pattern, {})[client.id] = client
        return True

    def punsubscribe(self, client: Client, pattern: bytes) -> bool:
        if pattern not in client.patterns:
            return False
        client.patterns.discard(pattern)
        _remove(self.patterns, pattern, client.id)
        return True

    def forget(self, client: Client) -> None:
        for channel in list(client.channels):
            self.unsubscribe(client, channel)
        for pattern in list(client.patterns):
            self.punsubscribe(client, pattern)

    def publish(self, channel: bytes, message: bytes) -> int:
        receivers = 0
        subscribers = self.channels.get(channel)
        if subscribers:
            for client in list(subscribers.values()):
                client.push(Push([b"message", channel, message]))
                receivers += 1
        for pattern, clients in list(self.patterns.items()):
            if compile_glob(pattern)(channel):
                for client in list(clients.values()):
                    client.push(Push([b"pmessage", pattern, channel, message]))
                    receivers += 1
        return receivers

    def numsub(self, channel: bytes) -> int:
        return len(self.channels.get(channel, ()))


def _remove(registry: dict[bytes, dict[int, Client]], name: bytes, client_id: int) -> None:
    clients = registry.get(name)
    if clients is not None:
        clients.pop(client_id, None)
        if not clients:
            del registry[name]
