"""The reactor: one task serving every client whose commands complete without waiting.

A task per connection costs each command a trip through Trio's scheduler and two epoll registrations. The reactor
keeps its clients in an epoll set of its own (level-triggered, registered once), which Trio watches as a single
file descriptor. Each pass reads every ready client, runs all its complete commands, waits once for what they wrote
to be as durable as appendfsync promises (one group commit for all of them), then writes every client's replies:
the loop Redis runs, with one yield to Trio per pass so that the other tasks keep their turn.

A client whose socket does not take its replies at once stays here: the rest waits in its output queue, written as
the socket takes it (the reactor then waits for writability too), while its requests go on being read and run.
A command that has to wait (a blocking pop, CLIENT PAUSE) hands its connection to a task of its own
(``Connection.run``), which gives it back once it has caught up.
"""

from __future__ import annotations

import select
from typing import TYPE_CHECKING, Any

import trio

from respq.storage.errors import StorageError

if TYPE_CHECKING:
    from respq.connection import Connection
    from respq.server import Server


REPOLLS = 4  # polls per pass before the group commit
EPOLLIN = select.EPOLLIN if hasattr(select, "epoll") else 1


class Reactor:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.epoll = select.epoll()
        self.connections: dict[int, Connection] = {}
        self.later: list[Connection] = []  # connections with commands received and not yet run (a long pipeline)

    def attach(self, connection: Connection) -> None:
        """Serves a connection: its requests, and its queued replies if any."""
        self.connections[connection.fd] = connection
        connection.in_reactor = True
        connection.events = select.EPOLLIN | (select.EPOLLOUT if connection.queue else 0)
        self.epoll.register(connection.fd, connection.events)

    def watch(self, connection: Connection, events: int) -> None:
        """Waits for these events on a connection: EPOLLIN for requests, EPOLLOUT while replies are queued."""
        connection.events = events
        self.epoll.modify(connection.fd, events)

    def detach(self, connection: Connection) -> None:
        if self.connections.pop(connection.fd, None) is not None:
            self.epoll.unregister(connection.fd)
        connection.in_reactor = False
        connection.events = 0

    def run_later(self, connection: Connection) -> None:
        """The connection ran its budget for this pass: it runs more on the next one, whether or not more arrives."""
        self.later.append(connection)

    def hand_off(self, connection: Connection, wait: Any) -> None:
        """Moves a connection whose next step has to wait to a task of its own."""
        self.detach(connection)
        self.server.nursery.start_soon(connection.run, False, wait)

    def close(self, connection: Connection) -> None:
        self.detach(connection)
        connection.release()

    async def run(self) -> None:
        epoll = self.epoll
        connections = self.connections
        try:
            while True:
                events = epoll.poll(0)
                later = self.later
                if not events and not later:
                    await trio.lowlevel.wait_readable(epoll)
                    continue
                replying: list[Connection] = []
                if later:
                    self.later = []
                    for connection in later:
                        if connection.in_reactor and not connection.busy and connection.run_more():
                            replying.append(connection)
                # Clients whose commands arrived while the others ran join the same sync (a few more polls).
                for _ in range(REPOLLS):
                    for fd, mask in events:
                        connection = connections.get(fd)
                        if connection is None:
                            continue
                        if mask != EPOLLIN and not connection.on_events(mask):  # writable: the queue goes first
                            continue
                        if not connection.busy and connection.read_and_run():
                            replying.append(connection)
                    events = epoll.poll(0)
                    if not events:
                        break
                if replying:
                    await self._reply(replying)
                # One yield per pass: the syncer, timers and clients served by their own tasks get their turn. While
                # clients keep the loop busy this costs no epoll registration, unlike waiting on the epoll fd.
                await trio.lowlevel.checkpoint()
        finally:
            for connection in list(connections.values()):
                self.close(connection)
            trio.lowlevel.notify_closing(epoll)
            epoll.close()

    async def _reply(self, replying: list[Connection]) -> None:
        try:
            # Syncing here rather than in the syncer's worker thread saves two thread switches per pass; the loop
            # has nothing else to do meanwhile that would not wait for this sync anyway.
            if not self.server.sync_now():
                await self.server.make_durable()
        except StorageError as error:
            for connection in replying:
                connection.refuse_undurable(error)
            return
        for connection in replying:
            if connection.in_reactor:
                connection.send_ready()
