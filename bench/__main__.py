"""python -m bench: respq beside Debian's redis-server, same core, same load, alternating runs.

Both servers run pinned to core 0 (one at a time, each run on a fresh server and directory); load generators run on
core 1. Results are merged into a JSON file and rendered into docs/benchmarks.md and its chart.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench import memory, report
from bench.flow import Flow, run_flow
from bench.groupflow import GROUP_FLOW
from bench.listflow import LIST_FLOW
from bench.servers import CLIENT_CORE, MEMORY, SERVERS, machine, versions
from bench.workloads import ROWS, CheckFailed, RunResult, run_row
from bench.zsetflow import ZSET_FLOW

REPO_ROOT = Path(__file__).resolve().parent.parent
FLOWS: dict[str, Flow] = {flow.row: flow for flow in (LIST_FLOW, GROUP_FLOW, ZSET_FLOW)}
THROUGHPUT_ROWS = [*ROWS, *FLOWS]
ALL_ROWS = [*THROUGHPUT_ROWS, *memory.SCENARIOS]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="seconds instead of minutes, small memory scale")
    parser.add_argument("--duration", type=float, help="seconds per measured run (default 60, quick 0.5)")
    parser.add_argument("--repeats", type=int, help="runs per server and row, alternating which goes first "
                        "(default 3, quick 1)")
    parser.add_argument("--policy", action="append", choices=report.POLICIES,
                        help="appendfsync policies to run (repeatable; default always and everysec)")
    parser.add_argument("--storage", choices=("disk", "memory"), default="disk",
                        help="memory: respq --storage memory against redis-server --save '' --appendonly no "
                        "(the policy named memory in the results)")
    parser.add_argument("--rows", help=f"comma-separated subset of: {','.join(ALL_ROWS)}")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "bench" / "results.json",
                        help="JSON file the results are merged into")
    parser.add_argument("--markdown", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--chart", type=Path, default=REPO_ROOT / "docs" / "benchmarks.png")
    parser.add_argument("--render-only", action="store_true", help="only rewrite the markdown and chart")
    args = parser.parse_args(argv)
    args.duration = args.duration or (0.5 if args.quick else 60.0)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.policy = [MEMORY] if args.storage == MEMORY else args.policy or ["always", "everysec"]
    args.rows = args.rows.split(",") if args.rows else ALL_ROWS
    unknown = set(args.rows) - set(ALL_ROWS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    return args


def log(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, flush=True)


def run_throughput(policy: str, rows: list[str], duration: float, repeats: int, warmup: float) -> list[RunResult]:
    """Every row on both servers, ``repeats`` times, swapping which server goes first each round."""
    results: list[RunResult] = []
    rate_guess: dict[tuple[str, str], float] = {}
    for repeat in range(repeats):
        for row in rows:
            order = ["respq", "redis"] if repeat % 2 == 0 else ["redis", "respq"]
            for kind in order:
                with SERVERS[kind](policy) as server:
                    if row in FLOWS:
                        result = run_flow(server, FLOWS[row], duration, warmup)
                    else:
                        spec = ROWS[row]
                        result = run_row(server, spec, duration, warmup, rate_guess.get((kind, row)))
                        rate_guess[(kind, row)] = result.msgs_per_s / spec.messages_per_request
                log(f"{policy} {row} {kind} #{repeat + 1}: {result.msgs_per_s:,.0f} msg/s in {result.seconds:.1f} s, "
                    f"p99 {result.p99_ms:.2f} ms, server CPU {result.server_cpu:.0%}, "
                    f"{result.disk_bytes_per_msg:.0f} B/msg written")
                results.append(result)
    return results


def run_memory(policy: str, scenarios: list[str], scale: memory.Scale) -> dict[str, dict[str, dict[str, float]]]:
    measured: dict[str, dict[str, dict[str, float]]] = {}
    for scenario in scenarios:
        for kind in ("respq", "redis"):
            with SERVERS[kind](policy) as server:
                measured.setdefault(scenario, {})[kind] = memory.SCENARIOS[scenario](server, scale)
            log(f"{policy} {scenario} {kind}: {measured[scenario][kind]}")
    return measured


def merge(stored: dict[str, Any], policy: str, runs: list[RunResult], mem: dict[str, Any], invocation: dict[str, Any],
          rows: list[str]) -> None:
    entry = stored.setdefault("policies", {}).setdefault(policy, {"runs": [], "memory": {}, "invocations": []})
    entry["runs"] = [run for run in entry["runs"] if run["row"] not in rows] + [vars(run) for run in runs]
    entry["memory"].update(mem)
    # An earlier invocation whose every row this one reran no longer stands behind any number: drop it from the list.
    # (Entries from before invocations recorded their rows go once a run covers every row.)
    entry["invocations"] = [
        earlier for earlier in entry["invocations"] if not set(earlier.get("rows", ALL_ROWS)) <= set(rows)
    ] + [invocation | {"rows": rows}]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    stored: dict[str, Any] = json.loads(args.results.read_text()) if args.results.exists() else {}
    if not args.render_only:
        os.sched_setaffinity(0, {int(CLIENT_CORE)})  # the harness's own clients share the load generators' core
        stored["meta"] = {"machine": machine(), "versions": versions()}
        warmup = 0.2 if args.quick else 3.0
        scale = memory.QUICK_SCALE if args.quick else memory.FULL_SCALE
        throughput_rows = [row for row in args.rows if row in THROUGHPUT_ROWS]
        scenarios = [row for row in args.rows if row in memory.SCENARIOS]
        for policy in args.policy:
            # The backlog scenario restarts the server and expects its data back: not without a disk.
            skipped = memory.NEEDS_RESTART if policy == MEMORY else set()
            invocation = {
                "command": "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv),
                "mode": f"quick, {args.duration:g} s runs" if args.quick
                else f"{'full' if args.duration >= 60 else 'shortened'}, {args.duration:g} s runs x {args.repeats} "
                "per server",
                "started": time.strftime("%Y-%m-%d %H:%M"),
                "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
            }
            try:
                runs = run_throughput(policy, throughput_rows, args.duration, args.repeats, warmup)
                mem = run_memory(policy, [row for row in scenarios if row not in skipped], scale)
            except CheckFailed as failure:
                log(f"FAILED ({policy}): {failure}")
                return 1
            merge(stored, policy, runs, mem, invocation, args.rows)
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(stored, indent=1) + "\n")
    chart = args.chart.name if report.write_chart(args.chart, stored) else None
    report.write_markdown(args.markdown, stored, chart)
    log(f"wrote {args.markdown}" + (f" and {args.chart}" if chart else " (no chart: matplotlib not installed)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
