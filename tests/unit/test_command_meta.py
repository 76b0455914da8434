"""respq/commands/redis_meta.json (Redis 7.0.15's key specs, tips and arguments, from scripts/command_meta.py) covers
every command of the table, and respq/acl/keyspecs.py (the same key specs reduced to ACL permissions) agrees with it.
compat-tests/test_command_metadata.py compares both with a live redis-server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from respq.acl.keyspecs import KEY_SPECS, READ, WRITE
from respq.commands.modules import load_all

META = json.loads((Path(__file__).resolve().parents[2] / "respq" / "commands" / "redis_meta.json").read_text())


def test_every_redis_command_of_the_table_has_its_metadata() -> None:
    missing = [
        cmd.name
        for top in load_all().values()
        for cmd in (top, *top.subcommands.values())
        if not cmd.extension and cmd.name not in META
    ]
    assert not missing, f"regenerate with scripts/command_meta.py (see its docstring): {missing}"


def _permission(flags: list[str]) -> int:
    """Redis 7.0's ACL: a spec that reads values needs read access, one that inserts, deletes or updates write."""
    return (READ if "access" in flags else 0) | (WRITE if {"insert", "delete", "update"} & set(flags) else 0)


def _acl_spec(spec: dict[str, Any]) -> tuple[object, ...]:
    begin = spec["begin_search"]
    if begin["type"] == "index":
        return (begin["spec"]["index"], None, _permission(spec["flags"]))
    if begin["type"] == "keyword":
        return (0, begin["spec"]["keyword"].encode(), _permission(spec["flags"]))
    return ("unknown", _permission(spec["flags"]))


def test_acl_key_specs_agree_with_redis_s() -> None:
    # SORT's BY/GET and STORE specs are "unknown" to Redis; keyspecs.py finds STORE by its keyword instead.
    exceptions = {"sort", "sort_ro"}
    wrong = [
        f"{name}: keyspecs.py {specs}, Redis {expected}"
        for name, specs in KEY_SPECS.items()
        if name not in exceptions
        and specs != (expected := tuple(_acl_spec(s) for s in META[name]["key_specs"] if "not_key" not in s["flags"]))
    ]
    assert not wrong, "\n".join(wrong)
    with_keys = {name for name, meta in META.items() if any("not_key" not in s["flags"] for s in meta["key_specs"])}
    assert with_keys == set(KEY_SPECS), "commands with keys and ACL key specs differ"
