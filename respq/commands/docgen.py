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

Value types: lists, streams, strings (bit commands included), hashes, sets and sorted sets. GEO and HyperLogLog (PF*)
commands are not part of respq. Cluster mode has a static slot map pushed with CLUSTERX (docs/cluster.md);
replication: docs/replication.md.

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
        "- `maxmemory` limits the bytes values hold in memory (strings, hashes, sets, sorted sets: contents plus",
        "  overheads; INFO `respq_inline_bytes`), not the process's memory; lists and streams live on disk (see",
        "  `maxdisk`), or count too under `storage memory` (INFO `respq_held_bytes`). Over it,",
        "  commands flagged `denyoom` get Redis's `OOM` error, as under `noeviction`: respq never evicts keys,",
        "  whatever `maxmemory-policy` says.",
        "- A `BITFIELD` whose writes all fail under `OVERFLOW FAIL` still grows (or creates) the string, as in Redis;",
        "  respq journals that growth, where Redis leaves it out of its AOF (gone after Redis restarts).",
        "- Hashes too large for a listpack (over `hash-max-listpack-entries` fields, or a field or value over",
        "  `hash-max-listpack-value` bytes): Redis's hash-table order is its own, so HGETALL, HKEYS, HVALS and",
        "  HRANDFIELD answer in insertion order; HSCAN's cursor walks a 32-bit hash of each field and COUNT is exact.",
        "  A hash keeps its encoding across restarts, where Redis derives it again when it loads its RDB file.",
        "- Sets Redis holds as hash tables (not all integers, or over `set-max-intset-entries` members) answer in",
        "  respq's own table order, as Redis answers in its own; intsets answer in numeric order on both. SSCAN's",
        "  cursor walks a 32-bit hash of each member. SPOP and SRANDMEMBER on a set of more than 4096 members take",
        "  the next member of its table from where the last pick left off (O(1)) rather than a fresh random draw.",
        "  A set keeps its encoding across restarts, where Redis derives it again when it loads its RDB file.",
        "- `OBJECT IDLETIME` always answers 0 and `OBJECT FREQ` (under an LFU `maxmemory-policy`) always 5, the",
        "  counter Redis gives a new key: respq keeps no per-key access clock, whose bytes per key would count against",
        "  the memory an idle queue costs. The errors under the other policy, and null for a missing key, are Redis's.",
        "- `OBJECT ENCODING` names what Redis 7.0 would use for the same value (`quicklist` for every list, `stream`,",
        "  `int`/`embstr`/`raw`, `listpack`/`hashtable`); `OBJECT REFCOUNT` is 2147483647 for a string holding an",
        "  integer 0-9999 (Redis shares those objects; its COPY of one is unshared, 1) and 1 otherwise.",
        "- `MEMORY USAGE` reports the bytes Redis 7.0 would allocate for the same key and value (jemalloc size",
        "  classes, listpack encodings, Redis's sampling), not respq's own memory (values live on disk). A list is",
        "  measured as RPUSH would build it: after pops from its head Redis's first node holds fewer values and the",
        "  figures differ; beyond 1 MiB the nodes past those sampled are counted from the list's byte total. A",
        "  stream's figure follows respq's nodes, which match Redis's while entries stay under a few KiB. A string",
        "  that APPEND or SETRANGE grew is measured with the room Redis's last growth would leave; a hash table's",
        "  buckets as grown one field at a time, its sampled entries in respq's order rather than Redis's.",
        "  `MEMORY STATS` gives the process's figures (RSS, peak, start-up, client buffers) under Redis's names;",
        "  `MEMORY DOCTOR` and `MALLOC-STATS` are respq's own short reports (its allocator is the C library's), and",
        "  `MEMORY PURGE` calls glibc's `malloc_trim`.",
        "- `SAVE`, `BGSAVE` and `BGREWRITEAOF` write a checkpoint (there is no RDB file and no AOF rewrite; every",
        "  acknowledged write is in the journal already, a checkpoint bounds what start-up replays): `SAVE` before it",
        "  answers `OK`, holding the loop as Redis's SAVE does; `BGSAVE` in the background, answering",
        "  `Background saving started` (`scheduled` inside a transaction), `ERR Background save already in progress`",
        "  while one runs; `BGREWRITEAOF` answers `Background append only file rewriting started` (`scheduled` while",
        "  one runs). `LASTSAVE` is the unix time the last checkpoint finished (start-up before the first).",
        "  Under `storage memory` they write nothing and answer as a Redis without persistence (`OK`, `Background",
        "  saving started`, `Background append only file rewriting started`); `LASTSAVE` is when the last one ran.",
        "- `WAIT` counts replicas that acknowledged the whole stream at the time it was called (Redis: the caller's",
        "  own last write); a respq replica acknowledges an offset once it is durable there. The full sync is an RDB",
        "  without keys followed by the data set as commands (docs/replication.md).",
        "- `LATENCY` records Redis's `command` and `fast-command` events and respq's own: `fsync` (one journal sync,",
        "  run in a worker thread) and `checkpoint` (one checkpoint, start to finish). `LATENCY HISTOGRAM` and INFO",
        "  `latencystats` come from per-command histograms with power-of-two buckets from 1024 ns (Redis's HDR",
        "  histograms have finer buckets: percentiles are a bucket's upper bound). `LATENCY DOCTOR` and `GRAPH` are",
        "  respq's own wording and drawing. A pipelined run of calls executed as one operation counts each call as",
        "  its share of the run's time, and while a MONITOR client is attached calls run one by one.",
        "- `MONITOR` shows commands as Redis does (quoting, database, address, transactions at EXEC, AUTH and HELLO",
        "  passwords redacted); admin commands are not shown, and a monitor sees its own commands after their reply.",
        "- `DUMP` writes Redis 7.0.15's payload (RDB object, version 10, CRC-64) byte for byte for strings and for",
        "  listpack hashes, intsets and listpack or skiplist sorted sets; a hashtable hash or set lists its members in",
        "  respq's order, not Redis's dict order, and a list's quicklist nodes are cut as RPUSH would have built it",
        "  (Redis's depend on the list's history). `RESTORE` reads every encoding 7.0 loads but module values,",
        "  checks `IDLETIME`/`FREQ` and ignores them (no access clock: see `OBJECT IDLETIME`), and",
        "  makes the shallow checks of `sanitize-dump-payload no`. A stream's listpacks are cut as respq's",
        "  stream-node settings cut them and hold live entries only (entries XDEL removed from a listpack Redis",
        "  still keeps, flagged deleted); a stream payload with a pending entry that no consumer owns is refused",
        "  (`Bad data format`), where Redis keeps it ownerless.",
        "- `MIGRATE` runs its connection to the target in a worker thread while the calling client waits (other",
        "  clients are served meanwhile; inside MULTI or a script it runs inline, as Redis always does). It caches",
        "  no connection between calls (each one connects and sends `SELECT`), and a key changed between its",
        "  payload and the target's acknowledgement stays here.",
        "- `SORT ... ALPHA` compares bytes, as Redis does in the C and C.UTF-8 locales (Redis uses the server's",
        "  collation otherwise); with `BY`, `ALPHA` and a `LIMIT`, elements of equal weight stay in list order where",
        "  Redis's partial sort may swap them. A numeric `SORT` that meets a value out of a double's range fails on",
        "  both; Redis may then keep failing later numeric sorts (its stale `errno`), respq judges each value alone.",
        "- Sorted sets past `zset-max-listpack-entries` / `-value` (skiplists): lex ranges (`BYLEX`, `ZLEXCOUNT`,",
        "  `ZREMRANGEBYLEX`) over members of different scores walk them as a listpack is walked, where Redis's answer",
        "  depends on its skiplist's random levels (with equal scores, the documented use, both agree); ZSCAN's cursor",
        "  walks a 32-bit hash of each member; `MEMORY USAGE` counts a skiplist node of average height per member.",
        "  The encoding is kept across restarts, where Redis derives it again when it loads its RDB file.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
