"""MIGRATE: DUMP payloads of keys sent as RESTORE commands to another server, the keys deleted here once it
acknowledged them (unless COPY). The payloads are made on the event loop; the connection to the target (connect,
write, read the replies) runs in a worker thread while the calling client is parked as a blocked client would be,
so other clients are served meanwhile. Inside a transaction or a script, where nothing may wait, it runs inline.

Unlike Redis, no connection is cached between calls (each MIGRATE connects, and SELECTs the database), and a key
that changed between the payload and the target's reply is left in place (Redis cannot see such a change).
"""

from __future__ import annotations

import re
import socket
import threading
from typing import Any

import trio

from respq import errors
from respq.blocking import Block
from respq.commands.args import parse_int
from respq.commands.context import Context
from respq.commands.dump import dump_value, limits
from respq.commands.table import command
from respq.errors import CommandError
from respq.keyspace import now_ms
from respq.protocol import encode_command
from respq.replies import OK, ErrorReply, SimpleString

NOKEY = SimpleString(b"NOKEY")
_CHUNK = 64 * 1024
_PARKED = b"\x00respq:migrate:%d"  # the key a migrating client is parked on: no client can name it by accident


def migrate_keys(argv: list[bytes]) -> list[int]:
    """Key positions: the key argument, or every argument after KEYS (AUTH and AUTH2 skipped with their values)."""
    i = 6
    while i < len(argv):
        option = argv[i].lower()
        if option == b"auth":
            i += 2
        elif option == b"auth2":
            i += 3
        elif option == b"keys":
            return list(range(i + 1, len(argv))) if not argv[3] else []
        else:
            i += 1
    return [3]


def _atoi(arg: bytes) -> int:
    """C's atoi, as Redis reads MIGRATE's port: the leading digits (after an optional sign), 0 without any."""
    digits = re.match(rb"\s*[-+]?\d+", arg)
    return int(digits.group()) if digits else 0


def _exchange(host: str, port: int, timeout: float, request: bytes, replies: int) -> tuple[list[bytes] | None, bytes]:
    """Sends ``request`` and reads ``replies`` reply lines; (lines, b"") or (None, the IOERR error)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:  # Redis's non-blocking connect "succeeds" and its first write fails
        return None, errors.migrate_io(writing=True)
    except (OSError, ValueError, OverflowError):  # unresolvable, unreachable, a port past 65535
        return None, errors.MIGRATE_CONNECT
    lines: list[bytes] = []
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for start in range(0, len(request), _CHUNK):
                sock.sendall(request[start : start + _CHUNK])
        except OSError:
            return None, errors.migrate_io(writing=True)
        stream = sock.makefile("rb")
        try:
            for _ in range(replies):
                line = stream.readline(1 << 20)
                if not line.endswith(b"\r\n"):
                    raise OSError("connection closed")
                lines.append(line[:-2])
                if line[:1] == b"$" and line[1:3] != b"-1":  # a bulk reply (never from RESTORE): skip its body
                    stream.read(int(line[1:-2]) + 2)
        except (OSError, ValueError):
            if not lines:
                return None, errors.migrate_io(writing=False)
        return lines, b""
    finally:
        sock.close()


@command(
    "migrate",
    -6,
    "write movablekeys",
    (3, 3, 1),
    group="generic",
    key_finder=migrate_keys,
    options=("COPY", "REPLACE", "AUTH", "AUTH2", "KEYS"),
    summary="Moves keys to another server (DUMP here, RESTORE there), deleting them here unless COPY.",
    since="2.6.0",
    complexity="O(N) in the size of the values moved; the connection runs off the event loop",
    acl=("@keyspace", "@write", "@slow", "@dangerous"),
)
def migrate(ctx: Context, argv: list[bytes]) -> Any:
    copy = replace = False
    user = password = None
    keys = [argv[3]]
    i = 6
    while i < len(argv):
        option = argv[i].lower()
        more = len(argv) - 1 - i
        if option == b"copy":
            copy = True
        elif option == b"replace":
            replace = True
        elif option == b"auth":
            if not more:
                raise CommandError(errors.SYNTAX)
            i += 1
            password = argv[i]
        elif option == b"auth2":
            if more < 2:
                raise CommandError(errors.SYNTAX)
            user, password = argv[i + 1], argv[i + 2]
            i += 2
        elif option == b"keys":
            if argv[3]:
                raise CommandError(errors.MIGRATE_KEYS_NEED_EMPTY_KEY)
            keys = argv[i + 1 :]
            break
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    timeout_ms = parse_int(argv[5])
    db_index = parse_int(argv[4])
    if timeout_ms <= 0:
        timeout_ms = 1000
    keyspace, db = ctx.keyspace, ctx.client.db
    found = [(key, value) for key in keys if (value := keyspace.lookup(db, key)) is not None]
    if not found:
        return NOKEY
    lim = limits(ctx)
    request = bytearray()
    if password is not None:
        request += encode_command([b"AUTH", password] if user is None else [b"AUTH", user, password])
    request += encode_command([b"SELECT", b"%d" % db_index])
    sent: list[tuple[bytes, bytes]] = []  # key, payload
    now = now_ms()
    for key, value in found:
        ttl = 0
        if value.expire_ms is not None:
            ttl = value.expire_ms - now
            if ttl < 0:
                continue
            ttl = max(ttl, 1)
        payload = dump_value(value, lim)
        request += encode_command([b"RESTORE", key, b"%d" % ttl, payload, *([b"REPLACE"] if replace else [])])
        sent.append((key, payload))
    head = (password is not None) + 1
    host, port = argv[1].decode(errors="replace"), _atoi(argv[2])
    exchange = (host, port, timeout_ms / 1000, bytes(request), head + len(sent))

    def finish(result: tuple[list[bytes] | None, bytes]) -> Any:
        lines, failure = result
        if lines is None:
            return ErrorReply(failure)
        error = next((line[1:] for line in lines if line[:1] == b"-"), None)
        if not copy:  # the keys the target acknowledged go, unless they changed meanwhile
            for (key, payload), line in zip(sent, lines[head:], strict=False):
                value = keyspace.lookup(db, key) if line[:1] != b"-" else None
                if value is not None and dump_value(value, lim) == payload:
                    keyspace.delete(db, key)
        if error is not None:
            return ErrorReply(errors.migrate_target(error))
        if len(lines) < head + len(sent):
            return ErrorReply(errors.migrate_io(writing=False))
        return OK

    client = ctx.client
    if client.deny_blocking or client.script:
        return finish(_exchange(*exchange))
    try:
        token = trio.lowlevel.current_trio_token()
    except RuntimeError:  # no event loop (an in-process context): nothing else to serve
        return finish(_exchange(*exchange))
    parked = _PARKED % client.id
    outcome: list[Any] = []

    def work() -> None:
        result = _exchange(*exchange)

        def wake() -> None:
            outcome.append(result)
            ctx.blocking.signal(db, parked)
            ctx.blocking.serve_ready()

        try:
            trio.from_thread.run_sync(wake, trio_token=token)
        except trio.RunFinishedError:
            pass  # the server stopped meanwhile

    def retry(_key: bytes) -> Any:
        return finish(outcome[0]) if outcome else None

    threading.Thread(target=work, name="migrate", daemon=True).start()
    return Block([parked], None, retry, ErrorReply(errors.migrate_io(writing=False)))


