"""cjson, cmsgpack, bit and struct as scripts see them: each snippet runs in respq's Lua runtime (after
install_libraries) and through a real redis-server's EVAL, and the two replies must be equal.

Both sides convert the script's return value by Redis's RESP2 rules (strings, integers truncated, true as 1, false
and nil as nil, tables up to their first nil), so snippets return strings or flat tables. A snippet that raises is
compared on its message: Redis's reply without "ERR " and its " script: <sha>, on @user_script:N." tail.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import lupa.lua51
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from respq.scripting.libraries import LIBRARY_SOURCE_PREFIX, install_libraries

Reply = bytes | int | None | list["Reply"] | tuple[str, bytes]

# Runs a snippet compiled as Redis compiles scripts (chunk "@user_script") and converts what it returns.
RUNNER = """
local loadstring, pcall, type, tostring, floor, ceil = loadstring, pcall, type, tostring, math.floor, math.ceil
local function convert(v, top)
  local t = type(v)
  if t == 'string' then return {'bulk', v} end
  if t == 'number' then
    if v ~= v then return {'int', '-9223372036854775808'} end
    local i = v >= 0 and floor(v) or ceil(v)
    return {'int', string.format('%.0f', i)}
  end
  if t == 'boolean' then if v then return {'int', '1'} end return {'nil'} end
  if t == 'table' then
    if type(v.err) == 'string' then return {'error', v.err} end
    if type(v.ok) == 'string' then return {'status', v.ok} end
    local items, i = {'array'}, 1
    while v[i] ~= nil do items[i + 1] = convert(v[i]); i = i + 1 end
    return items
  end
  return {'nil'}
end
return function(src)
  local f, err = loadstring(src, '@user_script')
  if not f then return {'compile', err} end
  local ok, res = pcall(f)
  if not ok then return {'raised', tostring(res)} end
  return convert(res)
end
"""

# Defines D(...): every value it is given, as one deterministic string (numbers with 17 digits, table keys sorted).
PRELUDE = """local function D(...)
  local function dump(v, depth)
    local t = type(v)
    if t == 'number' then
      if v ~= v then return 'nan' end
      return string.format('%.17g', v)
    end
    if t == 'string' then return string.format('%q', v) end
    if t == 'table' then
      if depth > 20 then return '...' end
      local items = {}
      for k, x in pairs(v) do items[#items + 1] = '[' .. dump(k, depth + 1) .. ']=' .. dump(x, depth + 1) end
      table.sort(items)
      return '{' .. table.concat(items, ',') .. '}'
    end
    if v == cjson.null then return 'cjson.null' end
    if t == 'nil' or t == 'boolean' then return tostring(v) end
    return t
  end
  local out = {}
  for i = 1, select('#', ...) do out[i] = dump((select(i, ...)), 0) end
  return select('#', ...) .. ':' .. table.concat(out, ' ')
end
"""

REDIS_ERROR_TAIL = re.compile(r" script: [0-9a-f]{40}, on @user_script:\d+\.$", re.S)


def _from_lua(value: Any) -> Reply:
    items = [value[i] for i in range(1, len(value) + 1)]
    kind = items[0].decode()
    if kind == "bulk":
        return bytes(items[1])
    if kind == "int":
        return int(items[1])
    if kind == "nil":
        return None
    if kind == "array":
        return [_from_lua(item) for item in items[1:]]
    if kind in ("error", "status"):
        return (kind, bytes(items[1]))
    return ("raised", bytes(items[1]))


@pytest.fixture(scope="module")
def respq_eval() -> Callable[[str], Reply]:
    lua = lupa.lua51.LuaRuntime(encoding=None)
    install_libraries(lua)
    runner = lua.execute(RUNNER)
    return lambda src: _from_lua(runner(src.encode()))


@pytest.fixture(scope="module")
def redis_eval(redis_oracle) -> Iterator[Callable[[str], Reply]]:  # type: ignore[no-untyped-def]
    client = redis.Redis(port=redis_oracle.port, protocol=2)

    def run(src: str) -> Reply:
        try:
            reply = client.eval(src, 0)
        except redis.ResponseError as error:
            message = str(error)
            return ("raised", REDIS_ERROR_TAIL.sub("", message).encode())
        return _from_redis(reply)

    yield run
    client.close()


def _from_redis(reply: Any) -> Reply:
    if isinstance(reply, list):
        return [_from_redis(item) for item in reply]
    return reply  # type: ignore[no-any-return]


def check(respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], src: str) -> Reply:
    ours, theirs = respq_eval(src), redis_eval(src)
    assert ours == theirs, src.replace(PRELUDE, "")
    return ours


def value(expr: str) -> str:
    """A snippet returning every value of ``expr``, dumped."""
    return PRELUDE + f"return D({expr})"


def raised(statement: str) -> str:
    """A snippet whose ``statement`` raises where a C function would: not in a tail call."""
    return PRELUDE + f"local r = {{{statement}}}\nreturn D(unpack(r))"


def caught(call: str) -> str:
    """``call`` made through pcall: the error as a C caller sees it (no position, function name '?')."""
    return PRELUDE + f"return D(pcall({call}))"


BIT_CASES = [
    value("bit.tobit(0xffffffff), bit.tobit(2^32 + 5), bit.tobit(-1), bit.tobit(2^31)"),
    value("bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-1.5), bit.tobit(-2.5), bit.tobit(0.5), bit.tobit(-0.5)"),
    value("bit.tobit(2^51), bit.tobit(2^51 + 2), bit.tobit(2^52 + 3), bit.tobit(2^53 * 3 + 2^33 + 7)"),
    value("bit.tobit(-2^51), bit.tobit(-2^52 - 1), bit.tobit(-2^60 + 2^20), bit.tobit(2^70), bit.tobit(-2^70)"),
    value("bit.tobit(1/0), bit.tobit(-1/0), bit.tobit(0/0), bit.tobit('12'), bit.tobit(' 0x10 ')"),
    value("bit.tobit(1e300), bit.tobit(-6755399441055744), bit.tobit(-6755399441055741), bit.tobit(4.5e15)"),
    value("bit.tohex(1), bit.tohex(-1), bit.tohex(0x12345678, 4), bit.tohex(0xabcdef, -6), bit.tohex(255, 0)"),
    value("bit.tohex(-1, 12), bit.tohex(-1, -12), bit.tohex(2^32 + 0xa, 3), bit.tohex(0, -1)"),
    value("bit.tohex(255, -2^31), bit.tohex(255, 2^31), bit.tohex(-1, 2^32 - 3)"),
    value("bit.bnot(0), bit.bnot(-1), bit.bnot(0x7fffffff), bit.bnot(2^40)"),
    value("bit.band(0xff, 0x0f), bit.band(-1, -1), bit.band(-1, 0x80000000), bit.band(5), bit.band(7, 3, 1)"),
    value("bit.bor(0xf0, 0x0f), bit.bor(-2^31, 1), bit.bor(1, 2, 4, 8), bit.bxor(-1, 1), bit.bxor(5, 3, 6)"),
    value("bit.lshift(1, 31), bit.lshift(1, 32), bit.lshift(1, 33), bit.lshift(-1, 4), bit.lshift(3, -1)"),
    value("bit.rshift(-1, 1), bit.rshift(-1, 28), bit.rshift(0x80000000, 31), bit.rshift(16, 36)"),
    value("bit.arshift(-256, 4), bit.arshift(-1, 31), bit.arshift(0x7fffffff, 30), bit.arshift(-8, 2)"),
    value("bit.rol(0x12345678, 8), bit.rol(-1, 5), bit.rol(1, 31), bit.rol(1, 0), bit.rol(0x80000001, 33)"),
    value("bit.ror(0x12345678, 8), bit.ror(1, 1), bit.ror(-2, 1), bit.ror(5, 64)"),
    value("bit.bswap(0x12345678), bit.bswap(-1), bit.bswap(0xff), bit.bswap(0x80)"),
    raised("bit.tohex('x')"),
    raised("bit.tohex()"),
    raised("bit.band(1, 2, 3, {})"),
    raised("bit.band(1, {}, 3, {})"),
    raised("bit.lshift(1)"),
    raised("bit.tohex(1, nil)"),
    raised("bit:tohex()"),
    raised("bit.bnot(nil)"),
    caught("bit.tobit, {}"),
    caught("bit.bswap"),
    "local f = bit.rol\nlocal x = f(nil, 1)\nreturn x",
]

STRUCT_CASES = [
    value("struct.pack('>i', -2), struct.pack('<i', -2), struct.pack('i', 1)"),
    value("struct.pack('bBhHlLT', -1, 255, -2, 65535, -3, 2^40, 7)"),
    value("struct.pack('>bBhHlLT', -1, 255, -2, 65535, -3, 2^40, 7)"),
    value("struct.pack('i1i2i3i5i7i8', -1, -2, -3, 2^33, -2^40, 2^62)"),
    value("struct.pack('>I3<I3', 0x123456, 0x123456), struct.pack('i16', -1), struct.pack('>i12', 5)"),
    value("struct.pack('B', 256), struct.pack('b', 200), struct.pack('B', -1), struct.pack('h', 1.9)"),
    value("struct.pack('l', -1.9), struct.pack('L', 2^64), struct.pack('L', 2^63), struct.pack('l', -2^63)"),
    value("struct.pack('l', -2^64), struct.pack('L', 1/0), struct.pack('L', 0/0), struct.pack('i', '42')"),
    value("struct.pack('f', 1.5), struct.pack('>f', -0.1), struct.pack('f', 1/0), struct.pack('f', 1e40)"),
    value("struct.pack('f', 1e-45), struct.pack('f', 3e-39), struct.pack('f', 16777217), struct.pack('f', -0.0)"),
    value("struct.pack('d', 0.1), struct.pack('>d', -2.5), struct.pack('d', 1/0), struct.pack('d', 5e-324)"),
    value("struct.pack('d', -1/0), struct.pack('>d', 2^-1022), struct.pack('d', 0/0), struct.pack('d', -(0/0))"),
    value("struct.pack('s', 'abc'), struct.pack('c5', 'hello world'), struct.pack('c0', 'xyz'), struct.pack('c', 'q')"),
    value("struct.pack('x'), struct.pack('bxh', 1, 2), struct.pack(' < b ', 1)"),
    value("struct.pack('!bh', 1, 2), struct.pack('!4bd', 1, 2), struct.pack('!2bi', 1, 2), struct.pack('!bd', 1, 2)"),
    value("struct.pack('!8bi3', 1, 2), struct.pack('!c3i', 'abc', 5), struct.pack('!bsh', 1, 'ab', 2)"),
    value("struct.pack(''), struct.pack('>'), struct.pack(123, 5)"),
    value("struct.unpack('>i', '\\255\\255\\255\\254'), struct.unpack('<I', '\\255\\255\\255\\254')"),
    value("struct.unpack('bBhHlL', struct.pack('bBhHlL', -1, 255, -2, 65535, -3, 2^40))"),
    value("struct.unpack('L', '\\255\\255\\255\\255\\255\\255\\255\\255'), struct.unpack('l', string.rep('\\255', 8))"),
    value(
        "struct.unpack('>L', '\\255\\255\\255\\255\\255\\255\\255\\1'), struct.unpack('>l', "
        "'\\128' .. string.rep('\\0', 7))"
    ),
    value("struct.unpack('>l', '\\127\\255\\255\\255\\255\\255\\255\\255'), struct.unpack('<i3', '\\255\\255\\128')"),
    value("struct.unpack('i16', string.rep('\\255', 16)), struct.unpack('>i12', string.rep('\\1', 12))"),
    value("struct.unpack('<i9', string.rep('\\128', 9)), struct.unpack('>I10', string.rep('\\254', 10))"),
    value("struct.unpack('i0', ''), struct.unpack('I0', 'x')"),
    value("struct.unpack('f', struct.pack('f', 0.1)), struct.unpack('>d', struct.pack('>d', -0.1))"),
    value(
        "struct.unpack('f', '\\0\\0\\192\\127'), struct.unpack('f', '\\1\\0\\0\\0'), "
        "struct.unpack('d', struct.pack('d', 1e308))"
    ),
    value("struct.unpack('s', 'abc\\0def\\0'), struct.unpack('ss', 'abc\\0def\\0'), struct.unpack('c3', 'abcdef')"),
    value(
        "struct.unpack('bc0', '\\3abcdef'), struct.unpack('c1c0', '2abcd'), struct.unpack('i', struct.pack('i', 7), 1)"
    ),
    value(
        "struct.unpack('b', 'abc', 2), struct.unpack('b', 'abc', 3), struct.unpack('', 'abc', 4), "
        "struct.unpack('', 'a', 9)"
    ),
    value(
        "struct.unpack('x', 'a'), struct.unpack('!bd', struct.pack('!bd', 1, 2)), struct.unpack('!4bh', '\\1\\0\\2\\0')"
    ),
    value("struct.unpack('b', 'abc', 1.9), struct.unpack('b', 'abc', '2'), struct.unpack('', 'abc', -1)"),
    value("struct.size('bhilT'), struct.size('!bhilT'), struct.size('!4bd'), struct.size('c10'), struct.size('i7')"),
    value("struct.size('q'), struct.size('!'), struct.size('xxx'), struct.size('f d'), struct.size('>!2bh')"),
    raised("struct.pack('q', 1)"),
    raised("struct.pack('i', 'x')"),
    raised("struct.pack('i')"),
    raised("struct.pack('c5', 'ab')"),
    raised("struct.pack('i33', 1)"),
    raised("struct.pack('!3b', 1)"),
    raised("struct.pack('!0b', 1)"),
    raised("struct.pack('c99999999999', 'x')"),
    raised("struct.pack({}, 1)"),
    raised("struct.pack('s', {})"),
    raised("struct.unpack('i', 'abc')"),
    raised("struct.unpack('i', 'abcd', 0)"),
    raised("struct.unpack('i', 'abcd', 2)"),
    raised("struct.unpack('i', 'abcd', -1)"),
    raised("struct.unpack('c0', 'abc')"),
    raised("struct.unpack('c1c0', 'xabc')"),
    raised("struct.unpack('bc0', '\\9abc')"),
    raised("struct.unpack('s', 'abc')"),
    raised("struct.unpack('i', 'abcd', 'x')"),
    raised("struct.unpack('i')"),
    raised("struct.unpack('z', 'abc')"),
    raised("struct.size('s')"),
    raised("struct.size('c0')"),
    raised("struct.size('!3')"),
    raised("struct.size('i40')"),
    raised("struct.size('>?')"),
    raised("struct.pack('=i', 1)"),
    raised("struct.pack('z', 'abc')"),
    raised("struct.size('=')"),
    caught("struct.pack, 'q'"),
    caught("struct.unpack, 'i', 'a'"),
]

MSGPACK_CASES = [
    value("cmsgpack.pack(0, 1, 127, 128, 255, 256, 65535, 65536, 2^32 - 1, 2^32, 2^53, 2^63 - 1024)"),
    value("cmsgpack.pack(-1, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31 - 1, -2^53, -2^63)"),
    value("cmsgpack.pack(2^63), cmsgpack.pack(2^64), cmsgpack.pack(-2^63 - 2^11), cmsgpack.pack(-0.0)"),
    value("cmsgpack.pack(1.5), cmsgpack.pack(0.1), cmsgpack.pack(-0.25), cmsgpack.pack(1e300), cmsgpack.pack(3.4e38)"),
    value("cmsgpack.pack(1/0), cmsgpack.pack(-1/0), cmsgpack.pack(0/0), cmsgpack.pack(1e-45), cmsgpack.pack(2^-149)"),
    value("cmsgpack.pack(16777217.5), cmsgpack.pack(1 + 2^-23), cmsgpack.pack(1 + 2^-24), cmsgpack.pack(2^-126)"),
    value(
        "cmsgpack.pack(''), cmsgpack.pack('a'), cmsgpack.pack(string.rep('x', 31)), cmsgpack.pack(string.rep('x', 32))"
    ),
    value("#cmsgpack.pack(string.rep('x', 255)), cmsgpack.pack(string.rep('y', 256)):sub(1, 4)"),
    value("cmsgpack.pack(string.rep('z', 65535)):sub(1, 4), cmsgpack.pack(string.rep('z', 65536)):sub(1, 6)"),
    value("cmsgpack.pack(true, false, nil, tostring, cjson.null), cmsgpack.pack(nil)"),
    value("cmsgpack.pack({}), cmsgpack.pack({1, 2, 3}), cmsgpack.pack({1, nil, 3}), cmsgpack.pack({[2] = 1})"),
    value("cmsgpack.pack({a = 1}), cmsgpack.pack({[1.5] = 1}), cmsgpack.pack({[-1] = 1}), cmsgpack.pack({[0] = 1})"),
    value("cmsgpack.pack({[2^31] = 1}), cmsgpack.pack({[2^31 - 1] = 1}), cmsgpack.pack({[true] = false})"),
    value("cmsgpack.pack({1, 2, {3, {4, {}}}, x = {y = 'z'}})"),
    value("cmsgpack.pack({a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, g = 7, h = 8})"),
    PRELUDE + "local t = {} for i = 1, 20 do t['k' .. i] = i end return D(cmsgpack.pack(t))",
    PRELUDE + "local t = {} for i = 1, 70000 do t[i] = i % 7 end local s = cmsgpack.pack(t) return D(#s, s:sub(1, 8))",
    PRELUDE + "local t = {} for i = 1, 16 do t[i] = i end return D(cmsgpack.pack(t))",
    PRELUDE + "local t = {} t.self = t return D(cmsgpack.pack(t))",
    PRELUDE + "local t = {} for i = 1, 20 do t = {t} end return D(cmsgpack.pack(t))",
    PRELUDE + "local t = setmetatable({}, {__index = function() return 1 end}) t[1] = 5 return D(cmsgpack.pack(t))",
    value("cmsgpack.unpack(cmsgpack.pack(0, 1, 127, 128, 255, 256, 65535, 65536, 2^32 - 1, 2^32, 2^53))"),
    value("cmsgpack.unpack(cmsgpack.pack(-1, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31 - 1, -2^53))"),
    value("cmsgpack.unpack(cmsgpack.pack(1.5, 0.1, -0.25, 1e300, 1/0, -1/0, 1e-45, 'x', true, false))"),
    value("cmsgpack.unpack(cmsgpack.pack({1, 2, {3, {4, {}}}, x = {y = 'z'}}, {a = {b = {c = {}}}}))"),
    value("cmsgpack.unpack(cmsgpack.pack(nil, 1, nil))"),
    value(
        "cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255'), "
        "cmsgpack.unpack('\\207\\128\\0\\0\\0\\0\\0\\0\\1')"
    ),
    value(
        "cmsgpack.unpack('\\211\\255\\255\\255\\255\\255\\255\\255\\254'), "
        "cmsgpack.unpack('\\207\\0\\32\\0\\0\\0\\0\\0\\1')"
    ),
    value("cmsgpack.unpack('\\204\\200\\205\\1\\0\\206\\255\\0\\0\\1\\208\\128\\209\\128\\0\\210\\128\\0\\0\\0')"),
    value("cmsgpack.unpack('\\202\\127\\192\\0\\0'), cmsgpack.unpack('\\203\\127\\248\\0\\0\\0\\0\\0\\0')"),
    value("cmsgpack.unpack('\\217\\3abc\\218\\0\\2de\\219\\0\\0\\0\\1f\\160')"),
    value("cmsgpack.unpack('\\220\\0\\2\\1\\2\\221\\0\\0\\0\\1\\3\\222\\0\\1\\1\\2\\223\\0\\0\\0\\1\\161a\\192')"),
    value(
        "cmsgpack.unpack('\\130\\1\\2\\1\\3'), cmsgpack.unpack('\\146\\192\\1'), cmsgpack.unpack('\\129\\161k\\192')"
    ),
    value("cmsgpack.unpack(''), cmsgpack.unpack(5), cmsgpack.unpack('\\1\\2\\3')"),
    value("cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3))"),
    value("cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 1), cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 2)"),
    value(
        "cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 3), cmsgpack.unpack_one('', 0), cmsgpack.unpack_one('\\1', '0')"
    ),
    value("cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2), cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 5)"),
    value("cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 0), cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 0, 1)"),
    value("cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 1, 2), cmsgpack.unpack_limit(cmsgpack.pack({1}, 'ab'), 1, 2)"),
    value("cmsgpack.unpack_limit('\\1\\2', 1.7, 0.9)"),
    value("cmsgpack._NAME, cmsgpack._VERSION, cmsgpack._COPYRIGHT, cmsgpack._DESCRIPTION"),
    raised("cmsgpack.pack()"),
    raised("cmsgpack.unpack('\\193')"),
    raised("cmsgpack.unpack('\\199\\1\\1x')"),
    raised("cmsgpack.unpack('\\205\\1')"),
    raised("cmsgpack.unpack('\\147\\1\\2')"),
    raised("cmsgpack.unpack('\\1\\2\\219\\0\\0\\0\\9ab')"),
    raised("cmsgpack.unpack('\\145\\193')"),
    raised("cmsgpack.unpack({})"),
    raised("cmsgpack.unpack()"),
    raised("cmsgpack.unpack('\\129\\192\\1')"),
    raised("cmsgpack.unpack_one('\\1', -1)"),
    raised("cmsgpack.unpack_one('\\1', 5)"),
    raised("cmsgpack.unpack_one({}, 'x')"),
    raised("cmsgpack.unpack_limit('\\1\\2')"),
    raised("cmsgpack.unpack_limit('\\1\\2', -1)"),
    raised("cmsgpack.unpack_limit('\\1\\2', 1, 3)"),
    raised("cmsgpack.unpack_limit('\\1\\2', 'x')"),
    # The C library's limits come from the Lua stack of its C function (LUAI_MAXCSTACK, 8000 slots).
    PRELUDE + "local t = {} for i = 1, 4001 do t[i] = i end return D(#cmsgpack.pack(unpack(t, 1, 4000)))",
    PRELUDE + "local t = {} for i = 1, 4001 do t[i] = i end return D(pcall(cmsgpack.pack, unpack(t, 1, 4001)))",
    PRELUDE + "local s = string.rep('\\1', 7999) return D(select('#', cmsgpack.unpack(s)))",
    PRELUDE + "local s = string.rep('\\1', 8000) return D(pcall(cmsgpack.unpack, s))",
    PRELUDE + "local s = string.rep('\\1', 7990) .. '\\145\\145\\145\\145\\145\\1' return D(pcall(cmsgpack.unpack, s))",
    PRELUDE + "local s = string.rep('\\1', 7988) .. '\\145\\145\\145\\145\\145\\1' return D(pcall(cmsgpack.unpack, s))",
    PRELUDE + "local s = string.rep('\\145', 5000) .. '\\1' return D(pcall(cmsgpack.unpack, s))",
    PRELUDE + "local s = string.rep('\\129\\1', 5000) .. '\\1' return D(pcall(cmsgpack.unpack, s))",
    PRELUDE + "local s = string.rep('\\1', 8000) return D(select('#', cmsgpack.unpack_limit(s, 7998)))",
    PRELUDE + "local s = string.rep('\\1', 8000) return D(pcall(cmsgpack.unpack_limit, s, 7999))",
    raised("cmsgpack.unpack('\\196\\1a')"),
    raised("cmsgpack.unpack('\\212\\1\\1')"),
    raised("cmsgpack.unpack('\\1\\2\\217')"),
    caught("cmsgpack.pack"),
    caught("cmsgpack.unpack, '\\193'"),
]

CJSON_CASES = [
    value("cjson.encode(1), cjson.encode(-1), cjson.encode(0.1), cjson.encode(1/3), cjson.encode(-0.0)"),
    value(
        "cjson.encode(2^53), cjson.encode(1e15), cjson.encode(123456789012345), cjson.encode(1e-5), cjson.encode(1e300)"
    ),
    value("cjson.encode(3.14159265358979), cjson.encode(100), cjson.encode(1e14), cjson.encode(12345678901234567890)"),
    value(
        "cjson.encode('a/b'), cjson.encode('q\"\\\\'), "
        "cjson.encode('\\0\\1\\8\\9\\10\\12\\13\\31\\127'), cjson.encode('é')"
    ),
    value("cjson.encode(''), cjson.encode(true), cjson.encode(false), cjson.encode(nil), cjson.encode(cjson.null)"),
    value("cjson.encode({}), cjson.encode({1, 2, 3}), cjson.encode({1, nil, 3}), cjson.encode({[3] = 1})"),
    value(
        "cjson.encode({a = {}}), cjson.encode({{}, {{}}}), cjson.encode({a = cjson.null}), cjson.encode({[1.5] = 1})"
    ),
    value(
        "cjson.encode({[10] = 1}), cjson.encode({[1] = 1, [11] = 2}), cjson.encode({[0] = 1}), cjson.encode({[-1] = 1})"
    ),
    value("cjson.encode({[2^31] = 1}), cjson.encode({[1] = 1, [2^31] = 1}), cjson.encode({[1e20] = 1})"),
    value("cjson.encode({1, 2, x = 3}), cjson.encode({[1] = 'a', ['1'] = 'b'})"),
    value("cjson.encode({a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, g = 7, h = 8, i = 9})"),
    value("cjson.encode({list = {1, 'two', {three = 3}}, nested = {deep = {deeper = {true, false}}}})"),
    PRELUDE + "local t = {} for i = 1, 30 do t['k' .. i] = i * 1.5 end return D(cjson.encode(t))",
    PRELUDE + "local t = {} for i = 1, 999 do t = {t} end return D(#cjson.encode(t))",
    PRELUDE + "local t = setmetatable({}, {__index = function() return 1 end}) t[2] = 5 return D(cjson.encode(t))",
    value("cjson.decode('1'), cjson.decode(' -0.5e3 '), cjson.decode('1E2'), cjson.decode('0x1F'), cjson.decode('-0')"),
    value("cjson.decode('01'), cjson.decode('1.'), cjson.decode('-.5'), cjson.decode('1e'), cjson.decode('2e+')"),
    value(
        "cjson.decode('+5'), cjson.decode('inf'), cjson.decode('-Infinity'), cjson.decode('nan'), cjson.decode('NaN')"
    ),
    value(
        "cjson.decode('nan(12ab)'), cjson.decode('nan('), cjson.decode('0x'), "
        "cjson.decode('0x1.8p1'), cjson.decode('1e400')"
    ),
    value('cjson.decode(\'"abc"\'), cjson.decode(\'"a\\\\/b\\\\\\\\c\\\\"\\\\b\\\\f\\\\n\\\\r\\\\t"\')'),
    value("cjson.decode('\"\\\\u0041\\\\u00e9\\\\u20ac\\\\ud83d\\\\ude00\\\\u0000x\"')"),
    value("cjson.decode('\"\\\\uD834\\\\uDD1E\"'), cjson.decode('\"raw é \\1 bytes\"')"),
    value(
        "cjson.decode('true'), cjson.decode('false'), cjson.decode('null'), cjson.decode(' [ ] '), cjson.decode('{}')"
    ),
    value('cjson.decode(\'[1, [2, [3, {"a": [4]}]], {"b": {"c": null}}]\')'),
    value(
        "cjson.decode('{\"a\": 1, \"a\": 2}'), cjson.decode('[1, null, 3]'), cjson.decode(123), "
        "cjson.decode('[1]\\0junk')"
    ),
    value("cjson.decode('\\t\\r\\n [1 ,2 ] \\n')"),
    value('cjson.encode(cjson.decode(\'{"x": [1, 2.5, "s", true, null, {"y": {}}]}\'))'),
    value("cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000)) ~= nil"),
    value("cjson._NAME, cjson._VERSION, type(cjson.null), type(cjson.new)"),
    value(
        "cjson.encode_keep_buffer(), cjson.encode_max_depth(), cjson.decode_max_depth(), "
        "cjson.encode_number_precision()"
    ),
    value("cjson.encode_invalid_numbers(), cjson.decode_invalid_numbers(), cjson.encode_sparse_array()"),
    PRELUDE + "local c = cjson.new() return D(c.encode_number_precision(3), c.encode(1/3), cjson.encode(1/3))",
    PRELUDE + "local c = cjson.new() return D(c.encode_invalid_numbers(true), c.encode({1/0, -1/0, 0/0}))",
    PRELUDE + "local c = cjson.new() return D(c.encode_invalid_numbers('null'), c.encode({1/0, 0/0}))",
    PRELUDE + "local c = cjson.new() return D(c.encode_sparse_array(true), c.encode({[20] = 1}))",
    PRELUDE + "local c = cjson.new() return D(c.encode_sparse_array(false, 0), c.encode({[20] = 1}))",
    PRELUDE
    + "local c = cjson.new() return D(c.encode_sparse_array(nil, 3, 1), c.encode({[3] = 1}), c.encode({[4] = 1}))",
    PRELUDE + "local c = cjson.new() return D(c.encode_max_depth(2), c.encode({{1}}), pcall(c.encode, {{{1}}}))",
    PRELUDE + "local c = cjson.new() return D(c.decode_max_depth(2), c.decode('[[1]]'), pcall(c.decode, '[[[1]]]'))",
    PRELUDE + "local c = cjson.new() return D(c.decode_invalid_numbers(false), pcall(c.decode, '0x10'))",
    PRELUDE
    + "local c = cjson.new() return D(c.decode_invalid_numbers('off'), pcall(c.decode, 'inf'), c.decode('-1.5'))",
    PRELUDE
    + "local c = cjson.new() c.decode_invalid_numbers(false) return D(pcall(c.decode, '01'), pcall(c.decode, '+1'))",
    PRELUDE + "local c = cjson.new() return D(c.encode_keep_buffer('off'), c.encode({1}), c.encode_keep_buffer(true))",
    PRELUDE + "local c = cjson.new() return D(c.encode_number_precision(14), c.encode_max_depth(2^32 + 7))",
    raised("cjson.decode('{')"),
    raised("cjson.decode('')"),
    raised("cjson.decode('   ')"),
    raised("cjson.decode('[1, 2')"),
    raised("cjson.decode('[1 2]')"),
    raised("cjson.decode('{\"a\" 1}')"),
    raised("cjson.decode('{\"a\": 1,}')"),
    raised("cjson.decode('{1: 2}')"),
    raised("cjson.decode('[1,]')"),
    raised("cjson.decode('[1] x')"),
    raised("cjson.decode('tru')"),
    raised("cjson.decode('nul')"),
    raised("cjson.decode('.5')"),
    raised("cjson.decode('-')"),
    raised("cjson.decode('- 1')"),
    raised("cjson.decode('+x')"),
    raised("cjson.decode('\"abc')"),
    raised("cjson.decode('\"a\\\\x\"')"),
    raised("cjson.decode('\"a\\\\')"),
    raised("cjson.decode('\"\\\\u12G4\"')"),
    raised("cjson.decode('\"\\\\udc00\"')"),
    raised("cjson.decode('\"\\\\ud800x\"')"),
    raised("cjson.decode('\"\\\\ud800\\\\u0041\"')"),
    raised("cjson.decode('\"a\\0b\"')"),
    raised("cjson.decode('a\\0')"),
    raised("cjson.decode('\\0a')"),
    raised("cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))"),
    raised("cjson.decode(string.rep('{\"a\":', 1001))"),
    raised("cjson.decode({})"),
    raised("cjson.decode()"),
    raised("cjson.decode('1', '2')"),
    raised("cjson.encode()"),
    raised("cjson.encode(1, 2)"),
    raised("cjson.encode(1/0)"),
    raised("cjson.encode({0/0})"),
    raised("cjson.encode({[1/0] = 1})"),
    raised("cjson.encode({[20] = 1})"),
    raised("cjson.encode({[true] = 1})"),
    raised("cjson.encode({f = tostring})"),
    raised("cjson.encode(coroutine.create(tostring))"),
    "local t = {} t[1] = t\nlocal ok = cjson.encode(t)\nreturn ok",
    raised("cjson.encode_max_depth(0)"),
    raised("cjson.encode_max_depth('x')"),
    raised("cjson.encode_max_depth(1, 2)"),
    raised("cjson.encode_number_precision(15)"),
    raised("cjson.encode_sparse_array(true, -1)"),
    raised("cjson.encode_sparse_array(true, 1, {})"),
    raised("cjson.encode_sparse_array(1, 2, 3, 4)"),
    raised("cjson.encode_sparse_array('yes')"),
    raised("cjson.encode_invalid_numbers('maybe')"),
    raised("cjson.encode_keep_buffer({})"),
    raised("cjson.decode_invalid_numbers(1)"),
    # Past 8000 Lua stack slots the C code's depth checks fail whatever the configured depth.
    PRELUDE + "local c = cjson.new() c.decode_max_depth(100000) return D(pcall(c.decode, string.rep('[', 20000)))",
    PRELUDE + "local c = cjson.new() c.decode_max_depth(100000) return D(pcall(c.decode, string.rep('{\"a\":', 9000)))",
    PRELUDE + "local c = cjson.new() c.decode_max_depth(100000) "
    "return D(pcall(c.decode, string.rep('[{\"a\":', 3000)))",
    PRELUDE + "local c = cjson.new() c.decode_max_depth(100000) "
    "return D(#c.encode(c.decode(string.rep('[', 7998) .. string.rep(']', 7998))))",
    PRELUDE + "local c = cjson.new() c.encode_max_depth(100000) local t = {} t[1] = t return D(pcall(c.encode, t))",
    PRELUDE + "local c = cjson.new() c.encode_max_depth(100000) local t = {} t.a = t return D(pcall(c.encode, t))",
    PRELUDE + "local c = cjson.new() c.encode_max_depth(100000) local t = {} t.a = {t} return D(pcall(c.encode, t))",
    "return {1, cjson.null, 2, cjson.decode('null'), cjson.decode('[null]')[1]}",
    "return cjson.null",
    caught("cjson.decode, '{'"),
    caught("cjson.encode, {[30] = 1}"),
    caught("cjson.encode"),
]


def case_id(src: str) -> str:
    return src.replace(PRELUDE, "").replace("\n", " ")[:70]


@pytest.mark.parametrize("src", BIT_CASES, ids=case_id)
def test_bit(respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], src: str) -> None:
    check(respq_eval, redis_eval, src)


@pytest.mark.parametrize("src", STRUCT_CASES, ids=case_id)
def test_struct(respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], src: str) -> None:
    check(respq_eval, redis_eval, src)


@pytest.mark.parametrize("src", MSGPACK_CASES, ids=case_id)
def test_cmsgpack(respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], src: str) -> None:
    check(respq_eval, redis_eval, src)


@pytest.mark.parametrize("src", CJSON_CASES, ids=case_id)
def test_cjson(respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], src: str) -> None:
    check(respq_eval, redis_eval, src)


# Random values, written as Lua source so that both servers build the very same tables.


def lua_string(data: bytes) -> str:
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:03d}" for b in data) + '"'


def lua_number(number: float) -> str:
    if math.isnan(number):
        return "(0/0)"
    if math.isinf(number):
        return "(1/0)" if number > 0 else "(-1/0)"
    if isinstance(number, int):
        return f"({number})"
    return f"({number:.17g})"


def lua_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return lua_number(value)
    if isinstance(value, bytes):
        return lua_string(value)
    if isinstance(value, list):
        return "{" + ",".join(lua_literal(item) for item in value) + "}"
    assert isinstance(value, dict)
    return "{" + ",".join(f"[{lua_literal(k)}]={lua_literal(v)}" for k, v in value.items()) + "}"


NUMBERS = st.one_of(
    st.integers(-300, 300),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2**31, -(2**31), 2**32 - 1, 2**53, 2**63, -(2**63), 0.5, 1.5, 2.5, -0.0, 1e-45, 3.4e38]),
)
SCALARS = st.one_of(NUMBERS, st.binary(max_size=40), st.booleans())
KEYS = st.one_of(st.binary(max_size=8), st.integers(-3, 40), st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=6), st.dictionaries(KEYS, children, max_size=6)),
    max_leaves=20,
)


@given(VALUES)
def test_cjson_encode_random(
    respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], tree: object
) -> None:
    check(respq_eval, redis_eval, caught(f"cjson.encode, {lua_literal(tree)}"))


@given(VALUES)
def test_cmsgpack_round_trip_random(
    respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], tree: object
) -> None:
    literal = lua_literal(tree)
    check(respq_eval, redis_eval, value(f"cmsgpack.pack({literal}), cmsgpack.unpack(cmsgpack.pack({literal}))"))


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60), st.floats(allow_nan=False), st.text()),
    # Keys under 32 bytes: Redis hashes every byte of a string where stock Lua 5.1 samples longer ones, so
    # longer keys iterate in another order (a documented difference).
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=7), children, max_size=5)
    ),
    max_leaves=15,
)


@given(JSON_VALUES, st.booleans())
def test_cjson_decode_random(
    respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], document: object, ascii: bool
) -> None:
    text = json.dumps(document, ensure_ascii=ascii, allow_nan=True).encode()
    check(respq_eval, redis_eval, value(f"cjson.decode({lua_string(text)})"))
    check(respq_eval, redis_eval, value(f"cjson.encode(cjson.decode({lua_string(text)}))"))


@given(st.text(alphabet='[]{}",:0123456789.eE+-xXtruefalsnINfiy \\u/\x00ab', max_size=30))
def test_cjson_decode_random_text(
    respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], text: str
) -> None:
    check(respq_eval, redis_eval, caught(f"cjson.decode, {lua_string(text.encode())}"))


@given(st.binary(max_size=40), st.integers(-2, 5), st.integers(-2, 45))
def test_cmsgpack_unpack_random_bytes(
    respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], data: bytes, limit: int, offset: int
) -> None:
    check(respq_eval, redis_eval, caught(f"cmsgpack.unpack, {lua_string(data)}"))
    check(respq_eval, redis_eval, caught(f"cmsgpack.unpack_limit, {lua_string(data)}, {limit}, {offset}"))


@given(
    st.sampled_from(
        ["tobit", "bnot", "band", "bor", "bxor", "lshift", "rshift", "arshift", "rol", "ror", "bswap", "tohex"]
    ),
    st.lists(NUMBERS, min_size=1, max_size=4),
)
def test_bit_random(
    respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], op: str, args: list[float]
) -> None:
    check(respq_eval, redis_eval, caught(f"bit.{op}, " + ", ".join(lua_number(a) for a in args)))


@given(st.text(alphabet="bBhHlLTiIfdxcs<>! 0123456789", max_size=8), st.lists(NUMBERS, max_size=6))
def test_struct_pack_random(
    respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], fmt: str, args: list[float]
) -> None:
    arguments = "".join(", " + lua_number(a) for a in args)
    check(respq_eval, redis_eval, caught(f"struct.pack, {lua_string(fmt.encode())}{arguments}"))
    check(respq_eval, redis_eval, caught(f"struct.size, {lua_string(fmt.encode())}"))


@given(st.text(alphabet="bBhHlLTiIfdxcs<>! 0123456789", max_size=8), st.binary(max_size=40), st.integers(-1, 10))
def test_struct_unpack_random(
    respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], fmt: str, data: bytes, pos: int
) -> None:
    check(respq_eval, redis_eval, caught(f"struct.unpack, {lua_string(fmt.encode())}, {lua_string(data)}, {pos}"))


# Properties of the runtime itself, not compared with Redis.


def _runtime() -> lupa.lua51.LuaRuntime:
    lua = lupa.lua51.LuaRuntime(encoding=None)
    install_libraries(lua)
    return lua


def test_runtimes_share_no_state() -> None:
    first, second = _runtime(), _runtime()
    assert first.execute(b"cjson.encode_number_precision(3) return cjson.encode(1/3)") == b"0.333"
    assert second.execute(b"return cjson.encode(1/3)") == b"0.33333333333333"
    assert first.execute(b"return cjson.decode('null') == cjson.null") is True
    assert second.execute(b"return cjson.null") != first.execute(b"return cjson.null")


def test_libraries_work_once_the_sandbox_removes_globals() -> None:
    """Everything they use is captured at install: scripts lose debug, print, loadfile and dofile afterwards."""
    lua = _runtime()
    lua.execute(b"debug, print, loadfile, dofile, newproxy, string, math, table, pcall = nil")
    run = lua.execute(b"""
        local f = loadstring("local x = struct.unpack('i', 'ab')", '@user_script')
        return function() local ok, err = coroutine.resume(coroutine.create(f)) return err end
    """)
    assert run() == b"user_script:1: bad argument #2 to 'unpack' (data string too short)"
    assert lua.execute(b"return cmsgpack.unpack(cmsgpack.pack({1, 2}))[2]") == 2
    assert lua.execute(b"return cjson.encode(cjson.decode('[1,{\"a\":null}]'))") == b'[1,{"a":null}]'
    assert lua.execute(b"return bit.tohex(bit.bxor(-1, 0xff))") == b"ffffff00"


def test_library_frames_are_named_for_error_handlers() -> None:
    lua = _runtime()
    sources = lua.execute(b"""
        local sources = {}
        local function handler() sources[#sources + 1] = debug.getinfo(3, 'S').source end
        xpcall(function() local x = cjson.decode('{') end, handler)
        return sources[1]
    """)
    assert sources.decode().startswith(LIBRARY_SOURCE_PREFIX)


@pytest.mark.parametrize(
    ("src", "message"),
    [
        # Redis: "user_script:1: bad argument #1 to 'pack' (invalid format option 'q')". A Lua function called in a
        # tail position replaces its caller's frame (a C function does not), so the caller's line is lost; the name
        # is the field the function was registered under.
        ("return struct.pack('q', 1)", b"bad argument #1 to 'pack' (invalid format option 'q')"),
        # Redis: "user_script:1: Expected value but found T_END at character 1".
        ("return cjson.decode('')", b"Expected value but found T_END at character 1"),
    ],
)
def test_documented_difference_tail_calls_lose_the_position(src: str, message: bytes) -> None:
    lua = _runtime()
    run = lua.execute(b"return function(src) return select(2, pcall(loadstring(src, '@user_script'))) end")
    assert run(src.encode()) == message


def test_documented_difference_cjson_null_prints_as_another_userdata(respq_eval: Callable[[str], Reply]) -> None:
    # Redis: "userdata: (nil)", the NULL light userdata.
    reply = respq_eval("return tostring(cjson.null)")
    assert isinstance(reply, bytes) and reply.startswith(b"userdata: 0x")
    assert respq_eval("return type(cjson.null) == 'userdata' and cjson.decode('null') == cjson.null") == 1


def test_documented_difference_long_keys_same_members_other_order(
    respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply]
) -> None:
    keys = [f"key-{i:02d}-" + "x" * 40 for i in range(12)]
    table = "{" + ",".join(f"['{key}']={i}" for i, key in enumerate(keys)) + "}"
    ours, theirs = respq_eval(f"return cjson.encode({table})"), redis_eval(f"return cjson.encode({table})")
    assert isinstance(ours, bytes) and isinstance(theirs, bytes)
    assert json.loads(ours) == json.loads(theirs) == {key: i for i, key in enumerate(keys)}
    ours, theirs = respq_eval(f"return cmsgpack.pack({table})"), redis_eval(f"return cmsgpack.pack({table})")
    assert isinstance(ours, bytes) and isinstance(theirs, bytes) and sorted(ours) == sorted(theirs)


def test_documented_difference_nan_payloads_are_not_kept(respq_eval: Callable[[str], Reply]) -> None:
    # Redis packs back the same bytes (7ff8000000000001 little-endian); Lua cannot see a NaN's payload.
    assert respq_eval("return struct.pack('d', struct.unpack('d', '\\1\\0\\0\\0\\0\\0\\248\\127'))") == bytes.fromhex(
        "000000000000f87f"
    )


@pytest.mark.parametrize(
    "body",
    [
        "local t = {} for i = 1, 400000 do t[i] = {i} end return cjson.encode(t)",
        "return cjson.decode('[' .. string.rep('[1, 2, 3],', 400000) .. '0]')",
        "local t = {} for i = 1, 400000 do t[i] = 'x' .. i end return cmsgpack.pack(t)",
        "return cmsgpack.unpack(string.rep('\\\\145\\\\145\\\\1', 1000000))",
    ],
)
def test_memory_errors_stay_memory_errors(body: str) -> None:
    """The engine's script memory limit relies on Lua's memory error: the libraries never turn it into another."""
    lua = lupa.lua51.LuaRuntime(encoding=None, max_memory=0)
    install_libraries(lua)
    script = lua.eval(f"function() {body} end".encode())
    lua.set_max_memory(8 * 1024 * 1024, total=False)
    with pytest.raises(lupa.lua51.LuaMemoryError):
        script()


@given(
    VALUES,
    st.integers(1, 14),
    st.sampled_from(["'off'", "'on'", "'null'", "true", "false"]),
    st.booleans(),
    st.integers(0, 4),
    st.integers(0, 12),
)
def test_cjson_encode_settings_random(
    respq_eval: Callable[[str], Reply],
    redis_eval: Callable[[str], Reply],
    tree: object,
    precision: int,
    invalid: str,
    convert: bool,
    ratio: int,
    safe: int,
) -> None:
    setup = (
        f"local c = cjson.new() c.encode_number_precision({precision}) c.encode_invalid_numbers({invalid}) "
        f"c.encode_sparse_array({str(convert).lower()}, {ratio}, {safe}) "
    )
    check(respq_eval, redis_eval, PRELUDE + setup + f"return D(pcall(c.encode, {lua_literal(tree)}))")


@given(st.text(alphabet='[]{}",:0123456789.eE+-xXtruefalsnINfiy \\\\u/', max_size=30), st.integers(1, 4))
def test_cjson_decode_settings_random(
    respq_eval: Callable[[str], Reply], redis_eval: Callable[[str], Reply], text: str, depth: int
) -> None:
    setup = f"local c = cjson.new() c.decode_invalid_numbers(false) c.decode_max_depth({depth}) "
    check(respq_eval, redis_eval, PRELUDE + setup + f"return D(pcall(c.decode, {lua_string(text.encode())}))")
