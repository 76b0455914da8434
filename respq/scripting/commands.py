"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: the commands over respq.scripting.engine."""

from __future__ import annotations

from typing import Any

from respq import errors
from respq.commands.args import parse_int
from respq.commands.context import Context
from respq.commands.help import help_lines
from respq.commands.table import command, container
from respq.errors import CommandError
from respq.replies import OK
from respq.scripting import errors as script_errors
from respq.scripting.engine import ScriptEngine, show_command
from respq.scripting.function_commands import kill_refusal

G = "scripting"
_ACL = ("@slow", "@scripting")


def scripts(ctx: Context) -> ScriptEngine:
    return ctx.server.scripts  # type: ignore[attr-defined,no-any-return]


def _numkeys(argv: list[bytes]) -> int:
    text = argv[2]
    # The usual 0-9 without the full parse (EVALSHA's hot path).
    numkeys = text[0] - 48 if len(text) == 1 and text.isdigit() else parse_int(text, errors.NOT_INTEGER)
    if numkeys > len(argv) - 3:
        raise CommandError(script_errors.NUMKEYS_TOO_BIG)
    if numkeys < 0:
        raise CommandError(script_errors.NUMKEYS_NEGATIVE)
    return numkeys


def _key_positions(argv: list[bytes]) -> list[int]:
    """COMMAND GETKEYS: the keys after numkeys (Redis's evalGetKeys gives none when numkeys is out of range)."""
    try:
        numkeys = int(argv[2])
    except ValueError:
        return []
    if numkeys < 0 or numkeys > len(argv) - 3:
        return []
    return list(range(3, 3 + numkeys))


def _eval(ctx: Context, argv: list[bytes], by_sha: bool, read_only: bool) -> Any:
    engine = scripts(ctx)
    try:
        numkeys = _numkeys(argv)
        if by_sha:
            script = engine.scripts.get(argv[1].lower()) if len(argv[1]) == 40 else None
            if script is None:
                raise CommandError(script_errors.NOSCRIPT)
        else:
            script = engine.create(argv[1])
    except CommandError:
        show_command(ctx, argv)  # Redis's handler shows the call before it finds what is wrong with it
        raise
    return engine.run(ctx, script, numkeys, argv[3:], read_only, argv)


_SUMMARY_EVAL = "Runs a Lua script on the server, atomically."
_EVAL_FLAGS = "noscript stale skip_monitor no_mandatory_keys movablekeys"
_EVAL_RO_FLAGS = "readonly noscript stale skip_monitor no_mandatory_keys movablekeys"
_COMPLEXITY = "Depends on the script that is executed."


@command(
    "eval",
    -3,
    _EVAL_FLAGS,
    group=G,
    acl=_ACL,
    key_finder=_key_positions,
    summary=_SUMMARY_EVAL,
    since="2.6.0",
    complexity=_COMPLEXITY,
)
def eval_(ctx: Context, argv: list[bytes]) -> Any:
    return _eval(ctx, argv, False, False)


@command(
    "evalsha",
    -3,
    _EVAL_FLAGS,
    group=G,
    acl=_ACL,
    key_finder=_key_positions,
    since="2.6.0",
    complexity=_COMPLEXITY,
    summary="Runs a Lua script cached on the server, named by its SHA1 digest.",
)
def evalsha(ctx: Context, argv: list[bytes]) -> Any:
    return _eval(ctx, argv, True, False)


@command(
    "eval_ro",
    -3,
    _EVAL_RO_FLAGS,
    group=G,
    acl=_ACL,
    key_finder=_key_positions,
    since="7.0.0",
    complexity=_COMPLEXITY,
    summary="Runs a read-only Lua script on the server.",
)
def eval_ro(ctx: Context, argv: list[bytes]) -> Any:
    return _eval(ctx, argv, False, True)


@command(
    "evalsha_ro",
    -3,
    _EVAL_RO_FLAGS,
    group=G,
    acl=_ACL,
    key_finder=_key_positions,
    since="7.0.0",
    complexity=_COMPLEXITY,
    summary="Runs a read-only Lua script cached on the server, named by its SHA1 digest.",
)
def evalsha_ro(ctx: Context, argv: list[bytes]) -> Any:
    return _eval(ctx, argv, True, True)


# ---- SCRIPT -------------------------------------------------------------------------------------------------------
container("script", group=G, summary="Groups the subcommands that manage the Lua script cache.", since="2.6.0")


@command(
    "script|load",
    3,
    "noscript stale",
    group=G,
    acl=_ACL,
    since="2.6.0",
    complexity="O(N) in the script's length",
    summary="Compiles a Lua script and caches it without running it; replies with its SHA1 digest.",
)
def script_load(ctx: Context, argv: list[bytes]) -> Any:
    return scripts(ctx).create(argv[2]).sha


@command(
    "script|exists",
    -3,
    "noscript",
    group=G,
    acl=_ACL,
    since="2.6.0",
    complexity="O(N) in the digests given",
    summary="Tells, for each SHA1 digest, whether the script cache holds that script.",
)
def script_exists(ctx: Context, argv: list[bytes]) -> Any:
    cached = scripts(ctx).scripts
    return [int(sha.lower() in cached) for sha in argv[2:]]


@command(
    "script|flush",
    -2,
    "noscript",
    group=G,
    acl=_ACL,
    options=("ASYNC", "SYNC"),
    since="2.6.0",
    complexity="O(N) in the scripts cached",
    summary="Empties the Lua script cache.",
)
def script_flush(ctx: Context, argv: list[bytes]) -> Any:
    # ASYNC and SYNC end the same way: the cache is dropped at once and the runtime freed by the collector.
    if len(argv) > 3 or (len(argv) == 3 and argv[2].upper() not in (b"ASYNC", b"SYNC")):
        raise CommandError(script_errors.FLUSH_OPTION)
    scripts(ctx).flush()
    return OK


@command(
    "script|kill",
    2,
    "noscript allow_busy",
    group=G,
    acl=_ACL,
    since="2.6.0",
    summary="Stops the running script, if it has not written anything yet.",
)
def script_kill(ctx: Context, argv: list[bytes]) -> Any:
    refusal = kill_refusal(ctx, for_functions=False)
    if refusal is not None:
        raise CommandError(refusal)
    return OK


@command(
    "script|debug",
    3,
    "noscript",
    group=G,
    acl=_ACL,
    options=("NO",),  # YES and SYNC are refused: respq has no Lua debugger
    since="3.2.0",
    summary="Sets the debug mode of the scripts this connection runs; respq has no debugger, so only NO.",
)
def script_debug(ctx: Context, argv: list[bytes]) -> Any:
    mode = argv[2].lower()
    if mode == b"no":
        return OK
    if mode in (b"yes", b"sync"):
        raise CommandError(script_errors.DEBUG_UNSUPPORTED)
    raise CommandError(script_errors.DEBUG_OPTION)


@command(
    "script|help",
    2,
    "loading stale",
    group=G,
    acl=_ACL,
    since="5.0.0",
    summary="Lists the SCRIPT subcommands with a line or two on each.",
)
def script_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(
        b"SCRIPT",
        [
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    )
