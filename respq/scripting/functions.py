"""Redis 7.0 functions: libraries of Lua functions loaded with FUNCTION LOAD and run by FCALL.

The libraries live in a Lua runtime of their own (as Redis keeps one for functions apart from EVAL's), built by the
same code as EVAL's (a ``ScriptEngine``): the same globals, ``redis.*`` API, time limit, BUSY and kill. While a
library's code runs at load time its globals are only ``redis`` with ``register_function``, ``log``, the ``LOG_*``
levels and the version (Redis's load-time sandbox); the functions it registers see the whole environment when FCALL
runs them, with the keys and arguments as their two arguments.

Libraries are durable: their code is kept in the storage engine's server metadata (``Engine.set_metadata``) under
``METADATA_NAME``, rewritten whole at each change, and loaded again at start-up. docs/scripting.md describes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lupa.lua51 import LuaError

from respq.commands.table import Command
from respq.protocol import ProtocolError, split_inline
from respq.scripting import errors as script_errors
from respq.scripting import rdb
from respq.scripting.engine import NO_WRITES, SHEBANG_FLAGS, CallFailed, Script, ScriptEngine
from respq.storage import journal
from respq.storage.engine import Engine

METADATA_NAME = b"functions"  # the engine's server-metadata blob holding every library's code
ENGINE_NAME = b"LUA"
LOAD_TIMEOUT = 0.5  # seconds a library's code may run at load time (Redis's LOAD_TIMEOUT_MS)
FLAG_NAMES = tuple(SHEBANG_FLAGS)  # Redis's scripts_flags_def order: FUNCTION LIST shows flags in it

# Runs in a fresh runtime before the scripts' environment is built (so it captures the raw base functions), and
# returns the setup called once the environment exists: it gets the globals' metatable to swap the load-time API in.
FUNCTIONS_LUA = r"""
local getmetatable, setmetatable, rawget, rawset = getmetatable, setmetatable, rawget, rawset
local type, error, next, tostring, pcall, loadstring, select = type, error, next, tostring, pcall, loadstring, select
local lower, find = string.lower, string.find
local sethook, getinfo = debug.sethook, debug.getinfo
local G = _G

return function(flag_bits, py_timed_out, py_unwrap)
    local mt = getmetatable(G)
    local visible = mt.__index -- the environment functions see when they run
    local real_redis = visible.redis
    local current -- the functions the library being loaded registered so far (nil outside FUNCTION LOAD)

    local function fail(message)
        error({err = "ERR " .. message}, 0)
    end

    local function readonly()
        error("Attempt to modify a readonly table", 2)
    end

    local function read_flags(flags)
        local bits = 0
        local j = 1
        while true do
            local flag = flags[j]
            if flag == nil then
                return bits
            end
            local kind = type(flag)
            if kind ~= "string" and kind ~= "number" then
                return nil
            end
            local bit = flag_bits[lower(tostring(flag))]
            if bit == nil then
                return nil
            end
            bits = bits + bit
            j = j + 1
        end
    end

    local function is_text(value)
        local kind = type(value)
        return kind == "string" or kind == "number"
    end

    local function register_function(...)
        if current == nil then
            fail("redis.register_function can only be called on FUNCTION LOAD command")
        end
        local argc = select("#", ...)
        local name, callback, flags, description
        if argc < 1 or argc > 2 then
            fail("wrong number of arguments to redis.register_function")
        elseif argc == 1 then
            local args = ...
            if type(args) ~= "table" then
                fail("calling redis.register_function with a single argument is only applicable to Lua table " ..
                    "(representing named arguments).")
            end
            flags = 0
            for key, value in next, args do
                if not is_text(key) then
                    fail("named argument key given to redis.register_function is not a string")
                end
                key = lower(tostring(key))
                if key == "function_name" then
                    if not is_text(value) then
                        fail("function_name argument given to redis.register_function must be a string")
                    end
                    name = tostring(value)
                elseif key == "description" then
                    if not is_text(value) then
                        fail("description argument given to redis.register_function must be a string")
                    end
                    description = tostring(value)
                elseif key == "callback" then
                    if type(value) ~= "function" then
                        fail("callback argument given to redis.register_function must be a function")
                    end
                    callback = value
                elseif key == "flags" then
                    if type(value) ~= "table" then
                        fail("flags argument to redis.register_function must be a table representing function flags")
                    end
                    flags = read_flags(value)
                    if flags == nil then
                        fail("unknown flag given")
                    end
                else
                    fail("unknown argument given to redis.register_function")
                end
            end
            if name == nil then
                fail("redis.register_function must get a function name argument")
            end
            if callback == nil then
                fail("redis.register_function must get a callback argument")
            end
        else
            name, callback = ...
            if not is_text(name) then
                fail("first argument to redis.register_function must be a string")
            end
            name = tostring(name)
            if type(callback) ~= "function" then
                fail("second argument to redis.register_function must be a function")
            end
            flags = 0
        end
        if not find(name, "^[%w_]+$") then
            fail("Library names can only contain letters, numbers, or underscores(_) and must be at least one " ..
                "character long")
        end
        for i = 1, #current do
            if current[i][1] == name then
                fail("Function already exists in the library")
            end
        end
        current[#current + 1] = {name, callback, flags, description}
    end

    -- What a library's code sees while it loads: redis.register_function, redis.log and the constants, nothing else.
    local function read_only_view(contents)
        return setmetatable({}, {
            __index = function(_, key)
                local value = contents[key]
                if value == nil and key == "debug" then
                    local caller = getinfo(2, "S")
                    if caller == nil or caller.what == "C" then
                        return nil -- lupa looks for debug.traceback when Python raises: it goes without
                    end
                end
                if value == nil then
                    error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
                end
                return value
            end,
            __newindex = readonly,
        })
    end
    local load_redis = {register_function = register_function}
    for _, key in next, {"log", "LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING", "REDIS_VERSION",
            "REDIS_VERSION_NUM"} do
        load_redis[key] = real_redis[key]
    end
    local load_api = read_only_view({redis = read_only_view(load_redis)})

    -- Past the load timeout every line of the library's code raises again (a pcall cannot swallow it); this
    -- chunk's own lines run on.
    local function timeout_hook()
        local info = getinfo(2, "S")
        if info ~= nil and info.source == "@user_function" and py_timed_out() then
            sethook(timeout_hook, "l")
            fail("FUNCTION LOAD timeout")
        end
    end

    -- Runs a library's code (without its header line); true and the functions it registered ({name, callback,
    -- flags, description} each), or false and the error text without its code.
    local function load(code, timed)
        local chunk, compile_error = loadstring(code, "@user_function")
        if chunk == nil then
            return false, "Error compiling function: " .. compile_error
        end
        current = {}
        mt.__index = load_api
        if timed then
            sethook(timeout_hook, "", 100000)
        end
        local ok, err = pcall(chunk)
        sethook()
        mt.__index = visible
        local registered = current
        current = nil
        if not ok then
            local message
            if type(err) == "userdata" then
                err = py_unwrap(err) -- an error of redis.log (Python), as a table
            end
            if type(err) == "table" then
                message = rawget(err, "err")
            elseif type(err) == "string" then
                message = "ERR " .. err
            end
            return false, "Error registering functions: " .. tostring(message)
        end
        return true, registered
    end

    -- What FCALL runs: the callback with the keys and arguments the runner left in KEYS and ARGV (which functions
    -- do not see), by a tail call, so errors name the callback's line.
    local function runner(callback)
        return function()
            local keys, args = rawget(visible, "KEYS"), rawget(visible, "ARGV")
            rawset(visible, "KEYS", nil)
            rawset(visible, "ARGV", nil)
            return callback(keys, args)
        end
    end

    return {load = load, runner = runner}
end
"""


@dataclass(slots=True, eq=False)
class Function:
    name: bytes
    description: bytes | None
    flags: int
    script: Script  # what the engine runs: its ``sha`` is the function's name, as Redis's errors show it
    library: Library


@dataclass(slots=True, eq=False)
class Library:
    name: bytes
    code: bytes  # the whole payload, header line included (FUNCTION LIST WITHCODE, DUMP)
    functions: dict[bytes, Function] = field(default_factory=dict)


class FunctionError(Exception):
    """A library that cannot be loaded or restored; the message is the error reply's text without "-"."""

    def __init__(self, message: bytes) -> None:
        super().__init__(message.decode("utf-8", "replace"))
        self.message = message


def _unwrap(error: Any) -> Any:
    """The Lua error value a Python exception raised at load time stands for (redis.log's error table)."""
    if isinstance(error, CallFailed):
        return error.table
    return str(error).encode("utf-8", "replace")


def parse_header(payload: bytes) -> tuple[bytes, bytes, bytes]:
    """The engine name, library name and code (from the header's newline on) of a library payload, as
    functionExtractLibMetaData reads them."""
    if not payload.startswith(b"#!"):
        raise FunctionError(b"ERR Missing library metadata")
    end = payload.find(b"\n")
    if end < 0:
        raise FunctionError(script_errors.INVALID_LIBRARY_METADATA)
    try:
        parts = split_inline(payload[:end])
    except ProtocolError:
        parts = []
    if not parts:
        raise FunctionError(script_errors.INVALID_LIBRARY_METADATA)
    engine = parts[0][2:]
    name = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise FunctionError(b"ERR Invalid metadata value, name argument was given multiple times")
            name = part[5:]
            continue
        raise FunctionError(b"ERR Invalid metadata value given: " + part)
    if name is None:
        raise FunctionError(b"ERR Library name was not given")
    return engine, name, payload[end:]


def valid_name(name: bytes) -> bool:
    return bool(name) and all(c == 95 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 for c in name)


class FunctionEngine(ScriptEngine):
    """The loaded libraries, the functions they registered, and the Lua runtime that runs them."""

    busy_reply = script_errors.BUSY_FUNCTION
    kill_command = "FUNCTION KILL"

    def __init__(self, log: Callable[[str, str], None], memory_limit: int = 0) -> None:
        super().__init__(log, memory_limit)
        self.libraries: dict[bytes, Library] = {}
        # Every library's functions by name in lower case: FCALL and the collision checks ignore case, as Redis's
        # functions dictionary does (a library's own does not).
        self.functions: dict[bytes, Function] = {}
        self._setup: Any = None
        self._lua_api: Any = None
        self._load_started = 0.0
        self.running_argv: list[bytes] = []  # FUNCTION STATS: the command of the function running

    # ---- the runtime ----------------------------------------------------------------------------------------------
    def _before_prelude(self, lua: Any) -> None:
        # Named as the environment's own chunk: errors raised here point at the library's line, not at this code.
        chunk = lua.globals().loadstring(FUNCTIONS_LUA.encode(), b"=respq")
        self._setup = chunk()

    def _functions_api(self) -> Any:
        lua = self.runtime()
        if self._lua_api is None:
            bits = lua.table_from({name: bit for name, bit in SHEBANG_FLAGS.items()})
            self._lua_api = self._setup(bits, self._load_timed_out, _unwrap)
        return self._lua_api

    def may_replicate(self, cmd: Command, argv: list[bytes]) -> bool:
        """CLIENT PAUSE WRITE holds FCALL unless the function is flagged no-writes (Redis decides by the
        function's flags, as for EVAL's shebang); an unknown function is held, as Redis holds it."""
        if cmd.name != "fcall" or len(argv) < 2:
            return super().may_replicate(cmd, argv)
        function = self.functions.get(argv[1].lower())
        return function is None or not function.flags & NO_WRITES

    def flush(self) -> None:
        """FUNCTION FLUSH: every library goes, with the runtime that held them."""
        self.libraries.clear()
        self.functions.clear()
        super().flush()
        self._lua_api = None

    def _load_timed_out(self) -> bool:
        return time.monotonic() - self._load_started > LOAD_TIMEOUT

    # ---- libraries ------------------------------------------------------------------------------------------------
    def compile_library(self, payload: bytes, timed: bool = True) -> Library:
        """A library made from its payload (header and code), not yet linked; FunctionError as Redis words it."""
        engine_name, name, code = parse_header(payload)
        if not valid_name(name):
            raise FunctionError(script_errors.FUNCTION_NAME_RULE)
        if engine_name.upper() != ENGINE_NAME:
            raise FunctionError(b"ERR Engine '%s' not found" % engine_name)
        api = self._functions_api()
        self._load_started = time.monotonic()
        try:
            outcome = api.load(code, timed)
        except LuaError as error:  # raised outside the library's own pcall: never expected, never fatal
            raise FunctionError(b"ERR Error registering functions: " + str(error).encode("utf-8", "replace")) from None
        if not outcome[0]:
            raise FunctionError(b"ERR " + outcome[1])
        library = Library(name, payload)
        registered = outcome[1]
        for i in range(1, len(registered) + 1):
            fname, callback, flags, description = (registered[i][j] for j in range(1, 5))
            fname = fname if type(fname) is bytes else str(fname).encode()
            script = Script(fname, b"", int(flags), api.runner(callback))
            library.functions[fname] = Function(fname, description, int(flags), script, library)
        if not library.functions:
            raise FunctionError(b"ERR No functions registered")
        return library

    def load(self, payload: bytes, replace: bool) -> bytes:
        """FUNCTION LOAD: the library's name once linked."""
        library = self.compile_library(payload)
        self.join([library], replace, at_load=True)
        return library.name

    def join(self, new: list[Library], replace: bool, at_load: bool = False) -> None:
        """Links libraries, replacing those of the same names when ``replace``, all of them or none
        (libraryJoin; FUNCTION LOAD's own checks and texts with ``at_load``)."""
        for library in new:
            if library.name in self.libraries and not replace:
                text = script_errors.LIBRARY_EXISTS_AT_LOAD if at_load else script_errors.LIBRARY_EXISTS_AT_RESTORE
                raise FunctionError(text % library.name)
        replaced = {library.name for library in new}
        for library in new:
            for fname in library.functions:
                owner = self.functions.get(fname.lower())
                if owner is not None and owner.library.name not in replaced:
                    raise FunctionError(script_errors.FUNCTION_EXISTS % fname)
        for library in new:
            self._unlink(library.name)
            self.libraries[library.name] = library
            for fname, function in library.functions.items():
                self.functions.setdefault(fname.lower(), function)

    def _unlink(self, name: bytes) -> Library | None:
        library = self.libraries.pop(name, None)
        if library is not None:
            for fname in library.functions:
                if self.functions.get(fname.lower()) in library.functions.values():
                    del self.functions[fname.lower()]
        return library

    def delete(self, name: bytes) -> bool:
        return self._unlink(name) is not None

    def parse_dump(self, payload: bytes) -> list[Library]:
        """The libraries of a FUNCTION DUMP payload, compiled (not linked): FUNCTION RESTORE's first half."""
        codes = rdb.read_function_payload(payload)
        libraries: dict[bytes, Library] = {}
        for code in codes:
            library = self.compile_library(code, timed=False)
            if library.name in libraries:
                raise FunctionError(script_errors.LIBRARY_EXISTS_AT_LOAD % library.name)
            seen = {fname.lower() for other in libraries.values() for fname in other.functions}
            for fname in library.functions:
                if fname.lower() in seen:
                    raise FunctionError(script_errors.FUNCTION_EXISTS % fname)
            libraries[library.name] = library
        return list(libraries.values())

    def dump(self) -> bytes:
        return rdb.function_payload([library.code for library in self.libraries.values()])

    # ---- durability -----------------------------------------------------------------------------------------------
    def save(self, engine: Engine) -> None:
        """Journals the libraries as they are now (the whole set: libraries are few and small)."""
        codes = [library.code for library in self.libraries.values()]
        engine.set_metadata({METADATA_NAME: journal.encode_values(codes) if codes else None})

    def restore_saved(self, engine: Engine) -> None:
        """Loads the libraries the engine kept (at start-up)."""
        blob = engine.metadata.get(METADATA_NAME)
        if not blob:
            return
        for code in journal.decode_values(blob):
            try:
                library = self.compile_library(bytes(code), timed=False)
                self.join([library], replace=True)
            except FunctionError as error:
                self.log("warning", f"Failed creating function, {error.message.decode('utf-8', 'replace')}")

    # ---- stats ----------------------------------------------------------------------------------------------------
    def code_memory(self) -> int:
        """Bytes of the libraries' code and names (INFO used_memory_functions, approximately Redis's overhead)."""
        return sum(len(lib.code) + len(lib.name) + 64 * (1 + len(lib.functions)) for lib in self.libraries.values())
