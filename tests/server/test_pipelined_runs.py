"""Pipelined calls of one command on one key run as one storage operation, observably as if run one by one."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_respq
from respq.commands.dispatch import MAX_RUN
from tests.server.helpers import make_client
from tests.server.test_large_replies import RawClient

pytestmark = pytest.mark.timeout(60)


def _calls(client: redis.Redis, name: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))


def test_every_call_of_a_run_is_counted_and_named(respq_server: ServerProcess) -> None:
    client = make_client(respq_server)
    processed = int(client.info("stats")["total_commands_processed"])
    raw = RawClient(respq_server.port)
    raw.send([b"CLIENT", b"SETNAME", b"piped"])
    assert raw.line() == b"+OK"
    raw.send(*[[b"RPUSH", b"q", b"%d" % i] for i in range(10)], *[[b"RPOP", b"q"]] * 4)
    assert [raw.line() for _ in range(10)] == [b":%d" % n for n in range(1, 11)]
    assert list(raw.bulks(4)) == [b"9", b"8", b"7", b"6"]
    assert _calls(client, "rpush") == 10 and _calls(client, "rpop") == 4
    assert int(client.info("stats")["total_commands_processed"]) >= processed + 15
    (piped,) = [entry for entry in client.client_list() if entry["name"] == "piped"]
    assert piped["cmd"] == "rpop"
    raw.close()


def test_a_pipeline_longer_than_a_run_and_a_restart_keep_every_value_in_order(tmp_path: Path) -> None:
    server = start_respq(tmp_path / "data")
    try:
        count = 2 * MAX_RUN + 100
        raw = RawClient(server.port)
        raw.send(*[[b"LPUSH", b"q", b"v%d" % i] for i in range(count)])
        assert [raw.line() for _ in range(count)] == [b":%d" % n for n in range(1, count + 1)]
        raw.send(*[[b"XADD", b"s", b"*", b"n", b"%d" % i] for i in range(count)])
        ids = [raw.exactly(int(raw.line()[1:]) + 2)[:-2] for _ in range(count)]
        raw.close()
        server.stop()
        server = start_respq(tmp_path / "data")
        client = make_client(server)
        assert client.lrange("q", 0, -1) == [b"v%d" % i for i in reversed(range(count))]
        assert client.xrange("s") == [(entry_id, {b"n": b"%d" % i}) for i, entry_id in enumerate(ids)]
    finally:
        server.stop()
