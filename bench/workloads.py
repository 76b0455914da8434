"""The redis-benchmark rows: one fresh server per run, a warm-up, a measured run sized to last the wanted duration,
then a check of what arrived."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.client import Client, encode
from bench.servers import CLIENT_CORE, ProcSample, Server

PAYLOAD = b"x" * 100
BATCH_VALUES = 100
CLIENTS = 50
RANDOM_KEYS = 10_000
# HSET rows: keys drawn from a billion, so nearly every command creates a new hash (a run's few collisions update one).
NEW_HASH_KEYS = 1_000_000_000
SET_MEMBERS = tuple(b"job:%032d" % i for i in range(10_000))  # 36-byte ids
SET_MEMBER = SET_MEMBERS[4321]
SET_SETUP = tuple((b"SADD", b"s", *SET_MEMBERS[i : i + 1000]) for i in range(0, len(SET_MEMBERS), 1000))
HASH_FIELDS = tuple(item for i in range(10) for item in (b"field%d" % i, b"value-%04d" % i))  # 10 fields of 10 B
# Redis keeps every pushed value in RAM: a cap keeps the fastest rows within this machine's memory.
MAX_MESSAGES_PER_RUN = 40_000_000


class CheckFailed(AssertionError):
    """What arrived at the server is not what the load generator sent."""


@dataclass(frozen=True)
class Row:
    name: str
    title: str
    command: tuple[bytes, ...]
    pipeline: int
    messages_per_request: int = 1
    random_keys: int = 0
    prefill: bool = False  # RPOP: the list is filled with exactly as many values as will be popped
    fill: Callable[[Client, int], None] | None = None  # with prefill: what fills instead of RPUSH to q (ZPOPMIN)
    setup: tuple[tuple[bytes, ...], ...] = ()  # commands run once on the fresh server, before the warm-up
    check: Callable[[Client, int], None] = field(default=lambda client, messages: None)


def _expect(what: str, got: object, wanted: object) -> None:
    if got != wanted:
        raise CheckFailed(f"{what}: got {got!r}, expected {wanted!r}")


def _check_llen(key: bytes) -> Callable[[Client, int], None]:
    return lambda client, messages: _expect(f"LLEN {key.decode()}", client.call("LLEN", key), messages)


def _check_xlen(client: Client, messages: int) -> None:
    _expect("XLEN s", client.call("XLEN", "s"), messages)


def _check_emptied(client: Client, messages: int) -> None:
    _expect("LLEN q after popping every prefilled value", client.call("LLEN", "q"), 0)


def _check_string(key: bytes) -> Callable[[Client, int], None]:
    return lambda client, messages: _expect(f"GET {key.decode()}", client.call("GET", key), PAYLOAD)


MGET_KEYS = tuple(b"k:%d" % index for index in range(10))
# A small script as queue frameworks run them: one INCR and one LPUSH, by EVALSHA (loaded in the row's setup).
SCRIPT = b"redis.call('incr', KEYS[1]) return redis.call('lpush', KEYS[2], ARGV[1])"
SCRIPT_SHA = hashlib.sha1(SCRIPT).hexdigest().encode()


def _check_script(client: Client, messages: int) -> None:
    _expect("LLEN q", client.call("LLEN", "q"), messages)
    _expect("GET c", client.call("GET", "c"), str(messages).encode())


def _check_mget(client: Client, messages: int) -> None:
    _expect("MGET of the 10 keys", client.call("MGET", *MGET_KEYS), [PAYLOAD] * len(MGET_KEYS))


def _check_random_strings(client: Client, messages: int) -> None:
    keys = client.call("DBSIZE")
    assert isinstance(keys, int)
    if not 0 < keys <= RANDOM_KEYS:
        raise CheckFailed(f"DBSIZE: got {keys}, expected 1..{RANDOM_KEYS}")
    values = client.pipeline([("GET", b"k:%012d" % index) for index in range(RANDOM_KEYS)])
    _expect("values of the random keys", {value for value in values if value is not None}, {PAYLOAD})


def _check_random_keys(client: Client, messages: int) -> None:
    keys = client.call("DBSIZE")
    assert isinstance(keys, int)
    if not 0 < keys <= RANDOM_KEYS:
        raise CheckFailed(f"DBSIZE: got {keys}, expected 1..{RANDOM_KEYS}")
    # redis-benchmark replaces __rand_int__ with a 12-digit zero-padded number below -r.
    lengths = client.pipeline([("LLEN", b"q:%012d" % index) for index in range(RANDOM_KEYS)])
    _expect("sum of LLEN q:* over the random keys", sum(int(length) for length in lengths), messages)  # type: ignore[call-overload]


def _check_hget(client: Client, messages: int) -> None:
    _expect("HGET h f", client.call("HGET", "h", "f"), PAYLOAD)


def _check_new_hashes(client: Client, messages: int) -> None:
    keys = client.call("DBSIZE")
    assert isinstance(keys, int)
    if not messages * 0.98 <= keys <= messages:  # a billion keys to draw from: collisions are rare
        raise CheckFailed(f"DBSIZE: got {keys}, expected about one new hash per HSET ({messages})")
    key = client.call("RANDOMKEY")
    _expect(f"HGETALL {key!r}", client.call("HGETALL", key), list(HASH_FIELDS))


def _check_new_members(client: Client, messages: int) -> None:
    """Every SADD arrived (the server's own count of calls), and the set holds at most one member per call.
    redis-benchmark seeds its random numbers with time ^ pid, so two of the consecutive runs may draw the same
    members: the set's size alone cannot count the calls."""
    stats = client.call("INFO", "commandstats")
    assert isinstance(stats, bytes)
    calls = re.search(rb"cmdstat_sadd:calls=(\d+)", stats)
    _expect("SADD calls in INFO commandstats", int(calls.group(1)) if calls else 0, messages)
    members = client.call("SCARD", "s")
    assert isinstance(members, int)
    if not 0 < members <= messages:
        raise CheckFailed(f"SCARD s: got {members}, expected 1..{messages}")


def _check_sismember(client: Client, messages: int) -> None:
    _expect("SISMEMBER s <member>", client.call("SISMEMBER", "s", SET_MEMBER), 1)


ZSET_MEMBERS = 100_000  # ZRANGEBYSCORE's sorted set: member i scored i (a run time), so "now" is a rank too
ZSET_NOW = b"50000"
NEW_MEMBERS = 1_000_000_000  # ZADD rows: members drawn from a billion, so nearly every ZADD adds one


def _zadd_batches(key: bytes, first: int, count: int) -> list[tuple[bytes, ...]]:
    """ZADDs of ``count`` members ``m:<i>`` scored i from ``first``, 100 per command."""
    commands = []
    for start in range(first, first + count, BATCH_VALUES):
        stop = min(start + BATCH_VALUES, first + count)
        commands.append((b"ZADD", key, *(part for i in range(start, stop) for part in (b"%d" % i, b"m:%d" % i))))
    return commands


_zpop_filled = [0]  # members put into z so far by _fill_zpop (names never repeat within a run)


def _fill_zpop(client: Client, count: int) -> None:
    """ZPOPMIN's sorted set gets exactly as many new members as will be popped."""
    commands = _zadd_batches(b"z", _zpop_filled[0], count)
    _zpop_filled[0] += count
    for start in range(0, len(commands), 16):
        client.pipeline(commands[start : start + 16])
    _expect("ZCARD z after prefill", client.call("ZCARD", "z"), count)


def _check_zpopped(client: Client, messages: int) -> None:
    _expect("ZCARD z after popping every prefilled member", client.call("ZCARD", "z"), 0)


def _check_new_zset_members(client: Client, messages: int) -> None:
    """redis-benchmark seeds its random numbers with the time in seconds: runs started within one second draw the
    same members, whose ZADDs then update rather than add: the count is at most one member per ZADD."""
    members = client.call("ZCARD", "z")
    assert isinstance(members, int)
    if not 0 < members <= messages:
        raise CheckFailed(f"ZCARD z: got {members}, expected 1..{messages} (one member per ZADD, some repeated)")


def _check_zrange(client: Client, messages: int) -> None:
    _expect("ZCARD z", client.call("ZCARD", "z"), ZSET_MEMBERS)
    _expect("ZRANGEBYSCORE z -inf now LIMIT 0 2", client.call("ZRANGEBYSCORE", "z", "-inf", ZSET_NOW, "LIMIT", 0, 2),
            [b"m:0", b"m:1"])


def _rows() -> dict[str, Row]:
    rows: list[Row] = []
    for pipeline in (1, 16):
        rows += [
            Row(f"lpush_p{pipeline}", f"LPUSH q <100 B>, P={pipeline}", (b"LPUSH", b"q", PAYLOAD), pipeline,
                check=_check_llen(b"q")),
            Row(f"rpop_p{pipeline}", f"RPOP q on a filled list, P={pipeline}", (b"RPOP", b"q"), pipeline,
                prefill=True, check=_check_emptied),
            Row(f"xadd_p{pipeline}", f"XADD s * f <100 B>, P={pipeline}", (b"XADD", b"s", b"*", b"f", PAYLOAD),
                pipeline, check=_check_xlen),
            Row(f"hget_p{pipeline}", f"HGET h f (a 100 B value), P={pipeline}", (b"HGET", b"h", b"f"), pipeline,
                setup=((b"HSET", b"h", b"f", PAYLOAD),), check=_check_hget),
            Row(f"set_p{pipeline}", f"SET k <100 B>, P={pipeline}", (b"SET", b"k", PAYLOAD), pipeline,
                check=_check_string(b"k")),
            Row(f"get_p{pipeline}", f"GET k (100 B value), P={pipeline}", (b"GET", b"k"), pipeline,
                setup=((b"SET", b"k", PAYLOAD),), check=_check_string(b"k")),
        ]
    rows += [
        Row("lpush100_p16", "LPUSH b <100 x 100 B>, P=16", (b"LPUSH", b"b", *[PAYLOAD] * BATCH_VALUES), 16,
            messages_per_request=BATCH_VALUES, check=_check_llen(b"b")),
        Row("rand_p16", "LPUSH q:<10k random keys> <100 B>, P=16", (b"LPUSH", b"q:__rand_int__", PAYLOAD), 16,
            random_keys=RANDOM_KEYS, check=_check_random_keys),
        Row("hset10_p16", "HSET h:<random> with 10 fields of 10 B (a new hash each), P=16",
            (b"HSET", b"h:__rand_int__", *HASH_FIELDS), 16, random_keys=NEW_HASH_KEYS, check=_check_new_hashes),
        Row("setrand_p16", "SET k:<10k random keys> <100 B>, P=16", (b"SET", b"k:__rand_int__", PAYLOAD), 16,
            random_keys=RANDOM_KEYS, check=_check_random_strings),
        Row("sadd_p16", "SADD s <a new 15 B member> (-r), P=16", (b"SADD", b"s", b"id:__rand_int__"), 16,
            random_keys=NEW_HASH_KEYS, check=_check_new_members),
        Row("sismember_p16", "SISMEMBER s <member> on a set of 10k 36 B members, P=16",
            (b"SISMEMBER", b"s", SET_MEMBER), 16, setup=SET_SETUP, check=_check_sismember),
        Row("mget_p16", "MGET of 10 keys (100 B values), P=16", (b"MGET", *MGET_KEYS), 16,
            setup=((b"MSET", *(part for key in MGET_KEYS for part in (key, PAYLOAD))),), check=_check_mget),
        Row("evalsha_p16", "EVALSHA of a script doing INCR c and LPUSH q <100 B>, P=16",
            (b"EVALSHA", SCRIPT_SHA, b"2", b"c", b"q", PAYLOAD), 16, setup=((b"SCRIPT", b"LOAD", SCRIPT),),
            check=_check_script),
    ]
    for pipeline in (1, 16):
        rows += [
            Row(f"zadd_p{pipeline}", f"ZADD z <random score> <a new member>, P={pipeline}",
                (b"ZADD", b"z", b"__rand_int__", b"member:__rand_int__"), pipeline, random_keys=NEW_MEMBERS,
                check=_check_new_zset_members),
            Row(f"zrangebyscore_p{pipeline}",
                f"ZRANGEBYSCORE z -inf now LIMIT 0 10 on a {ZSET_MEMBERS // 1000}k-member sorted set, P={pipeline}",
                (b"ZRANGEBYSCORE", b"z", b"-inf", ZSET_NOW, b"LIMIT", b"0", b"10"), pipeline,
                setup=tuple(_zadd_batches(b"z", 0, ZSET_MEMBERS)), check=_check_zrange),
            Row(f"zpopmin_p{pipeline}", f"ZPOPMIN z on a filled sorted set, P={pipeline}", (b"ZPOPMIN", b"z"),
                pipeline, prefill=True, fill=_fill_zpop, check=_check_zpopped),
        ]
    return {row.name: row for row in rows}


ROWS = _rows()


@dataclass
class RunResult:
    server: str
    row: str
    messages: int
    seconds: float
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu: float  # fraction of one core over the run
    client_cpu: float
    disk_bytes_per_msg: float

    @classmethod
    def measured(cls, server: Server, row: str, messages: int, seconds: float, before: ProcSample, after: ProcSample,
                 latency_ms: tuple[float, float], client_cpu: float) -> RunResult:
        """Rates and per-message figures from a run's messages, its length and the server's counters around it."""
        written = after.write_bytes - before.write_bytes
        return cls(server=server.kind, row=row, messages=messages, seconds=seconds, msgs_per_s=messages / seconds,
                   p50_ms=latency_ms[0], p99_ms=latency_ms[1], server_cpu=after.cpu_since(before) / seconds,
                   client_cpu=client_cpu, disk_bytes_per_msg=written / max(messages, 1))


def prefill(client: Client, key: bytes, count: int) -> None:
    """RPUSH exactly ``count`` values, 100 per command, 16 commands in flight."""
    full, rest = divmod(count, BATCH_VALUES)
    batch = encode(b"RPUSH", key, *[PAYLOAD] * BATCH_VALUES)
    for start in range(0, full, 16):
        depth = min(16, full - start)
        client.send(batch * depth)
        client.read_replies(depth)
    if rest:
        client.call(b"RPUSH", key, *[PAYLOAD] * rest)
    _expect(f"LLEN {key.decode()} after prefill", client.call("LLEN", key), count)


def _fill_list(client: Client, count: int) -> None:
    prefill(client, b"q", count)


def run_benchmark(server: Server, row: Row, requests: int) -> tuple[dict[str, str], float, float]:
    """One redis-benchmark process on the client core; returns its CSV row, wall seconds and CPU seconds."""
    argv = ["taskset", "-c", CLIENT_CORE, "redis-benchmark", "-p", str(server.port), "-c", str(CLIENTS),
            "-P", str(row.pipeline), "-n", str(requests), "--csv"]
    if row.random_keys:
        argv += ["-r", str(row.random_keys)]
    start = time.monotonic()
    proc = subprocess.Popen([*argv, *(arg.decode() for arg in row.command)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    records = [record for record in csv.DictReader(io.StringIO(output)) if record.get("rps")]
    if proc.returncode != 0 or not records:
        raise CheckFailed(f"redis-benchmark failed ({proc.returncode}): {output[-2000:]}")
    return records[-1], wall, usage.ru_utime + usage.ru_stime


def _whole_rounds(requests: int, row: Row) -> int:
    """redis-benchmark rounds -n up to whole pipelines; a multiple of every client's pipeline keeps counts exact."""
    unit = CLIENTS * row.pipeline
    return max(unit, requests // unit * unit)


def run_row(server: Server, row: Row, duration: float, warmup: float, rate_guess: float | None) -> RunResult:
    """Warm up (which also measures the rate), then consecutive redis-benchmark runs until ``duration`` has passed.

    redis-benchmark only knows request counts and the rate drifts on a shared machine, so one count sized from the
    warm-up can end far from the wanted duration; chunks of about a third of it, each sized from the rate just seen,
    keep every request counted (so the arrival check stays exact) and the total at least ``duration``.
    """
    chunk_seconds = max(duration / 3, 0.25)
    with Client(server.port) as client:
        for setup in row.setup:
            client.call(*setup)
        for command in row.setup:
            client.call(*command)
        warm_requests = _whole_rounds(max(CLIENTS * row.pipeline * 4, int((rate_guess or 0) * warmup)), row)
        if row.prefill:
            (row.fill or _fill_list)(client, warm_requests)
        record, _, _ = run_benchmark(server, row, warm_requests)
        sent = warm_requests
        rate = float(record["rps"])
        budget = MAX_MESSAGES_PER_RUN // row.messages_per_request
        requests = wall = client_cpu = 0.0
        p50s: list[tuple[float, int]] = []
        p99 = 0.0
        before = server.sample()
        while wall < duration and requests < budget:
            remaining = max(duration - wall, chunk_seconds / 2)
            count = _whole_rounds(int(rate * min(chunk_seconds, remaining)), row)
            count = min(count, _whole_rounds(int(budget - requests), row))
            if row.prefill:
                pause = server.sample()
                (row.fill or _fill_list)(client, count)
                before = _exclude(before, pause, server.sample())
            record, seconds, cpu = run_benchmark(server, row, count)
            rate = float(record["rps"])
            requests += count
            wall += seconds
            client_cpu += cpu
            p50s.append((float(record["p50_latency_ms"]), count))
            p99 = max(p99, float(record["p99_latency_ms"]))
        after = server.sample()
        sent += int(requests)
        row.check(client, sent * row.messages_per_request)
    messages = int(requests) * row.messages_per_request
    return RunResult.measured(server, row.name, messages, wall, before, after, (_weighted_median(p50s), p99),
                              client_cpu / wall)


def _exclude(before: ProcSample, pause_start: ProcSample, pause_end: ProcSample) -> ProcSample:
    """Moves a baseline forward by what the server spent between two samples (a prefill is not part of the run)."""
    return ProcSample(
        before.when,
        before.cpu_seconds + pause_end.cpu_since(pause_start),
        before.write_bytes + pause_end.write_bytes - pause_start.write_bytes,
        before.rss_bytes,
    )


def _weighted_median(values: list[tuple[float, int]]) -> float:
    """Median of per-chunk medians weighted by request count (chunks of one run see the same steady state)."""
    total = sum(weight for _, weight in values)
    seen = 0
    for value, weight in sorted(values):
        seen += weight
        if seen * 2 >= total:
            return value
    return 0.0
