"""The JSON API under /api/: read the queues (an overview, a paged table, one queue, a peek) and write them (push to
and pop from lists; append to streams, read through consumer groups, acknowledge).

Every operation on a key is a command run through the command layer (``respq.commands.dispatch.execute``) for a
client of its own, as if sent over RESP: the same generic checks (OOM, MISCONF, LOADING...), keyspace changes,
statistics, MONITOR lines, blocking (a pop that waits is parked with RESP's blocked clients and woken by any push)
and durability (the response leaves after ``Server.make_durable``, as a RESP reply does). The HTTP clients are not
in CLIENT LIST.

Values and keys are bytes: a JSON string when they are UTF-8, ``{"base64": "..."}`` otherwise, and both forms are
accepted in requests. Keys in paths are percent-encoded (``%2F`` for a slash).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

import trio

from respq import __version__, errors
from respq.blocking import Block, Waiter
from respq.client import Client
from respq.commands.dispatch import blocked, execute, resolve, served, unblocked
from respq.commands.table import Command
from respq.http.app import Request, Response, json_response, problem, route
from respq.http.metrics import QueueSample, QueueScan, scan_queues
from respq.replies import ErrorReply, StreamedArray
from respq.storage.errors import StorageError

API_BODY_BYTES = 1024 * 1024  # the largest request body the API reads
MAX_BATCH = 1000  # the most messages one request may push, pop, append, read, acknowledge or peek
MAX_PAGE = 1000  # the most queues one page of /api/queues lists
# The longest a pop or a group read may wait. Below the listener's read timeout (10 s), past which hypercorn takes a
# silent client for gone and ends the request.
MAX_WAIT_SECONDS = 8.0
WRITE_TYPES = ("application/json", "application/x-ndjson")
SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "name": lambda q: (q["key_sort"], q["db"]),
    "depth": lambda q: q["depth"],
    "bytes": lambda q: q["bytes"],
    "oldest": lambda q: q["oldest_seconds"] or 0.0,
    "pending": lambda q: q["pending"],
    "lag": lambda q: q["lag"],
    "lag_seconds": lambda q: q["lag_seconds"],
    "waiting": lambda q: q["waiting"],
    "groups": lambda q: q["groups"],
}
# Bounded history for sparklines: kept only for the queues recently viewed (one queue's page, or a page of the
# table), at most one sample a second, so memory does not grow with the number of queues.
HISTORY = "api.history"
HISTORY_QUEUES = 200
HISTORY_SAMPLES = 300
HISTORY_INTERVAL = 1.0
# Redis error codes -> HTTP status.
STATUS_OF_CODE = {
    "WRONGTYPE": 409,
    "NOGROUP": 404,
    "BUSYGROUP": 409,
    "OOM": 507,
    "MISCONF": 507,
    "LOADING": 503,
    "BUSY": 503,
    "NOAUTH": 401,
    "NOPERM": 403,
}
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    503: "Service Unavailable",
    507: "Insufficient Storage",
}
LOADING = errors.LOADING.decode()
NOT_DURABLE = "the write may not have reached the disk (a journal write or sync failed): it is not acknowledged"


class Problem(Exception):
    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.code = status, detail, code

    def response(self) -> Response:
        members = {"code": self.code} if self.code else {}
        return problem(self.status, TITLES.get(self.status, "Error"), self.detail, **members)


def from_error(reply: ErrorReply) -> Problem:
    text = reply.message.decode("utf-8", "replace")
    code = text.split(" ", 1)[0]
    return Problem(STATUS_OF_CODE.get(code, 400), text, code)


# ---- bytes in JSON --------------------------------------------------------------------------------------------------


def encode(value: bytes) -> str | dict[str, str]:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def decode(value: Any, what: str = "value") -> bytes:
    if type(value) is str:
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape
            raise Problem(400, f"{what}: not valid Unicode") from None
    if type(value) is dict and len(value) == 1 and type(value.get("base64")) is str:
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (binascii.Error, ValueError):
            raise Problem(400, f"{what}: invalid base64") from None
    raise Problem(400, f'{what}: expected a string or {{"base64": "..."}}')


def encode_fields(fields: list[bytes]) -> list[list[str | dict[str, str]]]:
    return [[encode(fields[i]), encode(fields[i + 1])] for i in range(0, len(fields) - 1, 2)]


def encode_entries(entries: list[Any]) -> list[dict[str, Any]]:
    return [{"id": entry_id.decode(), "fields": encode_fields(fields or [])} for entry_id, fields in entries]


# ---- requests -------------------------------------------------------------------------------------------------------


def path_parts(request: Request) -> list[bytes]:
    """The path's segments after /api/queues/, percent-decoded one by one (so %2F stays inside a key)."""
    raw = request.raw_path[len(b"/api/queues/") :]
    return [unquote_to_bytes(part) for part in raw.split(b"/")]


def database(request: Request, text: bytes) -> int:
    if not text.isdigit() or int(text) >= request.server.config.databases:
        raise Problem(404, f"no database {text.decode('latin-1')}")
    return int(text)


def whole_arg(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.arg(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise Problem(400, f"{name} must be a whole number from {low} to {high}")
    return int(text)


def wait_arg(request: Request) -> float:
    text = request.arg("wait")
    if text is None:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise Problem(400, f"wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS:g}")
    return seconds


def body_items(request: Request, *, optional: bool = False) -> list[Any]:
    """The body's items: a JSON array, or NDJSON (one JSON value a line). Writes must say which (a form or a plain
    text body, which a page from another site may send without asking, is refused)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in WRITE_TYPES:
        raise Problem(415, "writes need Content-Type: application/json or application/x-ndjson")
    if optional and not request.body.strip():
        return []
    try:
        if media == "application/json":
            document = json.loads(request.body)
            items = document if type(document) is list else [document]
        else:
            items = [json.loads(line) for line in request.body.splitlines() if line.strip()]
    except (ValueError, UnicodeDecodeError) as error:
        raise Problem(400, f"the body is not valid JSON: {error}") from None
    if len(items) > MAX_BATCH:
        raise Problem(413, f"at most {MAX_BATCH} items per request")
    return items


def require_write_type(request: Request) -> None:
    body_items(request, optional=True)


def api_client(request: Request, db: int) -> Client:
    """The client an API request's commands run as: already authenticated by the listener, as the user whose
    credentials came with the request (its ACL rules apply, NOPERM answering 403). Named ``http``, with the
    listener's address as its laddr; it has no socket of its own (CLIENT LIST says fd=-1, as Redis does for its
    script and module clients)."""
    values = request.server.config.values
    laddr = f"{values['http-bind']}:{values['http-port']}"
    client = Client(request.peer or "http", laddr, authenticated=True, user=request.user)
    client.db = db
    client.name = b"http"
    return client


async def run(request: Request, db: int, argv: list[bytes], *, wait: bool = False) -> Any:
    """Runs one command as RESP dispatch does and returns its reply; raises Problem for an error reply. With
    ``wait`` a blocking command waits (with RESP's blocked clients) until served, timed out or the client leaves."""
    return (await run_many(request, db, [argv], wait=wait))[0]


async def run_many(request: Request, db: int, argvs: list[list[bytes]], *, wait: bool = False) -> list[Any]:
    """Runs the commands in order, then answers once their writes are durable; the first error reply stops the
    batch (the commands before it took effect) and is raised as a Problem."""
    server = request.server
    if server.loading or server.engine is None:
        raise Problem(503, LOADING, "LOADING")
    client = api_client(request, db)
    # Listed by CLIENT LIST (and counted in connected_clients) while its commands run, as a RESP connection would be.
    server.clients[client.id] = client
    try:
        return await _run_listed(request, server.context(client), argvs, wait)
    finally:
        server.clients.pop(client.id, None)


async def _run_listed(request: Request, ctx: Any, argvs: list[list[bytes]], wait: bool) -> list[Any]:
    server = request.server
    replies: list[Any] = []
    failure: Problem | None = None
    wrote = False
    for argv in argvs:
        cmd = resolve(argv)
        is_write = isinstance(cmd, Command) and cmd.is_write
        wrote = wrote or is_write
        await server.wait_unpaused(is_write)
        reply = execute(ctx, argv)
        if type(reply) is Block:
            reply = await park(request, ctx, argv, reply) if wait else reply.timeout_reply
        if server.blocking.ready:  # clients blocked on what this wrote are served now, as after a RESP command
            server.blocking.serve_ready()
        if type(reply) is StreamedArray:
            reply = reply.materialize()
        if type(reply) is ErrorReply:
            failure = from_error(reply)
            break
        replies.append(reply)
    if wrote:
        try:
            await server.make_durable()
        except StorageError:
            raise Problem(503, NOT_DURABLE, "MISCONF") from None
    if failure is not None:
        raise failure
    return replies


async def park(request: Request, ctx: Any, argv: list[bytes], block: Block) -> Any:
    """Waits like a blocked RESP client: served by the next push in turn with the others, or the timeout reply.
    A client that disconnects stops waiting (what was popped for it after that point is lost: at most once)."""
    server = request.server
    blocked(ctx, block)
    waiter = Waiter(ctx.client.id, ctx.client.db, block, on_served=lambda reply: served(ctx, argv, reply))
    if block.timeout is not None:
        waiter.deadline = trio.current_time() + block.timeout
    server.blocking.add(waiter)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_disconnect, request, nursery.cancel_scope)
            with trio.move_on_at(waiter.deadline):
                await waiter.done.wait()
            nursery.cancel_scope.cancel()
    finally:
        server.blocking.remove(waiter)
    if not waiter.done.is_set():
        return block.timeout_reply
    if waiter.served:
        unblocked(ctx, argv, block)
    return waiter.reply


async def _watch_disconnect(request: Request, scope: trio.CancelScope) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


# ---- reading the queues ---------------------------------------------------------------------------------------------


def queue_document(sample: QueueSample, rates: dict[str, float | None] | None = None) -> dict[str, Any]:
    groups = sample.groups
    document: dict[str, Any] = {
        "db": sample.db,
        "key": encode(sample.key),
        "type": sample.type,
        "depth": sample.depth,
        "bytes": sample.disk_bytes,
        "oldest_seconds": sample.oldest_seconds,
        "pushed": sample.pushed,
        "popped": sample.popped,
        "groups": len(groups),
        "pending": sum(g.pending for g in groups),
        "lag": sum(g.lag or 0 for g in groups),
        "lag_seconds": max((g.lag_seconds for g in groups), default=0.0),
        "waiting": sample.waiting,
    }
    if rates is not None:
        document["rates"] = rates
    return document


Series = deque[tuple[float, int, int | None, int | None]]  # (monotonic time, depth, pushed, delivered)


def history(request: Request) -> OrderedDict[tuple[int, bytes], Series]:
    found = request.state.get(HISTORY)
    if found is None:
        found = request.state[HISTORY] = OrderedDict()
    return found


def record(request: Request, sample: QueueSample) -> dict[str, float | None]:
    """Notes the queue's depth and counters (at most once per HISTORY_INTERVAL) and returns its rates over the
    last samples: messages added and delivered per second (streams; None for lists, whose pushes are not
    counted), and the depth's change per second."""
    now = time.monotonic()
    samples = history(request)
    where = (sample.db, sample.key)
    series = samples.get(where)
    if series is None:
        series = samples[where] = deque(maxlen=HISTORY_SAMPLES)
        while len(samples) > HISTORY_QUEUES:
            samples.popitem(last=False)
    else:
        samples.move_to_end(where)
    delivered = sum(g.delivered or 0 for g in sample.groups) if sample.type == "stream" else None
    if not series or now - series[-1][0] >= HISTORY_INTERVAL:
        series.append((now, sample.depth, sample.pushed, delivered))
    return rates_of(series)


def per_second(last: int | None, first: int | None, elapsed: float) -> float | None:
    return (last - first) / elapsed if last is not None and first is not None else None


def rates_of(series: Series) -> dict[str, float | None]:
    if len(series) < 2:
        return {"added_per_second": None, "delivered_per_second": None, "depth_per_second": None}
    first = series[max(0, len(series) - 11)]  # over the last ten intervals or so
    last = series[-1]
    elapsed = last[0] - first[0] or 1.0
    return {
        "added_per_second": per_second(last[2], first[2], elapsed),
        "delivered_per_second": per_second(last[3], first[3], elapsed),
        "depth_per_second": per_second(last[1], first[1], elapsed),
    }


@route("/api/overview", check_host=True)
async def overview(request: Request) -> Response:
    server = request.server
    engine = server.engine
    document: dict[str, Any] = {
        "version": __version__,
        "loading": server.loading,
        "accepting_writes": engine is not None and engine.write_error is None,
        "connected_clients": len(server.clients),
        "blocked_clients": len(server.blocking),
    }
    scan = await scan_queues(request)
    if scan is not None:
        document["keys"] = dict(scan.keys_by_type)
        document["queues"] = {
            name: {
                "count": totals.queues,
                "messages": totals.messages,
                "bytes": totals.disk_bytes,
                "oldest_seconds": totals.oldest_seconds,
            }
            for name, totals in scan.totals.items()
        }
        document["groups"] = {
            "count": scan.groups,
            "pending": scan.pending,
            "lag": scan.lag,
            "lag_seconds_max": scan.lag_seconds,
        }
        document["oldest"] = [
            {"db": db, "key": encode(key), "type": kind, "oldest_seconds": age}
            for age, (db, key, kind) in scan.oldest.items()
        ]
    return json_response(200, document)


@route("/api/queues", check_host=True)
async def queues(request: Request) -> Response:
    """The queues, filtered (glob ``match``, ``type``, ``db``), sorted (``sort``, ``order``) and paged (``offset``,
    ``limit``); ``total`` counts those the filters keep."""
    try:
        sort = request.arg("sort") or "name"
        if sort not in SORT_KEYS:
            raise Problem(400, f"sort must be one of {', '.join(SORT_KEYS)}")
        order = request.arg("order") or ("asc" if sort == "name" else "desc")
        if order not in ("asc", "desc"):
            raise Problem(400, "order must be asc or desc")
        kind = request.arg("type")
        if kind not in (None, "", "list", "stream"):
            raise Problem(400, "type must be list or stream")
        db_arg = request.arg("db")
        db = database(request, db_arg.encode()) if db_arg else None
        offset = whole_arg(request, "offset", 0, 0, 10**9)
        limit = whole_arg(request, "limit", 50, 1, MAX_PAGE)
    except Problem as error:
        return error.response()
    match = request.arg("match")
    scan = await scan_queues(request, per_queue=True, match=match.encode("utf-8", "surrogateescape") if match else None)
    if scan is None:
        return Problem(503, LOADING, "LOADING").response()
    rows = []
    for sample in scan.selected:
        if (kind and sample.type != kind) or (db is not None and sample.db != db):
            continue
        row = queue_document(sample)
        row["key_sort"] = sample.key
        row["sample"] = sample
        rows.append(row)
    await trio.sleep(0)
    rows.sort(key=SORT_KEYS[sort], reverse=order == "desc")
    page = rows[offset : offset + limit]
    for row in page:
        row["rates"] = record(request, row.pop("sample"))
        del row["key_sort"]
    return json_response(200, {"total": len(rows), "offset": offset, "limit": limit, "queues": page})


def sample_of(request: Request, db: int, key: bytes) -> QueueSample:
    server = request.server
    if server.loading or server.engine is None:
        raise Problem(503, LOADING, "LOADING")
    scan = QueueScan(
        server.engine,
        server.config.databases,
        waiters=server.blocking.waiters,
        list_counts=server.stats.list_counts,
    )
    sample = scan.sample(db, key)
    if sample is None:
        if server.engine.catalog[db].get(key) is not None:
            raise Problem(409, errors.WRONGTYPE.decode(), "WRONGTYPE")
        raise Problem(404, "no such queue")
    return sample


def queue_detail(request: Request, db: int, key: bytes) -> Response:
    sample = sample_of(request, db, key)
    document = queue_document(sample, record(request, sample))
    series = history(request).get((db, key), ())
    now = time.monotonic()
    document["samples"] = [
        {"seconds_ago": round(now - t, 3), "depth": depth, "pushed": pushed, "delivered": delivered}
        for t, depth, pushed, delivered in series
    ]
    details = []
    if sample.type == "stream":
        log = request.server.engine.catalog[db].get(key)
        now_ms = int(time.time() * 1000)
        for group in sample.groups:
            consumers = getattr(log, "groups", {}).get(group.name)
            details.append(
                {
                    "name": encode(group.name),
                    "pending": group.pending,
                    "lag": group.lag,
                    "lag_seconds": group.lag_seconds,
                    "oldest_pending_seconds": group.oldest_pending_seconds,
                    "delivered": group.delivered,
                    "consumers": [
                        {"name": encode(c.name), "pending": len(c.pel), "idle_seconds": max(0, now_ms - c.seen) / 1000}
                        for c in list(consumers.consumers.values())[:MAX_PAGE]
                    ]
                    if consumers is not None
                    else [],
                }
            )
    document["groups"] = details
    return json_response(200, document)


# ---- /api/queues/{db}/{key}[/...] -----------------------------------------------------------------------------------


@route("/api/queues/", methods=("GET", "HEAD", "POST"), prefix=True, max_body=API_BODY_BYTES, check_host=True)
async def queue(request: Request) -> Response:
    parts = path_parts(request)
    try:
        if len(parts) < 2 or not parts[1]:
            raise Problem(404, "expected /api/queues/{db}/{key}")
        db, key, rest = database(request, parts[0]), parts[1], parts[2:]
        post = request.method == "POST"
        if not rest and not post:
            return queue_detail(request, db, key)
        if rest == [b"peek"] and not post:
            return await peek(request, db, key)
        if rest == [b"messages"] and post:
            return await push(request, db, key)
        if rest == [b"pop"] and post:
            return await pop(request, db, key)
        if rest == [b"entries"] and post:
            return await append(request, db, key)
        if rest == [b"groups"] and post:
            return await create_group(request, db, key)
        if len(rest) == 3 and rest[0] == b"groups" and rest[2] == b"read" and post:
            return await read_group(request, db, key, rest[1])
        if len(rest) == 3 and rest[0] == b"groups" and rest[2] == b"ack" and post:
            return await ack(request, db, key, rest[1])
        raise Problem(404, "no such endpoint (or not with this method)")
    except Problem as error:
        return error.response()


async def peek(request: Request, db: int, key: bytes) -> Response:
    """The first ``count`` messages, leaving the queue as it is."""
    count = whole_arg(request, "count", 10, 1, MAX_BATCH)
    sample = sample_of(request, db, key)
    if sample.type == "list":
        values = await run(request, db, [b"LRANGE", key, b"0", b"%d" % (count - 1)])
        return json_response(200, {"type": "list", "messages": [encode(v) for v in values]})
    entries = await run(request, db, [b"XRANGE", key, b"-", b"+", b"COUNT", b"%d" % count])
    return json_response(200, {"type": "stream", "entries": encode_entries(entries)})


def side_arg(request: Request, default: str) -> bytes:
    side = request.arg("side") or default
    if side not in ("left", "right"):
        raise Problem(400, "side must be left or right")
    return side.upper().encode()


async def push(request: Request, db: int, key: bytes) -> Response:
    """RPUSH (``side=left``: LPUSH) of the body's messages, in one command: answered once durable."""
    command = b"LPUSH" if side_arg(request, "right") == b"LEFT" else b"RPUSH"
    values = [decode(item, "message") for item in body_items(request)]
    if not values:
        raise Problem(400, "no messages to push")
    depth = await run(request, db, [command, key, *values])
    return json_response(200, {"pushed": len(values), "depth": depth})


async def pop(request: Request, db: int, key: bytes) -> Response:
    """LMPOP (with ``wait``: BLMPOP) of up to ``count`` messages from the head (``side=right``: the tail). At most
    once: a message popped is gone, whether or not the response reaches the client."""
    require_write_type(request)
    side = side_arg(request, "left")
    count = whole_arg(request, "count", 1, 1, MAX_BATCH)
    wait = wait_arg(request)
    if wait > 0:
        argv = [b"BLMPOP", b"%.3f" % wait, b"1", key, side, b"COUNT", b"%d" % count]
    else:
        argv = [b"LMPOP", b"1", key, side, b"COUNT", b"%d" % count]
    reply = await run(request, db, argv, wait=True)
    values = reply[1] if isinstance(reply, list) else []
    return json_response(200, {"messages": [encode(v) for v in values]})


def entry_fields(item: Any) -> list[bytes]:
    """An entry's fields from ``{"field": value, ...}`` or ``[[field, value], ...]`` (binary field names)."""
    if type(item) is dict and not (len(item) == 1 and "base64" in item):
        pairs: list[Any] = list(item.items())
    elif type(item) is list and all(type(pair) is list and len(pair) == 2 for pair in item):
        pairs = item
    else:
        raise Problem(400, 'an entry is {"field": value, ...} or [[field, value], ...]')
    if not pairs:
        raise Problem(400, "an entry needs at least one field")
    fields: list[bytes] = []
    for name, value in pairs:
        fields += (decode(name, "field"), decode(value))
    return fields


async def append(request: Request, db: int, key: bytes) -> Response:
    """XADD of each entry of the body (IDs chosen by the server), answered once durable."""
    entries = [entry_fields(item) for item in body_items(request)]
    if not entries:
        raise Problem(400, "no entries to append")
    ids = await run_many(request, db, [[b"XADD", key, b"*", *fields] for fields in entries])
    return json_response(200, {"ids": [i.decode() for i in ids]})


async def create_group(request: Request, db: int, key: bytes) -> Response:
    """XGROUP CREATE ... MKSTREAM: ``{"group": name, "id": "$"}`` (``id`` "0" to deliver existing entries too)."""
    items = body_items(request)
    if len(items) != 1 or type(items[0]) is not dict or "group" not in items[0]:
        raise Problem(400, 'expected {"group": name, "id": "$"}')
    start = items[0].get("id", "$")
    if type(start) is not str:
        raise Problem(400, "id must be a string")
    await run(request, db, [b"XGROUP", b"CREATE", key, decode(items[0]["group"], "group"), start.encode(), b"MKSTREAM"])
    return json_response(201, {"created": True})


async def read_group(request: Request, db: int, key: bytes, group: bytes) -> Response:
    """XREADGROUP of up to ``count`` new entries for ``consumer`` (with ``wait``: BLOCK): they stay pending in the
    group until acknowledged, and can be claimed by another consumer if this one never does."""
    require_write_type(request)
    consumer = request.arg("consumer")
    if not consumer:
        raise Problem(400, "consumer is required")
    count = whole_arg(request, "count", 1, 1, MAX_BATCH)
    wait = wait_arg(request)
    argv = [b"XREADGROUP", b"GROUP", group, consumer.encode("utf-8", "surrogateescape"), b"COUNT", b"%d" % count]
    if wait > 0:
        argv += (b"BLOCK", b"%d" % max(1, round(wait * 1000)))
    reply = await run(request, db, [*argv, b"STREAMS", key, b">"], wait=True)
    entries: list[Any] = []
    if isinstance(reply, list) and reply:
        entries = reply[0][1]
    elif isinstance(reply, dict) and reply:
        entries = next(iter(reply.values()))
    return json_response(200, {"entries": encode_entries(entries)})


async def ack(request: Request, db: int, key: bytes, group: bytes) -> Response:
    """XACK of ``{"ids": [...]}`` (or a bare array of IDs)."""
    items = body_items(request)
    if len(items) == 1 and type(items[0]) is dict:
        items = items[0].get("ids", [])
    if not items or not all(type(i) is str for i in items) or len(items) > MAX_BATCH:
        raise Problem(400, f'expected {{"ids": [...]}} with 1 to {MAX_BATCH} entry IDs')
    count = await run(request, db, [b"XACK", key, group, *(i.encode() for i in items)])
    return json_response(200, {"acknowledged": count})
