"""ACL and its subcommands: users, their rules, the ACL log and the ACL file (the model is respq.acl)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from respq import acl, errors
from respq.acl.check import channels_revoked, subscriber_denied
from respq.acl.log import REASONS
from respq.acl.users import USER_FLAGS, RuleError, Selector, User, category_members, has_spaces
from respq.commands.args import parse_int
from respq.commands.connection import kill_client
from respq.commands.context import Context
from respq.commands.dispatch import lookup
from respq.commands.help import help_lines
from respq.commands.table import CATEGORIES, command, container
from respq.errors import CommandError
from respq.replies import OK, SetReply

G = "server"
_ADMIN = ("@admin", "@slow", "@dangerous")
_FLAGS = "admin noscript loading stale"
_PLAIN_FLAGS = "noscript loading stale"

USERNAME_SPACES = b"ERR Usernames can't contain spaces or null characters"
DEFAULT_NOT_REMOVABLE = b"ERR The 'default' user cannot be removed"
NO_ACL_FILE = (
    b"ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL "
    b"SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order "
    b"to store users in the Redis configuration."
)
SAVE_FAILED = b"ERR There was an error trying to save the ACLs. Please check the server logs for more information"
GENPASS_BITS = 4096
GENPASS_RANGE = (
    b"ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"
)

container("acl", group=G, summary="Groups the subcommands that manage users and their permissions.", since="6.0.0")


def _kill_user_clients(ctx: Context, user: User) -> None:
    """The user is gone: its connections close (the one running this command once its reply is written)."""
    for client in list(ctx.clients.values()):
        if client.user is user:
            client.user = ctx.acl.default
            client.authenticated = False
            kill_client(client)


def _kill_revoked_subscribers(ctx: Context, new: User, old: User) -> None:
    """Subscribers of ``old`` to a channel or pattern ``new`` no longer allows are disconnected at once."""
    revoked, upcoming = channels_revoked(new, old)
    if not revoked:
        return
    for client in list(ctx.clients.values()):
        if client.user is not old or not client.subscriptions:
            continue
        if subscriber_denied(upcoming, client.channels | client.shard_channels, client.patterns):
            kill_client(client)


@command(
    "acl|setuser",
    -3,
    _FLAGS,
    group=G,
    acl=_ADMIN,
    summary="Creates a user or changes its rules.",
    since="6.0.0",
    complexity="O(N) in the rules",
)
def acl_setuser(ctx: Context, argv: list[bytes]) -> Any:
    name = argv[2]
    if has_spaces(name):
        raise CommandError(USERNAME_SPACES)
    registry = ctx.acl
    user = registry.users.get(name)
    try:
        candidate = registry.updated(user, name, argv[3:])
    except ValueError as error:
        arg = error.args[0]
        raise CommandError(b"ERR Unmatched parenthesis in acl selector starting at '" + arg + b"'.") from None
    except RuleError as error:
        raise CommandError(
            b"ERR Error in ACL SETUSER modifier '" + error.rule + b"': " + error.reason.encode()
        ) from None
    if user is not None:
        _kill_revoked_subscribers(ctx, candidate, user)
    registry.store(name, candidate)
    return OK


@command(
    "acl|deluser",
    -3,
    _FLAGS,
    group=G,
    acl=_ADMIN,
    summary="Deletes users and closes their connections.",
    since="6.0.0",
    complexity="O(1) per user",
)
def acl_deluser(ctx: Context, argv: list[bytes]) -> Any:
    if b"default" in argv[2:]:
        raise CommandError(DEFAULT_NOT_REMOVABLE)
    deleted = 0
    for name in argv[2:]:
        user = ctx.acl.delete(name)
        if user is not None:
            _kill_user_clients(ctx, user)
            deleted += 1
    return deleted


def _selector_fields(selector: Selector) -> list[Any]:
    return [
        b"commands",
        selector.command_rules().encode("latin-1"),
        b"keys",
        selector.key_rules().encode("latin-1"),
        b"channels",
        selector.channel_rules().encode("latin-1"),
    ]


def _as_map(fields: list[Any]) -> dict[bytes, Any]:
    return dict(zip(fields[::2], fields[1::2], strict=True))


@command(
    "acl|getuser", 3, _FLAGS, group=G, acl=_ADMIN, summary="Describes a user's flags and rules.", since="6.0.0"
)
def acl_getuser(ctx: Context, argv: list[bytes]) -> Any:
    user = ctx.acl.users.get(argv[2])
    if user is None:
        return None
    fields: list[Any] = [
        b"flags",
        SetReply([flag.encode() for flag in USER_FLAGS if flag in user.flags]),
        b"passwords",
        [digest.encode() for digest in user.passwords],
    ]
    fields += _selector_fields(user.selectors[0])
    fields += [b"selectors", [_as_map(_selector_fields(selector)) for selector in user.selectors[1:]]]
    return _as_map(fields)


@command(
    "acl|users", 2, _FLAGS, group=G, acl=_ADMIN, summary="Lists the usernames.", since="6.0.0", complexity="O(N)"
)
def acl_users(ctx: Context, argv: list[bytes]) -> Any:
    return ctx.acl.names()


@command(
    "acl|list",
    2,
    _FLAGS,
    group=G,
    acl=_ADMIN,
    summary="Lists every user as a rule line of the ACL file.",
    since="6.0.0",
    complexity="O(N)",
)
def acl_list(ctx: Context, argv: list[bytes]) -> Any:
    return ctx.acl.describe_all()


@command(
    "acl|whoami", 2, _PLAIN_FLAGS, group=G, acl=("@slow",), summary="Names this connection's user.", since="6.0.0"
)
def acl_whoami(ctx: Context, argv: list[bytes]) -> Any:
    user = ctx.client.user
    return user.name if user is not None else None


@command(
    "acl|cat",
    -2,
    _PLAIN_FLAGS,
    group=G,
    acl=("@slow",),
    summary="Lists the command categories, or the commands of one category.",
    since="6.0.0",
)
def acl_cat(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        return [name.encode() for name in CATEGORIES]
    if len(argv) > 3:
        raise CommandError(errors.subcommand_syntax(argv[1], b"ACL"))
    category = argv[2].decode("latin-1").lower()
    if category not in CATEGORIES:
        raise CommandError(b"ERR Unknown category '" + argv[2][:128] + b"'")
    return [cmd.name.encode() for cmd in category_members("@" + category)]


@command(
    "acl|genpass",
    -2,
    _PLAIN_FLAGS,
    group=G,
    acl=("@slow",),
    summary="Generates a random password (256 bits, or the bits asked for) in hexadecimal.",
    since="6.0.0",
)
def acl_genpass(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.subcommand_syntax(argv[1], b"ACL"))
    bits = parse_int(argv[2]) if len(argv) == 3 else 256
    if bits <= 0 or bits > GENPASS_BITS:
        raise CommandError(GENPASS_RANGE)
    chars = (bits + 3) // 4
    return secrets.token_hex((chars + 1) // 2)[:chars].encode()


@command(
    "acl|log",
    -2,
    _FLAGS,
    group=G,
    acl=_ADMIN,
    options=("RESET",),
    summary="Shows the most recent denied commands and failed logins, or clears them.",
    since="6.0.0",
    complexity="O(N) in the entries shown",
)
def acl_log(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.subcommand_syntax(argv[1], b"ACL"))
    log = ctx.acl.log
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            log.reset()
            return OK
        count = max(parse_int(argv[2]), 0)
    now = int(time.time() * 1000)
    return [
        {
            b"count": entry.count,
            b"reason": REASONS[entry.reason],
            b"context": entry.context,
            b"object": entry.object,
            b"username": entry.username,
            b"age-seconds": (now - entry.ctime_ms) / 1000,
            b"client-info": entry.client_info,
        }
        for entry in log.entries[:count]
    ]


@command(
    "acl|dryrun",
    -4,
    _FLAGS,
    group=G,
    acl=_ADMIN,
    summary="Tells whether a user could run a command, without running it.",
    since="7.0.0",
)
def acl_dryrun(ctx: Context, argv: list[bytes]) -> Any:
    user = ctx.acl.users.get(argv[2])
    if user is None:
        raise CommandError(b"ERR User '" + argv[2] + b"' not found")
    call = argv[3:]
    cmd = lookup(call)
    if isinstance(cmd, bytes):
        raise CommandError(b"ERR Command '" + argv[3] + b"' not found")
    if not cmd.accepts_arity(len(call)):
        raise CommandError(errors.wrong_arity(cmd.name.encode()))
    denial, position = acl.check(user, cmd, call)
    if denial == acl.DENIED_COMMAND:
        return b"This user has no permissions to run the '" + cmd.name.encode() + b"' command"
    if denial == acl.DENIED_KEY:
        return b"This user has no permissions to access the '" + call[position] + b"' key"
    if denial == acl.DENIED_CHANNEL:
        return b"This user has no permissions to access the '" + call[position] + b"' channel"
    return OK


def _acl_file(ctx: Context) -> str:
    path = ctx.config.values["aclfile"]
    if not path:
        raise CommandError(NO_ACL_FILE)
    return path


@command("acl|load", 2, _FLAGS, group=G, acl=_ADMIN, summary="Replaces the users by the ACL file's.", since="6.0.0")
def acl_load(ctx: Context, argv: list[bytes]) -> Any:
    registry = ctx.acl
    before = dict(registry.users)
    problems = registry.load_file(_acl_file(ctx))
    if problems is not None:
        raise CommandError(b"ERR " + problems.encode("latin-1"))
    for name, user in before.items():  # users the file no longer has, or has anew, lose their connections
        if registry.users.get(name) is not user:
            _kill_user_clients(ctx, user)
    return OK


@command("acl|save", 2, _FLAGS, group=G, acl=_ADMIN, summary="Writes the users to the ACL file.", since="6.0.0")
def acl_save(ctx: Context, argv: list[bytes]) -> Any:
    if not ctx.acl.save_file(_acl_file(ctx)):
        raise CommandError(SAVE_FAILED)
    return OK


@command(
    "acl|help",
    2,
    "loading stale",
    group=G,
    acl=("@slow",),
    summary="Lists the ACL subcommands with a line or two on each.",
    since="6.0.0",
)
def acl_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(b"ACL", ACL_HELP)


ACL_HELP = [
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
]
