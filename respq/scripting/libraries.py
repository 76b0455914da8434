"""The libraries Redis 7.0 gives scripts: cjson, cmsgpack, bit and struct, written in Lua.

Redis links lua_cjson 2.1.0, lua_cmsgpack 0.4.0, LuaBitOp 1.0.2 and lua-struct 0.2 into its Lua 5.1 VM as C code;
lupa's runtime has none of them. They are reimplemented here in pure Lua (respq/scripting/lua/*.lua), not in
Python: a call stays inside the VM (no conversion of tables through lupa on every `cmsgpack.unpack` or
`cjson.encode`), Lua tables are walked with `next` in the same order as the C code walks them, so encodings are
byte-identical, and errors are ordinary Lua strings that scripts can catch and match. Error texts and their
"source:line: " prefix follow luaL_error/luaL_argerror as seen from a C function (see common.lua).

Differences from Redis (each pinned by a test in tests/unit/test_lua_libraries.py):
- A library function called in a tail position (`return cjson.decode(x)`) replaces its caller's frame, as any Lua
  function does (a C function does not), so its error has no "user_script:N: " prefix; argument errors then name
  the function by the field it was registered under.
- `cjson.null` is a userdata made by `newproxy`, not a NULL light userdata: only `tostring(cjson.null)` shows it.
- Redis 7.0 patched Lua's string hash to read every byte; stock Lua 5.1 samples strings of 32 bytes or more. Tables
  with such string keys iterate in another order, so cjson.encode and cmsgpack.pack emit their members in another
  order (the same members). That is the VM's, and applies to `pairs` in any script.
- Only the sign of a NaN survives struct and cmsgpack (Lua cannot see payload bits): NaNs encode as the default
  quiet NaN.
Undefined C behaviour the libraries rely on (out-of-range double to integer casts, shifts by 64 bits or more, int
overflow) is reproduced as Debian's x86-64 build of redis-server 7.0.15 behaves, and checked against it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import lupa.lua51

LIBRARIES = ("bit", "struct", "cmsgpack", "cjson")

# The chunk names of the libraries' code, as debug.getinfo reports them in `source`: an error handler that reports
# the script's line, as Redis's does, skips frames from these chunks (in Redis they are C frames).
LIBRARY_SOURCE_PREFIX = "=respq/scripting/lua/"


@cache
def _source(name: str) -> bytes:
    """The Lua source of one library, read once per process (every runtime compiles its own copy)."""
    return resources.files("respq.scripting").joinpath("lua", f"{name}.lua").read_bytes()


def install_libraries(lua: lupa.lua51.LuaRuntime) -> None:
    """Define the globals cjson, cmsgpack, bit and struct in ``lua`` (before its globals are made read-only)."""
    lua_globals: Any = lua.globals()
    loadstring = lua_globals.loadstring

    def load(name: str) -> Any:
        # Bytes, whatever encoding the runtime converts Python strings with.
        chunk = loadstring(_source(name), f"{LIBRARY_SOURCE_PREFIX}{name}.lua".encode())
        if chunk is None:
            raise RuntimeError(f"the Lua source of {name} does not compile")
        return chunk

    common = load("common")()
    for name in LIBRARIES:
        lua_globals[name.encode()] = load(name)(common)
