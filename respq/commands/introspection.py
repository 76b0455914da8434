"""COMMAND and its subcommands, generated from the command table."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from respq import errors
from respq.commands.context import Context
from respq.commands.dispatch import resolve
from respq.commands.help import help_lines
from respq.commands.table import COMMANDS, Command, command
from respq.errors import CommandError
from respq.glob import compile_glob
from respq.replies import SetReply, SimpleString

G = "server"
NO_KEY_ARGUMENTS = b"ERR The command has no key arguments"
INVALID_COMMAND = b"ERR Invalid command specified"
INVALID_ARGUMENTS = b"ERR Invalid number of arguments specified for command"
INVALID_KEY_ARGUMENTS = b"ERR Invalid arguments specified for command"


# Redis 7.0.15's tips, key specs, arguments, doc flags and history of each command respq implements, transcribed by
# scripts/command_meta.py. Loaded on the first COMMAND INFO/DOCS, not at import: most servers never ask.
_META_PATH = Path(__file__).with_name("redis_meta.json")
# In the transcription sets and arrays are both lists, status and bulk strings both str: these fields are sets of
# status strings (flags, doc_flags) or sets (history, and tips and key specs in COMMAND INFO), as Redis replies them.
_STATUS_SETS = frozenset({"flags", "doc_flags"})


@cache
def _meta() -> dict[str, dict[str, Any]]:
    with _META_PATH.open(encoding="utf-8") as file:
        meta: dict[str, dict[str, Any]] = json.load(file)
    return meta


def _reply(value: Any) -> Any:
    """A transcribed value as Redis replies it: objects as maps, lists as arrays, strings as bulk strings."""
    if isinstance(value, dict):
        return {key.encode(): _field(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_reply(item) for item in value]
    if isinstance(value, str):
        return value.encode()
    return value


def _field(key: str, value: Any) -> Any:
    if key in _STATUS_SETS:
        return _status_set(value)
    if key == "history":
        return SetReply(_reply(value))
    return _reply(value)


def _status_set(names: list[str]) -> SetReply:
    return SetReply([SimpleString(name.encode()) for name in names])


def _key_specs(cmd: Command) -> list[Any]:
    """Key specs of a command Redis 7.0 does not have (an extension), from its key positions."""
    if cmd.first_key <= 0:
        return []
    last = cmd.last_key - cmd.first_key if cmd.last_key >= 0 else cmd.last_key
    if cmd.not_key:  # a shard channel: hashed to a slot like a key, but no key
        flags = ["not_key"]
    elif cmd.is_write:
        flags = ["RW", "access"]
    else:
        flags = ["RO", "access"]
    return [
        {
            b"flags": _status_set(flags),
            b"begin_search": {b"type": b"index", b"spec": {b"index": cmd.first_key}},
            b"find_keys": {b"type": b"range", b"spec": {b"lastkey": last, b"keystep": cmd.step, b"limit": 0}},
        }
    ]


def command_info(cmd: Command) -> list[Any]:
    meta = _meta().get(cmd.name)
    if meta is None:
        tips, key_specs = SetReply([]), SetReply(_key_specs(cmd))
    else:
        tips, key_specs = SetReply(_reply(meta["tips"])), SetReply(_reply(meta["key_specs"]))
    return [
        cmd.name.encode(),
        cmd.arity,
        SetReply([SimpleString(flag.encode()) for flag in sorted(cmd.flags, key=_FLAG_ORDER.index)]),
        cmd.first_key,
        cmd.last_key,
        cmd.step,
        SetReply([SimpleString(category.encode()) for category in cmd.acl_categories]),
        # Tips and key specs are sets to Redis (RESP3 shows ~), as is an empty list of subcommands; others arrays.
        tips,
        key_specs,
        [command_info(sub) for sub in cmd.subcommands.values()] if cmd.subcommands else SetReply([]),
    ]


# Redis lists a command's flags in the order of its flag table.
_FLAG_ORDER = [
    "write",
    "readonly",
    "denyoom",
    "module",
    "admin",
    "pubsub",
    "noscript",
    "blocking",
    "loading",
    "stale",
    "skip_monitor",
    "skip_slowlog",
    "asking",
    "fast",
    "no_auth",
    "may_replicate",
    "no_mandatory_keys",
    "no_async_loading",
    "no_multi",
    "movablekeys",
    "allow_busy",
]


# COMMAND DOCS fields after summary, since, group and complexity, in Redis's order.
_DOC_FIELDS = ("doc_flags", "deprecated_since", "replaced_by", "history", "arguments")


def command_docs(cmd: Command) -> dict[bytes, Any]:
    """The summary and complexity are respq's own wording; the rest is Redis's metadata."""
    doc: dict[bytes, Any] = {
        b"summary": cmd.summary.encode(),
        b"since": cmd.since.encode(),
        b"group": cmd.group.encode(),
    }
    meta = _meta().get(cmd.name)
    if meta is None:
        doc[b"complexity"] = cmd.complexity.encode()
        doc[b"arguments"] = []
    else:
        if meta.get("complexity", "") is not None:  # null: Redis documents none (MONITOR)
            doc[b"complexity"] = cmd.complexity.encode()
        doc.update({field.encode(): _field(field, meta[field]) for field in _DOC_FIELDS if field in meta})
    if cmd.subcommands:
        doc[b"subcommands"] = {sub.name.encode(): command_docs(sub) for sub in cmd.subcommands.values()}
    return doc


def _all_commands() -> list[Command]:
    return list(COMMANDS.values())


def _find(name: bytes) -> Command | None:
    if b"|" in name:
        parent_name, sub = name.lower().split(b"|", 1)
        parent = COMMANDS.get(parent_name)
        return parent.subcommands.get(sub) if parent is not None else None
    return COMMANDS.get(name.lower())


@command(
    "command",
    -1,
    "loading stale",
    group=G,
    summary="Describes every command: arity, flags, key positions and ACL categories.",
    since="2.8.13",
    complexity="O(N) in the commands",
    acl=("@slow", "@connection"),
)
def command_(ctx: Context, argv: list[bytes]) -> Any:
    return [command_info(cmd) for cmd in _all_commands()]


@command(
    "command|count",
    2,
    "loading stale",
    group=G,
    summary="Reports how many top-level commands the server knows.",
    since="2.8.13",
    acl=("@slow", "@connection"),
)
def command_count(ctx: Context, argv: list[bytes]) -> Any:
    return len(COMMANDS)


@command(
    "command|info",
    -2,
    "loading stale",
    group=G,
    summary="Describes the named commands, or all of them when none is named.",
    since="2.8.13",
    complexity="O(N) in the commands described",
    acl=("@slow", "@connection"),
)
def command_info_(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        return [command_info(cmd) for cmd in _all_commands()]
    infos = []
    for name in argv[2:]:
        cmd = _find(name)
        infos.append(command_info(cmd) if cmd is not None else None)
    return infos


@command(
    "command|docs",
    -2,
    "loading stale",
    group=G,
    summary="Replies with each command's summary, version, complexity and group.",
    since="7.0.0",
    complexity="O(N) in the commands described",
    acl=("@slow", "@connection"),
)
def command_docs_(ctx: Context, argv: list[bytes]) -> Any:
    names = argv[2:] or [cmd.name.encode() for cmd in _all_commands()]
    docs: dict[bytes, Any] = {}
    for name in names:
        cmd = _find(name)
        if cmd is not None:
            docs[cmd.name.encode()] = command_docs(cmd)
    return docs


@command(
    "command|list",
    -2,
    "loading stale",
    group=G,
    options=("FILTERBY", "MODULE", "ACLCAT", "PATTERN"),
    summary="Replies with every command name, optionally filtered by ACL category or pattern.",
    since="7.0.0",
    complexity="O(N) in the commands",
    acl=("@slow", "@connection"),
)
def command_list(ctx: Context, argv: list[bytes]) -> Any:
    names: list[bytes] = []
    for cmd in _all_commands():
        names.append(cmd.name.encode())
        names += [sub.name.encode() for sub in cmd.subcommands.values()]
    if len(argv) == 2:
        return names
    if len(argv) != 5 or argv[2].upper() != b"FILTERBY":
        raise CommandError(errors.SYNTAX)
    kind, value = argv[3].upper(), argv[4]
    if kind == b"MODULE":
        return []
    if kind == b"ACLCAT":
        category = b"@" + value.lower()
        return [name for name in names if category.decode() in (_find(name) or _find(b"ping")).acl_categories]  # type: ignore[union-attr]
    if kind == b"PATTERN":
        match = compile_glob(value.lower())
        return [name for name in names if match(name)]
    raise CommandError(errors.SYNTAX)


def _getkeys_target(argv: list[bytes]) -> tuple[Command, list[int]]:
    """The command a GETKEYS/GETKEYSANDFLAGS line names and its key positions (in the line after the subcommand)."""
    target = resolve(argv[2:])
    if isinstance(target, bytes):
        if target.startswith(b"ERR wrong number"):
            raise CommandError(INVALID_ARGUMENTS)
        raise CommandError(INVALID_COMMAND)
    try:
        positions = target.key_positions(argv[2:])
    except CommandError:
        raise CommandError(INVALID_KEY_ARGUMENTS) from None
    if not positions:
        if target.key_finder is None:
            raise CommandError(NO_KEY_ARGUMENTS)
        if "no_mandatory_keys" not in target.flags:  # EVAL ... 0 may name none; MIGRATE ... k KEYS ... may not
            raise CommandError(INVALID_KEY_ARGUMENTS)
    return target, positions


@command(
    "command|getkeys",
    -4,
    "loading stale",
    group=G,
    summary="Finds which arguments of a complete command line are key names.",
    since="2.8.13",
    complexity="O(N) in the arguments",
    acl=("@slow", "@connection"),
)
def command_getkeys(ctx: Context, argv: list[bytes]) -> Any:
    _, positions = _getkeys_target(argv)
    return [argv[2 + i] for i in positions]


@command(
    "command|getkeysandflags",
    -4,
    "loading stale",
    group=G,
    summary="Finds the key names of a complete command line, each with how the command uses it (its key spec flags).",
    since="7.0.0",
    complexity="O(N) in the arguments",
    acl=("@slow", "@connection"),
)
def command_getkeysandflags(ctx: Context, argv: list[bytes]) -> Any:
    target, positions = _getkeys_target(argv)
    meta = _meta().get(target.name)
    if meta is not None:
        specs = meta["key_specs"]
    else:  # an extension: its specs derived from its key positions
        specs = [{"flags": [flag.text.decode() for flag in spec[b"flags"].items]} for spec in _key_specs(target)]
    line = argv[2:]
    variable = _VARIABLE_FLAGS.get(target.name)
    return [
        [line[i], _status_set(variable(line) if variable is not None else _spec_for(specs, line, i)["flags"])]
        for i in positions
    ]


def _spec_for(specs: list[dict[str, Any]], argv: list[bytes], position: int) -> dict[str, Any]:
    """The key spec a key position belongs to: the first whose search covers it; else the last one Redis cannot
    search (SORT's STORE key: its keyword may come anywhere), else the first spec naming keys. respq's key finders,
    not the specs, say where the keys are; the specs only say how each is used."""
    for spec in specs:
        if position in _spec_range(spec, argv):
            return spec
    unknown = [spec for spec in specs if spec["begin_search"]["type"] == "unknown"]
    return unknown[-1] if unknown else next(spec for spec in specs if "not_key" not in spec["flags"])


def _set_key_flags(argv: list[bytes]) -> list[str]:
    """SET reads the old value only with GET (after the value, anywhere among the options)."""
    return ["RW", "access", "update"] if any(arg.lower() == b"get" for arg in argv[3:]) else ["OW", "update"]


def _bitfield_key_flags(argv: list[bytes]) -> list[str]:
    """BITFIELD only reads if every operation is a complete GET or OVERFLOW; anything else may write."""
    i = 2
    while i < len(argv):
        remaining, operation = len(argv) - i - 1, argv[i].lower()
        if operation == b"get" and remaining >= 2:
            i += 3
        elif operation == b"overflow" and remaining >= 1:
            i += 2
        else:
            return ["RW", "access", "update"]
    return ["RO", "access"]


# The commands whose key spec says variable_flags: how they use their key depends on their arguments.
_VARIABLE_FLAGS: dict[str, Callable[[list[bytes]], list[str]]] = {
    "set": _set_key_flags,
    "bitfield": _bitfield_key_flags,
}


def _spec_range(spec: dict[str, Any], argv: list[bytes]) -> range:
    """The positions a key spec's begin_search and find_keys cover in argv, as Redis 7.0's key spec search
    defines them (index or keyword; range or keynum); empty where it finds nothing."""
    begin, find = spec.get("begin_search", {}), spec.get("find_keys", {})
    argc = len(argv)
    if begin.get("type") == "index":
        start = begin["spec"]["index"]
    elif begin.get("type") == "keyword":
        keyword, start_from = begin["spec"]["keyword"].encode().lower(), begin["spec"]["startfrom"]
        candidates = range(start_from, argc) if start_from >= 0 else range(argc + start_from, 0, -1)
        found = next((i for i in candidates if 0 < i < argc and argv[i].lower() == keyword), None)
        if found is None:
            return range(0)
        start = found + 1
    else:
        return range(0)
    find_spec = find.get("spec", {})
    if find.get("type") == "range":
        last_key, step, limit = find_spec["lastkey"], find_spec["keystep"], find_spec["limit"]
        if last_key >= 0:
            last = start + last_key
        elif limit <= 1:
            last = argc + last_key
        else:
            last = start + (argc - start) // limit + last_key
        return range(start, min(last, argc - 1) + 1, step)
    if find.get("type") == "keynum":
        number_at = start + find_spec["keynumidx"]
        try:
            count = int(argv[number_at]) if number_at < argc else 0
        except ValueError:
            return range(0)
        first = start + find_spec["firstkey"]
        return range(first, min(first + count * find_spec["keystep"], argc), find_spec["keystep"])
    return range(0)


@command(
    "command|help",
    2,
    "loading stale",
    group=G,
    summary="Lists the COMMAND subcommands with a line or two on each.",
    since="5.0.0",
    acl=("@slow", "@connection"),
)
def command_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(
        b"COMMAND",
        [
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands in this server.",
            "LIST",
            "    Return a list of all commands in this server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys of a full command, each with its access flags.",
        ],
    )
