"""The Lua engine behind EVAL and EVALSHA: one Lua 5.1 runtime (lupa) per server, the script cache, and the
redis.* API that runs commands through the same command table and handlers as clients.

A script runs on the event loop, inside one ``engine.atomic()``: its writes reach the journal as one record when it
ends (all or none after a crash), and nothing else runs meanwhile. Past busy-reply-threshold a Lua count hook calls
``serve_while_busy``, which the server layer provides: it answers other clients BUSY and runs only the commands
Redis allows then (SCRIPT KILL, SHUTDOWN NOSAVE, ...). docs/scripting.md describes the design.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lupa.lua51 as lua51

from respq import REDIS_COMPAT_VERSION, acl, errors
from respq.acl.log import LUA
from respq.blocking import Block
from respq.client import Client
from respq.cluster import key_slot
from respq.cluster.slotmap import CLUSTERDOWN_STATE
from respq.commands.context import Context
from respq.commands.dispatch import acl_denial, call, call_keys
from respq.commands.table import COMMANDS, Command
from respq.errors import CommandError
from respq.protocol import ProtocolError, encode_reply, split_inline
from respq.replies import ErrorReply, Raw, SimpleString, StreamedArray
from respq.scripting import errors as script_errors
from respq.scripting.libraries import install_libraries
from respq.scripting.prelude import PRELUDE
from respq.storage.errors import CorruptionError, StorageError, StorageReadError

# Shebang flags (Redis's scripts_flags_def); EVAL_COMPAT marks a script without a shebang.
NO_WRITES, ALLOW_OOM, ALLOW_STALE, NO_CLUSTER, ALLOW_CROSS_SLOT, EVAL_COMPAT = 1, 2, 4, 8, 16, 32
SHEBANG_FLAGS = {
    b"no-writes": NO_WRITES,
    b"allow-oom": ALLOW_OOM,
    b"allow-stale": ALLOW_STALE,
    b"no-cluster": NO_CLUSTER,
    b"allow-cross-slot-keys": ALLOW_CROSS_SLOT,
}
HOOK_COUNT = 100_000  # Lua instructions between two looks at the clock (Redis's count hook)
CALLS_PER_CLOCK_LOOK = 256  # redis.call()s between two looks at the clock (a loop of calls runs few instructions)
LOG_LEVELS = ("debug", "verbose", "notice", "warning")
VERSION_NUM = int.from_bytes(bytes(int(part) for part in REDIS_COMPAT_VERSION.split(".")), "big")
# A script's keys and arguments up to this many are passed to Lua as arguments, more as a table (the Lua stack holds
# about 8,000 values).
ARGS_ON_STACK = 1000
# redis.call arguments: numbers as Redis formats them (%.17g), integers up to this size printed directly.
_EXACT_INT = 10**17
RAND_MAX = 2**31 - 1  # REDIS_LRAND48_MAX
# Redis's may_replicate commands (not shown by COMMAND INFO): a read-only script may not run them either.
SCRIPT_PEER = "?:0"  # the address of the client scripts run commands as (no connection), as the slow log shows it
MAY_REPLICATE = frozenset({"publish", "spublish", "pfcount", "eval", "evalsha", "fcall"})


@dataclass(slots=True, eq=False)
class Script:
    sha: bytes  # 40 lowercase hex digits
    body: bytes
    flags: int
    function: Any  # the compiled Lua function
    prepared: Any = None  # ``function`` bound for ScriptEngine.run (prelude's prepare)


class Run:
    """The script being executed: its callers, its rights, and what SCRIPT KILL and the BUSY check need."""

    __slots__ = (
        "allow_oom",
        "caller",
        "calls",
        "cross_slot",
        "ctx",
        "dirty",
        "killed",
        "name",
        "oom",
        "read_only",
        "slot",
        "started",
        "timed_out",
    )

    def __init__(self, caller: Context, ctx: Context, name: bytes, read_only: bool, allow_oom: bool, oom: bool) -> None:
        self.caller = caller
        self.ctx = ctx  # the script client's context (its own database and protocol)
        self.name = name  # the script's SHA1 digest, for the log
        self.read_only = read_only
        self.allow_oom = allow_oom
        self.oom = oom  # over maxmemory when the script started (Redis's pre_command_oom_state)
        self.dirty = False  # a write command ran: SCRIPT KILL can no longer stop it
        self.slot = -1  # cluster mode: the slot of the keys declared or first touched; every call must keep to it
        self.cross_slot = False  # calls may touch (local) keys of several slots: allow-cross-slot-keys, or no shebang
        self.killed = False
        self.timed_out = False
        self.started = time.monotonic()
        self.calls = 0


def show_command(caller: Context, argv: list[bytes]) -> None:
    """Shows an EVAL or FCALL to MONITOR clients. Redis's script handlers feed it themselves as they start (the
    commands are flagged skip_monitor), so that it comes before the calls of the script, and is shown even when the
    handler then fails (a bad numkeys, an unknown script or function, an error in the script)."""
    observers = caller.stats.observers
    if observers.monitors:
        client = caller.client
        observers.feed(client.db, client.addr, argv, client.id)


def sha1hex(data: bytes) -> bytes:
    return hashlib.sha1(data).hexdigest().encode()


def parse_shebang(body: bytes) -> tuple[int, int]:
    """The script's flags and the length of its shebang line (kept out of the code, its newline kept in), as
    evalExtractShebangFlags; raises CommandError for a malformed one."""
    if not body.startswith(b"#!"):
        return EVAL_COMPAT, 0
    end = body.find(b"\n")
    if end < 0:
        raise CommandError(script_errors.SHEBANG_INVALID)
    try:
        parts = split_inline(body[:end])
    except ProtocolError:
        parts = []
    if not parts:
        raise CommandError(script_errors.SHEBANG_ENGINE_MISSING)
    if parts[0] != b"#!lua":
        raise CommandError(script_errors.SHEBANG_ENGINE % parts[0])
    flags = 0
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            raise CommandError(script_errors.SHEBANG_OPTION % part)
        names = part[6:]
        for name in names.split(b",") if names else ():
            flag = SHEBANG_FLAGS.get(name)
            if flag is None:
                raise CommandError(script_errors.SHEBANG_FLAG % name)
            flags |= flag
    return flags, end


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    """Scripts never reach Python objects' attributes (no sandbox escape through a callback's __globals__)."""
    raise AttributeError(name)


class ScriptEngine:
    """The script cache and the Lua runtime, shared by every client of one server."""

    # What other clients get while a script runs long, and the command the log suggests (functions differ).
    busy_reply = script_errors.BUSY_EVAL
    kill_command = "SCRIPT KILL"

    def __init__(self, log: Callable[[str, str], None], memory_limit: int = 0) -> None:
        self.log = log
        self.memory_limit = memory_limit
        self.scripts: dict[bytes, Script] = {}
        self.scripts_memory = 0  # bytes of cached bodies and digests (INFO used_memory_scripts_eval)
        self.running: Run | None = None
        # Set by the server layer: services the other clients while a script runs past busy-reply-threshold.
        self.serve_while_busy: Callable[[Client], None] = lambda caller: None
        self._lua: Any = None
        self._api: Any = None
        self._script_ctx: Context | None = None
        self._commands: dict[bytes, Command] = {}  # redis.call's command names as scripts spell them (no subcommands)
        self._threshold = 5.0
        self._rand_state = 0x1234ABCD330E  # Redis's lrand48 state: the same sequence from the same start
        self._where: Callable[[], bytes] = lambda: b""

    # ---- the runtime ----------------------------------------------------------------------------------------------
    def _runtime(self) -> Any:
        if self._lua is None:
            lua = lua51.LuaRuntime(
                encoding=None,
                register_eval=False,
                register_builtins=False,
                unpack_returned_tuples=True,
                attribute_filter=_deny_attributes,
                max_memory=0,  # counted from the start; the limit applies while a script's Lua code runs
            )
            # The libraries Redis ships to scripts (cjson, cmsgpack, bit, struct) are a separate module.
            install_libraries(lua)
            self._before_prelude(lua)
            prelude = PRELUDE.encode()
            loader = lua.eval(b"function(code) return assert(loadstring(code, '=respq')) end")
            self._api = loader(prelude)(
                self._redis_call,
                self._redis_pcall,
                _unwrap,
                self._unbounded(self._log),
                self._unbounded(self._sha1hex),
                self._unbounded(self._random),
                self._unbounded(self._randomseed),
                self._unbounded(self._interrupt),
                self._unbounded(self._setresp),
                self._unbounded(self._set_repl),
                self._unbounded(self._acl_check),
                REDIS_COMPAT_VERSION.encode(),
                VERSION_NUM,
            )
            self._lua = lua
            api = self._api
            self._where = api.where
            self._table = lua.table_from
            self._make_error = api.make_error
            self._make_status = api.make_status
            self._make_tagged = api.make_tagged
            self._make_verbatim = api.make_verbatim
            self._make_set = api.make_set
            self._make_map = api.make_map
        return self._lua

    def runtime(self) -> Any:
        """The Lua runtime, made if there is none yet."""
        return self._runtime()

    def _before_prelude(self, lua: Any) -> None:
        """Work on a new runtime before the scripts' environment is built (functions capture raw base functions)."""

    def _unbounded(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` called from Lua with script-memory-limit lifted: Python code making Lua values runs outside
        Lua's error protection, where an allocation refused would abort the process. The script's own code is
        held to the limit when it allocates next."""
        limit = self.memory_limit
        if not limit:
            return function

        def unbounded(*args: Any) -> Any:
            set_max_memory = self._lua.set_max_memory
            set_max_memory(0)
            try:
                return function(*args)
            finally:
                set_max_memory(limit)

        return unbounded

    def memory(self) -> int:
        """Bytes the Lua runtime uses (INFO used_memory_lua)."""
        if self._lua is None:
            return 0
        return int(self._lua.eval(b"collectgarbage('count')") * 1024)

    def flush(self) -> None:
        """SCRIPT FLUSH: forgets every script and starts a fresh runtime, as Redis does."""
        self.scripts.clear()
        self.scripts_memory = 0
        self._lua = None
        self._api = None

    # ---- the cache ------------------------------------------------------------------------------------------------
    def create(self, body: bytes, sha: bytes | None = None) -> Script:
        """The cached script with this body, compiled and cached if new; CommandError for a bad shebang or a
        compile error."""
        sha = sha or sha1hex(body)
        script = self.scripts.get(sha)
        if script is not None:
            return script
        flags, shebang_len = parse_shebang(body)
        self._runtime()
        compiled = self._api.compile(body[shebang_len:])
        if type(compiled) is tuple:
            raise CommandError(script_errors.COMPILE % compiled[1])
        script = Script(sha, body, flags, compiled, self._api.prepare(compiled, self._script_resp))
        self.scripts[sha] = script
        self.scripts_memory += len(body) + 2 * len(sha) + 16
        return script

    # ---- running --------------------------------------------------------------------------------------------------
    def run(
        self, caller: Context, script: Script, numkeys: int, argv: list[bytes], read_only: bool, command: list[bytes]
    ) -> Any:
        """Runs a cached script for the calling client with ``argv`` (its keys, the first ``numkeys``, then its
        arguments); its reply (Raw RESP for the caller's protocol), or raises CommandError with Redis's error.
        ``command`` (the EVAL or FCALL) is shown to MONITOR clients before the calls the script makes."""
        engine = caller.engine
        flags = script.flags
        oom = bool(engine.maxmemory) and engine.over_maxmemory()
        if not flags & EVAL_COMPAT:
            # A shebang makes EVAL a write (unless no-writes) and denyoom (unless allow-oom or no-writes) command, so
            # Redis refuses it before it runs as it refuses such commands (and MONITOR does not see it).
            if oom and not flags & (ALLOW_OOM | NO_WRITES):
                raise CommandError(errors.OOM)
            if not flags & NO_WRITES and engine.write_error:
                raise CommandError(errors.misconf(engine.write_error))
        if caller.stats.observers.monitors:
            show_command(caller, command)
        if read_only and not flags & (EVAL_COMPAT | NO_WRITES):
            raise CommandError(script_errors.RO_SCRIPT_WRITES)
        if caller.cluster is not None and flags & NO_CLUSTER and not flags & EVAL_COMPAT:
            raise CommandError(script_errors.NO_CLUSTER_FLAG)
        ctx = self._script_ctx
        if ctx is None or ctx.engine is not engine:
            ctx = self._script_context(caller)
        client = ctx.client
        client.db = caller.client.db
        client.user = caller.client.user  # redis.call runs as the caller's user
        client.protocol = 2
        run = Run(
            caller,
            ctx,
            script.sha,
            read_only or bool(not flags & EVAL_COMPAT and flags & NO_WRITES),
            bool(not flags & EVAL_COMPAT and flags & ALLOW_OOM),
            oom,
        )
        if caller.cluster is not None:
            if numkeys:  # the dispatcher saw them all in one slot served here
                run.slot = key_slot(argv[0])
            run.cross_slot = bool(flags & (EVAL_COMPAT | ALLOW_CROSS_SLOT))  # a script without shebang: as before 7.0
        threshold = caller.config.values["busy-reply-threshold"]
        self._threshold = threshold / 1000
        prepared = script.prepared
        if prepared is None:  # a Script made elsewhere than create()
            prepared = script.prepared = self._api.prepare(script.function, self._script_resp)
        if len(argv) > ARGS_ON_STACK:
            argv = [self._table(argv)]  # built before the memory limit applies
        self.running = run
        limit = self.memory_limit
        lua = self._lua
        try:
            engine.begin_atomic()  # engine.atomic() without a generator's cost
            try:
                if limit:
                    lua.set_max_memory(limit)
                try:
                    outcome = prepared(caller.client.protocol, threshold > 0, numkeys, *argv)
                finally:
                    if limit:
                        lua.set_max_memory(0)
            finally:
                engine.end_atomic()
        except lua51.LuaMemoryError:
            outcome = (False, script_errors.SCRIPT_MEMORY % limit, False, None, None)
        finally:
            self.running = None
            if run.timed_out:
                caller.server.busy_error = None  # type: ignore[attr-defined]
        if limit and lua.get_memory_used() > limit // 2:
            self._api.collect(b"collect")  # what the script left for the collector: before the next one runs
        if outcome[0]:
            if len(outcome) > 2 and outcome[2] is not None:  # error replies inside the reply, for errorstats
                for message in outcome[2].values():
                    caller.stats.count_error(message)
            return Raw(outcome[1])
        _, message, counted, source, line = outcome
        if message is None:
            message = b"ERR (null)"
        elif message == b"ERR not enough memory" and self.memory_limit:
            message = script_errors.SCRIPT_MEMORY % self.memory_limit
        if source is not None and line is not None:
            message += b" script: %s, on %s:%s." % (script.sha, source, _lua_text(line))
        message = message.replace(b"\r", b" ").replace(b"\n", b" ")
        raise ScriptFailed(message, counted)

    def _script_context(self, caller: Context) -> Context:
        ctx = self._script_ctx
        if ctx is None or ctx.engine is not caller.engine:
            client = Client(SCRIPT_PEER, "", authenticated=True)
            client.script = True
            ctx = self._script_ctx = caller.for_client(client)
        return ctx

    def _script_resp(self) -> int:
        run = self.running
        return run.ctx.client.protocol if run is not None else 2

    def may_replicate(self, cmd: Command, argv: list[bytes]) -> bool:
        """Whether ``cmd`` counts as a write for CLIENT PAUSE WRITE beyond its write flag: Redis's may-replicate
        commands, EVAL and EVALSHA unless the script's shebang says no-writes (as evalGetCommandFlags decides)."""
        name = cmd.name
        if name not in MAY_REPLICATE:
            return False
        if name not in ("eval", "evalsha") or len(argv) < 2:
            return True
        if name == "evalsha":
            script = self.scripts.get(argv[1].lower())
            flags = EVAL_COMPAT if script is None else script.flags
        else:
            script = self.scripts.get(sha1hex(argv[1]))
            try:
                flags = parse_shebang(argv[1])[0] if script is None else script.flags
            except CommandError:
                flags = EVAL_COMPAT
        return bool(flags & EVAL_COMPAT or not flags & NO_WRITES)

    # ---- callbacks from Lua ---------------------------------------------------------------------------------------
    def _interrupt(self) -> bool:
        """The count hook: past busy-reply-threshold the other clients are served; True once SCRIPT KILL asked."""
        run = self.running
        if run is None:
            return False
        if not run.timed_out:
            elapsed = time.monotonic() - run.started
            if elapsed < self._threshold:
                return False
            run.timed_out = True
            self.log(
                "warning",
                f"Slow script detected: still in execution after {int(elapsed * 1000)} milliseconds. You can try "
                f"killing the script using the {self.kill_command} command. Script name is: {run.name.decode()}.",
            )
            run.caller.server.busy_error = self.busy_reply  # type: ignore[attr-defined]
        self.serve_while_busy(run.caller.client)
        if run.killed:
            self.log("warning", "Lua script killed by user with SCRIPT KILL.")
        return run.killed

    def _redis_call(self, *args: Any) -> Any:
        """redis.call: the reply as a Lua value; an error raises (Lua sees the error table, see _unwrap). Runs with
        script-memory-limit lifted, as _unbounded says (inlined: this is the hot path)."""
        limit = self.memory_limit
        if limit:
            self._lua.set_max_memory(0)
        try:
            ok, value = self._call(args)
        finally:
            if limit:
                self._lua.set_max_memory(limit)
        if ok:
            return value
        raise CallFailed(value)

    def _redis_pcall(self, *args: Any) -> Any:
        """redis.pcall: the reply as a Lua value, an error as its table."""
        limit = self.memory_limit
        if limit:
            self._lua.set_max_memory(0)
        try:
            return self._call(args)[1]
        except CallFailed as killed:
            return killed.table  # the next line the script runs raises the kill
        finally:
            if limit:
                self._lua.set_max_memory(limit)

    def _call(self, args: tuple[Any, ...]) -> tuple[bool, Any]:
        """(True, the reply as a Lua value) or (False, the error table)."""
        run = self.running
        if run is None:
            return False, self._make_error(b"ERR redis.call/pcall can only be called inside a script invocation")
        if not args:
            return False, self._make_error(script_errors.CALL_NO_ARGS)
        argv = _argv(args)
        if argv is None:
            return False, self._make_error(script_errors.CALL_BAD_ARG)
        run.calls += 1
        if not run.calls % CALLS_PER_CLOCK_LOOK and self._threshold > 0 and self._interrupt():
            self._api.arm_kill()  # the script stops at its next line whatever it catches
            raise CallFailed(self._make_error(script_errors.SCRIPT_KILLED))
        ctx = run.ctx
        cmd = self._commands.get(argv[0])
        if cmd is None:
            cmd = COMMANDS.get(argv[0].lower())
            if cmd is not None and cmd.subcommands:
                cmd = cmd.subcommands.get(argv[1].lower()) if len(argv) > 1 else cmd
            elif cmd is not None and len(self._commands) < 256:
                self._commands[argv[0]] = cmd  # as the script spells it: no lower() next time
        if cmd is None or not cmd.accepts_arity(len(argv)):
            message = script_errors.CALL_UNKNOWN if cmd is None else script_errors.CALL_ARITY
            return False, self._make_error(ctx.stats.rejected(message, cmd).message)
        flags = cmd.flags
        if not ctx.client.user.unrestricted and "noscript" not in flags:
            denial = acl_denial(ctx, cmd, argv, LUA, run.caller.client)
            if denial:
                message = script_errors.ACL_DENIED[denial]
                return False, self._make_error(ctx.stats.rejected(message, cmd).message)
        if "write" in flags:
            # A write after the first one, in a script that may write, passes every check (_refusal's order).
            if run.read_only or not run.dirty or "noscript" in flags:
                refusal = self._refusal(run, cmd)
                if refusal is not None:
                    return False, self._make_error(ctx.stats.rejected(refusal, cmd).message)
            run.dirty = True
        else:
            refusal = self._refusal(run, cmd)
            if refusal is not None:
                return False, self._make_error(ctx.stats.rejected(refusal, cmd).message)
        if ctx.cluster is not None and (cmd.first_key > 0 or cmd.key_finder is not None):
            refusal = self._cluster_refusal(run, cmd, argv)
            if refusal is not None:
                return False, self._make_error(ctx.stats.rejected(refusal, cmd).message)
        try:
            reply = call(ctx, cmd, argv)
        except StorageError as error:  # raised past the handler (a value read while encoding)
            reply = ErrorReply(errors.corrupt_data(str(error)))
        if type(reply) is Block:  # blocking commands never block in a script
            reply = reply.timeout_reply
        kind = type(reply)
        if kind is bytes or kind is int:
            return True, reply
        if kind is ErrorReply:
            return False, self._make_error(_trimmed(reply.message))
        if kind is SimpleString:  # +OK: a status table, whatever the protocol
            return True, self._make_status(reply.text)
        if kind is list and all(type(item) is bytes for item in reply):  # an array of bulk strings in either protocol
            return True, self._table(reply)
        if reply is None:
            return True, False if ctx.client.protocol == 2 else None
        return True, self._to_lua(reply, ctx.client.protocol)

    def _refusal(self, run: Run, cmd: Command) -> bytes | None:
        """Why a script may not run ``cmd`` now (scriptCall's checks, in Redis's order), or None."""
        flags = cmd.flags
        if "noscript" in flags:
            return script_errors.CALL_NOSCRIPT
        is_write = "write" in flags
        if run.read_only and (is_write or cmd.name in MAY_REPLICATE):
            return script_errors.CALL_WRITE_RO
        if is_write and not run.dirty:
            engine = run.ctx.engine
            if engine.write_error:
                return errors.misconf(engine.write_error)
        if not run.allow_oom and run.oom and not run.dirty and "denyoom" in flags and run.ctx.engine.maxmemory:
            return errors.OOM
        return None

    @staticmethod
    def _cluster_refusal(run: Run, cmd: Command, argv: list[bytes]) -> bytes | None:
        """Cluster mode: a call's keys must be served here and, unless the script allows cross-slot keys, share
        the slot of the keys the script declared or touched first."""
        keys = call_keys(cmd, argv)
        if not keys:
            return None
        redirect = run.ctx.cluster.route(keys, shard_pubsub=cmd.not_key)  # type: ignore[union-attr]
        if redirect == CLUSTERDOWN_STATE:
            return script_errors.CALL_CLUSTER_DOWN
        if redirect is not None:
            return script_errors.CALL_NON_LOCAL_KEY
        if not run.cross_slot:
            slot = key_slot(keys[0])
            if run.slot < 0:
                run.slot = slot
            elif slot != run.slot:
                return script_errors.CALL_CROSS_SLOT
        return None

    def _to_lua(self, reply: Any, protocol: int) -> Any:
        """A reply as a script sees it: encoded as a client speaking the script's protocol would get it, then
        parsed back as Redis's redisProtocolToLuaType does."""
        if type(reply) is StreamedArray:
            try:
                reply = reply.materialize()
            except (CorruptionError, StorageReadError) as error:
                return self._make_error(errors.corrupt_data(str(error)))
        value, _ = self._parse(encode_reply(reply, protocol), 0)
        return value

    def _parse(self, data: bytes, pos: int) -> tuple[Any, int]:
        kind = data[pos : pos + 1]
        end = data.index(b"\r\n", pos)
        line = data[pos + 1 : end]
        pos = end + 2
        if kind == b"$":
            size = int(line)
            if size < 0:
                return False, pos
            return data[pos : pos + size], pos + size + 2
        if kind == b":":
            return int(line), pos
        if kind == b"+":
            return self._make_status(line), pos
        if kind == b"-":
            return self._make_error(line), pos
        if kind in (b"*", b"~", b"%", b">"):
            count = int(line)
            if count < 0:
                return False, pos
            if kind == b"%":
                count *= 2
            items = []
            for _ in range(count):
                item, pos = self._parse(data, pos)
                items.append(item)
            # Tables built from lists: as call arguments, the items would be limited by the Lua stack.
            if kind == b"~":
                return self._make_set(self._table(items), count), pos
            if kind == b"%":
                return self._make_map(self._table(items), count), pos
            return self._table(items), pos
        if kind == b"_":
            return None, pos
        if kind == b"#":
            return line == b"t", pos
        if kind == b",":
            return self._make_tagged(b"double", float(line)), pos
        if kind == b"(":
            return self._make_tagged(b"big_number", line), pos
        if kind == b"=":
            size = int(line)
            text = data[pos : pos + size]
            return self._make_verbatim(text[:3], text[4:]), pos + size + 2
        raise ValueError(f"unexpected reply type {kind!r}")

    def _acl_check(self, *args: Any) -> bool:
        """redis.acl_check_cmd: whether the script's caller may run the command (nothing is logged)."""
        run = self.running
        if run is None:
            raise CallFailed(self._make_error(script_errors.ACL_CHECK_OUTSIDE))
        if not args:
            raise CallFailed(self._make_error(script_errors.CALL_NO_ARGS))
        argv = _argv(args)
        if argv is None:
            raise CallFailed(self._make_error(script_errors.CALL_BAD_ARG))
        cmd = COMMANDS.get(argv[0].lower())
        if cmd is not None and cmd.subcommands and len(argv) > 1:
            cmd = cmd.subcommands.get(argv[1].lower())
        if cmd is None:
            raise CallFailed(self._make_error(script_errors.ACL_CHECK_UNKNOWN))
        return acl.check(run.caller.client.user, cmd, argv)[0] == acl.OK

    def _fail(self, message: bytes) -> CallFailed:
        """An error of the redis.* API, as luaPushError makes it (a table with "ERR " added)."""
        return CallFailed(self._make_error(message))

    def _sha1hex(self, *args: Any) -> bytes:
        """redis.sha1hex: the digest of a string (a number as Lua prints it, anything else as empty)."""
        if len(args) != 1:
            raise self._fail(b"ERR wrong number of arguments")
        value = args[0]
        return sha1hex(_lua_text(value) if type(value) in (bytes, int, float) else b"")

    def _set_repl(self, *args: Any) -> None:
        """redis.set_repl checks its argument as Redis does; respq journals a script's effects whatever it says
        (there is no replica or AOF to leave out)."""
        if len(args) != 1:
            raise self._fail(b"ERR redis.set_repl() requires two arguments.")
        if _lua_int(args[0]) & ~3:
            raise self._fail(b"ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")

    def _setresp(self, *args: Any) -> None:
        if len(args) != 1:
            raise self._fail(b"ERR redis.setresp() requires one argument.")
        resp = _lua_int(args[0])
        if resp not in (2, 3):
            raise self._fail(b"ERR RESP version must be 2 or 3.")
        run = self.running
        if run is not None:
            run.ctx.client.protocol = resp

    def _log(self, *args: Any) -> None:
        if len(args) < 2:
            raise self._fail(b"ERR redis.log() requires two arguments or more.")
        if _lua_number(args[0]) is None:
            raise self._fail(b"ERR First argument must be a number (log level).")
        level = _lua_int(args[0])
        if not 0 <= level <= 3:
            raise self._fail(b"ERR Invalid debug level.")
        parts = [_lua_text(arg) for arg in args[1:] if type(arg) in (bytes, int, float)]
        self.log(LOG_LEVELS[level], b" ".join(parts).decode("utf-8", "replace"))

    def _random(self, *args: Any) -> float | int:
        """math.random over Redis's lrand48: the C library's algorithm, so the same seed gives the same numbers."""
        self._rand_state = (self._rand_state * 0x5DEECE66D + 0xB) & 0xFFFF_FFFF_FFFF
        r = ((self._rand_state >> 17) % RAND_MAX) / RAND_MAX
        if not args:
            return r
        if len(args) == 1:
            upper = self._checkint(args, 1, b"random")
            if upper < 1:
                raise self._arg_error(1, b"random", b"interval is empty")
            return math.floor(r * upper) + 1
        if len(args) == 2:
            lower = self._checkint(args, 1, b"random")
            upper = self._checkint(args, 2, b"random")
            if lower > upper:
                raise self._arg_error(2, b"random", b"interval is empty")
            return math.floor(r * (upper - lower + 1)) + lower
        raise CallFailed(self._where() + b"wrong number of arguments")

    def _randomseed(self, *args: Any) -> None:
        seed = self._checkint(args, 1, b"randomseed")
        self._rand_state = ((seed & 0xFFFF_FFFF) << 16) | 0x330E

    def _checkint(self, args: tuple[Any, ...], position: int, name: bytes) -> int:
        """luaL_checkint: a number or numeric string, truncated to a C int."""
        value = args[position - 1] if position <= len(args) else None
        number = _lua_number(value)
        if number is None:
            got = b"no value" if position > len(args) else _lua_type(value)
            raise self._arg_error(position, name, b"number expected, got " + got)
        return _c_int(number)

    def _arg_error(self, position: int, name: bytes, reason: bytes) -> CallFailed:
        return CallFailed(self._where() + b"bad argument #%d to '%s' (%s)" % (position, name, reason))


class CallFailed(Exception):
    """redis.call's error: Lua code gets this exception as the error value, and unwraps it into ``table``."""

    def __init__(self, table: Any) -> None:
        super().__init__("redis.call failed")
        self.table = table


def _unwrap(error: Any) -> Any:
    """The Lua error value a Python exception stands for: redis.call's error table, or the text of a failure."""
    if isinstance(error, CallFailed):
        return error.table
    if isinstance(error, lua51.LuaMemoryError):
        return b"not enough memory"
    return str(error).encode("utf-8", "replace")


class ScriptFailed(CommandError):
    """A script's error reply; ``counted`` when errorstats already counted it (the command's own error)."""

    def __init__(self, message: bytes, counted: bool) -> None:
        super().__init__(message)
        self.counted = counted


def _argv(args: tuple[Any, ...]) -> list[bytes] | None:
    """redis.call's arguments as a command's argv: strings, and numbers formatted as Redis does (%.17g); None when
    one is of another type."""
    argv = []
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            argv.append(arg)
        elif kind is int:
            argv.append(b"%d" % arg if -_EXACT_INT < arg < _EXACT_INT else b"%.17g" % arg)
        elif kind is float:
            argv.append(b"%.17g" % arg)
        else:
            return None
    return argv


def _lua_number(value: Any) -> float | int | None:
    """lua_tonumber where lua_isnumber holds (numbers, numeric strings), else None."""
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[no-any-return]
    if kind is bytes:
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            try:
                return int(text, 16) if text[:2].lower() == b"0x" else None
            except ValueError:
                return None
    return None


def _c_int(number: float | int) -> int:
    """(int) of a lua_Number, as C truncates it (out of range: INT_MIN, as x86 gives)."""
    if number != number or number in (math.inf, -math.inf):
        return -(2**31)
    value = int(number)
    return value if -(2**31) <= value < 2**31 else -(2**31)


def _lua_int(value: Any) -> int:
    number = _lua_number(value)
    return 0 if number is None else _c_int(number)


def _lua_type(value: Any) -> bytes:
    if value is None:
        return b"nil"
    kind = type(value)
    if kind is bool:
        return b"boolean"
    if kind is bytes:
        return b"string"
    if kind is int or kind is float:
        return b"number"
    return lua51.lua_type(value).encode() if lua51.lua_type(value) else b"userdata"


def _trimmed(message: bytes) -> bytes:
    return message.strip(b"\r\n")


def _lua_text(value: Any) -> bytes:
    """A number or string from Lua as lua_tostring shows it (LUA_NUMBER_FMT, %.14g)."""
    if type(value) is bytes:
        return value
    return b"%.14g" % value
