"""The command table: every command as data (arity, flags, key positions, docs) plus its handler.

Generic checks (unknown command, arity, subcommands) run once in the dispatcher, before any handler, as Redis
does. The same table answers COMMAND COUNT/INFO/DOCS/LIST/GETKEYS and generates docs/commands.md. Command modules
register here when imported; respq.commands.modules lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from respq.commands.context import Context

# The reply to one call (its argument list), given the caller's context (respq.commands.context says what it holds).
Handler = Callable[[Context, list[bytes]], Any]
# Replies to consecutive calls (argument lists) of one command on one key, executed as one operation.
RunHandler = Callable[[Context, bytes, list[list[bytes]]], list[Any]]
# Replies to consecutive calls of one command on keys that may differ, executed in one loop.
SpreadHandler = Callable[[Context, list[list[bytes]]], list[Any]]


@dataclass(frozen=True, slots=True)
class Run:
    """How a pipelined run of one command on one key executes as one storage operation (see dispatch.execute_run).

    ``handler`` replies to a prefix of the calls, having executed exactly those and nothing of the rest, with the
    replies and effects running them one by one gives; it may reply to none (the first call then runs alone)."""

    fits: Callable[[list[bytes]], bool]  # a call can join a run: its shape (arity, no options) allows it
    handler: RunHandler
    # Calls on different keys (a producer spreading over many queues): each executed as the one-by-one path would,
    # an error reply for a call that fails alone; the generic checks and the bookkeeping are done once.
    spread: SpreadHandler | None = None


@dataclass(slots=True)
class Command:
    name: str  # lowercase; a subcommand's is "parent|sub", as Redis names them
    arity: int  # Redis convention: N = exactly N arguments including the name, -N = at least N
    flags: frozenset[str]
    first_key: int
    last_key: int
    step: int
    group: str
    summary: str
    since: str
    complexity: str
    acl_categories: tuple[str, ...]
    options: tuple[str, ...]  # option keywords the command accepts (drives the compatibility coverage check)
    handler: Handler | None
    subcommands: dict[bytes, Command] = field(default_factory=dict)
    extension: bool = False  # answered although Redis 7.0 does not have it (e.g. CLIENT SETINFO from 7.2)
    parent: Command | None = None
    key_finder: Callable[[list[bytes]], list[int]] | None = None  # for commands with movable keys (LMPOP numkeys ...)
    run: Run | None = None  # set by @run_of: consecutive calls on one key may execute as one operation
    # The key positions name no keys but things a cluster still routes by slot (the shard channels of SPUBLISH,
    # SSUBSCRIBE): Redis's NOT_KEY key spec flag. ACL key rules, WATCH and COMMAND GETKEYS skip them.
    not_key: bool = False
    one_key: bool = False  # names exactly one key, at argv[1] (GET, LPUSH, XADD ...): cluster mode checks it fast
    routed: bool = False  # cluster mode checks its keys (or, for EXEC, the queued calls' keys) before it runs

    def __post_init__(self) -> None:
        self.one_key = self.first_key == 1 and self.last_key == 1 and self.key_finder is None
        self.routed = self.first_key > 0 or self.key_finder is not None or self.name == "exec"

    @property
    def is_write(self) -> bool:
        return "write" in self.flags

    def accepts_arity(self, argc: int) -> bool:
        arity = self.arity
        return argc == arity if arity >= 0 else argc >= -arity

    def key_positions(self, argv: list[bytes], *, include_not_keys: bool = False) -> list[int]:
        """Positions of key arguments, for COMMAND GETKEYS and WATCH-style bookkeeping; with ``include_not_keys``
        also those of NOT_KEY specs, which hash to a slot as keys do (cluster routing)."""
        if self.key_finder is not None:
            return self.key_finder(argv)
        if self.first_key <= 0 or (self.not_key and not include_not_keys):
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return list(range(self.first_key, min(last, len(argv) - 1) + 1, self.step))


COMMANDS: dict[bytes, Command] = {}
# The same commands under their own names whatever rename-command did: ACL rules and ACL CAT use these, as in Redis.
ORIGINAL_COMMANDS: dict[bytes, Command] = {}

# Flags every command of a group shares; used for ACL categories in COMMAND INFO.
_GROUP_CATEGORIES = {
    "connection": ("@connection",),
    "server": ("@admin", "@dangerous"),
    "generic": ("@keyspace",),
    "list": ("@list",),
    "hash": ("@hash",),
    "set": ("@set",),
    "stream": ("@stream",),
    "string": ("@string",),
    "pubsub": ("@pubsub",),
    "transactions": ("@transaction",),
    "bitmap": ("@bitmap",),
    "sorted-set": ("@sortedset",),
}


# Redis 7.0's ACL categories in its own order (acl.c): COMMAND INFO lists a command's categories in this order,
# ACL CAT lists them all in it, and the rule parser knows no other names.
CATEGORIES = (
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
)
_CATEGORY_ORDER = {"@" + name: index for index, name in enumerate(CATEGORIES)}


def _categories(name: str, group: str, flags: frozenset[str], extra: tuple[str, ...]) -> tuple[str, ...]:
    cats = _implied_categories(name, group, flags, extra)
    return tuple(sorted(cats, key=_CATEGORY_ORDER.__getitem__))


def _implied_categories(name: str, group: str, flags: frozenset[str], extra: tuple[str, ...]) -> list[str]:
    if name.endswith("|help") and not extra:
        return ["@slow"]  # most HELP subcommands belong to no family
    cats = list(extra) if extra else list(_GROUP_CATEGORIES.get(group, ()))
    if not extra:
        if "admin" in flags and "@admin" not in cats:
            cats += ["@admin", "@dangerous"]
        if "write" in flags:
            cats.insert(0, "@write")
        if "readonly" in flags:
            cats.insert(0, "@read")
        if "fast" in flags:
            cats.append("@fast")
        else:
            cats.append("@slow")
        if "blocking" in flags:
            cats.append("@blocking")
    return cats


def command(
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    *,
    group: str,
    summary: str,
    since: str,
    complexity: str = "O(1)",
    options: tuple[str, ...] = (),
    acl: tuple[str, ...] = (),
    extension: bool = False,
    key_finder: Callable[[list[bytes]], list[int]] | None = None,
    not_key: bool = False,
) -> Callable[[Handler], Handler]:
    """Registers a handler. ``name`` may be ``"parent|sub"`` for a subcommand (the parent must exist)."""

    def register(handler: Handler) -> Handler:
        flag_set = frozenset(flags.split())
        cmd = Command(
            name=name,
            arity=arity,
            flags=flag_set,
            first_key=keys[0],
            last_key=keys[1],
            step=keys[2],
            group=group,
            summary=summary,
            since=since,
            complexity=complexity,
            acl_categories=_categories(name, group, flag_set, acl),
            options=options,
            handler=handler,
            extension=extension,
            key_finder=key_finder,
            not_key=not_key,
        )
        if "|" in name:
            parent_name, sub = name.split("|", 1)
            parent = COMMANDS[parent_name.encode()]
            cmd.parent = parent
            parent.subcommands[sub.encode()] = cmd
        else:
            if name.encode() in COMMANDS:
                raise ValueError(f"command {name} registered twice")
            COMMANDS[name.encode()] = ORIGINAL_COMMANDS[name.encode()] = cmd
        return handler

    return register


def container(name: str, *, group: str, summary: str, since: str, flags: str = "", extension: bool = False) -> None:
    """A command that only dispatches to subcommands (CLIENT, CONFIG, ...); arity -2 as in Redis."""
    COMMANDS[name.encode()] = ORIGINAL_COMMANDS[name.encode()] = Command(
        name=name,
        arity=-2,
        flags=frozenset(flags.split()),
        first_key=0,
        last_key=0,
        step=0,
        group=group,
        summary=summary,
        since=since,
        complexity="See each subcommand.",
        acl_categories=("@slow",),
        options=(),
        handler=None,
        extension=extension,
    )


def lookup(argv: list[bytes]) -> Command | None:
    """The command (or subcommand) argv names; None if the top-level name is unknown."""
    cmd = COMMANDS.get(argv[0].lower())
    return cmd


def apply_renames(renames: list[tuple[str, str]]) -> None:
    """redis.conf ``rename-command OLD NEW``: the command answers to NEW only; an empty NEW disables it."""
    for old, new in renames:
        cmd = COMMANDS.pop(old.lower().encode(), None)
        if cmd is not None and new:
            COMMANDS[new.lower().encode()] = cmd


def run_of(
    name: str, fits: Callable[[list[bytes]], bool], spread: SpreadHandler | None = None
) -> Callable[[RunHandler], RunHandler]:
    """Registers the run handlers of an already registered command."""

    def register(handler: RunHandler) -> RunHandler:
        COMMANDS[name.encode()].run = Run(fits, handler, spread)
        return handler

    return register
