"""The replica side of Redis's replication protocol: the task that follows a master (REPLICAOF host port).

Handshake as a Redis 7.0 replica does it (PING, AUTH, REPLCONF listening-port and capa, PSYNC), then the stream: the
RDB a respq master sends holds no keys (the data set follows as commands) and is skipped; an RDB with keys (a real
Redis master with data) is refused, since respq cannot load RDB values. Each command of the stream runs as the master
client (past replica-read-only, never answered); its bytes go into this server's own backlog unchanged, so the
offsets stay the master's and a promoted replica can let the others continue. An ACK is sent every second, once what
it acknowledges is durable here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import trio

from respq import speedups
from respq.client import Client
from respq.commands.dispatch import execute, execute_run
from respq.protocol import encode_command
from respq.replication import RDB_AUX, RDB_EOF, RDB_MAGIC, MasterState, Replication

if TYPE_CHECKING:
    from respq.server import Server

RECONNECT_SECONDS = 1.0
ACK_SECONDS = 1.0
HANDSHAKE_TIMEOUT = 10.0
RDB_WITH_KEYS = "the master sent an RDB holding data: respq loads none (its master must be empty, or respq)"


class LinkError(Exception):
    pass


class _Reader:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def fill(self) -> None:
        data = await self.stream.receive_some(1 << 16)
        if not data:
            raise LinkError("connection lost with the master")
        self.buffer += data

    async def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            await self.fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line.lstrip(b"\n")  # a master preparing the RDB keeps the link alive with bare newlines

    async def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            await self.fill()
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data


def _parse_command(buffer: bytearray, start: int = 0) -> tuple[list[bytes], int] | None:
    """The complete command of the stream (a RESP array of bulk strings) at ``start``, and where it ends."""
    if len(buffer) <= start:
        return None
    end = buffer.find(b"\r\n", start)
    if end < 0:
        return None
    if buffer[start] != ord("*"):
        return bytes(buffer[start:end]).split(), end + 2  # an inline command (a newline ping)
    count = int(buffer[start + 1 : end])
    pos = end + 2
    argv: list[bytes] = []
    for _ in range(count):
        end = buffer.find(b"\r\n", pos)
        if end < 0:
            return None
        length = int(buffer[pos + 1 : end])
        start = end + 2
        if len(buffer) < start + length + 2:
            return None
        argv.append(bytes(buffer[start : start + length]))
        pos = start + length + 2
    return argv, pos


def _rdb_length(data: bytes, pos: int) -> tuple[int, int, bool]:
    """(length or encoded-int kind, new position, is it a special encoding) of an RDB length field."""
    first = data[pos]
    kind = first >> 6
    if kind == 0:
        return first & 0x3F, pos + 1, False
    if kind == 1:
        return ((first & 0x3F) << 8) | data[pos + 1], pos + 2, False
    if kind == 2:
        size = 4 if first == 0x80 else 8
        return int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size, False
    return first & 0x3F, pos + 1, True


def _rdb_skip_string(data: bytes, pos: int) -> int:
    length, pos, special = _rdb_length(data, pos)
    if not special:
        return pos + length
    if length in (0, 1, 2):  # an 8, 16 or 32-bit integer
        return pos + (1, 2, 4)[length]
    compressed, pos, _ = _rdb_length(data, pos)  # LZF: compressed length, then the plain length
    _, pos, _ = _rdb_length(data, pos)
    return pos + compressed


def rdb_has_keys(data: bytes) -> bool:
    """Whether an RDB holds anything but AUX fields (keys, functions, a selected database)."""
    if not data.startswith(RDB_MAGIC[:5]):
        raise LinkError("the master sent something that is not an RDB")
    pos = 9
    while pos < len(data):
        opcode = data[pos]
        if opcode == RDB_EOF:
            return False
        if opcode != RDB_AUX:
            return True
        pos = _rdb_skip_string(data, pos + 1)
        pos = _rdb_skip_string(data, pos)
    return False


async def follow_master(server: Server, master: MasterState, scope: trio.CancelScope) -> None:
    """Follows the master until REPLICAOF changes (``scope`` is cancelled), reconnecting after every failure."""
    log = server.log
    with scope:
        while True:
            try:
                await _session(server, master)
            except Exception as error:  # the link's failures (in a group, from its ACK task) never stop the server
                while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
                    error = error.exceptions[0]
                log.warning(f"Master {master.host}:{master.port} link: {error}")
            if master.link_up:
                master.down_since = time.monotonic()
            master.link_up = False
            await trio.sleep(RECONNECT_SECONDS)


async def _command(stream: trio.SocketStream, reader: _Reader, *argv: bytes) -> bytes:
    await stream.send_all(encode_command(list(argv)))
    return await reader.line()


async def _session(server: Server, master: MasterState) -> None:
    replication = server.replication
    config = server.config
    stream = await trio.open_tcp_stream(master.host, master.port)
    async with stream:
        reader = _Reader(stream)
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            reply = await _command(stream, reader, b"PING")
            if reply.startswith(b"-") and not reply.startswith((b"-NOAUTH", b"-NOPERM", b"-ERR operation")):
                raise LinkError(f"error reply to PING from master: {reply.decode(errors='replace')}")
            password = config.values["masterauth"]
            if password:
                user = config.values["masteruser"]
                words = [b"AUTH", user.encode(), password.encode()] if user else [b"AUTH", password.encode()]
                reply = await _command(stream, reader, *words)
                if reply.startswith(b"-"):
                    raise LinkError(f"unable to AUTH to MASTER: {reply.decode(errors='replace')}")
            await _command(stream, reader, b"REPLCONF", b"listening-port", b"%d" % server.port)
            await _command(stream, reader, b"REPLCONF", b"capa", b"eof", b"capa", b"psync2")
            if replication.followed:
                await stream.send_all(
                    encode_command([b"PSYNC", replication.replid.encode(), b"%d" % (replication.offset + 1)])
                )
            else:
                await stream.send_all(encode_command([b"PSYNC", b"?", b"-1"]))
            reply = await reader.line()
            while not reply:  # newlines the master sends while it prepares the RDB
                reply = await reader.line()
        if reply.startswith(b"+FULLRESYNC"):
            _, replid, offset = reply.split()
            await _full_sync(server, reader)
            replication.replid = replid.decode()
            replication.offset = int(offset)
            replication.backlog = None  # a new history: nothing of the old one can be served
            replication.start_backlog()
            replication.followed = True
        elif reply.startswith(b"+CONTINUE"):
            words = reply.split()
            if len(words) > 1 and words[1].decode() != replication.replid:
                replication.replid2 = replication.replid
                replication.second_offset = replication.offset + 1
                replication.replid = words[1].decode()
        else:
            raise LinkError(f"unexpected reply to PSYNC from master: {reply.decode(errors='replace')}")
        master.link_up = True
        master.syncing = False
        master.applied = replication.offset
        server.log.notice(f"MASTER <-> REPLICA sync: following {master.host}:{master.port}")
        await _stream(server, master, stream, reader)


async def _full_sync(server: Server, reader: _Reader) -> None:
    header = await reader.line()
    while not header:
        header = await reader.line()
    if header.startswith(b"$EOF:"):
        mark = header[5:]
        while True:
            end = reader.buffer.find(mark)
            if end >= 0:
                rdb = bytes(reader.buffer[:end])
                del reader.buffer[: end + len(mark)]
                break
            await reader.fill()
    else:
        rdb = await reader.exactly(int(header[1:]))
    if rdb_has_keys(rdb):
        raise LinkError(RDB_WITH_KEYS)
    # The data set that follows replaces this server's own.
    server.keyspace.flushall()


async def _stream(server: Server, master: MasterState, stream: trio.SocketStream, reader: _Reader) -> None:
    replication = server.replication
    client = Client(f"{master.host}:{master.port}", "", authenticated=True, user=server.acl.default)
    client.master = True
    client.reply_mode = b"off"
    ctx = server.context(client)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_acks, server, master, stream)
        buffer = reader.buffer
        parse_fast = speedups.parse_multibulk
        max_bulk = server.config.proto_max_bulk_len
        while True:
            if parse_fast is not None and b"getack" not in buffer.lower():
                # Every complete canonical command at once, in C (the stream is all canonical arrays)
                fast: list[list[bytes]] = []
                data = bytes(buffer)
                end = parse_fast(data, 0, max_bulk, fast)
                if end:
                    _apply(server, ctx, fast, data[:end])
                    del buffer[:end]
                    master.applied = replication.offset
                    master.last_io = time.monotonic()
            batch: list[list[bytes]] = []
            pos = done = 0
            while (parsed := _parse_command(buffer, pos)) is not None:
                argv, pos = parsed
                if len(argv) > 1 and argv[0].lower() == b"replconf" and argv[1].lower() == b"getack":
                    _apply(server, ctx, batch, bytes(buffer[done:pos]))
                    batch, done = [], pos
                    master.applied = offset = replication.offset
                    await server.make_durable()  # an ACK says durable here
                    await stream.send_all(encode_command([b"REPLCONF", b"ACK", b"%d" % offset]))
                elif argv:
                    batch.append(argv)
            if pos:
                _apply(server, ctx, batch, bytes(buffer[done:pos]))
                del buffer[:pos]
                master.applied = replication.offset
                master.last_io = time.monotonic()
            await reader.fill()


def _apply(server: Server, ctx: Any, batch: list[list[bytes]], raw: bytes) -> None:
    """Runs commands of the master's stream (consecutive calls on one key as one operation, as a client's pipeline
    runs); their bytes, not their effects, go on to this server's backlog."""
    replication = server.replication
    feeding = replication.feeding
    replication.feeding = False
    blocking = server.blocking
    try:
        index = 0
        while index < len(batch):
            replies = execute_run(ctx, batch, index) if index + 1 < len(batch) else []
            if replies:
                index += len(replies)
            else:
                execute(ctx, batch[index])
                index += 1
            if blocking.ready:
                blocking.serve_ready()
    finally:
        replication.feeding = feeding
    if raw:
        _advance(replication, raw)


def _advance(replication: Replication, raw: bytes) -> None:
    """The master's bytes, applied: into this server's backlog (and on to its replicas), as its offset."""
    if replication.backlog is not None:
        replication.feed(raw)
    else:
        replication.offset += len(raw)


async def _acks(server: Server, master: MasterState, stream: trio.SocketStream) -> None:
    """REPLCONF ACK every second, for what is durable here by then (so an ACK means the write survives this
    server's crash under appendfsync always)."""
    while True:
        await trio.sleep(ACK_SECONDS)
        offset = master.applied
        await server.make_durable()
        await stream.send_all(encode_command([b"REPLCONF", b"ACK", b"%d" % offset]))
