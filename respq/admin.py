"""``respq stat`` and ``respq queues``: an operator's live view of a running server, over RESP like redis-cli.

Only standard commands are sent (INFO, SCAN ... TYPE, LLEN, XINFO STREAM, XINFO GROUPS), so the tools work against
any server that speaks Redis 7.0. Queue figures come from a SCAN of list and stream keys each time they are shown:
O(keys) per refresh, as redis-cli --bigkeys is. A list's oldest age is unknown (a list keeps no push times); a
stream's is the age of its first entry's ID; a stream's lag is the largest lag of its consumer groups.
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from respq.tls import client_context

SCAN_COUNT = 1000
STAT_HEADER_EVERY = 20  # lines between repeated headers, as redis-cli --stat


class ReplyError(Exception):
    """The server answered an error."""


class RespClient:
    """A blocking RESP2 connection: one command (or a pipeline) at a time."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        """With ``tls``, the connection is made over TLS (``server_name``: the SNI sent, the host by default)."""
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_hostname=server_name or host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def call(self, *args: str | bytes | int) -> Any:
        return self.pipeline([list(args)])[0]

    def pipeline(self, commands: list[list[str | bytes | int]]) -> list[Any]:
        """Sends every command in one write, then reads their replies (an error reply is returned, not raised)."""
        out = []
        for args in commands:
            parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
            out.append(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        self.sock.sendall(b"".join(out))
        return [self._read() for _ in commands]

    def _read(self) -> Any:
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("the server closed the connection")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body
        if kind == b"-":
            return ReplyError(body.decode(errors="replace"))
        if kind == b":":
            return int(body)
        if kind == b"$":
            size = int(body)
            if size < 0:
                return None
            data = self.file.read(size + 2)
            return data[:-2]
        if kind == b"*":
            count = int(body)
            return None if count < 0 else [self._read() for _ in range(count)]
        raise ConnectionError(f"unexpected reply {line!r}")

    def checked(self, *args: str | bytes | int) -> Any:
        reply = self.call(*args)
        if isinstance(reply, ReplyError):
            raise reply
        return reply


@dataclass
class Queue:
    key: bytes
    kind: str  # "list" or "stream"
    depth: int
    oldest_age: float | None  # seconds; None when unknown
    lag: int | None  # largest consumer-group lag; None without groups or when unknown


def _pairs(reply: Any) -> dict[bytes, Any]:
    return dict(zip(reply[::2], reply[1::2], strict=False)) if isinstance(reply, list) else {}


def _keys_of_type(client: RespClient, kind: str) -> list[bytes]:
    keys: list[bytes] = []
    cursor = b"0"
    while True:
        cursor, batch = client.checked("SCAN", cursor, "COUNT", SCAN_COUNT, "TYPE", kind)
        keys += batch
        if cursor == b"0":
            return list(dict.fromkeys(keys))


def queues(client: RespClient, now: float | None = None) -> list[Queue]:
    """Every list and stream of the selected database, with its depth, oldest age and lag."""
    now = time.time() if now is None else now
    found = []
    lists = _keys_of_type(client, "list")
    for key, depth in zip(lists, client.pipeline([["LLEN", key] for key in lists]), strict=True):
        if isinstance(depth, int):
            found.append(Queue(key, "list", depth, None, None))
    streams = _keys_of_type(client, "stream")
    replies = client.pipeline(
        [[verb, sub, key] for key in streams for verb, sub in (("XINFO", "STREAM"), ("XINFO", "GROUPS"))]
    )
    for index, key in enumerate(streams):
        info, groups = replies[2 * index], replies[2 * index + 1]
        if isinstance(info, ReplyError):
            continue  # deleted or replaced since the scan
        fields = _pairs(info)
        first = fields.get(b"first-entry")
        age = None
        if isinstance(first, list) and first:
            age = max(0.0, now - int(first[0].split(b"-")[0]) / 1000)
        lags = [_pairs(group).get(b"lag") for group in groups] if isinstance(groups, list) else []
        known = [lag for lag in lags if isinstance(lag, int)]
        found.append(Queue(key, "stream", int(fields.get(b"length", 0)), age, max(known) if known else None))
    return found


def _info(client: RespClient) -> dict[str, str]:
    text = client.checked("INFO").decode(errors="replace")
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line and not line.startswith("#"))


def _human_bytes(size: float) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.2f}{unit}"
    return f"{int(size)}B"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


STAT_COLUMNS = (
    f"{'keys':<10} {'mem':<9} {'clients':<8} {'blocked':<8} {'requests':<20} {'connections':<12} "
    f"{'queues':<7} {'depth':<12} {'oldest':<8} {'lag':<10}"
)


def stat(client: RespClient, interval: float, lines: int, out: TextIO) -> None:
    """One line per interval: redis-cli --stat's columns, then the queues' count, total depth, oldest age and
    largest lag. ``lines`` 0 runs until interrupted."""
    previous = None
    shown = 0
    while not lines or shown < lines:
        info = _info(client)
        found = queues(client)
        if shown % STAT_HEADER_EVERY == 0:
            print(STAT_COLUMNS, file=out)
        keys = sum(
            int(part.split("=")[1])
            for name, value in info.items()
            if name.startswith("db")
            for part in value.split(",")[:1]
        )
        requests = int(info.get("total_commands_processed", 0))
        delta = f"(+{requests - previous})" if previous is not None else "(+0)"
        previous = requests
        ages = [q.oldest_age for q in found if q.oldest_age is not None]
        lags = [q.lag for q in found if q.lag is not None]
        print(
            f"{keys:<10} {_human_bytes(int(info.get('used_memory', 0))):<9} {info.get('connected_clients', '?'):<8} "
            f"{info.get('blocked_clients', '?'):<8} {f'{requests} {delta}':<20} "
            f"{info.get('total_connections_received', '?'):<12} {len(found):<7} "
            f"{sum(q.depth for q in found):<12} {_age(max(ages) if ages else None):<8} "
            f"{max(lags) if lags else '-'!s:<10}",
            file=out,
            flush=True,
        )
        shown += 1
        if not lines or shown < lines:
            time.sleep(interval)


SORT_KEYS = {
    "depth": lambda q: q.depth,
    "age": lambda q: -1.0 if q.oldest_age is None else q.oldest_age,
    "lag": lambda q: -1 if q.lag is None else q.lag,
}


def print_queues(client: RespClient, sort: str, count: int, out: TextIO) -> None:
    """The top ``count`` queues by ``sort`` (depth, age or lag), largest first."""
    found = sorted(queues(client), key=lambda q: (SORT_KEYS[sort](q), q.key), reverse=True)[:count]
    print(f"{'queue':<40} {'type':<7} {'depth':>12} {'oldest':>8} {'lag':>10}", file=out)
    for q in found:
        name = q.key.decode(errors="backslashreplace")
        print(
            f"{name:<40} {q.kind:<7} {q.depth:>12} {_age(q.oldest_age):>8} {q.lag if q.lag is not None else '-'!s:>10}",
            file=out,
        )


def _connection_options(parser: argparse.ArgumentParser) -> None:
    """redis-cli's connection options (-h is the host, as in redis-cli: --help is the only help flag)."""
    parser.add_argument("-h", dest="host", default="127.0.0.1", help="server host (default 127.0.0.1)")
    parser.add_argument("-p", dest="port", type=int, default=6379, help="server port (default 6379)")
    parser.add_argument("-a", dest="password", help="password (AUTH)")
    parser.add_argument("--user", help="ACL user name, with -a")
    parser.add_argument("-n", dest="db", type=int, default=0, help="database number (default 0)")
    parser.add_argument("--tls", action="store_true", help="connect over TLS")
    parser.add_argument("--sni", help="server name indication for TLS (default: the host)")
    parser.add_argument("--cacert", help="CA certificate file to verify the server with")
    parser.add_argument("--cacertdir", help="directory of trusted CA certificates")
    parser.add_argument("--insecure", action="store_true", help="do not verify the server's certificate")
    parser.add_argument("--cert", help="client certificate to authenticate with")
    parser.add_argument("--key", help="private key file for --cert")


def _connect(args: argparse.Namespace) -> RespClient:
    tls = None
    if args.tls:
        tls = client_context(
            cacert=args.cacert, cacertdir=args.cacertdir, cert=args.cert, key=args.key, insecure=args.insecure
        )
    client = RespClient(args.host, args.port, tls=tls, server_name=args.sni)
    try:
        if args.password is not None:
            auth = ["AUTH", args.user, args.password] if args.user else ["AUTH", args.password]
            client.checked(*auth)
        if args.db:
            client.checked("SELECT", args.db)
    except BaseException:
        client.close()
        raise
    return client


def run(command: str, argv: list[str], out: TextIO = sys.stdout) -> int:
    """``respq stat`` or ``respq queues`` with their arguments; the exit status."""
    parser = argparse.ArgumentParser(prog=f"respq {command}", add_help=False)
    parser.add_argument("--help", action="help", help="show this help and exit")
    _connection_options(parser)
    if command == "stat":
        parser.description = "A line per interval: server load (as redis-cli --stat) and queue totals."
        parser.add_argument("-i", dest="interval", type=float, default=1.0, help="seconds between lines (default 1)")
        parser.add_argument("--lines", type=int, default=0, help="stop after this many lines (default: never)")
    else:
        parser.description = "The top queues by depth, oldest age or consumer-group lag."
        parser.add_argument("--sort", choices=sorted(SORT_KEYS), default="depth", help="order (default depth)")
        parser.add_argument("--count", type=int, default=20, help="queues shown (default 20)")
    args = parser.parse_args(argv)
    try:
        client = _connect(args)
    except (OSError, ReplyError) as error:
        print(f"Could not connect to {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    try:
        if command == "stat":
            stat(client, args.interval, args.lines, out)
        else:
            print_queues(client, args.sort, args.count, out)
    except KeyboardInterrupt:
        return 0
    except (OSError, ReplyError) as error:
        print(f"{args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0
