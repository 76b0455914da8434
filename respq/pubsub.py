"""Channel, shard channel and pattern subscriptions, and delivery of published messages as push replies."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from respq.glob import compile_glob
from respq.replies import Push

if TYPE_CHECKING:
    from respq.client import Client


class Channels:
    """The subscribers of one kind of channel: global channels (SUBSCRIBE, PUBLISH) or shard channels (SSUBSCRIBE,
    SPUBLISH). Redis 7.0 keeps the kinds apart: a name subscribed as both is two subscriptions, a message published
    to one kind never reaches the other, and patterns only ever see global channels."""

    __slots__ = ("_mine", "message", "subscribers")

    def __init__(self, message: bytes, mine: Callable[[Client], set[bytes]]) -> None:
        self.message = message  # the push type a subscriber receives: b"message" or b"smessage"
        self._mine = mine  # the client's own set of channels of this kind
        # Insertion-ordered so subscribers receive messages in the order they subscribed, as in Redis.
        self.subscribers: dict[bytes, dict[int, Client]] = {}

    def of(self, client: Client) -> set[bytes]:
        return self._mine(client)

    def subscribe(self, client: Client, channel: bytes) -> bool:
        mine = self._mine(client)
        if channel in mine:
            return False
        mine.add(channel)
        self.subscribers.setdefault(channel, {})[client.id] = client
        return True

    def unsubscribe(self, client: Client, channel: bytes) -> bool:
        mine = self._mine(client)
        if channel not in mine:
            return False
        mine.discard(channel)
        _remove(self.subscribers, channel, client.id)
        return True

    def deliver(self, channel: bytes, message: bytes) -> int:
        subscribers = self.subscribers.get(channel)
        if not subscribers:
            return 0
        receivers = 0
        for client in list(subscribers.values()):  # a push over its output limit may disconnect a subscriber
            client.push(Push([self.message, channel, message]))
            receivers += 1
        return receivers

    def numsub(self, channel: bytes) -> int:
        return len(self.subscribers.get(channel, ()))


class PubSub:
    def __init__(self) -> None:
        self.plain = Channels(b"message", lambda client: client.channels)
        self.shard = Channels(b"smessage", lambda client: client.shard_channels)
        self.patterns: dict[bytes, dict[int, Client]] = {}

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
        for kind in (self.plain, self.shard):
            for channel in list(kind.of(client)):
                kind.unsubscribe(client, channel)
        for pattern in list(client.patterns):
            self.punsubscribe(client, pattern)

    def publish(self, channel: bytes, message: bytes) -> int:
        receivers = self.plain.deliver(channel, message)
        for pattern, clients in list(self.patterns.items()):
            if compile_glob(pattern)(channel):
                for client in list(clients.values()):
                    client.push(Push([b"pmessage", pattern, channel, message]))
                    receivers += 1
        return receivers

    def spublish(self, channel: bytes, message: bytes) -> int:
        return self.shard.deliver(channel, message)


def _remove(registry: dict[bytes, dict[int, Client]], name: bytes, client_id: int) -> None:
    clients = registry.get(name)
    if clients is not None:
        clients.pop(client_id, None)
        if not clients:
            del registry[name]
