"""The ASGI application: a table of routes, authentication against the server's password, and bounded requests.

A route is a path, the methods it answers and whether it needs credentials; its handler gets the request and returns
a ``Response``. Handlers run on the server's event loop: a long one must yield (``await trio.sleep(0)``) between
slices of work, as /metrics does.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from respq.server import Server

MAX_BODY_BYTES = 64 * 1024  # no route takes a body yet; the JSON API's pushes will stay far below this
REALM = 'Basic realm="respq", charset="UTF-8"'


@dataclass
class Request:
    server: Server
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lowercased names; a repeated header keeps its last value
    body: bytes = b""
    state: dict[str, Any] = field(default_factory=dict)  # what handlers keep between requests (the App's)

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


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    methods: tuple[str, ...] = ("GET", "HEAD")
    public: bool = False  # answered without credentials (health probes: they tell nothing about the data)


ROUTES: dict[str, Route] = {}


def route(
    path: str, *, methods: tuple[str, ...] = ("GET", "HEAD"), public: bool = False
) -> Callable[[Handler], Handler]:
    """Registers a handler for ``path`` (exact match) in ROUTES."""

    def register(handler: Handler) -> Handler:
        if path in ROUTES:
            raise ValueError(f"route {path} is already taken")
        ROUTES[path] = Route(handler, methods, public)
        return handler

    return register


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
    connection needs no AUTH (the default user on, without a password)."""
    acl = request.server.acl
    if not acl.auth_required:
        return True
    given = credentials(request.headers)
    return given is not None and acl.authenticate(*given) is not None


class _BodyTooLarge(Exception):
    pass


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
        except _BodyTooLarge:
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
        if int(length) > MAX_BODY_BYTES:
            raise _BodyTooLarge
        request = Request(
            self.server,
            scope["method"],
            scope["path"],
            parse_qs(scope.get("query_string", b"").decode("latin-1")),
            headers,
            await _read_body(receive),
            self.state,
        )
        found = ROUTES.get(request.path)
        if found is None:
            return Response(404, b"not found\n")
        if request.method not in found.methods:
            return Response(405, b"method not allowed\n", headers=[("allow", ", ".join(found.methods))])
        if not found.public and not authorized(request):
            return Response(401, b"authentication required\n", headers=[("www-authenticate", REALM)])
        return await found.handler(request)


async def _read_body(receive: Any) -> bytes:
    """The request's body, refused past MAX_BODY_BYTES (a chunked upload declares no length up front)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _BodyTooLarge
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
