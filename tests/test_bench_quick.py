"""The benchmark harness end to end in --quick mode: every row runs against both servers and its arrival checks pass.

No timing is asserted; the numbers only have to exist and be positive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import require_tool

pytestmark = pytest.mark.timeout(300)


def test_quick_run_checks_what_arrived_and_renders(tmp_path: Path) -> None:
    require_tool("redis-server")
    require_tool("redis-benchmark")
    require_tool("taskset")
    from bench.__main__ import ALL_ROWS, main

    results, markdown, chart = tmp_path / "results.json", tmp_path / "benchmarks.md", tmp_path / "benchmarks.png"
    exit_code = main(["--quick", "--policy", "always", "--results", str(results), "--markdown", str(markdown),
                      "--chart", str(chart)])

    assert exit_code == 0  # a failed arrival check (LLEN, XLEN, DBSIZE, PEL) makes it 1
    stored = json.loads(results.read_text())["policies"]["always"]
    measured = {(run["server"], run["row"]) for run in stored["runs"]}
    throughput_rows = [row for row in ALL_ROWS if not row.startswith("mem_")]
    assert measured == {(server, row) for server in ("respq", "redis") for row in throughput_rows}
    assert all(run["msgs_per_s"] > 0 and run["messages"] > 0 for run in stored["runs"])
    assert set(stored["memory"]) == {"mem_queues", "mem_backlog", "mem_idle"}
    text = markdown.read_text()
    assert "### Targets" in text and "### Throughput, `appendfsync always`" in text
    assert "### Memory and scale" in text


def test_rows_and_policy_filters_rerun_only_what_was_asked(tmp_path: Path) -> None:
    require_tool("redis-server")
    require_tool("redis-benchmark")
    require_tool("taskset")
    from bench.__main__ import main

    results, markdown = tmp_path / "results.json", tmp_path / "benchmarks.md"
    markdown.write_text("# Benchmarks\n\nHand-written analysis stays.\n")
    argv = ["--quick", "--policy", "everysec", "--rows", "lpush_p16", "--results", str(results),
            "--markdown", str(markdown), "--chart", str(tmp_path / "chart.png")]

    assert main(argv) == 0
    stored = json.loads(results.read_text())["policies"]
    assert set(stored) == {"everysec"}
    assert {run["row"] for run in stored["everysec"]["runs"]} == {"lpush_p16"}
    assert "Hand-written analysis stays." in markdown.read_text()


def test_storage_memory_runs_respq_in_memory_against_redis_without_persistence(tmp_path: Path) -> None:
    require_tool("redis-server")
    require_tool("redis-benchmark")
    require_tool("taskset")
    from bench.__main__ import main
    from bench.servers import RedisServer, RespqServer

    assert "--storage" in RespqServer("memory").argv() and "--appendonly" in RedisServer("memory").argv()
    assert RedisServer("memory").argv()[RedisServer("memory").argv().index("--appendonly") + 1] == "no"
    results = tmp_path / "results.json"
    argv = ["--quick", "--storage", "memory", "--rows", "lpush_p16,xadd_p1,mem_queues,mem_backlog", "--results",
            str(results), "--markdown", str(tmp_path / "benchmarks.md"), "--chart", str(tmp_path / "chart.png")]

    assert main(argv) == 0
    stored = json.loads(results.read_text())["policies"]
    assert set(stored) == {"memory"}
    assert {(run["server"], run["row"]) for run in stored["memory"]["runs"]} == {
        (server, row) for server in ("respq", "redis") for row in ("lpush_p16", "xadd_p1")
    }
    assert all(run["disk_bytes_per_msg"] == 0 for run in stored["memory"]["runs"] if run["server"] == "respq")
    assert set(stored["memory"]["memory"]) == {"mem_queues"}  # the backlog scenario needs a restart to keep data



def _tallies(produced: list[int], consumed: list[int]) -> list[Any]:
    from bench.flow import Tally

    sides = [Tally(producer=True, messages=len(produced)), Tally(producer=False, messages=len(consumed))]
    for tally, ids in zip(sides, (produced, consumed), strict=True):
        tally.add_ids(ids)
    return sides


@pytest.mark.parametrize("consumed", [[1, 2, 3], [1, 2, 3, 4, 4], [1, 1, 3, 4], [1, 1, 4, 4]],
                         ids=["lost", "duplicated", "duplicate-instead-of-lost", "same-count-and-sum"])
def test_flow_check_catches_a_message_not_consumed_exactly_once(consumed: list[int]) -> None:
    from bench.flow import check_exactly_once
    from bench.workloads import CheckFailed

    assert check_exactly_once("listflow", _tallies([1, 2, 3, 4], [3, 1, 4, 2])) == 4
    with pytest.raises(CheckFailed):
        check_exactly_once("listflow", _tallies([1, 2, 3, 4], consumed))
