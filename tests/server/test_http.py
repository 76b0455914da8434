"""The HTTP listener: start-up rules, authentication, /healthz and /readyz, and /metrics parsed with
prometheus-client's own parsers."""

from __future__ import annotations

import base64
import errno
import gc
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
import trio
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from conftest import ServerProcess, free_port, start_respq
from respq.config import load_config
from respq.http.app import App
from respq.log import Logger
from respq.server import Server
from respq.storage import StorageWriteError

PASSWORD = "s3cret"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def api_call(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """``get``, or a POST of a JSON array when ``method`` says so."""
    if method == "GET":
        return get(port, path)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", b'["x"]', method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def start_with_http(tmp_path: Path, *extra: str) -> tuple[ServerProcess, int]:
    """respq with its HTTP listener on a free port (http-port 0 means no listener, so the port is picked here)."""
    for _ in range(5):
        http_port = free_port()
        try:
            return start_respq(tmp_path / "data", "--http-port", str(http_port), *extra), http_port
        except RuntimeError as error:
            if "Failed listening for HTTP" not in str(error):
                raise
    raise RuntimeError("no free port for HTTP")


def families(body: bytes, openmetrics: bool = False) -> dict[str, Any]:
    parse = parse_openmetrics if openmetrics else parse_text
    return {family.name: family for family in parse(body.decode())}


def value(family: Any, name: str, **labels: str) -> float:
    found = [s.value for s in family.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, family.samples)
    return found[0]


# ---- start-up --------------------------------------------------------------------------------------------------


def test_no_listener_unless_http_port_is_set(tmp_path: Path) -> None:
    server = start_respq(tmp_path / "data")
    try:
        assert b"HTTP listening" not in server.output
    finally:
        server.stop()


def test_a_non_loopback_bind_without_a_password_is_refused_at_start_up(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "respq", "serve", "--port", "0", "--dir", str(tmp_path / "data")]
    server = ServerProcess([*argv, "--http-port", str(free_port()), "--http-bind", "0.0.0.0"])
    try:
        assert server.proc.wait(30) == 1
        server.stop()
        assert b"Refusing to serve HTTP on 0.0.0.0 without a password" in server.output
        assert b"Ready to accept connections" not in server.output
    finally:
        server.stop()


def test_an_http_port_in_use_stops_start_up(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        argv = [sys.executable, "-m", "respq", "serve", "--port", "0", "--dir", str(tmp_path / "data")]
        server = ServerProcess([*argv, "--http-port", str(taken.getsockname()[1])])
        try:
            assert server.proc.wait(30) == 1
            server.stop()
            assert b"Failed listening for HTTP on 127.0.0.1 port" in server.output
            assert b"Ready to accept connections" not in server.output
        finally:
            server.stop()


def test_a_non_loopback_bind_with_a_password_starts(tmp_path: Path) -> None:
    server, http_port = start_with_http(tmp_path, "--http-bind", "0.0.0.0", "--requirepass", PASSWORD)
    try:
        assert get(http_port, "/metrics")[0] == 401
    finally:
        server.stop()


# ---- authentication -----------------------------------------------------------------------------------------------


def basic(user: str | None, password: str) -> dict[str, str]:
    token = f"{user}:{password}" if user is not None else password
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


def test_with_requirepass_metrics_need_the_same_password_as_auth(tmp_path: Path) -> None:
    server, http_port = start_with_http(tmp_path, "--requirepass", PASSWORD)
    try:
        status, headers, _ = get(http_port, "/metrics")
        assert status == 401 and headers["www-authenticate"].startswith("Basic")
        assert get(http_port, "/metrics", basic("default", "wrong"))[0] == 401
        assert get(http_port, "/metrics", basic("alice", PASSWORD))[0] == 401  # no such user
        assert get(http_port, "/metrics", {"Authorization": "Bearer wrong"})[0] == 401
        assert get(http_port, "/metrics", {"Authorization": "Basic !!!"})[0] == 401
        assert get(http_port, "/metrics", basic("default", PASSWORD))[0] == 200
        assert get(http_port, "/metrics", basic("", PASSWORD))[0] == 200
        assert get(http_port, "/metrics", basic(None, PASSWORD))[0] == 200  # the password alone
        assert get(http_port, "/metrics", {"Authorization": f"Bearer {PASSWORD}"})[0] == 200
        # Probes answer without credentials: they tell nothing about the data.
        assert get(http_port, "/healthz")[0] == 200
        assert get(http_port, "/readyz")[0] == 200
        # ACL users log in with their own passwords; a disabled one cannot.
        admin = redis.Redis(port=server.port, password=PASSWORD, socket_timeout=10)
        admin.acl_setuser("alice", enabled=True, passwords=["+alice-secret"], commands=["+info"])
        assert get(http_port, "/metrics", basic("alice", "alice-secret"))[0] == 200
        assert get(http_port, "/metrics", basic("alice", PASSWORD))[0] == 401
        admin.acl_setuser("alice", enabled=False)
        assert get(http_port, "/metrics", basic("alice", "alice-secret"))[0] == 401
        admin.close()
    finally:
        server.stop()


def test_a_non_loopback_bind_with_the_default_user_off_starts(tmp_path: Path) -> None:
    server, http_port = start_with_http(tmp_path, "--http-bind", "0.0.0.0", "--user", "default", "off")
    try:
        assert get(http_port, "/metrics")[0] == 401
    finally:
        server.stop()


def test_unknown_paths_methods_and_large_bodies(served: tuple[ServerProcess, int]) -> None:
    _, http_port = served
    assert get(http_port, "/nope")[0] == 404
    request = urllib.request.Request(f"http://127.0.0.1:{http_port}/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    request = urllib.request.Request(f"http://127.0.0.1:{http_port}/metrics", data=b"x" * (65 * 1024), method="GET")
    with pytest.raises(urllib.error.HTTPError) as too_large:
        urllib.request.urlopen(request, timeout=10)
    assert too_large.value.code == 413


# ---- health ------------------------------------------------------------------------------------------------------


def test_healthz_and_readyz_when_serving(served: tuple[ServerProcess, int]) -> None:
    _, http_port = served
    status, headers, body = get(http_port, "/healthz")
    assert status == 200 and headers["content-type"] == "application/json"
    assert body == b'{"serving": true, "accepting_writes": true}\n'
    assert get(http_port, "/readyz")[:3:2] == (200, b'{"ready": true}\n')


async def asgi_get(app: App, path: str, query: bytes = b"") -> tuple[int, bytes]:
    """One request through the ASGI app, no socket."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(message["body"] for message in sent[1:])


def loaded_server(tmp_path: Path) -> Server:
    server = Server(load_config(["--dir", str(tmp_path), "--loglevel", "warning"]), Logger("warning"))
    server._load()
    server.loading = False
    return server


async def test_healthz_says_writes_are_refused_after_a_failed_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = loaded_server(tmp_path)
    engine = server.engine
    assert engine is not None
    try:
        app = App(server)
        assert await asgi_get(app, "/healthz") == (200, b'{"serving": true, "accepting_writes": true}\n')
        server.keyspace.create(0, b"q", "list").push(1, [b"v"])

        def failing_fdatasync(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(engine.journal.io, "fdatasync", failing_fdatasync)
        with pytest.raises(StorageWriteError):
            engine.sync(engine.flush())
        status, body = await asgi_get(app, "/healthz")
        assert status == 503
        assert b'"accepting_writes": false' in body and b"fsync of the journal failed" in body
        _, metrics = await asgi_get(app, "/metrics")
        found = families(metrics)
        assert value(found["respq_accepting_writes"], "respq_accepting_writes") == 0
        assert value(found["respq_journal_fsync_errors"], "respq_journal_fsync_errors_total") == 1
    finally:
        engine.abandon()


async def test_readyz_answers_503_while_the_data_directory_loads(tmp_path: Path) -> None:
    http = ["--http-port", str(free_port())]
    config = load_config(["--dir", str(tmp_path), "--port", "0", *http, "--loglevel", "warning"])
    server = Server(config, Logger("warning"))
    release = threading.Event()
    load = server._load

    def slow_load(lock_fd: int | None = None) -> None:
        assert release.wait(30)
        load(lock_fd)

    server._load = slow_load  # type: ignore[method-assign]
    http_port = config.values["http-port"]
    threshold = gc.get_threshold()  # Server.run tunes the collector for the whole process: put it back after
    try:
        await serve_until_ready(server, http_port, release)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


async def serve_until_ready(server: Server, http_port: int, release: threading.Event) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.run)
        with trio.fail_after(30):
            while True:  # the listener comes up while loading is held back
                try:
                    answer = await trio.to_thread.run_sync(get, http_port, "/readyz")
                    break
                except urllib.error.URLError:
                    await trio.sleep(0.02)
            assert answer[0] == 503 and answer[2] == b'{"ready": false}\n'
            # The JSON API answers 503 (a problem document saying LOADING) to reads and writes alike.
            paths = (("GET", "/api/queues"), ("GET", "/api/queues/0/q"), ("POST", "/api/queues/0/q/messages"))
            for method, path in paths:
                status, _, body = await trio.to_thread.run_sync(api_call, http_port, method, path)
                assert status == 503 and json.loads(body)["code"] == "LOADING", (method, path, status, body)
            loading = families((await trio.to_thread.run_sync(get, http_port, "/metrics"))[2])
            assert value(loading["respq_loading"], "respq_loading") == 1
            release.set()
            while (await trio.to_thread.run_sync(get, http_port, "/readyz"))[0] != 200:
                await trio.sleep(0.02)
        server.request_shutdown()


# ---- metrics ----------------------------------------------------------------------------------------------------


def stream_with_a_lagging_group(port: int) -> int:
    """A stream of 5 entries stamped 60 s and 30 s in the past, a group that read 2 and acknowledged 1, a list of
    3; returns the ms part of the third entry (the group's next undelivered one)."""
    client = redis.Redis(port=port, socket_timeout=10)
    now = int(time.time() * 1000)
    first, third = now - 60_000, now - 30_000
    for ms in (first, first + 1, third, third + 1, third + 2):
        client.xadd("jobs", {"f": "v"}, id=f"{ms}-0")
    client.xgroup_create("jobs", "workers", id="0")
    delivered = client.xreadgroup("workers", "w1", {"jobs": ">"}, count=2)
    client.xack("jobs", "workers", delivered[0][1][0][0])
    client.rpush("tasks", "a", "b", "c")
    client.set("plain", "x")
    client.close()
    return third


def test_default_metrics_are_aggregated_with_the_worst_queues_named(served: tuple[ServerProcess, int]) -> None:
    server, http_port = served
    stream_with_a_lagging_group(server.port)
    status, headers, body = get(http_port, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    found = families(body)
    assert "respq_queue_messages" not in found and "respq_group_lag" not in found  # per-queue series: opt-in
    assert value(found["respq_keys"], "respq_keys", type="string") == 1
    assert value(found["respq_queues"], "respq_queues", type="stream") == 1
    assert value(found["respq_queues_messages"], "respq_queues_messages", type="stream") == 5
    assert value(found["respq_queues_messages"], "respq_queues_messages", type="list") == 3
    assert value(found["respq_groups_pending"], "respq_groups_pending") == 1
    assert value(found["respq_groups_lag"], "respq_groups_lag") == 3
    age = value(found["respq_top_queue_oldest_age_seconds"], "respq_top_queue_oldest_age_seconds", queue="jobs")
    assert 60 <= age < 120
    lag = found["respq_top_group_lag_seconds"]
    assert 30 <= value(lag, "respq_top_group_lag_seconds", queue="jobs", group="workers") < 90
    assert value(found["respq_commands"], "respq_commands_total", command="xadd") == 5
    assert value(found["respq_connected_clients"], "respq_connected_clients") == 0
    assert value(found["respq_journal_fsync_seconds"], "respq_journal_fsync_seconds_count") > 0
    assert "process_resident_memory_bytes" in found and "process_open_fds" in found


def test_per_queue_series_by_query_in_both_formats(served: tuple[ServerProcess, int]) -> None:
    server, http_port = served
    third = stream_with_a_lagging_group(server.port)
    client = redis.Redis(port=server.port, socket_timeout=10)
    pending_id = client.xpending_range("jobs", "workers", "-", "+", 1)[0]["message_id"]
    client.xclaim("jobs", "workers", "w2", 0, [pending_id])  # a redelivery
    client.xreadgroup("workers", "w2", {"jobs": "0"})  # w2's history: another
    client.xclaim("jobs", "workers", "w1", 0, [pending_id], justid=True)  # no delivery
    client.close()
    for openmetrics in (False, True):
        headers = {"Accept": OPENMETRICS} if openmetrics else {}
        status, answer_headers, body = get(http_port, "/metrics?match=j*", headers)
        assert status == 200
        assert answer_headers["content-type"].startswith("application/openmetrics" if openmetrics else "text/plain")
        found = families(body, openmetrics)
        labels = {"db": "0", "queue": "jobs"}
        assert value(found["respq_queue_messages"], "respq_queue_messages", **labels) == 5
        assert not [s for s in found["respq_queue_messages"].samples if s.labels["queue"] == "tasks"]  # not matched
        pushed = found["respq_queue_pushed"]  # both parsers name a counter family without _total
        assert value(pushed, "respq_queue_pushed_total", **labels) == 5
        assert 60 <= value(found["respq_queue_oldest_age_seconds"], "respq_queue_oldest_age_seconds", **labels) < 120
        group = {**labels, "group": "workers"}
        assert value(found["respq_group_pending"], "respq_group_pending", **group) == 1
        assert value(found["respq_group_lag"], "respq_group_lag", **group) == 3
        assert value(found["respq_group_consumers"], "respq_group_consumers", **group) == 2
        assert found["respq_group_redelivered"].type == "counter"
        assert value(found["respq_group_redelivered"], "respq_group_redelivered_total", **group) == 2
        assert value(found["respq_group_delivered"], "respq_group_delivered_total", **group) == 2
        lag_seconds = value(found["respq_group_lag_seconds"], "respq_group_lag_seconds", **group)
        assert (time.time() * 1000 - third) / 1000 - 30 <= lag_seconds <= (time.time() * 1000 - third) / 1000
        oldest_pending = value(
            found["respq_group_oldest_pending_age_seconds"], "respq_group_oldest_pending_age_seconds", **group
        )
        assert 60 <= oldest_pending < 120  # the second entry (first + 1 ms) is pending
        assert value(found["respq_queue_disk_bytes"], "respq_queue_disk_bytes", **labels) > 0


def test_per_queue_series_by_directive_with_a_limit_and_list_ages(tmp_path: Path) -> None:
    server, http_port = start_with_http(tmp_path, "--metrics-per-queue", "yes")
    try:
        client = redis.Redis(port=server.port, socket_timeout=10)
        for n in range(5):
            client.rpush(f"q{n}", *[b"x" * 100] * (n + 1))
        client.close()
        found = families(get(http_port, "/metrics")[2])
        depths = {s.labels["queue"]: s.value for s in found["respq_queue_messages"].samples}
        assert depths == {f"q{n}": n + 1 for n in range(5)}
        assert all(s.value >= 100 * (int(s.labels["queue"][1:]) + 1) for s in found["respq_queue_disk_bytes"].samples)
        # A list's oldest age comes from its values' push times (format 4: per chunk or journal batch).
        ages = {s.labels["queue"]: s.value for s in found["respq_queue_oldest_age_seconds"].samples}
        assert set(ages) == set(depths) and all(0 <= age < 60 for age in ages.values())
        listed = value(found["respq_queues_oldest_age_seconds"], "respq_queues_oldest_age_seconds", type="list")
        assert listed == max(ages.values())
        # Pushed and popped totals, counted from a list's first pop since start (a list never consumed has none: idle
        # lists cost nothing), kept by name: a queue drained (its key deleted) and refilled counts on.
        client = redis.Redis(port=server.port, socket_timeout=10)
        client.rpop("q4", 5)  # drained: the key goes
        client.lpush("q4", "again")
        client.lmove("q4", "q0", "RIGHT", "LEFT")  # q4 drained again, one more pushed to q0
        with client.pipeline(transaction=False) as pipe:  # a pipelined run of pops, and pushes spread over keys
            pipe.lpop("q3").lpop("q3").rpush("q1", "p").rpush("q2", "p")
            pipe.execute()
        client.close()
        found = families(get(http_port, "/metrics")[2])
        pushed = {s.labels["queue"]: s.value for s in found["respq_queue_pushed"].samples}
        popped = {s.labels["queue"]: s.value for s in found["respq_queue_popped"].samples}
        assert found["respq_queue_popped"].type == "counter"
        assert pushed == {"q3": 0} and popped == {"q3": 2}
        document = json.loads(get(http_port, "/api/queues/0/q4")[2])  # gone now: no row, but its counts live on
        assert document["status"] == 404
        client = redis.Redis(port=server.port, socket_timeout=10)
        client.rpush("q4", "third")
        client.close()
        row = json.loads(get(http_port, "/api/queues/0/q4")[2])
        assert (row["pushed"], row["popped"]) == (1 + 1, 5 + 1)  # pushes after its first pop
        assert len(families(get(http_port, "/metrics?limit=2")[2])["respq_queue_messages"].samples) == 2
        # A consumer blocked on a stream is counted on it (a list's waiters wait on a missing key: no queue yet).
        client = redis.Redis(port=server.port, socket_timeout=10)
        client.xadd("events", {"f": "v"})
        waiter = redis.Redis(port=server.port, socket_timeout=30)
        blocked = threading.Thread(target=waiter.xread, args=({"events": "$"},), kwargs={"block": 20_000})
        blocked.start()
        deadline = time.monotonic() + 10
        while value(families(get(http_port, "/metrics")[2])["respq_blocked_clients"], "respq_blocked_clients") < 1:
            assert time.monotonic() < deadline
        found = families(get(http_port, "/metrics")[2])["respq_queue_waiting_clients"]
        assert value(found, "respq_queue_waiting_clients", queue="events") == 1
        assert value(found, "respq_queue_waiting_clients", queue="q1") == 0
        client.xadd("events", {"f": "w"})
        blocked.join(10)
        client.close()
        waiter.close()
        assert get(http_port, "/metrics?limit=0")[0] == 400
        assert get(http_port, "/metrics?limit=x")[0] == 400
    finally:
        server.stop()


def test_metrics_under_storage_memory(tmp_path: Path) -> None:
    server, http_port = start_with_http(tmp_path, "--storage", "memory", "--metrics-per-queue", "yes")
    try:
        client = redis.Redis(port=server.port, socket_timeout=10)
        client.rpush("jobs", "a", "b")
        client.xadd("events", {"f": "v"})
        status, _, body = get(http_port, "/metrics")
        assert status == 200
        parsed = families(body)
        assert value(parsed["respq_keys"], "respq_keys", type="list") == 1
        assert value(parsed["respq_queues_messages"], "respq_queues_messages", type="list") == 2
        age = value(parsed["respq_queue_oldest_age_seconds"], "respq_queue_oldest_age_seconds", queue="jobs")
        assert 0 <= age < 60  # push times without a journal: the chunks' own
        assert "respq_disk_bytes" not in parsed  # no files in memory
        client.close()
    finally:
        server.stop()
