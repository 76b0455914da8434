"""Socket I/O for one client: read large chunks, run every complete command, send all replies of one read in one write.

Sockets are plain non-blocking stdlib sockets driven with ``trio.lowlevel.wait_readable/wait_writable``: a ready
socket is read or written without a trip through the scheduler, and each batch yields exactly once so no client
starves the others.

Replies the socket does not take at once wait in an output queue while the client's requests go on being read and
run, as Redis does: a client may write its whole pipeline before reading a reply. The queue is bounded by
client-output-buffer-limit (the client is closed, as in Redis) and by respq's client-output-queue-limit (reading
pauses until the client catches up).
"""

from __future__ import annotations

import errno
import select
import socket
import ssl
import time
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Any

import trio

from respq import errors
from respq.blocking import Block, Waiter
from respq.client import Client
from respq.commands.connection import client_line
from respq.commands.dispatch import blocked, execute, execute_run, resolve, served, unblocked
from respq.errors import StartupError
from respq.protocol import ProtocolError, RequestParser, encode_replies, encode_reply
from respq.replies import ErrorReply, Raw, Replies, StreamedArray, pushes_in
from respq.storage.errors import CorruptionError, StorageError, StorageReadError
from respq.tls import handshake_failure
from respq.tls_socket import TLSSocket

if TYPE_CHECKING:
    from respq.server import Server

RECV_SIZE = 256 * 1024  # large reads let one recv pick up a whole pipeline
STREAM_BATCH = 64 * 1024  # bytes of a streamed reply encoded and sent at a time
STREAM_PASS = 4 * STREAM_BATCH  # streamed bytes encoded per turn of a connection, so fast readers share the loop
# A streamed reply waiting in the output queue counts this many bytes per value not yet encoded: about what its
# snapshot holds per value (a position and a length, or a reference), and a floor on its encoded size.
STREAMED_VALUE_CHARGE = 16
SEND_BUFFERS = 64  # queued replies handed to one sendmsg
# Commands one connection runs per reactor pass (a few ms): a long pipeline takes turns with the other clients, whose
# replies would otherwise wait for all of a 256 KiB read of it to run. Pipelines of P=16 never reach it.
RUN_BUDGET = 4096
# A client's fixed cost in client memory (maxmemory-clients, CLIENT LIST tot-mem): its Connection, Client and parser
# objects, measured as the server's RSS growth over 2,000 idle connections (2.7 KB each).
CLIENT_BASE_MEMORY = 2700
# The reactor's epoll interest (the poll values elsewhere: only Linux has a reactor).
EPOLLIN, EPOLLOUT = getattr(select, "EPOLLIN", 1), getattr(select, "EPOLLOUT", 4)
LOOPBACK = ("127.", "::1", "::ffff:127.")
# recv(RECV_SIZE) would allocate 256 KiB and shrink it on every call: glibc grows and trims the heap (or maps and
# unmaps) each time, ~23 us per read measured here. Reading into one buffer and copying out what came costs ~0.3 us.
# One buffer serves every connection: nothing awaits between a read and its copy.
_recv_buffer = bytearray(RECV_SIZE)
_recv_view = memoryview(_recv_buffer)


def _recv(sock: socket.socket) -> bytes:
    return _recv_view[: sock.recv_into(_recv_buffer)].tobytes()


PROTECTED_MODE = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the "
    b"default user. In this mode connections are only accepted from the loopback interface. If you want to connect "
    b"from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode "
    b"sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the "
    b"same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. "
    b"Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by "
    b"editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the "
    b"server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' "
    b"option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above "
    b"things in order for the server to start accepting connections from the outside.\r\n"
)


def _format_addr(addr: Any) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host and not host.startswith("::ffff:") else f"{host}:{port}"


# Redis 7.0's start-up lines when a listening socket cannot be made.
LISTEN_SOCKET_FAILED = "Warning: Could not create server TCP listening socket {}:{}: {}"
LISTEN_FAILED = "Failed listening on port {} ({}), aborting."
LISTENING_NOWHERE = "Configured to not listen anywhere, exiting."
# Redis logs a failed TLS handshake this way (clientAcceptHandler); respq also ends one that takes too long.
ACCEPT_FAILED = "Error accepting a client connection: {}"
HANDSHAKE_TIMED_OUT = "TLS handshake timed out after {} seconds (addr={})"
# As in Redis, an address family or protocol the host lacks is skipped, and so is an address it does not have when
# the address is optional ("-" prefix); any other failure stops start-up.
_UNSUPPORTED = frozenset(
    {errno.ENOPROTOOPT, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT, errno.EPFNOSUPPORT, errno.EAFNOSUPPORT}
)


def open_listeners(server: Server) -> tuple[list[socket.socket], list[socket.socket]]:
    """Binds and listens on every configured address (accepting starts with serve_listeners): the plaintext
    listeners and the TLS ones. A failure on an address that is not optional stops start-up: raises StartupError,
    as Redis aborts. ``port 0`` binds a free port, or none at all when a TLS port is set (Redis's TLS-only)."""
    cfg = server.config
    plain: list[socket.socket] = []
    tls: list[socket.socket] = []
    try:
        if cfg.port or not cfg.tls_port:
            _open_port(server, cfg.port, "TCP", plain)
        if cfg.tls_port:
            _open_port(server, cfg.tls_port, "TLS", tls)
        if not plain and not tls:
            raise StartupError(LISTENING_NOWHERE)
    except BaseException:
        for listener in (*plain, *tls):
            listener.close()
        raise
    return plain, tls


def _open_port(server: Server, port: int, kind: str, listeners: list[socket.socket]) -> None:
    """Listens on one port on every configured address, adding to listeners as it goes."""
    configured = port
    # An empty bind list means every interface; a leading "-" marks an address that may be unavailable.
    for entry in server.config.bind or ["0.0.0.0", "-::"]:
        optional = entry.startswith("-")
        address = entry.lstrip("-")
        try:
            listener = _listen(address, port)
        except _ListenError as failure:
            server.log.warning(LISTEN_SOCKET_FAILED.format(address, port, failure.reason))
            if failure.errno in _UNSUPPORTED or (optional and failure.errno == errno.EADDRNOTAVAIL):
                continue
            raise StartupError(LISTEN_FAILED.format(configured, kind)) from None
        port = listener.getsockname()[1]  # with --port 0 every address shares the first free port
        listeners.append(listener)


class _ListenError(Exception):
    def __init__(self, errno_: int | None, reason: str) -> None:
        super().__init__(reason)
        self.errno = errno_
        self.reason = reason


def _listen(address: str, port: int) -> socket.socket:
    """A non-blocking listening socket; _ListenError names the step that failed, as Redis does (``bind: ...``),
    except for an address that does not resolve, where the resolver's message says it all."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    step = "socket"
    listener = None
    try:
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        step = "bind"
        listener.bind((address, port))
        step = "listen"
        listener.listen(511)
        listener.setblocking(False)
    except OSError as error:
        if listener is not None:
            listener.close()
        reason = error.strerror or str(error)
        raise _ListenError(error.errno, reason if isinstance(error, socket.gaierror) else f"{step}: {reason}") from None
    return listener


def serve_listeners(
    server: Server, nursery: trio.Nursery, listeners: list[socket.socket], tls_listeners: list[socket.socket]
) -> None:
    """Starts accepting clients on the listeners made by open_listeners."""
    server.listeners = listeners
    server.tls_listeners = tls_listeners
    for listener in listeners:
        nursery.start_soon(_accept_loop, server, listener, False)
    for listener in tls_listeners:
        nursery.start_soon(_accept_loop, server, listener, True)


async def _accept_loop(server: Server, listener: socket.socket, tls: bool) -> None:
    while True:
        try:
            sock, addr = listener.accept()
        except BlockingIOError:
            try:
                await trio.lowlevel.wait_readable(listener)
            except trio.ClosedResourceError:  # the listener was closed for shutdown
                return
            continue
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE):
                server.log.warning(f"Error accepting a client connection: {error}")
                await trio.sleep(0.1)
                continue
            if error.errno == errno.EBADF:  # closed at shutdown
                return
            raise
        if tls:
            # A handshake takes a client slot, as the client Redis creates at accept: past maxclients the
            # connection is refused before it (the error reply could not be read without TLS).
            if len(server.clients) + server.tls_handshakes >= server.config.maxclients:
                server.stats.rejected_connections += 1
                sock.close()
                continue
            server.tls_handshakes += 1
            server.nursery.start_soon(_handshake, server, sock, addr)
        else:
            _admit(server, sock, addr)


async def _handshake(server: Server, sock: socket.socket, addr: Any) -> None:
    """The server side of a TLS handshake, then the client is admitted as any other. A handshake that fails, or
    takes longer than tls-handshake-timeout (a peer that connects and sends nothing), is logged and closed: it
    holds nothing but its socket meanwhile, and only that long."""
    sock.setblocking(False)
    context = server.tls_context
    assert context is not None
    tls = TLSSocket(sock, context)
    admitted = False
    timeout = server.config.tls_handshake_timeout
    try:
        with trio.move_on_after(timeout):
            while True:
                step = tls.handshake()
                if step:
                    admitted = True
                    server.tls_handshakes -= 1  # the slot passes to the client
                    connection = _admit(server, tls, addr)
                    if connection.in_reactor:
                        connection.read_buffered()
                    return
                if step is False:
                    await trio.lowlevel.wait_readable(sock)
                else:
                    await trio.lowlevel.wait_writable(sock)
        server.log.warning(ACCEPT_FAILED.format(HANDSHAKE_TIMED_OUT.format(timeout, _format_addr(addr))))
    except (ssl.SSLError, OSError) as error:
        server.log.warning(ACCEPT_FAILED.format(handshake_failure(error)))
    finally:
        if not admitted:
            server.tls_handshakes -= 1
            sock.close()


def _accept_while_busy(server: Server) -> None:
    """Accepts the clients waiting on the listeners while a script blocks the loop, as Redis accepts them then
    (they get BUSY like the others). Their tasks start once the loop runs again; reactor clients are served now."""
    for listener in server.listeners:
        while True:
            try:
                sock, addr = listener.accept()
            except OSError:  # nothing waiting, or a failure the accept loop reports once it runs
                break
            _admit(server, sock, addr)


def _admit(server: Server, sock: socket.socket | TLSSocket, addr: Any) -> Connection:
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connection = Connection(server, sock, addr)
    # Counted here, in accept order: Trio runs new tasks in no fixed order, and the newest client is the one
    # maxclients must refuse.
    refused = len(server.clients) >= server.config.maxclients
    server.register(connection)
    if server.reactor is not None and not refused and not connection.protected_mode_refuses():
        server.reactor.attach(connection)
    else:
        server.nursery.start_soon(connection.run, refused)
    return connection


def serve_while_busy(server: Server, caller: Client) -> None:
    """Called by the script engine, from inside a script that runs past busy-reply-threshold: the event loop is
    not running, so the reactor's ready sockets are served here, synchronously. Every complete command is
    dispatched as usual, and the dispatcher answers BUSY to all but the few Redis allows meanwhile (SCRIPT KILL,
    SHUTDOWN NOSAVE, MULTI, ...); the replies acknowledge no write, so they are sent at once. Partial requests stay
    in the parser for later. Clients connecting meanwhile are accepted. Replies to commands run before the script
    in the same reactor pass go out once what they acknowledge is durable. The script's own client (``caller``: it
    waits for its reply) and clients served by a task of their own (blocked, paused) wait until the script ends."""
    reactor = server.reactor
    if reactor is None:
        return
    waiting = [c for c in reactor.connections.values() if c.busy and c.out and c.client is not caller]
    if waiting and server.durable_now():
        for connection in waiting:
            if connection.in_reactor:
                connection.send_ready()
    _accept_while_busy(server)
    for fd, mask in reactor.epoll.poll(0):
        connection = reactor.connections.get(fd)
        if connection is not None and not connection.busy:
            connection.serve_while_busy(mask)


class _Stream:
    """A streamed reply in the output: its values are encoded once it reaches the head of the queue and the socket
    takes them, a batch at a time, so memory stays at a batch however long the reply (and whatever follows it)."""

    __slots__ = ("remaining", "reply")

    def __init__(self, reply: StreamedArray) -> None:
        self.reply = reply
        self.remaining = reply.length


_CLOSE = object()  # the command loop stopped: send what is pending, then close
_PAUSED = object()  # the command loop stopped before a command that must wait for CLIENT PAUSE to end
_MORE = object()  # the command loop ran its budget for this pass: the reactor runs the rest on its next one


class Connection:
    """One client. Its commands run in the server's reactor while they complete without waiting; a command that
    has to wait (a blocking pop, CLIENT PAUSE) hands the connection to a task of its own, which gives it back to
    the reactor once it has caught up. Replies the socket does not take at once wait in ``queue``."""

    def __init__(self, server: Server, sock: socket.socket | TLSSocket, addr: Any) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.peer_host = addr[0]
        cfg = server.config
        default = server.acl.default
        self.client = Client(
            _format_addr(addr),
            _format_addr(sock.getsockname()),
            authenticated=default.nopass and default.enabled,
            user=default,
        )
        self.client.connection = self
        self.ctx = server.context(self.client)  # what its commands run with
        self.parser = RequestParser(
            max_bulk_len=cfg.proto_max_bulk_len, query_buffer_limit=cfg.client_query_buffer_limit
        )
        self.parser.authenticated = self.client.authenticated or not server.acl.auth_required
        self.batch: list[list[bytes]] = []  # commands parsed and not yet run: batch[batch_pos:]
        self.batch_pos = 0
        # Replies (bytes, or a _Stream after its header) of the commands run since the last write: they go out once
        # what they acknowledge is durable.
        self.out: list[Any] = []
        self.out_streams = False  # out holds a _Stream: it cannot be joined
        self.queue: deque[Any] = deque()  # durable replies (bytes, _Stream) the socket has not taken yet, in order
        self.head_sent = 0  # bytes of queue[0] already written
        self.queued = 0  # bytes in the queue, a streamed value not yet encoded counting STREAMED_VALUE_CHARGE (omem)
        self.events = 0  # what the reactor waits for on this socket (EPOLLIN, EPOLLOUT)
        self.busy = False  # between reading a batch and writing its replies: pushes join self.out
        self.sending = False  # a task is writing the queue (it may wait for the socket)
        self.send_done = trio.Event()
        self.fed = False  # requests were read while waiting to write: they have yet to run
        self.soft_limit_since = 0  # the second the soft output buffer limit was found reached (0: it is not)
        self.scope = trio.CancelScope()
        self.blocked: Waiter | None = None
        self.in_reactor = False
        self.dropped = False  # kill() was called
        self.own_feed: list[bytes] = []  # MONITOR lines of this client's own command, sent after its reply
        self.closed = False

    # ---- lifecycle ----------------------------------------------------------------------------------------------
    def kill(self) -> None:
        """Closes the connection without writing anything more (CLIENT KILL of another client, limits, shutdown)."""
        self.client.killed = True
        self.dropped = True
        self.scope.cancel()
        if self.in_reactor and not self.busy:  # idle in the reactor; a busy one is closed once its sync is done
            self.server.reactor.close(self)  # type: ignore[union-attr]

    async def run(self, refused: bool = False, wait: Any = None) -> None:
        """The connection's own task: from accept (without a reactor, or to refuse it), or from the reactor when a
        command has to wait (``wait``: what for)."""
        server = self.server
        reattach = False
        self.scope = trio.CancelScope()  # a scope is entered once; kill() before this point set self.dropped
        try:
            with self.scope:
                if self.dropped:
                    return
                if refused:
                    server.stats.rejected_connections += 1
                    await self._send(b"-" + errors.MAX_CLIENTS + b"\r\n")
                    return
                if self.protected_mode_refuses():
                    await self._send(PROTECTED_MODE)
                    return
                if server.reactor is None:
                    await self._serve()
                    return
                reattach = await self._process(wait) and not self.client.killed
        except OSError:
            pass  # the peer went away; nothing to tell it
        finally:
            if reattach:
                server.reactor.attach(self)  # type: ignore[union-attr]
            else:
                self.release()

    def release(self) -> None:
        """Forgets the client and closes its socket."""
        if self.closed:
            return
        if self.blocked is not None:
            self.server.blocking.remove(self.blocked)
            self.blocked = None
        self.closed = True
        self._discard_output()
        self.server.unregister(self)
        trio.lowlevel.notify_closing(self.sock)  # wakes a push writer waiting on this socket
        self.sock.close()

    def protected_mode_refuses(self) -> bool:
        cfg = self.server.config
        default_nopass = self.server.acl.default.nopass
        return bool(cfg.protected_mode and default_nopass and not self.peer_host.startswith(LOOPBACK))

    async def _serve(self) -> None:
        """Reads and runs commands until the peer leaves (where there is no reactor)."""
        sock = self.sock
        parser = self.parser
        stats = self.server.stats
        waited = False
        while True:
            try:
                data = _recv(sock)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
                waited = True
                continue
            if not waited:
                # Data was already there: yield once so other clients get their turn.
                await trio.lowlevel.checkpoint()
            waited = False
            if not data:
                return
            stats.net_input_bytes += len(data)
            parser.feed(data)
            if not await self._process():
                return

    # ---- the reactor's side -------------------------------------------------------------------------------------
    def read_and_run(self) -> bool:
        """Called by the reactor when the socket is readable: reads, and runs every command that completes without
        waiting. True when replies wait in ``out`` for the reactor's sync; False when there is nothing to send or the
        connection left the reactor (closed, or handed to its own task)."""
        reactor = self.server.reactor
        assert reactor is not None
        try:
            data = _recv(self.sock)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            reactor.close(self)
            return False
        self.server.stats.net_input_bytes += len(data)
        self.parser.feed(data)
        return self.run_more()

    def read_buffered(self) -> None:
        """Reads what arrived with the last flight of a TLS handshake (no readiness of the socket will announce
        it), and runs it in a task of its own, which gives the connection back to the reactor: the reactor may be
        asleep on its epoll set."""
        reactor = self.server.reactor
        assert reactor is not None
        try:
            data = _recv(self.sock)
        except BlockingIOError:
            return
        except OSError:  # a bad record right after the handshake
            reactor.close(self)
            return
        if data:
            self.server.stats.net_input_bytes += len(data)
            self.parser.feed(data)
            reactor.hand_off(self, None)

    def run_more(self) -> bool:
        """Runs the commands received, up to RUN_BUDGET of them (the reactor comes back for the rest on its next
        pass). True when replies wait in ``out`` for the reactor's sync, as read_and_run."""
        reactor = self.server.reactor
        assert reactor is not None
        self.busy = True
        self.client.last_interaction = time.monotonic()
        wait = self._run_ready(RUN_BUDGET)
        if wait is _MORE:
            reactor.run_later(self)
        elif wait is not None:
            reactor.hand_off(self, wait)  # still busy: its own task sends what is pending
            return False
        if self.out:
            return True
        self.busy = False
        return False

    def serve_while_busy(self, mask: int) -> None:
        """One turn of a client while a script runs past busy-reply-threshold (see ``serve_while_busy``)."""
        reactor = self.server.reactor
        assert reactor is not None
        if mask != EPOLLIN and not self.on_events(mask):
            return
        try:
            data = _recv(self.sock)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            reactor.close(self)
            return
        self.server.stats.net_input_bytes += len(data)
        self.parser.feed(data)
        self.busy = True
        self.client.last_interaction = time.monotonic()
        wait = self._run_ready(RUN_BUDGET)
        if wait is _MORE:
            reactor.run_later(self)
            wait = None
        self.send_ready()  # busy no more
        if wait is not None and self.in_reactor and not self.closed:
            self.busy = True
            reactor.hand_off(self, wait)  # after the script: its own task resolves what the loop stopped for

    def send_ready(self) -> None:
        """Called by the reactor once what the replies acknowledge is durable: writes them if the socket takes them
        at once (the common case, which never touches the queue), else queues the rest and keeps reading."""
        reactor = self.server.reactor
        assert reactor is not None
        self.busy = False
        if self.dropped:  # killed while its sync ran: nothing more is written
            reactor.close(self)
            return
        out = self.out
        if out:
            if self.queue or self.out_streams:
                if not self._queue_out():
                    return
                self.write_ready()
                if not self.in_reactor:
                    return
            else:
                data = b"".join(out) if len(out) > 1 else out[0]
                out.clear()
                if self._over_output_limit(len(data)):
                    self._close_for_output_limit()
                    return
                try:
                    sent = self.sock.send(data)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    reactor.close(self)
                    return
                self.server.stats.net_output_bytes += sent
                if sent < len(data):
                    self.queue.append(data)
                    self.head_sent = sent
                    self._account(len(data) - sent)
                    self._watch()
            if self.queued and self.server.maxmemory_clients:
                self.server.evict_clients()
                if self.closed:
                    return
        if self.client.killed:
            if self.queue:  # CLIENT KILL of itself: the replies so far go out first
                self.busy = True
                reactor.hand_off(self, _CLOSE)
            else:
                reactor.close(self)

    def on_events(self, mask: int) -> bool:
        """Called by the reactor for anything but plain readability: writes what the socket takes of the queue.
        True when requests are to be read now."""
        if self.queue:
            self.write_ready()
            if not self.in_reactor:
                return False
        if not self.events & EPOLLIN:
            if mask & ~EPOLLOUT:  # an error or hang-up while reading is paused: the replies cannot be delivered
                self.server.reactor.close(self)  # type: ignore[union-attr]
            return False
        return bool(mask & ~EPOLLOUT)

    def write_ready(self) -> None:
        """Writes queued replies as far as the socket takes them, then waits for what comes next."""
        try:
            self._write_queued()
        except OSError:
            self.server.reactor.close(self)  # type: ignore[union-attr]
            return
        if self.in_reactor:
            self._watch()

    def _watch(self) -> None:
        """Tells the reactor what to wait for: the socket taking more while replies are queued, and requests while
        fewer than client-output-queue-limit bytes are (past it the client must catch up first)."""
        mask = EPOLLIN
        if self.queue:
            mask = EPOLLOUT
            if self.queued < self.server.config.client_output_queue_limit:
                mask |= EPOLLIN
        if mask != self.events:
            self.server.reactor.watch(self, mask)  # type: ignore[union-attr]

    def refuse_undurable(self, error: StorageError) -> None:
        """What the pending replies acknowledge may never reach the disk: drop the connection instead of lying."""
        self.server.log.warning(f"Closing client id={self.client.id}: its writes cannot be made durable ({error})")
        self._discard_output()
        self.busy = False
        self.kill()

    # ---- commands -----------------------------------------------------------------------------------------------
    def _run_ready(self, budget: int = 0) -> Any:
        """Runs the complete commands received, as far as they go without waiting, and (``budget``) at most about
        that many. None when all ran; otherwise what the next step waits for: a Block, _PAUSED, _CLOSE, a
        ProtocolError, or _MORE (the budget is spent)."""
        client = self.client
        ctx = self.ctx
        server = self.server
        batch = self.batch
        ran = 0
        while True:
            if self.batch_pos == len(batch):
                # unauthenticated, a batch holds one command
                self.parser.authenticated = client.authenticated or not server.acl.auth_required
                self.batch_pos = 0
                try:
                    batch = self.batch = self.parser.parse()
                except ProtocolError as error:
                    self.batch = []
                    return error
                if not batch:
                    return None
            if server.paused_until:
                return _PAUSED
            if budget and ran >= budget:
                return _MORE
            if self.batch_pos + 1 < len(batch):
                replies = execute_run(ctx, batch, self.batch_pos)
                if replies:
                    self.batch_pos += len(replies)
                    ran += len(replies)
                    if client.reply_mode == b"on":
                        self._emit(Replies(tuple(replies)))  # encoded in one go
                    else:  # CLIENT REPLY SKIP applies to the first call alone
                        for reply in replies:
                            self._emit(reply)
                    continue
            argv = batch[self.batch_pos]
            self.batch_pos += 1
            ran += 1
            wait = self._run(argv)
            if wait is not None:
                return wait

    def _run(self, argv: list[bytes]) -> Any:
        """Runs one command: what the loop must stop for (the client blocks, ...), or None."""
        reply = execute(self.ctx, argv)
        if type(reply) is Block:
            return self._park(reply, argv)
        return self._finish(argv, reply)

    def _finish(self, argv: list[bytes], reply: Any) -> Any:
        """Queues a command's reply; what the loop must stop for, or None."""
        client = self.client
        if self.server.blocking.ready:
            self.server.blocking.serve_ready()
        if type(reply) is list and argv[0].lower() == b"exec":
            reply = _materialized(reply)
        self._emit(reply)
        if client.closing or client.killed:
            return _CLOSE
        return None

    async def _process(self, wait: Any = None) -> bool:
        """Runs every complete command received and writes the replies, starting with what ``wait`` says the
        previous run stopped for; False when the connection must close."""
        self.busy = True
        try:
            self.client.last_interaction = time.monotonic()
            while True:
                if wait is None:
                    self.fed = False
                    wait = self._run_ready()
                    if wait is None:
                        await self._flush()
                        if self.fed:  # requests arrived while the replies went out
                            continue
                        return True
                if not await self._resolve(wait):
                    return False
                wait = None
        finally:
            self.busy = False

    async def _resolve(self, wait: Any) -> bool:
        """Does what the command loop stopped for; False when the connection must close."""
        client = self.client
        if wait is _PAUSED:
            argv = self.batch[self.batch_pos]
            self.batch_pos += 1
            await self._wait_unpaused(argv)
            wait = self._run(argv)
        if type(wait) is Waiter:
            reply = await self._block(wait)
            if client.killed:  # disconnected or killed while waiting
                return False
            argv = self.batch[self.batch_pos - 1]
            if wait.served:
                unblocked(self.ctx, argv, wait.block)
            wait = self._finish(argv, reply)
        if wait is None:
            return True
        if type(wait) is ProtocolError and wait.message:
            self.out.append(b"-" + wait.message + b"\r\n")
        await self._flush()
        return False

    def _emit(self, reply: Any) -> None:
        client = self.client
        mode = client.reply_mode
        if mode == b"on":
            if type(reply) is Replies:
                self.out.append(encode_replies(reply.items, client.protocol))
            elif type(reply) is StreamedArray:
                # An array's header is the same in RESP2 and RESP3; its values are encoded as they are sent.
                self.out.append(b"*%d\r\n" % reply.length)
                self.out.append(_Stream(reply))
                self.out_streams = True
            else:
                self.out.append(encode_reply(reply, client.protocol))
        elif type(reply) is StreamedArray:  # never sent (CLIENT REPLY OFF/SKIP): never read
            reply.close()
        else:
            pushes = pushes_in(reply)  # silenced replies still deliver their pub/sub confirmations
            if pushes:
                self.out.append(encode_replies(pushes, client.protocol))
        if mode == b"skip-this":  # CLIENT REPLY SKIP itself: no reply, and none for the next command either
            client.reply_mode = b"skip"
        elif mode == b"skip":
            client.reply_mode = b"on"

    async def _wait_unpaused(self, argv: list[bytes]) -> None:
        cmd = resolve(argv)
        scripts = self.server.functions if not isinstance(cmd, bytes) and cmd.name == "fcall" else self.server.scripts
        is_write = not isinstance(cmd, bytes) and (cmd.is_write or scripts.may_replicate(cmd, argv))
        await self.server.wait_unpaused(is_write)

    def _park(self, block: Block, argv: list[bytes]) -> Waiter:
        """Registers the client as blocked on the keys at once, as the command runs: a push that lands before the
        connection's own task takes over serves it."""
        blocked(self.ctx, block)
        ctx = self.ctx
        waiter = Waiter(self.client.id, self.client.db, block, on_served=lambda reply: served(ctx, argv, reply))
        if block.timeout is not None:
            waiter.deadline = trio.current_time() + block.timeout
        self.server.blocking.add(waiter)
        self.blocked = waiter
        return waiter

    async def _block(self, waiter: Waiter) -> Any:
        """Waits until a key the client waits on is served to it, the timeout passes, or it is unblocked."""
        server = self.server
        try:
            await self._flush()  # replies to earlier commands go out before the client waits
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_disconnect, nursery.cancel_scope)
                with trio.move_on_at(waiter.deadline):
                    await waiter.done.wait()
                nursery.cancel_scope.cancel()
        finally:
            server.blocking.remove(waiter)
            self.blocked = None
        return waiter.reply if waiter.done.is_set() else waiter.block.reply_at_timeout()

    async def _watch_disconnect(self, scope: trio.CancelScope) -> None:
        """While blocked, keep reading: data is buffered for later; EOF ends the wait (Redis drops the waiter)."""
        sock = self.sock
        while True:
            await trio.lowlevel.wait_readable(sock)
            try:
                data = _recv(sock)
            except BlockingIOError:  # a TLS record not complete yet
                continue
            if not data:
                self.client.killed = True
                scope.cancel()
                return
            self.parser.feed(data)

    # ---- output -------------------------------------------------------------------------------------------------
    def _queue_out(self) -> bool:
        """Moves the replies in ``out`` (durable now) behind those still queued; False when that takes the client
        over its client-output-buffer-limit (it is then closed)."""
        out = self.out
        queue = self.queue
        added = 0
        if self.out_streams:
            self.out_streams = False
            run: list[bytes] = []
            for item in out:
                if type(item) is _Stream:
                    if run:
                        data = b"".join(run)
                        queue.append(data)
                        added += len(data)
                        run = []
                    queue.append(item)
                    added += item.remaining * STREAMED_VALUE_CHARGE
                else:
                    run.append(item)
            if run:
                data = b"".join(run)
                queue.append(data)
                added += len(data)
        else:
            data = b"".join(out) if len(out) > 1 else out[0]
            queue.append(data)
            added = len(data)
        out.clear()
        self._account(added)
        if self._over_output_limit(self.queued):
            self._close_for_output_limit()
            return False
        return True

    def _write_queued(self) -> bool:
        """Writes queued replies until the socket takes no more; True once the queue is empty. A streamed reply is
        encoded as it reaches the head of the queue, at most STREAM_PASS bytes a turn. Raises OSError when the peer
        is gone."""
        queue = self.queue
        sock = self.sock
        encoded = 0
        while queue:
            head = queue[0]
            if type(head) is _Stream:
                if encoded >= STREAM_PASS:
                    return False  # the rest on a later turn: the other clients go first
                chunk = self._encode_batch(head)
                if chunk is None:  # reading the values failed: the connection is closed
                    return True
                encoded += len(chunk)
                if not head.remaining:
                    queue.popleft()
                    head.reply.close()
                queue.appendleft(chunk)
                continue
            done = self.head_sent
            try:
                if len(queue) > 1 and type(queue[1]) is bytes:
                    buffers = [memoryview(head)[done:]]
                    for item in islice(queue, 1, SEND_BUFFERS):
                        if type(item) is not bytes:
                            break
                        buffers.append(item)
                    offered = sum(map(len, buffers))
                    sent = sock.sendmsg(buffers)
                else:
                    offered = len(head) - done
                    sent = sock.send(memoryview(head)[done:] if done else head)
            except BlockingIOError:
                return False
            self.server.stats.net_output_bytes += sent
            self._account(-sent)
            done += sent
            while done:
                head = queue[0]
                if done < len(head):
                    break
                done -= len(head)
                queue.popleft()
            self.head_sent = done
            if sent < offered:
                return False  # the socket is full
        return True

    def _encode_batch(self, stream: _Stream) -> bytes | None:
        """The next STREAM_BATCH bytes or so of a streamed reply; None when reading its values failed (part of the
        array may be on the wire already: an error reply cannot follow, only a closed connection)."""
        parts: list[bytes] = []
        size = 0
        remaining = stream.remaining
        try:
            if stream.reply.items:
                protocol = self.client.protocol
                for value in stream.reply.values:
                    part = encode_reply(value, protocol)
                    parts.append(part)
                    size += len(part)
                    remaining -= 1
                    if size >= STREAM_BATCH or not remaining:
                        break
                else:
                    raise StorageReadError(f"the reply ended {remaining} values short")
            else:
                for value in stream.reply.values:
                    parts += (b"$%d\r\n" % len(value), value, b"\r\n")
                    size += len(value) + 16
                    remaining -= 1
                    if size >= STREAM_BATCH or not remaining:
                        break
                else:
                    raise StorageReadError(f"the reply ended {remaining} values short")
        except StorageError as error:
            self.server.log.warning(f"Closing client id={self.client.id}: reading its reply failed ({error})")
            self._discard_output()
            self.kill()
            return None
        chunk = b"".join(parts)
        self._account(len(chunk) - (stream.remaining - remaining) * STREAMED_VALUE_CHARGE)
        stream.remaining = remaining
        return chunk

    def _account(self, change: int) -> None:
        self.queued += change
        self.server.clients_output += change

    def _discard_output(self) -> None:
        """Drops every pending reply (the connection is closing), releasing the snapshots of streamed ones."""
        for item in (*self.out, *self.queue) if self.out_streams or self.queue else ():
            if type(item) is _Stream:
                item.reply.close()
        self.out.clear()
        self.out_streams = False
        self.queue.clear()
        self.head_sent = 0
        self._account(-self.queued)

    async def _flush(self) -> None:
        """Sends pending replies once what they acknowledge is as durable as the fsync policy promises, behind those
        queued before them."""
        while True:
            try:
                await self.server.make_durable()
            except StorageError as error:
                # What these replies acknowledge may never reach the disk: drop the connection instead of lying.
                self.server.log.warning(
                    f"Closing client id={self.client.id}: its writes cannot be made durable ({error})"
                )
                self._discard_output()
                self.kill()
                return
            if self.out and not self._queue_out():
                return
            if not self.queue:
                return
            await self._drain()  # pushes may join out meanwhile

    async def _drain(self, read: bool = True) -> None:
        """Writes the whole queue, waiting for the socket as needed; with ``read``, requests are read meanwhile
        (to run afterwards) so that a client writing a whole pipeline before it reads cannot stall with us."""
        while self.sending:
            await self.send_done.wait()
        self.sending = True
        try:
            while not self._write_queued():
                if read and self.parser.buffered() <= self.server.config.client_query_buffer_limit:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._read_for_later, nursery.cancel_scope)
                        await trio.lowlevel.wait_writable(self.sock)
                        nursery.cancel_scope.cancel()
                else:
                    await trio.lowlevel.wait_writable(self.sock)
        finally:
            self.sending = False
            self.send_done.set()
            self.send_done = trio.Event()

    async def _read_for_later(self, scope: trio.CancelScope) -> None:
        """Reads requests into the parser while replies wait for the socket; EOF closes the connection, as Redis
        frees a client whose read returns 0 whatever it still had to send."""
        sock = self.sock
        parser = self.parser
        while parser.buffered() <= self.server.config.client_query_buffer_limit:
            await trio.lowlevel.wait_readable(sock)
            try:
                data = _recv(sock)
            except BlockingIOError:
                continue
            if not data:
                self.kill()
                return
            self.server.stats.net_input_bytes += len(data)
            parser.feed(data)
            self.fed = True

    async def _send(self, data: bytes) -> None:
        """Writes bytes that precede any reply (a refusal at accept)."""
        view = memoryview(data)
        sock = self.sock
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
                continue
            view = view[sent:]
        self.server.stats.net_output_bytes += len(data)

    def push(self, value: Any) -> None:
        """Queues an out-of-band message (pub/sub): with the current batch's replies, or behind those queued."""
        if self.closed or self.client.killed:
            return
        data = encode_reply(value, self.client.protocol)
        if self.busy:
            self.out.append(data)
            return
        idle = not self.queue
        self.queue.append(data)
        self._account(len(data))
        if self._over_output_limit(self.queued):
            self._close_for_output_limit()
            return
        if self.in_reactor:
            if idle:
                self.write_ready()  # most subscribers read at once: no need to wait for the loop
            else:
                self._watch()
        elif idle and not self.sending:  # no reactor: a short-lived task writes it
            self.server.nursery.start_soon(self._write_pushes)
        if self.queue and self.server.maxmemory_clients:
            self.server.evict_clients()

    def monitor_feed(self, line: bytes, own: bool) -> None:
        """A line of the MONITOR feed. A command of this client's own is shown after its reply, as Redis adds the
        line once the command has replied: it waits for _emit_then_feed."""
        data = b"+" + line + b"\r\n"
        if own:
            self.own_feed.append(data)
            self._emit = self._emit_then_feed  # type: ignore[method-assign]  # only monitors pay for the check
        else:
            self.push(Raw(data))

    def _emit_then_feed(self, reply: Any) -> None:
        Connection._emit(self, reply)
        if self.own_feed:
            self.out += self.own_feed
            self.own_feed.clear()

    async def _write_pushes(self) -> None:
        try:
            await self._drain(read=False)
        except (OSError, trio.ClosedResourceError):
            self.kill()

    # ---- limits -------------------------------------------------------------------------------------------------
    def _over_output_limit(self, backlog: int) -> bool:
        """client-output-buffer-limit for this client's class, as Redis checks it: at or over the hard limit, or at
        or over the soft one for more than its seconds (counted in whole seconds of the clock)."""
        if not backlog:  # Redis checks nothing while nothing is queued (the soft limit's clock keeps running)
            return False
        limits = self.server.config.client_output_buffer_limit
        client = self.client
        kind = "replica" if client.replica is not None else "pubsub" if client.subscriptions else "normal"
        hard, soft, soft_seconds = limits[kind]
        if hard and backlog >= hard:
            return True
        if soft and backlog >= soft:
            now = int(time.time())
            if not self.soft_limit_since:
                self.soft_limit_since = now
                return False
            return now - self.soft_limit_since > soft_seconds
        self.soft_limit_since = 0
        return False

    def _close_for_output_limit(self, scheduled: bool = True) -> None:
        self._log_closing("scheduled to be closed ASAP" if scheduled else "closed")
        self._discard_output()
        self.kill()

    def _log_closing(self, what: str) -> None:
        self.server.log.warning(f"Client {self.describe()} {what} for overcoming of output buffer limits.")

    def describe(self) -> str:
        """The client as CLIENT LIST shows it, for the log."""
        return client_line(self.client).decode("latin-1")

    def check_output_limit(self) -> None:
        """The server's once-a-second check (Redis's clientsCron): a soft limit held long enough closes the client
        even when nothing more is queued."""
        if self.queued and not self.closed and not self.client.killed and self._over_output_limit(self.queued):
            self._close_for_output_limit(scheduled=False)

    def output_memory(self) -> int:
        """Bytes of replies waiting for the socket (CLIENT LIST omem)."""
        return self.queued

    def output_items(self) -> int:
        """Replies and streamed replies waiting for the socket (CLIENT LIST oll)."""
        return len(self.queue)

    def memory(self) -> int:
        """What the client costs in memory (CLIENT LIST tot-mem, maxmemory-clients)."""
        return CLIENT_BASE_MEMORY + self.parser.buffered() + self.queued


def _materialized(replies: list[Any]) -> list[Any]:
    """EXEC's replies with streamed arrays built whole: a transaction's reply is one array, sent at once."""
    if not any(type(item) is StreamedArray for item in replies):
        return replies
    return [_built(item) if type(item) is StreamedArray else item for item in replies]


def _built(reply: StreamedArray) -> list[bytes] | ErrorReply:
    try:
        return reply.materialize()
    except (CorruptionError, StorageReadError) as error:
        return ErrorReply(errors.corrupt_data(str(error)))
