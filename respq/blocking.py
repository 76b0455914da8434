"""Clients blocked on keys (BLPOP, BLMOVE, XREAD BLOCK, ...): FIFO per key, served right after the command
that made a key ready, in the order they blocked, as Redis does."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

import trio


@dataclass(eq=False)
class Block:
    """Returned by a blocking handler that found nothing to serve: the connection parks the client on ``keys``."""

    keys: list[bytes]
    timeout: float | None  # seconds; None waits forever
    # Re-runs the command against the key that became ready; returns the reply, or None while there is still nothing.
    retry: Callable[[bytes], Any]
    timeout_reply: Any
    call_ns: int = 0  # how long the call that blocked ran: its latency once a key serves it
    serve_ns: int = 0  # how long serving it took, once a key did (Redis's command-unblocking latency)
    on_timeout: Callable[[], Any] | None = None  # the reply at the timeout when it is not a constant (WAIT's count)

    def reply_at_timeout(self) -> Any:
        return self.timeout_reply if self.on_timeout is None else self.on_timeout()


@dataclass(eq=False)
class Waiter:
    client_id: int
    db: int
    block: Block
    done: trio.Event = field(default_factory=trio.Event)
    reply: Any = None
    deadline: float = math.inf  # on Trio's clock
    served: bool = False  # a key served it (not a timeout or CLIENT UNBLOCK)
    # Called with the reply once a key serves it: the blocked call's effects go to replicas (dispatch.served)
    on_served: Callable[[Any], None] | None = None

    def finish(self, reply: Any) -> None:
        self.reply = reply
        self.done.set()


class BlockingRegistry:
    def __init__(self) -> None:
        self.waiters: dict[tuple[int, bytes], deque[Waiter]] = {}
        self.by_client: dict[int, Waiter] = {}
        self.ready: dict[tuple[int, bytes], None] = {}  # ordered set of keys signalled since the last serve

    def __len__(self) -> int:
        return len(self.by_client)

    def add(self, waiter: Waiter) -> None:
        self.by_client[waiter.client_id] = waiter
        for key in dict.fromkeys(waiter.block.keys):
            self.waiters.setdefault((waiter.db, key), deque()).append(waiter)

    def remove(self, waiter: Waiter) -> None:
        if self.by_client.get(waiter.client_id) is waiter:
            del self.by_client[waiter.client_id]
        for key in dict.fromkeys(waiter.block.keys):
            queue = self.waiters.get((waiter.db, key))
            if queue is not None:
                try:
                    queue.remove(waiter)
                except ValueError:
                    pass
                if not queue:
                    del self.waiters[(waiter.db, key)]

    def signal(self, db: int, key: bytes) -> None:
        if (db, key) in self.waiters:
            self.ready[(db, key)] = None

    def serve_ready(self) -> None:
        """Serves waiters on every signalled key, FIFO; keys that become ready while serving are served too."""
        while self.ready:
            ready = list(self.ready)
            self.ready.clear()
            for slot in ready:
                # Each waiter gets its turn: a stream reader waiting past another ID may be served when the one
                # before it is not.
                for waiter in list(self.waiters.get(slot, ())):
                    if waiter.done.is_set():
                        continue
                    start = perf_counter_ns()
                    reply = waiter.block.retry(slot[1])
                    if reply is not None:
                        waiter.block.serve_ns = perf_counter_ns() - start
                        self.remove(waiter)
                        waiter.served = True
                        waiter.finish(reply)
                        if waiter.on_served is not None:
                            waiter.on_served(reply)

    def signal_everywhere(self, key: bytes) -> None:
        """Signals ``key`` in every database it is waited on (WAIT's key, whatever database its callers use)."""
        for slot in self.waiters:
            if slot[1] == key:
                self.ready[slot] = None

    def unblock(self, client_id: int, reply: Any) -> bool:
        waiter = self.by_client.get(client_id)
        if waiter is None:
            return False
        self.remove(waiter)
        waiter.finish(reply)
        return True
