"""Functions against respq subprocesses: libraries survive kill -9 (from the journal and from a checkpoint), FUNCTION
DUMP payloads move between redis-server and respq both ways, and a long function gets BUSY, FUNCTION STATS and
FUNCTION KILL as Redis 7.0 gives them. Ordering between clients is observed (BUSY answers), never slept for.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_redis, start_respq, wait_until
from tests.server.helpers import in_thread, make_client

COUNTER = (
    "#!lua name=counter\n"
    "redis.register_function('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)\n"
    "redis.register_function{function_name='peek', callback=function(keys) return redis.call('GET', keys[1]) end,"
    " flags={'no-writes'}, description='reads the counter'}"
)
# Long enough for LZF to compress it (as redis-server does in its dumps).
GREETER = (
    "#!lua name=greeter\n"
    "-- greetings greetings greetings greetings greetings greetings greetings greetings\n"
    "redis.register_function('hello', function(keys, args) return 'hello ' .. args[1] end)\n"
    "redis.register_function('hello_twice', function(keys, args) return 'hello hello ' .. args[1] end)"
)
SPIN = (
    "#!lua name=spin\n"
    "redis.register_function{function_name='spin', flags={'no-writes'}, callback=function(keys, args)"
    " local started = redis.call('time')[1] while redis.call('time')[1] - started < tonumber(args[1]) do end"
    " return 1 end}"
)
BUSY = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."


def checkpoint_time(client: redis.Redis) -> float:
    return float(client.info("persistence")["respq_last_checkpoint_time"])


def force_checkpoint(client: redis.Redis) -> None:
    """Journal traffic beyond checkpoint-bytes (1 MB here) makes the server's checkpointer run one."""
    before = checkpoint_time(client)

    def done() -> bool:
        client.rpush("filler", b"f" * (1 << 20))
        client.delete("filler")
        return checkpoint_time(client) > before

    wait_until(done, timeout=30, interval=0.05)


def text_client(server: ServerProcess) -> redis.Redis:
    """RESP3 (FUNCTION LIST as maps), replies decoded."""
    return redis.Redis(port=server.port, protocol=3, socket_timeout=10, decode_responses=True)


def library_names(client: redis.Redis) -> list[str]:
    return sorted(entry["library_name"] for entry in client.function_list())


def listing(client: redis.Redis) -> list[dict]:
    """FUNCTION LIST WITHCODE with each library's functions in name order (Redis's are in its hash table's)."""
    entries = client.function_list(withcode=True)
    for entry in entries:
        entry["functions"].sort(key=lambda function: function["name"])
    return sorted(entries, key=lambda entry: entry["library_name"])


def test_libraries_survive_kill9_from_checkpoint_and_journal(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    options = ("--appendfsync", "always", "--checkpoint-bytes", "1mb")
    server = start_respq(data_dir, *options)
    try:
        client = text_client(server)
        assert client.function_load(COUNTER) == "counter"
        assert client.fcall("bump", 1, "n", 5) == 5
        force_checkpoint(client)  # counter is in the manifest now; greeter only in the journal after it
        assert client.function_load(GREETER) == "greeter"
        assert client.fcall("bump", 1, "n", 2) == 7
        server.kill()
        server.stop()

        server = start_respq(data_dir, *options)
        client = text_client(server)
        assert library_names(client) == ["counter", "greeter"]
        assert client.fcall("bump", 1, "n", 1) == 8
        assert client.fcall_ro("peek", 1, "n") == "8"
        assert client.fcall("hello", 0, "you") == "hello you"
        [entry] = client.function_list(library="counter")
        descriptions = {f["name"]: (f["description"], f["flags"]) for f in entry["functions"]}
        assert descriptions == {"bump": (None, []), "peek": ("reads the counter", ["no-writes"])}
        assert client.info("memory")["number_of_libraries"] == 2

        # A deletion and a replacement are durable too, and FLUSHALL leaves libraries.
        assert client.function_delete("greeter") is True
        client.function_load(COUNTER.replace("INCRBY", "DECRBY"), replace=True)
        client.flushall()
        server.kill()
        server.stop()

        server = start_respq(data_dir, *options)
        client = text_client(server)
        assert library_names(client) == ["counter"]
        assert client.fcall("bump", 1, "n", 3) == -3
        force_checkpoint(client)
        client.function_flush()
        server.kill()
        server.stop()

        server = start_respq(data_dir, *options)
        client = text_client(server)
        assert client.function_list() == []
        with pytest.raises(redis.ResponseError, match=r"^Function not found$"):
            client.fcall("bump", 1, "n", 1)
    finally:
        server.stop()


def test_function_dump_moves_between_redis_and_respq(tmp_path: Path) -> None:
    oracle = start_redis()
    server = start_respq(tmp_path / "data")
    try:
        from_redis, to_respq = text_client(oracle), text_client(server)
        from_redis.function_load(GREETER)
        payload = make_client(oracle).function_dump()
        assert to_respq.function_restore(payload) is True
        assert to_respq.fcall("hello", 0, "respq") == "hello respq"
        assert make_client(server).function_dump() == payload  # the same library dumps to the same bytes (LZF included)
        assert listing(to_respq) == listing(from_redis)

        to_respq.function_load(COUNTER)
        back = make_client(server).function_dump()
        fresh = start_redis()
        try:
            into_redis = text_client(fresh)
            assert into_redis.function_restore(back, "FLUSH") is True
            assert library_names(into_redis) == ["counter", "greeter"]
            assert into_redis.fcall("bump", 1, "n", 4) == 4
            assert into_redis.fcall("hello_twice", 0, "redis") == "hello hello redis"
            # And back again: Redis's dump of both restores into respq as its own did.
            to_respq.function_flush()
            assert to_respq.function_restore(make_client(fresh).function_dump()) is True
            assert library_names(to_respq) == ["counter", "greeter"]
        finally:
            fresh.stop()
    finally:
        server.stop()
        oracle.stop()


def _wait_busy(other: redis.Redis) -> None:
    def busy() -> bool:
        try:
            other.ping()
        except redis.exceptions.BusyLoadingError as error:
            assert str(error) == BUSY
            return True
        except redis.ResponseError as error:
            assert str(error) == BUSY
            return True
        return False

    wait_until(busy, timeout=10, interval=0.01)


def test_a_long_function_gets_busy_stats_and_function_kill(tmp_path: Path) -> None:
    server: ServerProcess = start_respq(tmp_path / "data")
    try:
        caller, other = make_client(server), make_client(server)
        other.config_set("busy-reply-threshold", 100)
        other.function_load(SPIN)
        started = time.monotonic()
        thread, result = in_thread(caller.fcall, "spin", 0, "20")
        _wait_busy(other)
        stats = other.function_stats()
        running = stats[1]  # RESP2: a flat list of names and values
        assert stats[0] == b"running_script" and running[0:2] == [b"name", b"spin"]
        assert running[2:4] == [b"command", [b"FCALL", b"spin", b"0", b"20"]]
        with pytest.raises(redis.ResponseError, match="^" + BUSY):
            other.execute_command("SCRIPT", "KILL")  # a function is FUNCTION KILL's to stop
        assert other.function_kill() == b"OK"
        thread.join(10)
        assert str(result.get("error")).startswith("Script killed by user with SCRIPT KILL... script: spin, on ")
        assert time.monotonic() - started < 10
        assert other.ping() is True
        with pytest.raises(redis.ResponseError, match=r"^NOTBUSY No scripts in execution right now\.$"):
            other.function_kill()
    finally:
        server.stop()


def test_library_code_running_past_500ms_at_load_is_stopped(tmp_path: Path) -> None:
    server = start_respq(tmp_path / "data")
    try:
        client = text_client(server)
        started = time.monotonic()
        with pytest.raises(redis.ResponseError, match=r"^Error registering functions: ERR FUNCTION LOAD timeout$"):
            client.function_load("#!lua name=spin\nlocal a = 0 while true do a = a + 1 end")
        assert 0.5 <= time.monotonic() - started < 5
        assert client.function_list() == []
        assert client.function_load(COUNTER) == "counter"  # the runtime goes on, without the load's hook
        assert client.fcall("bump", 1, "n", 1) == 1
    finally:
        server.stop()


def test_function_stats_and_kill_refuse_while_an_eval_script_runs(tmp_path: Path) -> None:
    server = start_respq(tmp_path / "data")
    try:
        caller, other = make_client(server), make_client(server)
        other.config_set("busy-reply-threshold", 100)
        loop = "local s = redis.call('time')[1] while redis.call('time')[1] - s < 20 do end"
        thread, result = in_thread(caller.eval, loop, 0)
        eval_busy = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."

        def busy() -> bool:
            try:
                other.ping()
            except redis.ResponseError as error:
                assert str(error) == eval_busy
                return True
            return False

        wait_until(busy, timeout=10, interval=0.01)
        for subcommand in ("STATS", "KILL"):
            with pytest.raises(redis.ResponseError) as caught:
                other.execute_command("FUNCTION", subcommand)
            assert str(caught.value) == eval_busy
        assert other.execute_command("SCRIPT", "KILL") == b"OK"
        thread.join(10)
        assert str(result.get("error")).startswith("Script killed by user with SCRIPT KILL...")
    finally:
        server.stop()
