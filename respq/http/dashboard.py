"""The dashboard: one page and its script and style sheet, shipped in the package (respq/http/static), read once.
It draws everything from the JSON API (respq.http.api), so it needs no routes of its own beyond these files."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from respq.http.app import Request, Response, route

STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
# Nothing but this origin's own files and API: an injected script or a frame elsewhere gets nothing.
SECURITY_HEADERS = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
]


@cache
def static_file(name: str) -> bytes:
    return files("respq.http").joinpath("static", name).read_bytes()


def serve(name: str) -> Response:
    return Response(200, static_file(name), STATIC_TYPES[name], list(SECURITY_HEADERS))


@route("/", check_host=True)
async def index(request: Request) -> Response:
    return serve("index.html")


@route("/static/", prefix=True, check_host=True)
async def static(request: Request) -> Response:
    name = request.path.removeprefix("/static/")
    if name not in STATIC_TYPES:
        return Response(404, b"not found\n")
    return serve(name)
