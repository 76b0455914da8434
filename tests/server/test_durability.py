"""Acknowledged writes and pops survive kill -9 under appendfsync always."""

from __future__ import annotations

from pathlib import Path

from conftest import start_respq, wait_until
from tests.server.helpers import blocked_clients, in_thread, make_client


def _restart_after_kill(data_dir: Path, server):  # type: ignore[no-untyped-def]
    server.stop()  # SIGKILL to the whole process group
    return start_respq(data_dir)


def test_acknowledged_pops_and_pushes_survive_kill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir)
    client = make_client(server)
    client.rpush("jobs", "resize-42")
    assert client.blpop(["jobs"], 0) == (b"jobs", b"resize-42")
    client.rpush("jobs", "next")
    client.lpush("stack", "a", "b", "c")
    assert client.lpop("stack") == b"c"
    assert client.rpop("stack") == b"a"
    server = _restart_after_kill(data_dir, server)
    try:
        client = make_client(server)
        assert client.lrange("jobs", 0, -1) == [b"next"]
        assert client.lrange("stack", 0, -1) == [b"b"]
    finally:
        server.stop()


def test_pop_served_to_a_blocked_client_survives_kill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir)
    observer, waiter = make_client(server), make_client(server)
    thread, result = in_thread(waiter.brpop, ["q"], 0)
    wait_until(lambda: blocked_clients(observer) == 1)
    observer.lpush("q", "m1", "m2")
    thread.join(10)
    assert result["value"] == (b"q", b"m1")
    server = _restart_after_kill(data_dir, server)
    try:
        assert make_client(server).lrange("q", 0, -1) == [b"m2"]
    finally:
        server.stop()


def test_lmove_leaves_the_element_in_exactly_one_list(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir)
    client = make_client(server)
    client.rpush("src", "x", "y")
    assert client.lmove("src", "dst", "LEFT", "RIGHT") == b"x"
    server = _restart_after_kill(data_dir, server)
    try:
        client = make_client(server)
        assert client.lrange("src", 0, -1) == [b"y"]
        assert client.lrange("dst", 0, -1) == [b"x"]
    finally:
        server.stop()


def test_shutdown_during_a_background_checkpoint_closes_cleanly(tmp_path: Path) -> None:
    """SIGTERM right after BGSAVE: shutdown waits for the checkpoint's worker thread before closing the files it
    writes, then writes the last checkpoint itself, so the next start replays nothing and finds every key."""
    data_dir = tmp_path / "data"
    server = start_respq(data_dir)
    client = make_client(server)
    pipe = client.pipeline(transaction=False)
    for i in range(20_000):
        pipe.hset(f"job:{i}", mapping={"state": "queued", "payload": "x" * 40})
    pipe.execute()
    assert client.bgsave()
    assert server.terminate() == 0
    server.stop()  # joins the thread reading its output
    log = server.output.decode()
    assert "failed" not in log, log
    assert log.rstrip().endswith("respq is now ready to exit, bye bye..."), log
    server = start_respq(data_dir)
    try:
        assert "0 journal bytes replayed" in server.output.decode()
        client = make_client(server)
        assert client.dbsize() == 20_000
        assert client.hgetall("job:19999") == {b"state": b"queued", b"payload": b"x" * 40}
    finally:
        server.stop()
