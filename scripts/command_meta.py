"""Transcribes Redis's command metadata for the commands respq implements into respq/commands/redis_meta.json.

Run against Debian 12's redis-server 7.0.15 (the reference), then commit the file:

    redis-server --port 7711 --save '' &
    PYTHONPATH=$PWD python scripts/command_meta.py 7711 > respq/commands/redis_meta.json

What it keeps is protocol metadata COMMAND INFO and COMMAND DOCS reply with: tips and key specs; the arguments,
doc flags, deprecation and history of each command. Summaries and complexities stay respq's own (the command
table's); arity, flags, key positions and ACL categories stay in the command table, where dispatch and ACL use them
(tests/server/test_command_metadata.py checks both against a live redis-server).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "compat-tests"))

from resp_wire import Connection, Node, parse

from respq.commands.modules import load_all

# The COMMAND DOCS fields the table does not hold (summary, since, group and complexity it does).
DOC_FIELDS = ("doc_flags", "deprecated_since", "replaced_by", "history", "arguments")


def plain(node: Node) -> Any:
    """The reply as JSON values: maps to objects, sets and arrays to lists, strings to str (the schema in
    respq.commands.introspection knows which lists are sets and which strings are status replies)."""
    if node.kind == "%":
        return {key.value.decode(): plain(value) for key, value in node.pairs()}  # type: ignore[union-attr]
    if node.kind in "*~":
        return [plain(child) for child in node.items]
    if node.kind == ":":
        return int(node.value)  # type: ignore[arg-type]
    assert isinstance(node.value, bytes), node
    return node.value.decode()


def main(port: int) -> None:
    conn = Connection("127.0.0.1", port, timeout=10)
    conn.call("HELLO", "3")
    names = []
    for cmd in load_all().values():
        names += [c.name for c in (cmd, *cmd.subcommands.values()) if not c.extension]
    meta: dict[str, Any] = {}
    for name in names:
        info = parse(conn.call("COMMAND", "INFO", name)).items[0]
        docs = parse(conn.call("COMMAND", "DOCS", name))
        if info.value is None or not docs.items:
            continue  # not a Redis 7.0 command
        fields = info.items
        doc = plain(docs.items[1])
        entry: dict[str, Any] = {"tips": plain(fields[7]), "key_specs": plain(fields[8])}
        entry.update({field: doc[field] for field in DOC_FIELDS if field in doc})
        if "complexity" not in doc:
            entry["complexity"] = None  # Redis documents none
        meta[name] = entry
    json.dump(meta, sys.stdout, separators=(",", ":"), sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(int(sys.argv[1]))
