"""Generates docs/commands.md, the support matrix, from the command table (``python -m respq.commands.docgen``)."""

from __future__ import annotations

import sys

from respq.commands.modules import load_all
from respq.commands.table import COMMANDS, Command

HEADER = """# Supported commands

Generated from the command table by `python -m respq.commands.docgen > docs/commands.md`; a test fails when this file
is out of date. Every command below answers as Redis 7.0 does (checked by the differential tests in `compat-tests/`),
except where *Differences* says otherwise. Any other command answers `ERR unknown command '...'`, exactly as Redis
answers a typo, never a fake success.

Value types: lists, streams, strings and hashes. Set, sorted-set, bit, GEO, HyperLogLog (PF*), scripting,
cluster and replication commands are not part of respq.

"""


def _row(cmd: Command) -> str:
    arity = f"{cmd.arity}" if cmd.arity >= 0 else f"≥{-cmd.arity}"
    options = ", ".join(cmd.options) if cmd.options else ""
    note = "extension (Redis 7.2+)" if cmd.extension else ""
    return f"| `{cmd.name.upper()}` | {arity} | {options} | {cmd.summary} | {note} |"


def render() -> str:
    load_all()
    groups: dict[str, list[Command]] = {}
    for cmd in COMMANDS.values():
        groups.setdefault(cmd.group, []).append(cmd)
        for sub in cmd.subcommands.values():
            groups.setdefault(cmd.group, []).append(sub)
    lines = [HEADER.rstrip("\n"), ""]
    for group in sorted(groups):
        lines += [f"## {group}", "", "| command | arity | options | summary | notes |", "|---|---|---|---|---|"]
        lines += [_row(cmd) for cmd in sorted(groups[group], key=lambda c: c.name)]
        lines.append("")
    lines += [
        "## Differences from Redis 7.0",
        "",
        "- `DEBUG` offers only `SLEEP`; other subcommands answer an error.",
        "- `INFO` reports respq's own figures under Redis's field names (memory is the process's RSS), and adds",
        "  `respq_version`, `respq_request_parser` (`c` when the C request parser is built and in use, `python`",
        "  otherwise; see docs/configuration.md) and `respq_*` storage fields in the persistence section.",
        "- `COMMAND DOCS` carries respq's own summaries and no argument trees.",
        "- `SHUTDOWN SAVE`/`NOSAVE` are accepted: every acknowledged write is already in the journal either way.",
        "- `INCRBYFLOAT` adds in C's `long double` and prints as Redis does (`0.1` + `0.2` is `0.3`) when the C module",
        "  is built. Without it (`respq_request_parser:python`, or `RESPQ_PURE_PYTHON=1`) an exact emulation of the",
        "  80-bit format in Python integers gives the same answers, at tens of microseconds per call instead of one.",
        "- Hashes too large for a listpack (over `hash-max-listpack-entries` fields, or a field or value over",
        "  `hash-max-listpack-value` bytes): Redis's hash-table order is its own, so HGETALL, HKEYS, HVALS and",
        "  HRANDFIELD answer in insertion order; HSCAN's cursor walks a 32-bit hash of each field and COUNT is exact.",
        "  A hash keeps its encoding across restarts, where Redis derives it again when it loads its RDB file.",
        "- `maxmemory` limits the bytes values hold in memory (strings and hashes: contents plus overheads; INFO",
        "  `respq_inline_bytes`), not the process's memory; lists and streams live on disk (see `maxdisk`). Over it,",
        "  commands flagged `denyoom` get Redis's `OOM` error, as under `noeviction`: respq never evicts keys,",
        "  whatever `maxmemory-policy` says.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
