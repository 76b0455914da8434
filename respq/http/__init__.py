"""The HTTP listener: health, readiness and Prometheus metrics, served by hypercorn in the server's own nursery (same
process and event loop as RESP, so handlers read live state without locks). Off unless ``http-port`` is set.

Routes live in a table (``respq.http.app.ROUTES``): later endpoints add rows, not server code.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from respq.config import Config
from respq.errors import StartupError
from respq.http import api, dashboard, metrics  # noqa: F401 - register their routes in the route table
from respq.http.app import App
from respq.log import Logger
from respq.tls import TLSSettings, server_context

if TYPE_CHECKING:
    from respq.server import Server

HTTP_UNPROTECTED = (
    "Refusing to serve HTTP on {} without a password: set requirepass, bind http-bind to a loopback address, or "
    "set protected-mode no"
)
HTTP_LISTEN_FAILED = "Failed listening for HTTP on {} port {} ({}), aborting."
MAX_HEADER_BYTES = 16 * 1024  # a request's line and headers together (HTTP/1.1); larger ones are refused
MAX_H2_HEADER_BYTES = 16 * 1024
KEEP_ALIVE_SECONDS = 5
READ_TIMEOUT_SECONDS = 10  # a client that sends nothing for this long is dropped
GRACEFUL_SECONDS = 1  # at shutdown, how long requests in flight may take
BACKLOG = 64


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_http_bind(config: Config, auth_required: bool) -> None:
    """Start-up refuses to serve HTTP beyond this machine with nothing to log in with (``auth_required``: the default
    user is off or has a password), as protected mode refuses RESP clients from elsewhere. Raises StartupError."""
    if not config.values["http-port"]:
        return
    address = config.values["http-bind"]
    if not is_loopback(address) and not auth_required and config.protected_mode:
        raise StartupError(HTTP_UNPROTECTED.format(address))


def open_http_listener(config: Config) -> socket.socket | None:
    """The bound, listening HTTP socket (None when http-port is 0). Bound at start-up with the RESP listeners, so a
    port in use stops start-up rather than a background task. Raises StartupError."""
    port = config.values["http-port"]
    if not port:
        return None
    address = config.values["http-bind"]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise StartupError(HTTP_LISTEN_FAILED.format(address, port, error.strerror or error)) from None
    return sock


class _ToServerLog(logging.Handler):
    """hypercorn's warnings and errors (a handler that raised, a protocol error) as respq log lines."""

    def __init__(self, log: Logger) -> None:
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {record.exc_info[1]!r}"
        self.log.warning(f"HTTP: {text}")


def _error_logger(log: Logger) -> logging.Logger:
    logger = logging.getLogger("respq.http")
    logger.handlers = [_ToServerLog(log)]
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    return logger


class _HypercornConfig(HypercornConfig):
    """hypercorn's settings, with HTTPS from respq's own TLS context instead of hypercorn's file options."""

    https_context: ssl.SSLContext | None = None

    @property
    def ssl_enabled(self) -> bool:
        return self.https_context is not None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self.https_context


def hypercorn_config(sock: socket.socket, log: Logger, ssl_context: ssl.SSLContext | None = None) -> HypercornConfig:
    """hypercorn's settings for the listener on ``sock``: every limit and timeout is set here, in one place.
    ``ssl_context``: serve HTTPS with it (``http-tls yes``)."""
    cfg = _HypercornConfig()
    cfg.https_context = ssl_context
    cfg.bind = [f"fd://{sock.fileno()}"]
    cfg.h11_max_incomplete_size = MAX_HEADER_BYTES
    cfg.h2_max_header_list_size = MAX_H2_HEADER_BYTES
    cfg.keep_alive_timeout = KEEP_ALIVE_SECONDS
    cfg.read_timeout = READ_TIMEOUT_SECONDS
    cfg.graceful_timeout = GRACEFUL_SECONDS
    cfg.backlog = BACKLOG
    cfg.include_server_header = False
    cfg.accesslog = None
    cfg.errorlog = _error_logger(log)  # warnings and errors only: respq logs the listener's start itself
    return cfg


def https_context(server: Server) -> ssl.SSLContext:
    """The context HTTPS handshakes start on. Each switches to the server's current context as soon as the client's
    hello arrives, so certificates reloaded by CONFIG SET of a tls-* directive reach HTTPS as they reach the TLS
    port (the listener keeps the context it was given)."""
    context = server_context(TLSSettings.from_values(server.config.values))

    def use_current(ssl_object: ssl.SSLObject, _server_name: str | None, _initial: ssl.SSLContext) -> None:
        ssl_object.context = server.tls_context

    context.sni_callback = use_current
    return context


async def serve_http(server: Server, sock: socket.socket, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serves HTTP on ``sock`` until the server shuts down (then requests in flight get GRACEFUL_SECONDS)."""
    config = hypercorn_config(sock, server.log, https_context(server) if server.config.http_tls else None)
    sock.detach()  # hypercorn makes its own socket object from the descriptor, and owns it from now on
    await serve(App(server), config, shutdown_trigger=server.shutdown_requested.wait, task_status=task_status)
