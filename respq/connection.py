"""Socket I/O for one client: read large chunks, run every complete command, send all replies of one read in one write.

Sockets are plain non-blocking stdlib sockets driven with ``trio.lowlevel.wait_readable/wait_writable``: a ready
socket is read or written without a trip through the scheduler, and each batch yields exactly once so no client
starves the others.
"""

from __future__ import annotations

import errno
import socket
import time
from typing import TYPE_CHECKING, Any

import trio

from respq import errors
from respq.blocking import Block, Waiter
from respq.client import Client
from respq.commands.dispatch import execute, resolve
from respq.protocol import ProtocolError, RequestParser, encode_reply
from respq.replies import ErrorReply, Replies, StreamedArray
from respq.storage.errors import CorruptionError, StorageError

if TYPE_CHECKING:
    from respq.server import Server

RECV_SIZE = 256 * 1024  # large reads let one recv pick up a whole pipeline
STREAM_BATCH = 64 * 1024  # bytes of a streamed reply encoded and sent at a time
LOOPBACK = ("127.", "::1", "::ffff:127.")

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


async def serve_listeners(server: Server, nursery: trio.Nursery) -> list[socket.socket]:
    cfg = server.config
    listeners: list[socket.socket] = []
    port = cfg.port
    # An empty bind list means every interface; a leading "-" marks an address that may be unavailable.
    addresses = cfg.bind or ["0.0.0.0", "-::"]
    for entry in addresses:
        optional = entry.startswith("-")
        address = entry.lstrip("-")
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            listener.bind((address, port))
        except OSError as error:
            listener.close()
            if optional and error.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
                server.log.warning(f"Could not bind to {address}: {error}; skipping it")
                continue
            raise
        listener.listen(511)
        listener.setblocking(False)
        port = listener.getsockname()[1]  # with --port 0 every address shares the first free port
        listeners.append(listener)
        nursery.start_soon(_accept_loop, server, listener)
    return listeners


async def _accept_loop(server: Server, listener: socket.socket) -> None:
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
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(server, sock, addr)
        # Counted here, in accept order: Trio runs new tasks in no fixed order, and the newest client is the one
        # maxclients must refuse.
        refused = len(server.clients) >= server.config.maxclients
        server.register(connection)
        server.nursery.start_soon(connection.run, refused)


class Connection:
    def __init__(self, server: Server, sock: socket.socket, addr: Any) -> None:
        self.server = server
        self.sock = sock
        self.peer_host = addr[0]
        self.client = Client(server, _format_addr(addr), _format_addr(sock.getsockname()))
        self.client.connection = self
        cfg = server.config
        self.parser = RequestParser(
            max_bulk_len=cfg.proto_max_bulk_len, query_buffer_limit=cfg.client_query_buffer_limit
        )
        self.parser.authenticated = self.client.authenticated
        self.out: list[bytes] = []
        self.busy = False  # between reading a batch and writing its replies: pushes join self.out
        self.sending = False
        self.send_done = trio.Event()
        self.push_backlog = 0  # bytes of pushes not yet written (pub/sub output buffer)
        self.soft_limit_since = 0.0
        self.scope = trio.CancelScope()
        self.blocked: Waiter | None = None
        self.closed = False

    # ---- lifecycle ----------------------------------------------------------------------------------------------
    def kill(self) -> None:
        self.client.killed = True
        self.scope.cancel()

    async def run(self, refused: bool) -> None:
        server = self.server
        try:
            with self.scope:
                if refused:
                    server.stats.rejected_connections += 1
                    await self._send(b"-" + errors.MAX_CLIENTS + b"\r\n")
                    return
                if self._protected_mode_refuses():
                    await self._send(PROTECTED_MODE)
                    return
                await self._serve()
        except OSError:
            pass  # the peer went away; nothing to tell it
        finally:
            if self.blocked is not None:
                server.blocking.remove(self.blocked)
                self.blocked = None
            self.closed = True
            server.unregister(self)
            trio.lowlevel.notify_closing(self.sock)  # wakes a push writer waiting on this socket
            self.sock.close()

    def _protected_mode_refuses(self) -> bool:
        cfg = self.server.config
        return bool(cfg.protected_mode and not cfg.requirepass and not self.peer_host.startswith(LOOPBACK))

    async def _serve(self) -> None:
        sock = self.sock
        parser = self.parser
        stats = self.server.stats
        waited = False
        while True:
            try:
                data = sock.recv(RECV_SIZE)
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

    # ---- commands -----------------------------------------------------------------------------------------------
    async def _process(self) -> bool:
        """Runs every complete command in the buffer and writes the replies; False when the connection must close."""
        client = self.client
        server = self.server
        parser = self.parser
        out = self.out
        self.busy = True
        try:
            client.last_interaction = time.monotonic()
            while True:
                try:
                    batch = parser.parse()
                except ProtocolError as error:
                    if error.message:
                        out.append(b"-" + error.message + b"\r\n")
                    await self._flush()
                    return False
                if not batch:
                    break
                for argv in batch:
                    if server.paused_until:
                        await self._wait_unpaused(argv)
                    reply = execute(client, argv)
                    if type(reply) is Block:
                        reply = await self._block(reply)
                        if client.killed:  # disconnected or killed while waiting
                            return False
                    if server.blocking.ready:
                        server.blocking.serve_ready()
                    if type(reply) is StreamedArray and client.reply_mode == b"on":
                        await self._stream(reply)
                    else:
                        if type(reply) is list and argv[0].lower() == b"exec":
                            reply = _materialized(reply)
                        self._emit(reply)
                    if client.closing or client.killed:
                        await self._flush()
                        return False
                parser.authenticated = client.authenticated
            await self._flush()
            return True
        finally:
            self.busy = False

    def _emit(self, reply: Any) -> None:
        client = self.client
        mode = client.reply_mode
        if type(reply) is StreamedArray:  # only ever here when not sent (CLIENT REPLY OFF/SKIP): never read
            reply.close()
        elif mode == b"on":
            if type(reply) is Replies:
                self.out += [encode_reply(item, client.protocol) for item in reply.items]
            else:
                self.out.append(encode_reply(reply, client.protocol))
        if mode == b"skip-this":  # CLIENT REPLY SKIP itself: no reply, and none for the next command either
            client.reply_mode = b"skip"
        elif mode == b"skip":
            client.reply_mode = b"on"

    async def _stream(self, reply: StreamedArray) -> None:
        """Sends a reply too large to build whole in batches, each once the socket takes it, so memory stays at a
        batch however long the reply; other clients run between batches. Earlier replies go out first (after
        the sync they wait for); replies of later commands follow it."""
        try:
            await self._flush()
            if self.client.killed:
                return
            # An array of bulk strings is the same in RESP2 and RESP3.
            parts: list[bytes] = [b"*%d\r\n" % reply.length]
            size = 0
            for value in reply.values:
                parts += (b"$%d\r\n" % len(value), value, b"\r\n")
                size += len(value) + 16
                if size >= STREAM_BATCH:
                    data = b"".join(parts)
                    parts.clear()
                    size = 0
                    if self._over_output_limit(len(data)):
                        self._close_for_output_limit()
                        return
                    await self._send(data)
                    await trio.lowlevel.checkpoint()  # a fast reader must not keep the others waiting
            # The tail goes out with the next replies; pushes queued meanwhile must not land inside the array.
            self.out.insert(0, b"".join(parts))
        except StorageError as error:
            # Part of the array is on the wire already: an error reply cannot follow, only a closed connection.
            self.server.log.warning(f"Closing client id={self.client.id}: reading its reply failed ({error})")
            self.out.clear()
            self.kill()
        finally:
            reply.close()

    async def _wait_unpaused(self, argv: list[bytes]) -> None:
        cmd = resolve(argv)
        is_write = not isinstance(cmd, bytes) and cmd.is_write
        await self.server.wait_unpaused(is_write)

    async def _block(self, block: Block) -> Any:
        """Parks the client until a key it waits on is served to it, the timeout passes, or it is unblocked."""
        server = self.server
        await self._flush()  # replies to earlier commands go out before the client waits
        waiter = Waiter(self.client.id, self.client.db, block)
        server.blocking.add(waiter)
        self.blocked = waiter
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_disconnect, nursery.cancel_scope)
                if block.timeout is None:
                    await waiter.done.wait()
                else:
                    with trio.move_on_after(block.timeout):
                        await waiter.done.wait()
                nursery.cancel_scope.cancel()
        finally:
            server.blocking.remove(waiter)
            self.blocked = None
        return waiter.reply if waiter.done.is_set() else block.timeout_reply

    async def _watch_disconnect(self, scope: trio.CancelScope) -> None:
        """While blocked, keep reading: data is buffered for later; EOF ends the wait (Redis drops the waiter)."""
        sock = self.sock
        while True:
            await trio.lowlevel.wait_readable(sock)
            data = sock.recv(RECV_SIZE)
            if not data:
                self.client.killed = True
                scope.cancel()
                return
            self.parser.feed(data)

    # ---- output -------------------------------------------------------------------------------------------------
    async def _flush(self) -> None:
        """Sends pending replies once what they acknowledge is as durable as the fsync policy promises."""
        try:
            await self.server.make_durable()
        except StorageError as error:
            # What these replies acknowledge may never reach the disk: drop the connection instead of lying.
            self.server.log.warning(f"Closing client id={self.client.id}: its writes cannot be made durable ({error})")
            self.out.clear()
            self.kill()
            return
        while self.out:
            data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
            self.out.clear()
            if self._over_output_limit(len(data)):
                self._close_for_output_limit()
                return
            await self._send(data)

    async def _send(self, data: bytes) -> None:
        while self.sending:
            await self.send_done.wait()
        self.sending = True
        try:
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
        finally:
            self.sending = False
            self.send_done.set()
            self.send_done = trio.Event()

    def push(self, value: Any) -> None:
        """Queues an out-of-band message (pub/sub). Written with the current batch, or by a short-lived task."""
        if self.closed or self.client.killed:
            return
        data = encode_reply(value, self.client.protocol)
        if self.busy:
            self.out.append(data)
            return
        self.push_backlog += len(data)
        if self._over_output_limit(self.push_backlog):
            self._close_for_output_limit()
            return
        self.out.append(data)
        if self.push_backlog == len(data):  # first pending push: start a writer
            self.server.nursery.start_soon(self._write_pushes)

    def _close_for_output_limit(self) -> None:
        self.server.log("verbose", f"Client id={self.client.id} closed for overcoming of output buffer limits.")
        self.out.clear()
        self.kill()

    async def _write_pushes(self) -> None:
        try:
            while self.out and not self.busy:
                data = b"".join(self.out)
                self.out.clear()
                await self._send(data)
                self.push_backlog = max(0, self.push_backlog - len(data))
        except (OSError, trio.ClosedResourceError):
            self.kill()
        finally:
            self.push_backlog = 0 if not self.out else self.push_backlog

    def _over_output_limit(self, backlog: int) -> bool:
        """client-output-buffer-limit for this client's class: over the hard limit, or over the soft one for longer
        than its seconds."""
        limits = self.server.config.client_output_buffer_limit
        hard, soft, soft_seconds = limits.get("pubsub" if self.client.subscriptions else "normal", (0, 0, 0))
        if hard and backlog > hard:
            return True
        if soft and backlog > soft:
            now = time.monotonic()
            if not self.soft_limit_since:
                self.soft_limit_since = now
            return now - self.soft_limit_since > soft_seconds
        self.soft_limit_since = 0.0
        return False


def _materialized(replies: list[Any]) -> list[Any]:
    """EXEC's replies with streamed arrays built whole: a transaction's reply is one array, sent at once."""
    if not any(type(item) is StreamedArray for item in replies):
        return replies
    return [_built(item) if type(item) is StreamedArray else item for item in replies]


def _built(reply: StreamedArray) -> list[bytes] | ErrorReply:
    try:
        return reply.materialize()
    except CorruptionError as error:
        return ErrorReply(errors.corrupt_data(str(error)))
