"""The JSON API under /api/: pushes and pops that survive a crash as RESP's do, waits woken by RESP clients, streams
through consumer groups, errors as problem details, limits, the Host check, content types and authentication."""

from __future__ import annotations

import base64
import http.client
import json
import signal
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import redis

from conftest import ServerProcess, start_respq, wait_until
from tests.server.test_http import PASSWORD, start_with_http

JSON = {"Content-Type": "application/json"}


def call(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded JSON body or the raw bytes when it is not JSON)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data, method=method)
    for name, value in (JSON if method == "POST" and headers is None else headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, found, payload = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, found, payload = error.code, error.headers, error.read()
    found = {name.lower(): value for name, value in found.items()}
    try:
        return status, found, json.loads(payload)
    except ValueError:
        return status, found, payload


def resp(server: ServerProcess) -> redis.Redis:
    return redis.Redis(port=server.port, socket_timeout=10)


def test_push_peek_pop_in_order_with_binary_values_and_keys(served: tuple[ServerProcess, int]) -> None:
    server, port = served
    key = "/api/queues/0/a%2Fb%FF"  # the key b"a/b\xff"
    status, _, document = call(port, "POST", f"{key}/messages", ["one", {"base64": "/wA="}, "três"])
    assert (status, document) == (200, {"pushed": 3, "depth": 3})
    assert resp(server).lrange(b"a/b\xff", 0, -1) == [b"one", b"\xff\x00", "três".encode()]
    status, _, document = call(port, "GET", f"{key}/peek?count=2")
    assert document == {"type": "list", "messages": ["one", {"base64": "/wA="}]}
    status, _, document = call(port, "GET", key)
    assert (status, document["type"], document["depth"], document["key"]) == (200, "list", 3, {"base64": "YS9i/w=="})
    status, _, document = call(port, "POST", f"{key}/pop?count=2")
    assert (status, document) == (200, {"messages": ["one", {"base64": "/wA="}]})
    assert call(port, "POST", f"{key}/pop?count=5")[2] == {"messages": ["três"]}
    assert call(port, "POST", f"{key}/pop")[2] == {"messages": []}
    assert call(port, "GET", key)[0] == 404


def test_ndjson_and_left_and_right_ends(served: tuple[ServerProcess, int]) -> None:
    server, port = served
    ndjson = {"Content-Type": "application/x-ndjson"}
    assert call(port, "POST", "/api/queues/0/q/messages", raw=b'"a"\n"b"\n\n', headers=ndjson)[0] == 200
    assert call(port, "POST", "/api/queues/0/q/messages?side=left", ["z"])[0] == 200
    assert resp(server).lrange("q", 0, -1) == [b"z", b"a", b"b"]
    assert call(port, "POST", "/api/queues/0/q/pop?side=right", headers=ndjson)[2] == {"messages": ["b"]}


def test_pushes_and_pops_survive_a_crash(tmp_path: Path) -> None:
    """The response leaves once the journal has the write (appendfsync always by default): a SIGKILL right after
    loses neither a push nor a pop."""
    server, port = start_with_http(tmp_path)
    try:
        for n in range(5):
            assert call(port, "POST", "/api/queues/3/jobs/messages", [f"m{n}"])[0] == 200
        assert call(port, "POST", "/api/queues/3/jobs/pop?count=2")[2] == {"messages": ["m0", "m1"]}
        server.kill(signal.SIGKILL)
    finally:
        server.stop()
    again = start_respq(tmp_path / "data")
    try:
        assert redis.Redis(port=again.port, db=3).lrange("jobs", 0, -1) == [b"m2", b"m3", b"m4"]
    finally:
        again.stop()


def pop_in_thread(port: int, path: str) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call(port, "POST", path)), daemon=True)
    thread.start()
    return thread, result


def test_a_waiting_pop_is_woken_by_a_resp_push_and_times_out_empty(served: tuple[ServerProcess, int]) -> None:
    server, port = served
    thread, result = pop_in_thread(port, "/api/queues/0/w/pop?wait=8&count=10")
    client = resp(server)
    wait_until(lambda: client.info("clients")["blocked_clients"] == 1)
    client.rpush("w", "x", "y")
    thread.join(10)
    assert result[0][:1] == (200,) and result[0][2] == {"messages": ["x", "y"]}
    assert client.llen("w") == 0
    status, _, document = call(port, "POST", "/api/queues/0/w/pop?wait=0.2")
    assert (status, document) == (200, {"messages": []})
    assert client.info("clients")["blocked_clients"] == 0


def test_an_http_client_is_in_client_list_while_its_request_runs(served: tuple[ServerProcess, int]) -> None:
    server, port = served
    client = resp(server)
    thread, result = pop_in_thread(port, "/api/queues/5/w/pop?wait=8")

    def http_lines() -> list[dict[str, str]]:
        lines = client.execute_command("CLIENT", "LIST").decode().splitlines()
        rows = [dict(field.split("=", 1) for field in line.split()) for line in lines]
        return [row for row in rows if row["name"] == "http"]

    wait_until(lambda: len(http_lines()) == 1)
    (row,) = http_lines()
    assert (row["fd"], row["db"], row["laddr"]) == ("-1", "5", f"127.0.0.1:{port}")
    assert row["addr"].startswith("127.0.0.1:") and client.info("clients")["connected_clients"] == 2
    client.execute_command("SELECT", 5)
    client.rpush("w", "x")
    thread.join(10)
    assert result[0][2] == {"messages": ["x"]}
    assert http_lines() == []  # gone once its request is answered
    client.close()


def test_a_disconnected_waiting_pop_takes_nothing(served: tuple[ServerProcess, int]) -> None:
    import socket

    server, port = served
    client = resp(server)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/queues/0/gone/pop?wait=8 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Content-Type: application/json\r\nContent-Length: 0\r\n\r\n" % port
        )
        wait_until(lambda: client.info("clients")["blocked_clients"] == 1)
    # Well before its 8 s wait is over: the disconnection, not the timeout, ends it.
    wait_until(lambda: client.info("clients")["blocked_clients"] == 0, timeout=4)
    client.rpush("gone", "kept")
    assert client.lrange("gone", 0, -1) == [b"kept"]


def test_streams_through_a_consumer_group(served: tuple[ServerProcess, int]) -> None:
    server, port = served
    base = "/api/queues/0/events"
    status, _, document = call(port, "POST", f"{base}/entries", [{"kind": "a"}, [["kind", "b"], ["n", "2"]]])
    assert status == 200 and len(document["ids"]) == 2
    first, second = document["ids"]
    assert call(port, "POST", f"{base}/groups", {"group": "workers", "id": "0"})[0] == 201
    status, _, document = call(port, "POST", f"{base}/groups/workers/read?consumer=c1&count=10")
    assert document == {
        "entries": [
            {"id": first, "fields": [["kind", "a"]]},
            {"id": second, "fields": [["kind", "b"], ["n", "2"]]},
        ]
    }
    detail = call(port, "GET", base)[2]
    assert (detail["pending"], detail["groups"][0]["consumers"][0]["name"]) == (2, "c1")
    assert call(port, "POST", f"{base}/groups/workers/ack", {"ids": [first]})[2] == {"acknowledged": 1}
    assert resp(server).xpending("events", "workers")["pending"] == 1
    # A group read that waits is woken by XADD over RESP.
    thread, result = pop_in_thread(port, f"{base}/groups/workers/read?consumer=c2&wait=8")
    client = resp(server)
    wait_until(lambda: client.info("clients")["blocked_clients"] == 1)
    new_id = client.xadd("events", {"kind": "c"}).decode()
    thread.join(10)
    assert result[0][2] == {"entries": [{"id": new_id, "fields": [["kind", "c"]]}]}
    assert call(port, "POST", f"{base}/groups/nope/read?consumer=c1")[0] == 404


def test_errors_are_problem_details(served: tuple[ServerProcess, int]) -> None:
    server, port = served
    client = resp(server)
    client.set("s", "v")
    status, headers, document = call(port, "POST", "/api/queues/0/s/messages", ["x"])
    assert status == 409 and headers["content-type"] == "application/problem+json"
    assert document["code"] == "WRONGTYPE" and document["status"] == 409 and document["title"] == "Conflict"
    assert call(port, "POST", "/api/queues/0/q/messages", raw=b"[1,")[0] == 400
    assert call(port, "POST", "/api/queues/0/q/messages", [{"base64": "!!"}])[0] == 400
    assert call(port, "POST", "/api/queues/0/q/messages", [42])[0] == 400
    assert call(port, "POST", "/api/queues/0/q/messages", [])[0] == 400
    assert call(port, "GET", "/api/queues/99/q")[0] == 404
    # maxdisk reached: MISCONF, and nothing is written.
    client.config_set("maxdisk", "1")
    status, _, document = call(port, "POST", "/api/queues/0/q/messages", ["x"])
    assert (status, document["code"]) == (507, "MISCONF")
    client.config_set("maxdisk", "0")
    client.config_set("maxmemory", "1")
    status, _, document = call(port, "POST", "/api/queues/0/q/messages", ["x"])
    assert (status, document["code"]) == (507, "OOM")
    client.config_set("maxmemory", "0")
    assert client.exists("q") == 0


def test_limits_on_bodies_batches_counts_and_waits(served: tuple[ServerProcess, int]) -> None:
    _, port = served
    # A body declared over the limit is refused from its Content-Length, before any of it is read, and the connection
    # is closed: send the headers only (a client still writing the body would see EPIPE instead of the answer).
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("POST", "/api/queues/0/q/messages")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(1024 * 1024 + 1))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413 and response.getheader("content-type") == "application/problem+json"
        assert json.loads(response.read())["status"] == 413
    finally:
        connection.close()
    assert call(port, "POST", "/api/queues/0/q/messages", ["x"] * 1001)[0] == 413
    assert call(port, "POST", "/api/queues/0/q/messages", ["x"] * 1000)[0] == 200
    assert call(port, "POST", "/api/queues/0/q/pop?count=1001")[0] == 400
    assert call(port, "POST", "/api/queues/0/q/pop?wait=9")[0] == 400
    assert call(port, "GET", "/api/queues/0/q/peek?count=0")[0] == 400


def test_writes_need_a_json_content_type_and_no_cors_headers_are_sent(served: tuple[ServerProcess, int]) -> None:
    server, port = served
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        form = {"Content-Type": content_type}
        status, headers, document = call(port, "POST", "/api/queues/0/q/messages", ["x"], form)
        assert (status, document["status"]) == (415, 415)
        assert call(port, "POST", "/api/queues/0/q/pop", headers=form)[0] == 415
    assert resp(server).exists("q") == 0
    origin = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    for method, path in (("OPTIONS", "/api/queues/0/q/messages"), ("GET", "/api/overview"), ("GET", "/")):
        status, headers, _ = call(port, method, path, headers=origin)
        assert not [name for name in headers if name.lower().startswith("access-control-")], (method, path)
    status, headers, document = call(port, "OPTIONS", "/api/queues/0/q/messages", headers=origin)
    assert (status, document["status"], headers["allow"]) == (405, 405, "GET, HEAD, POST")
    assert call(port, "GET", "/api/nothing")[2]["status"] == 404


def test_the_host_header_must_name_the_listener(served: tuple[ServerProcess, int]) -> None:
    _, port = served
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert call(port, "GET", "/api/overview", headers={"Host": host})[0] == 200
    for host in (f"evil.example:{port}", "127.0.0.1:1", "localhost"):
        status, _, document = call(port, "GET", "/api/overview", headers={"Host": host})
        assert (status, document["status"]) == (403, 403), host
        assert call(port, "POST", "/api/queues/0/q/messages", ["x"], {**JSON, "Host": host})[0] == 403
        assert call(port, "GET", "/", headers={"Host": host})[0] == 403
        assert call(port, "GET", "/static/dashboard.js", headers={"Host": host})[0] == 403
    assert call(port, "GET", "/metrics", headers={"Host": "prometheus.internal:9121"})[0] == 200


def test_the_api_asks_for_the_password(tmp_path: Path) -> None:
    server, port = start_with_http(tmp_path, "--requirepass", PASSWORD)
    try:
        status, headers, document = call(port, "POST", "/api/queues/0/q/messages", ["x"])
        assert status == 401 and "Basic" in headers["www-authenticate"] and document["status"] == 401
        assert call(port, "GET", "/api/queues")[0] == 401
        bearer = {**JSON, "Authorization": f"Bearer {PASSWORD}"}
        assert call(port, "POST", "/api/queues/0/q/messages", ["x"], bearer)[0] == 200
        assert call(port, "GET", "/api/queues", headers={"Authorization": "Bearer wrong"})[0] == 401
    finally:
        server.stop()


def test_api_calls_run_as_the_acl_user_of_their_credentials(tmp_path: Path) -> None:
    server, port = start_with_http(tmp_path, "--requirepass", PASSWORD)
    try:
        admin = redis.Redis(port=server.port, password=PASSWORD, socket_timeout=10)
        admin.acl_setuser("producer", enabled=True, passwords=["+p"], keys=["jobs:*"], commands=["-@all", "+rpush"])
        producer = {**JSON, "Authorization": "Basic " + base64.b64encode(b"producer:p").decode()}
        assert call(port, "POST", "/api/queues/0/jobs:a/messages", ["x"], producer)[0] == 200
        status, _, document = call(port, "POST", "/api/queues/0/other/messages", ["x"], producer)
        assert status == 403 and "NOPERM" in document["detail"]
        assert call(port, "POST", "/api/queues/0/jobs:a/pop", {"count": 1}, producer)[0] == 403
        assert admin.lrange("jobs:a", 0, -1) == [b"x"] and not admin.exists("other")
        assert any(entry["username"] == "producer" for entry in admin.acl_log())
        admin.close()
    finally:
        server.stop()


def test_lists_have_an_oldest_age_and_sort_by_it(served: tuple[ServerProcess, int]) -> None:
    server, port = served
    client = resp(server)
    client.lpush("old", "a")

    def age(key: str) -> float:
        return call(port, "GET", f"/api/queues/0/{key}")[2]["oldest_seconds"]

    wait_until(lambda: age("old") >= 0.5)  # push times are coarse: let "old" be clearly older than "new"
    client.lpush("new", "b")
    client.rpush("old", "c")  # a newer value does not make the list younger
    document = call(port, "GET", "/api/queues?sort=oldest")[2]
    ages = {q["key"]: q["oldest_seconds"] for q in document["queues"]}
    assert [q["key"] for q in document["queues"]] == ["old", "new"]
    assert 0 <= ages["new"] < ages["old"] < 60
    assert age("old") >= 0.5
    client.close()


def test_the_queue_table_is_filtered_sorted_and_paged(served: tuple[ServerProcess, int]) -> None:
    server, port = served
    client = resp(server)
    for n in range(12):
        client.rpush(f"jobs:{n:02d}", *["x"] * (n + 1))
    client.xadd("events", {"a": "1"})
    client.set("plain", "v")
    document = call(port, "GET", "/api/queues?limit=5")[2]
    assert document["total"] == 13 and [q["key"] for q in document["queues"]][:2] == ["events", "jobs:00"]
    document = call(port, "GET", "/api/queues?match=jobs:*&sort=depth&offset=2&limit=3")[2]
    assert document["total"] == 12 and [q["depth"] for q in document["queues"]] == [10, 9, 8]
    document = call(port, "GET", "/api/queues?type=stream")[2]
    assert [q["key"] for q in document["queues"]] == ["events"]
    document = call(port, "GET", "/api/queues?sort=depth&order=asc&limit=1")[2]
    assert document["queues"][0]["depth"] == 1
    assert call(port, "GET", "/api/queues?sort=bogus")[0] == 400
    client.xgroup_create("events", "late", id="0")
    document = call(port, "GET", "/api/queues?sort=lag_seconds&limit=1")[2]
    assert (document["queues"][0]["key"], document["queues"][0]["lag"]) == ("events", 1)
    overview = call(port, "GET", "/api/overview")[2]
    assert overview["queues"]["list"]["count"] == 12 and overview["queues"]["stream"]["messages"] == 1
    assert call(port, "GET", "/api/queues/0/plain")[2]["code"] == "WRONGTYPE"
