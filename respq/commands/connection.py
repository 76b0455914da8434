"""Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET and the CLIENT family."""

from __future__ import annotations

import time
from typing import Any

from respq import REDIS_COMPAT_VERSION, errors
from respq.acl.check import DENIED_AUTH
from respq.client import Client
from respq.commands.args import parse_db_index, parse_int, parse_timeout_ms
from respq.commands.cluster import SELECT_IN_CLUSTER
from respq.commands.context import Context
from respq.commands.help import help_lines
from respq.commands.table import command, container
from respq.errors import CommandError
from respq.replies import OK, PONG, ErrorReply, SimpleString, Verbatim

G = "connection"

CLIENT_NAME_INVALID = b"ERR Client names cannot contain spaces, newlines or special characters."
PROTOCOL_NOT_INTEGER = b"ERR Protocol version is not an integer or out of range"
NO_SUCH_CLIENT = b"ERR No such client"
UNBLOCKED = b"UNBLOCKED client unblocked via CLIENT UNBLOCK"
CLIENT_UNBLOCK_REASON = b"ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
INVALID_CLIENT_ID = b"ERR Invalid client ID"


@command("ping", -1, "fast", group=G, summary="Replies PONG, or its argument, to check the connection.", since="1.0.0")
def ping(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    if len(argv) > 2:
        raise CommandError(errors.wrong_arity(b"ping"))
    if client.protocol == 2 and client.subscriptions:
        # In RESP2 subscribed mode PING answers in the shape of a pub/sub message.
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return argv[1] if len(argv) == 2 else PONG


@command("echo", 2, "fast loading stale", group=G, summary="Replies with the argument it was given.", since="1.0.0")
def echo(ctx: Context, argv: list[bytes]) -> Any:
    return argv[1]


def _authenticate(ctx: Context, argv: list[bytes], username: bytes, password: bytes) -> None:
    """Logs the client in as ``username``, or records the failure in the ACL log and raises WRONGPASS."""
    client = ctx.client
    user = ctx.acl.authenticate(username, password)
    if user is None:
        context = b"multi" if client.multi is not None else b"toplevel"
        ctx.acl.log.add(DENIED_AUTH, context, argv[0], username, client_line(client))
        raise CommandError(errors.WRONGPASS)
    client.authenticated = True
    client.user = user


@command(
    "auth",
    -2,
    "noscript loading stale fast no_auth allow_busy",
    group=G,
    summary="Authenticates the connection with a password, optionally for a named user.",
    since="1.0.0",
)
def auth(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2:
        if ctx.acl.default.nopass:
            raise CommandError(errors.AUTH_NO_PASSWORD)
        user, password = b"default", argv[1]
    else:
        user, password = argv[1], argv[2]
    _authenticate(ctx, argv, user, password)
    return OK


@command(
    "hello",
    -1,
    "noscript loading stale fast no_auth allow_busy",
    group=G,
    summary="Negotiates the protocol version, optionally authenticating and naming the connection.",
    since="6.0.0",
    options=("AUTH", "SETNAME"),
)
def hello(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    protocol = client.protocol
    if len(argv) >= 2:
        version = parse_int(argv[1], PROTOCOL_NOT_INTEGER)
        if version < 2 or version > 3:
            raise CommandError(errors.NOPROTO)
        protocol = version
    # Options act in order, as in Redis: an AUTH or SETNAME before a bad option has taken effect when it fails.
    i = 2
    while i < len(argv):
        option = argv[i].upper()
        remaining = len(argv) - i - 1
        if option == b"AUTH" and remaining >= 2:
            _authenticate(ctx, argv, argv[i + 1], argv[i + 2])
            i += 3
        elif option == b"SETNAME" and remaining >= 1:
            _check_client_name(argv[i + 1])
            client.name = argv[i + 1]
            i += 2
        else:
            raise CommandError(b"ERR Syntax error in HELLO option '" + argv[i] + b"'")
    if not client.authenticated:
        raise CommandError(errors.NOAUTH_HELLO)
    client.protocol = protocol
    return {
        b"server": b"redis",
        b"version": REDIS_COMPAT_VERSION.encode(),
        b"proto": protocol,
        b"id": client.id,
        b"mode": b"standalone" if ctx.cluster is None else b"cluster",
        b"role": b"master" if ctx.replication.master is None else b"replica",
        b"modules": [],
    }


@command("select", 2, "loading stale fast", group=G, summary="Switches the connection's database.", since="1.0.0")
def select(ctx: Context, argv: list[bytes]) -> Any:
    if ctx.cluster is not None:  # a cluster node has database 0 only
        index = parse_int(argv[1])
        if index != 0:
            raise CommandError(SELECT_IN_CLUSTER if -(1 << 31) <= index < 1 << 31 else errors.NOT_INT32)
        return OK
    ctx.client.db = parse_db_index(argv[1], ctx.config.databases)
    return OK


@command(
    "quit",
    -1,
    "allow_busy noscript loading stale fast no_auth",
    group=G,
    summary="Asks the server to close the connection once it has replied OK.",
    since="1.0.0",
)
def quit_(ctx: Context, argv: list[bytes]) -> Any:
    ctx.client.closing = True
    return OK


@command(
    "reset",
    1,
    "noscript loading stale fast no_auth allow_busy",
    group=G,
    summary="Clears the connection's state (database, transaction, subscriptions, name) as if new.",
    since="6.2.0",
)
def reset(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    ctx.server.stop_monitor(client)
    client.multi = None
    client.multi_error = False
    if ctx.keyspace is not None:
        ctx.keyspace.unwatch_all(client)
    ctx.pubsub.forget(client)
    client.db = 0
    client.protocol = 2
    client.name = b""
    # Replies come back on, but a CLIENT REPLY SKIP sent just before still silences RESET's own reply (Redis clears
    # OFF and a SKIP still to come, not the skip of the command running).
    if client.reply_mode != b"skip":
        client.reply_mode = b"on"
    client.no_evict = False
    client.no_touch = False
    default = ctx.acl.default
    client.user = default
    client.authenticated = default.nopass and default.enabled
    return SimpleString(b"RESET")


# ---- CLIENT -------------------------------------------------------------------------------------------------------
container("client", group=G, summary="Groups the subcommands that inspect and manage connections.", since="2.4.0")


def _check_client_name(name: bytes) -> None:
    if any(c < 33 or c > 126 for c in name):
        raise CommandError(CLIENT_NAME_INVALID)


@command(
    "client|id",
    2,
    "noscript loading stale",
    group=G,
    summary="Replies with the numeric ID the server gave this connection.",
    since="5.0.0",
)
def client_id(ctx: Context, argv: list[bytes]) -> Any:
    return ctx.client.id


@command("client|setname", 3, "noscript loading stale", group=G, summary="Names the connection.", since="2.6.9")
def client_setname(ctx: Context, argv: list[bytes]) -> Any:
    _check_client_name(argv[2])
    ctx.client.name = argv[2]
    return OK


@command(
    "client|getname", 2, "noscript loading stale", group=G, summary="Replies with the connection's name.", since="2.6.9"
)
def client_getname(ctx: Context, argv: list[bytes]) -> Any:
    return ctx.client.name or None


@command(
    "client|setinfo",
    4,
    "noscript loading stale",
    group=G,
    extension=True,
    options=("LIB-NAME", "LIB-VER"),
    summary="Records the client library's name or version, as sent in client handshakes.",
    since="7.2.0",
)
def client_setinfo(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    attribute = argv[2].upper()
    value = argv[3]
    if any(c < 33 or c > 126 for c in value):
        raise CommandError(b"ERR " + argv[2] + b" cannot contain spaces, newlines or special characters.")
    if attribute == b"LIB-NAME":
        client.lib_name = value
    elif attribute == b"LIB-VER":
        client.lib_ver = value
    else:
        raise CommandError(b"ERR Unrecognized option '" + argv[2] + b"'")
    return OK


def client_line(client: Client) -> bytes:
    now = time.monotonic()
    connection = client.connection
    # a monitor is a replica to Redis: its letter comes first
    flags = "O" if client.monitoring else "S" if client.replica is not None else "M" if client.master else ""
    if client.subscriptions:
        flags += "P"
    if client.multi is not None:
        flags += "x"
    if connection is not None and connection.blocked is not None:
        flags += "b"
    if client.dirty_cas:
        flags += "d"
    if client.no_evict:
        flags += "e"
    if client.no_touch:
        flags += "T"
    qbuf = connection.parser.buffered() if connection is not None else 0
    fields = [
        f"id={client.id}",
        f"addr={client.addr}",
        f"laddr={client.laddr}",
        f"fd={connection.sock.fileno() if connection is not None else -1}",
        "name=" + client.name.decode("latin-1"),
        f"age={int(now - client.created)}",
        f"idle={int(now - client.last_interaction)}",
        "flags=" + (flags or "N"),
        f"db={client.db}",
        f"sub={len(client.channels)}",
        f"psub={len(client.patterns)}",
        f"ssub={len(client.shard_channels)}",
        f"multi={len(client.multi) if client.multi is not None else -1}",
        f"qbuf={qbuf}",
        "qbuf-free=0",
        "argv-mem=0",
        "multi-mem=0",
        "rbs=0",
        "rbp=0",
        "obl=0",
        f"oll={connection.output_items() if connection is not None else 0}",
        f"omem={connection.output_memory() if connection is not None else 0}",
        f"tot-mem={connection.memory() if connection is not None else 0}",
        "events=r",
        "cmd=" + client.last_command,
        "user=" + (client.user.name.decode("latin-1") if client.user is not None else ""),
        "redir=-1",
        f"resp={client.protocol}",
    ]
    return " ".join(fields).encode()


@command(
    "client|info",
    2,
    "noscript loading stale",
    group=G,
    summary="Describes this connection in the one-line format of CLIENT LIST.",
    since="6.2.0",
)
def client_info(ctx: Context, argv: list[bytes]) -> Any:
    return Verbatim(client_line(ctx.client) + b"\n")


def _client_type(client: Client) -> bytes:
    if client.replica is not None:
        return b"replica"
    if client.master:
        return b"master"
    return b"pubsub" if client.subscriptions else b"normal"


@command(
    "client|list",
    -2,
    "admin noscript loading stale",
    group=G,
    options=("TYPE", "ID"),
    summary="Describes every open connection, one line each, optionally filtered by type or ID.",
    since="2.4.0",
    complexity="O(N) in the open connections",
)
def client_list(ctx: Context, argv: list[bytes]) -> Any:
    clients = list(ctx.clients.values())
    if len(argv) >= 4 and argv[2].upper() == b"TYPE" and len(argv) == 4:
        kind = argv[3].lower()
        if kind == b"slave":
            kind = b"replica"
        if kind not in (b"normal", b"master", b"replica", b"pubsub"):
            raise CommandError(b"ERR Unknown client type '" + argv[3] + b"'")
        clients = [c for c in clients if _client_type(c) == kind]
    elif len(argv) >= 4 and argv[2].upper() == b"ID":
        wanted = []
        for arg in argv[3:]:
            value = parse_int(arg, INVALID_CLIENT_ID)
            if value <= 0:
                raise CommandError(INVALID_CLIENT_ID)
            wanted.append(value)
        clients = [c for c in clients if c.id in wanted]
    elif len(argv) != 2:
        raise CommandError(errors.SYNTAX)
    return Verbatim(b"".join(client_line(c) + b"\n" for c in clients))


@command(
    "client|kill",
    -3,
    "admin noscript loading stale",
    group=G,
    options=("ID", "ADDR", "LADDR", "TYPE", "USER", "SKIPME"),
    summary="Closes the connections that match an address, ID, type or other filter.",
    since="2.4.0",
    complexity="O(N) in the open connections",
)
def client_kill(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) == 3:  # the old form: CLIENT KILL addr:port
        for other in list(ctx.clients.values()):
            if other.addr.encode() == argv[2]:
                kill_client(other)
                return OK
        raise CommandError(NO_SUCH_CLIENT)
    if len(argv) % 2 != 0:
        raise CommandError(errors.SYNTAX)
    filters: list[tuple[bytes, bytes]] = []
    skipme = True
    for i in range(2, len(argv), 2):
        name, value = argv[i].upper(), argv[i + 1]
        if name == b"ID":
            if parse_int(value, b"ERR client-id should be greater than 0") <= 0:
                raise CommandError(b"ERR client-id should be greater than 0")
        elif name == b"TYPE":
            if value.lower() not in (b"normal", b"master", b"slave", b"replica", b"pubsub"):
                raise CommandError(b"ERR Unknown client type '" + value + b"'")
        elif name == b"SKIPME":
            if value.lower() == b"yes":
                skipme = True
            elif value.lower() == b"no":
                skipme = False
            else:
                raise CommandError(errors.SYNTAX)
            continue
        elif name == b"USER":
            if value not in ctx.acl.users:
                raise CommandError(b"ERR No such user '" + value + b"'")
        elif name not in (b"ADDR", b"LADDR"):
            raise CommandError(errors.SYNTAX)
        filters.append((name, value))
    killed = 0
    for other in list(ctx.clients.values()):
        if skipme and other is ctx.client:
            continue
        if all(_kill_filter_matches(other, name, value) for name, value in filters):
            kill_client(other)
            killed += 1
    return killed


def _kill_filter_matches(client: Client, name: bytes, value: bytes) -> bool:
    if name == b"ID":
        return client.id == int(value)
    if name == b"ADDR":
        return client.addr.encode() == value
    if name == b"LADDR":
        return client.laddr.encode() == value
    if name == b"TYPE":
        kind = value.lower()
        return _client_type(client) == (b"replica" if kind == b"slave" else kind)
    return client.user is not None and client.user.name == value  # USER


def kill_client(client: Client) -> None:
    """Closes a connection; the one running this command closes once its reply is written."""
    if client.connection is not None:
        if client.connection.busy and client is not None:
            client.killed = True  # the current client: close once this reply is written
        else:
            client.connection.kill()


@command(
    "client|unblock",
    -3,
    "admin noscript loading stale",
    group=G,
    options=("TIMEOUT", "ERROR"),
    summary="Wakes a connection waiting in a blocking command, as a timeout or with an error.",
    since="5.0.0",
)
def client_unblock(ctx: Context, argv: list[bytes]) -> Any:
    target = parse_int(argv[2])
    reason = b"TIMEOUT"
    if len(argv) == 4:
        reason = argv[3].upper()
        if reason not in (b"TIMEOUT", b"ERROR"):
            raise CommandError(CLIENT_UNBLOCK_REASON)
    elif len(argv) > 4:
        raise CommandError(errors.SYNTAX)
    registry = ctx.blocking
    waiter = registry.by_client.get(target)
    if waiter is None:
        return 0
    reply = ErrorReply(UNBLOCKED) if reason == b"ERROR" else waiter.block.timeout_reply
    return int(registry.unblock(target, reply))


@command(
    "client|pause",
    -3,
    "admin noscript loading stale",
    group=G,
    options=("WRITE", "ALL"),
    summary="Holds back commands from clients (all, or only writes) for some milliseconds.",
    since="2.9.50",
)
def client_pause(ctx: Context, argv: list[bytes]) -> Any:
    milliseconds = parse_timeout_ms(argv[2])
    writes_only = False
    if len(argv) == 4:
        mode = argv[3].upper()
        if mode == b"WRITE":
            writes_only = True
        elif mode != b"ALL":
            raise CommandError(b"ERR CLIENT PAUSE mode must be WRITE or ALL")
    elif len(argv) > 4:
        raise CommandError(errors.SYNTAX)
    server = ctx.server
    until = time.monotonic() + milliseconds / 1000
    # A new pause never shortens one in force, and ALL wins over WRITE.
    if until > server.paused_until:
        server.paused_until = until
    server.pause_writes_only = writes_only if server.paused_until == until else server.pause_writes_only
    return OK


@command(
    "client|unpause",
    2,
    "admin noscript loading stale",
    group=G,
    summary="Ends a pause started by CLIENT PAUSE, letting held commands run.",
    since="6.2.0",
)
def client_unpause(ctx: Context, argv: list[bytes]) -> Any:
    ctx.server.unpause()
    return OK


def _on_off(arg: bytes) -> bool:
    value = arg.upper()
    if value == b"ON":
        return True
    if value == b"OFF":
        return False
    raise CommandError(errors.SYNTAX)


@command(
    "client|no-evict",
    3,
    "admin noscript loading stale",
    group=G,
    options=("ON", "OFF"),
    summary="Accepts ON or OFF for client eviction; respq never evicts clients.",
    since="7.0.0",
)
def client_no_evict(ctx: Context, argv: list[bytes]) -> Any:
    ctx.client.no_evict = _on_off(argv[2])
    return OK


@command(
    "client|no-touch",
    3,
    "noscript loading stale",
    group=G,
    extension=True,
    options=("ON", "OFF"),
    summary="Accepts ON or OFF for access-time tracking; respq tracks no access times.",
    since="7.2.0",
)
def client_no_touch(ctx: Context, argv: list[bytes]) -> Any:
    ctx.client.no_touch = _on_off(argv[2])
    return OK


@command(
    "client|reply",
    3,
    "noscript loading stale",
    group=G,
    options=("ON", "OFF", "SKIP"),
    summary="Turns replies to this connection on or off, or skips the reply to the next command.",
    since="3.2.0",
)
def client_reply(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    mode = argv[2].lower()
    if mode not in (b"on", b"off", b"skip"):
        raise CommandError(errors.SYNTAX)
    if mode == b"on":
        client.reply_mode = b"on"
        return OK
    # OFF and SKIP take effect with this very command: it gets no reply either. SKIP changes nothing while replies
    # are off (it would otherwise turn them back on after one command).
    if mode == b"off":
        client.reply_mode = b"off"
    elif client.reply_mode != b"off":
        client.reply_mode = b"skip-this"
    return None


@command(
    "client|help",
    2,
    "loading stale",
    group=G,
    summary="Lists the CLIENT subcommands with a line or two on each.",
    since="5.0.0",
    acl=("@slow", "@connection"),
)
def client_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(b"CLIENT", CLIENT_HELP)


CLIENT_HELP = [
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "GETNAME",
    "    Return the name of the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Record the client library's name or version.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections matching ID, ADDR, LADDR, TYPE, USER or SKIPME filters.",
    "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> [<id> ...]]",
    "    Return information about connections.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock a client blocked in a blocking command.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend clients (all, or only writes) for <timeout> milliseconds.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect the current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Do not change key access times for this client's commands.",
]
