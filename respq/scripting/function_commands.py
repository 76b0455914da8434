"""FUNCTION and FCALL / FCALL_RO: the commands over respq.scripting.functions."""

from __future__ import annotations

import time
from typing import Any

from respq.commands.args import parse_int
from respq.commands.context import Context
from respq.commands.help import help_lines
from respq.commands.table import command, container
from respq.errors import CommandError, subcommand_syntax
from respq.glob import glob_match
from respq.replies import OK, SetReply, SimpleString
from respq.scripting import errors as script_errors
from respq.scripting.engine import SHEBANG_FLAGS, ScriptEngine, show_command
from respq.scripting.functions import ENGINE_NAME, FLAG_NAMES, FunctionEngine, FunctionError, Library
from respq.scripting.rdb import PayloadError
from respq.storage.errors import StorageError

G = "scripting"
_ACL = ("@slow", "@scripting")
_ACL_WRITE = ("@write", "@slow", "@scripting")


def functions(ctx: Context) -> FunctionEngine:
    return ctx.server.functions  # type: ignore[attr-defined,no-any-return]


def _scripts(ctx: Context) -> ScriptEngine:
    return ctx.server.scripts  # type: ignore[attr-defined,no-any-return]


def _fcall_keys(argv: list[bytes]) -> list[int]:
    """COMMAND GETKEYS: the keys after numkeys (none when numkeys is out of range, as Redis's evalGetKeys)."""
    try:
        numkeys = int(argv[2])
    except ValueError:
        return []
    if numkeys < 0 or numkeys > len(argv) - 3:
        return []
    return list(range(3, 3 + numkeys))


def _fcall(ctx: Context, argv: list[bytes], read_only: bool) -> Any:
    engine = functions(ctx)
    try:
        function = engine.functions.get(argv[1].lower())
        if function is None:
            raise CommandError(script_errors.FUNCTION_NOT_FOUND)
        numkeys = parse_int(argv[2], script_errors.FUNCTION_BAD_NUMKEYS)
        if numkeys > len(argv) - 3:
            raise CommandError(script_errors.NUMKEYS_TOO_BIG)
        if numkeys < 0:
            raise CommandError(script_errors.NUMKEYS_NEGATIVE)
    except CommandError:
        show_command(ctx, argv)  # Redis's handler shows the call before it finds what is wrong with it
        raise
    engine.running_argv = argv
    return engine.run(ctx, function.script, numkeys, argv[3:], read_only, argv)


_FCALL_COMPLEXITY = "Depends on the function that is executed."


@command(
    "fcall",
    -3,
    "noscript stale skip_monitor no_mandatory_keys movablekeys",
    group=G,
    acl=_ACL,
    key_finder=_fcall_keys,
    since="7.0.0",
    complexity=_FCALL_COMPLEXITY,
    summary="Invokes a function.",
)
def fcall(ctx: Context, argv: list[bytes]) -> Any:
    return _fcall(ctx, argv, False)


@command(
    "fcall_ro",
    -3,
    "readonly noscript stale skip_monitor no_mandatory_keys movablekeys",
    group=G,
    acl=_ACL,
    key_finder=_fcall_keys,
    since="7.0.0",
    complexity=_FCALL_COMPLEXITY,
    summary="Invokes a read-only function.",
)
def fcall_ro(ctx: Context, argv: list[bytes]) -> Any:
    return _fcall(ctx, argv, True)


# ---- FUNCTION -----------------------------------------------------------------------------------------------------
container("function", group=G, summary="A container for function commands.", since="7.0.0")


def _changing(ctx: Context, change: Any) -> Any:
    """Runs ``change`` (which links or unlinks libraries) and journals the libraries it leaves; a refused write
    (full disk, disk error) leaves the libraries as they were."""
    engine = functions(ctx)
    libraries, by_name = dict(engine.libraries), dict(engine.functions)
    try:
        result = change(engine)
    except FunctionError as error:
        raise CommandError(error.message) from None
    try:
        engine.save(ctx.engine)
    except StorageError:
        engine.libraries, engine.functions = libraries, by_name
        raise
    return result


@command(
    "function|load",
    -3,
    "write denyoom noscript",
    group=G,
    acl=_ACL_WRITE,
    options=("REPLACE",),
    since="7.0.0",
    complexity="O(1) (considering compilation time is redundant)",
    summary="Creates a library.",
)
def function_load(ctx: Context, argv: list[bytes]) -> Any:
    replace = False
    pos = 2
    while pos < len(argv) - 1:
        arg = argv[pos]
        pos += 1
        if arg.lower() == b"replace":
            replace = True
            continue
        raise CommandError(script_errors.FUNCTION_UNKNOWN_OPTION % arg)
    code = argv[pos]
    return _changing(ctx, lambda engine: engine.load(code, replace))


@command(
    "function|delete",
    3,
    "write noscript",
    group=G,
    acl=_ACL_WRITE,
    since="7.0.0",
    complexity="O(1)",
    summary="Deletes a library and its functions.",
)
def function_delete(ctx: Context, argv: list[bytes]) -> Any:
    if argv[2] not in functions(ctx).libraries:
        raise CommandError(script_errors.LIBRARY_NOT_FOUND)
    _changing(ctx, lambda engine: engine.delete(argv[2]))
    return OK


def _syntax(argv: list[bytes]) -> CommandError:
    return CommandError(subcommand_syntax(argv[1], argv[0].upper()))


@command(
    "function|flush",
    -2,
    "write noscript",
    group=G,
    acl=_ACL_WRITE,
    options=("ASYNC", "SYNC"),
    since="7.0.0",
    complexity="O(N) where N is the number of functions deleted",
    summary="Deletes all libraries and functions.",
)
def function_flush(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise _syntax(argv)
    if len(argv) == 3 and argv[2].lower() not in (b"sync", b"async"):
        raise CommandError(script_errors.FUNCTION_FLUSH_OPTION)
    # ASYNC and SYNC end the same way: the libraries go at once and the runtime is freed by the collector.
    engine = functions(ctx)
    libraries, by_name = engine.libraries, engine.functions
    engine.libraries, engine.functions = {}, {}
    try:
        engine.save(ctx.engine)
    except StorageError:
        engine.libraries, engine.functions = libraries, by_name
        raise
    engine.flush()
    return OK


def _library_entry(library: Library, with_code: bool) -> dict[bytes, Any]:
    entry: dict[bytes, Any] = {
        b"library_name": library.name,
        b"engine": ENGINE_NAME,
        b"functions": [
            {
                b"name": function.name,
                b"description": function.description,
                b"flags": SetReply([SimpleString(name) for name in FLAG_NAMES if function.flags & SHEBANG_FLAGS[name]]),
            }
            for function in library.functions.values()
        ],
    }
    if with_code:
        entry[b"library_code"] = library.code
    return entry


@command(
    "function|list",
    -2,
    "noscript",
    group=G,
    acl=_ACL,
    options=("LIBRARYNAME", "WITHCODE"),
    since="7.0.0",
    complexity="O(N) where N is the number of functions",
    summary="Returns information about all libraries.",
)
def function_list(ctx: Context, argv: list[bytes]) -> Any:
    with_code = False
    pattern = None
    i = 2
    while i < len(argv):
        arg = argv[i]
        if not with_code and arg.lower() == b"withcode":
            with_code = True
        elif pattern is None and arg.lower() == b"libraryname":
            if i >= len(argv) - 1:
                raise CommandError(script_errors.FUNCTION_LIST_NAME_MISSING)
            i += 1
            pattern = argv[i]
        else:
            raise CommandError(script_errors.FUNCTION_LIST_UNKNOWN % arg)
        i += 1
    return [
        _library_entry(library, with_code)
        for library in functions(ctx).libraries.values()
        if pattern is None or glob_match(pattern, library.name, nocase=True)
    ]


@command(
    "function|dump",
    2,
    "noscript",
    group=G,
    acl=_ACL,
    since="7.0.0",
    complexity="O(N) where N is the number of functions",
    summary="Dumps all libraries into a serialized binary payload.",
)
def function_dump(ctx: Context, argv: list[bytes]) -> Any:
    return functions(ctx).dump()


_POLICIES = (b"append", b"replace", b"flush")


@command(
    "function|restore",
    -3,
    "write denyoom noscript",
    group=G,
    acl=_ACL_WRITE,
    options=("APPEND", "FLUSH", "REPLACE"),
    since="7.0.0",
    complexity="O(N) where N is the number of functions on the payload",
    summary="Restores all libraries from a payload.",
)
def function_restore(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) > 4:
        raise _syntax(argv)
    policy = b"append"
    if len(argv) == 4:
        policy = argv[3].lower()
        if policy not in _POLICIES:
            raise CommandError(script_errors.FUNCTION_RESTORE_POLICY)
    engine = functions(ctx)
    try:
        new = engine.parse_dump(argv[2])
    except PayloadError as error:
        raise CommandError(error.message) from None
    except FunctionError as error:
        raise CommandError(error.message) from None

    def restore(engine: FunctionEngine) -> None:
        if policy == b"flush":
            engine.libraries, engine.functions = {}, {}
        engine.join(new, replace=policy == b"replace")

    _changing(ctx, restore)
    return OK


@command(
    "function|stats",
    2,
    "noscript allow_busy",
    group=G,
    acl=_ACL,
    since="7.0.0",
    complexity="O(1)",
    summary="Returns information about a function during execution.",
)
def function_stats(ctx: Context, argv: list[bytes]) -> Any:
    if _scripts(ctx).running is not None:
        raise CommandError(script_errors.BUSY_EVAL)
    engine = functions(ctx)
    run = engine.running
    running = None
    if run is not None:
        running = {
            b"name": run.name,
            b"command": list(engine.running_argv),
            b"duration_ms": int((time.monotonic() - run.started) * 1000),
        }
    counts = {
        b"libraries_count": len(engine.libraries),
        b"functions_count": len(engine.functions),
    }
    return {b"running_script": running, b"engines": {ENGINE_NAME: counts}}


@command(
    "function|kill",
    2,
    "noscript allow_busy",
    group=G,
    acl=_ACL,
    since="7.0.0",
    complexity="O(1)",
    summary="Terminates a function during execution.",
)
def function_kill(ctx: Context, argv: list[bytes]) -> Any:
    refusal = kill_refusal(ctx, for_functions=True)
    if refusal is not None:
        raise CommandError(refusal)
    return OK


def kill_refusal(ctx: Context, for_functions: bool) -> bytes | None:
    """SCRIPT KILL and FUNCTION KILL (scriptKill): None once the running script or function is marked killed, else
    the error; each refuses to stop what the other runs."""
    scripts, funcs = _scripts(ctx), functions(ctx)
    run = scripts.running or funcs.running
    if run is None:
        return script_errors.NOTBUSY
    if run.dirty:
        return script_errors.UNKILLABLE
    if for_functions and scripts.running is not None:
        return script_errors.BUSY_EVAL
    if not for_functions and funcs.running is not None:
        return script_errors.BUSY_FUNCTION
    run.killed = True
    return None


@command(
    "function|help",
    2,
    "loading stale",
    group=G,
    acl=_ACL,
    since="7.0.0",
    complexity="O(1)",
    summary="Returns helpful text about the different subcommands.",
)
def function_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(
        b"FUNCTION",
        [
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION "
            "RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    )
