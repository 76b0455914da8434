"""The ASGI application: a table of routes, authentication against the server's password, and bounded requests.

A route is a path, the methods it answers and whether it needs credentials; its handler gets the request and returns
a ``Response``. Handlers run on the server's event loop: a long one must yield (``await trio.sleep(0)``) between
slices of work, as /metrics does.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from respq.server import Server

MAX_BODY_BYTES = 64 * 1024  # bodies of routes that do not say otherwise
REALM = 'Basic realm="respq", charset="UTF-8"'
PROBLEM_JSON = "application/problem+json"


@dataclass
class Request:
    server: Server
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lowercased names; a repeated header keeps its last value
    body: bytes = b""
    state: dict[str, Any] = field(default_factory=dict)  # what handlers keep between requests (the App's)
    raw_path: bytes = b""  # as sent, still percent-encoded: binary keys are decoded from it
    peer: str = ""  # the client's ip:port
    receive: Any = None  # the ASGI receive callable: after the body, it reports the client's disconnection
    user: Any = None  # the ACL user (respq.acl.User) whose credentials came with it, once authorized

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    status: int
    body: bytes | list[bytes] = b""  # a list is sent a piece at a time (a large body is never copied whole)
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, document: Any) -> Response:
    return Response(status, json.dumps(document).encode() + b"\n", "application/json")


def problem(status: int, title: str, detail: str, **members: Any) -> Response:
    """An RFC 9457 problem details response."""
    document = {"type": "about:blank", "title": title, "status": status, "detail": detail, **members}
    return Response(status, json.dumps(document).encode() + b"\n", PROBLEM_JSON)


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    methods: tuple[str, ...] = ("GET", "HEAD")
    public: bool = False  # answered without credentials (health probes: they tell nothing about the data)
    max_body: int = MAX_BODY_BYTES
    # The Host header must name the bound address: a page from another site that rebinds its DNS name to this
    # address gets a 403 instead of the data (the API and the dashboard; probes and /metrics keep any Host).
    check_host: bool = False


ROUTES: dict[str, Route] = {}
PREFIX_ROUTES: dict[str, Route] = {}  # path prefix (ending in /) -> route for every path under it


def route(
    path: str,
    *,
    methods: tuple[str, ...] = ("GET", "HEAD"),
    public: bool = False,
    prefix: bool = False,
    max_body: int = MAX_BODY_BYTES,
    check_host: bool = False,
) -> Callable[[Handler], Handler]:
    """Registers a handler for ``path`` (exact match), or with ``prefix`` for every path under it, in ROUTES."""
    table = PREFIX_ROUTES if prefix else ROUTES

    def register(handler: Handler) -> Handler:
        if path in table:
            raise ValueError(f"route {path} is already taken")
        table[path] = Route(handler, methods, public, max_body, check_host)
        return handler

    return register


def find_route(path: str) -> Route | None:
    found = ROUTES.get(path)
    if found is not None:
        return found
    for prefix, candidate in PREFIX_ROUTES.items():
        if path.startswith(prefix):
            return candidate
    return None


def allowed_hosts(bind: str, port: int) -> set[str] | None:
    """The Host header values naming the listener, or None when it is bound to every address (any name may reach
    it: a password is then required at start-up, and a rebinding page does not have it)."""
    if bind in ("0.0.0.0", "::", ""):
        return None
    names = {f"[{bind}]" if ":" in bind else bind}
    try:
        loopback = bind == "localhost" or ipaddress.ip_address(bind).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        names |= {"localhost", "127.0.0.1", "[::1]"}
    return {f"{name}:{port}" for name in names} | (names if port == 80 else set())


def host_ok(request: Request) -> bool:
    values = request.server.config.values
    allowed = allowed_hosts(values["http-bind"], values["http-port"])
    return allowed is None or request.headers.get("host", "").lower() in allowed


def credentials(headers: dict[str, str]) -> tuple[bytes, bytes] | None:
    """(user, password) from an Authorization header: Basic with an ACL user (none or ``default``: the password
    alone), or Bearer with the default user's password. None when there is no usable header."""
    value = headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme == "bearer" and token:
        return b"default", token.encode("utf-8", "surrogateescape")
    if scheme == "basic" and token:
        try:
            decoded = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return None
        user, colon, password = decoded.partition(b":")
        if not colon:  # the password alone
            return b"default", user
        return user or b"default", password
    return None


def authorized(request: Request) -> bool:
    """The one place HTTP checks credentials: any enabled ACL user's, through the same check as AUTH. Open when a
    connection needs no AUTH (the default user on, without a password). Sets ``request.user``: the API's commands
    run as that user, with its ACL rules."""
    acl = request.server.acl
    given = credentials(request.headers)
    user = acl.authenticate(*given) if given is not None else None
    if user is None and not acl.auth_required:
        user = acl.default
    request.user = user
    return user is not None


class _BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class App:
    """The ASGI callable hypercorn serves."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.state: dict[str, Any] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets: none served
        try:
            response = await self._respond(scope, receive)
        except _BodyTooLarge as error:
            if scope["path"].startswith("/api/"):
                response = problem(413, "Content Too Large", f"the body may have at most {error.limit} bytes")
            else:
                response = Response(413, b"request body too large\n")
        pieces = response.body if isinstance(response.body, list) else [response.body]
        length = sum(map(len, pieces))
        headers = [(b"content-type", response.content_type.encode()), (b"content-length", b"%d" % length)]
        headers += [(name.encode(), value.encode()) for name, value in response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if scope["method"] == "HEAD":
            pieces = []
        for piece in pieces[:-1]:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": pieces[-1] if pieces else b""})

    @staticmethod
    async def _lifespan(receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _respond(self, scope: dict[str, Any], receive: Any) -> Response:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        length = headers.get("content-length", "0")
        if not length.isdigit():
            return Response(400, b"bad content-length\n")
        found = find_route(scope["path"])
        limit = found.max_body if found is not None else MAX_BODY_BYTES
        if int(length) > limit:
            raise _BodyTooLarge(limit)
        client = scope.get("client")
        request = Request(
            self.server,
            scope["method"],
            scope["path"],
            parse_qs(scope.get("query_string", b"").decode("latin-1")),
            headers,
            await _read_body(receive, limit),
            self.state,
            scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape"),
            f"{client[0]}:{client[1]}" if client else "",
            receive,
        )
        api = request.path.startswith("/api/")  # the JSON API answers its refusals as problem details too
        if found is None:
            return problem(404, "Not Found", "no such endpoint") if api else Response(404, b"not found\n")
        if found.check_host and not host_ok(request):
            return problem(403, "Forbidden", "the Host header does not name this server")
        if request.method not in found.methods:
            allow = [("allow", ", ".join(found.methods))]
            if api:
                refused = problem(405, "Method Not Allowed", f"{request.method} is not allowed here")
                refused.headers += allow
                return refused
            return Response(405, b"method not allowed\n", headers=allow)
        if not found.public and not authorized(request):
            challenge = [("www-authenticate", REALM)]
            if api:
                refused = problem(401, "Unauthorized", "authentication required")
                refused.headers += challenge
                return refused
            return Response(401, b"authentication required\n", headers=challenge)
        return await found.handler(request)


async def _read_body(receive: Any, limit: int) -> bytes:
    """The request's body, refused past ``limit`` bytes (a chunked upload declares no length up front)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge(limit)
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


# ---- health ---------------------------------------------------------------------------------------------------------


@route("/healthz", public=True)
async def healthz(request: Request) -> Response:
    """Serving, and accepting writes: false (503) once a journal write or fsync failed, since writes stay refused
    until a restart (what INFO shows as aof_last_write_status:err)."""
    engine = request.server.engine
    error = engine.write_error if engine is not None else None
    document = {"serving": True, "accepting_writes": error is None}
    if error is not None:
        document["write_error"] = error
    return json_response(200 if error is None else 503, document)


@route("/readyz", public=True)
async def readyz(request: Request) -> Response:
    """Ready once the data directory is loaded (journal replayed): 503 during recovery."""
    loading = request.server.loading
    return json_response(503 if loading else 200, {"ready": not loading})
