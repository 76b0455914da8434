"""The libraries Redis 7.0 gives scripts: cjson, cmsgpack, bit and struct, written in Lua.

Redis links lua_cjson 2.1.0, lua_cmsgpack 0.4.0, LuaBitOp 1.0.2 and lua-struct 0.2 into its Lua 5.1 VM as C code;
lupa's runtime has none of them. They are reimplemented here in pure Lua (respq/scripting/lua/*.lua), not in
Python: a call stays inside the VM (no conversion of tables through lupa on every `cmsgpack.unpack` or
`cjson.encode`), Lua tables are walked with `next` in the same order as the C code walks them, so encodings are
byte-identical, and errors are ordinary Lua strings that scripts can catch and match. Error texts and their
"source:line: " prefix follow luaL_error/luaL_argerror as seen from a C function (see common.lua).

Differences from Redis, all in corners (documented in docs/ once scripting is merged):
- A library function called in a tail position (`return cjson.decode(x)`) loses the caller's frame, as any Lua
  function does, so its error has no "user_script:N: " prefix and argument errors name the function '?'.
- `cjson.null` is a userdata made by `newproxy`, not a NULL light userdata: `tostring(cjson.null)` differs.
- Limits that come from the C stack (more than ~8000 values returned by `cmsgpack.unpack`, nesting deeper than
  the C libraries' stack checks) raise Lua's own errors.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import lupa.lua51

LIBRARIES = ("bit", "struct", "cmsgpack", "cjson")

# The chunk names of the libraries' code, as debug.getinfo reports them in `source`: an error handler that reports
# the script's line, as Redis's does, skips frames from these chunks (in Redis they are C frames).
LIBRARY_SOURCE_PREFIX = "=respq/scripting/lua/"


def _source(name: str) -> bytes:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_bytes()


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
