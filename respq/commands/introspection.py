"""COMMAND and its subcommands, generated from the command table."""

from __future__ import annotations

import json
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
    target = resolve(argv[2:])
    if isinstance(target, bytes):
        if target.startswith(b"ERR wrong number"):
            raise CommandError(INVALID_ARGUMENTS)
        raise CommandError(INVALID_COMMAND)
    try:
        positions = target.key_positions(argv[2:])
    except CommandError:
        raise CommandError(INVALID_KEY_ARGUMENTS) from None
    if not positions and target.key_finder is None:  # a command with movable keys may name none (EVAL ... 0)
        raise CommandError(NO_KEY_ARGUMENTS)
    return [argv[2 + i] for i in positions]


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
        ],
    )
