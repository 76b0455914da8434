-- lua_cmsgpack 0.4.0 as Redis 7.0 embeds it. Its choices: integral numbers in int64 range take the smallest
-- integer encoding, other numbers a float 32 when exact and a float 64 otherwise; a table whose keys are exactly
-- 1..n is an array (so {} is an empty array), any other a map in `next` order; tables nested 16 deep, nil,
-- functions and userdata pack as nil. unsigned 64-bit values above 2^63 unpack as negative (a C cast).
local C = ...
local type, select, next, error = type, select, next, error
local floor = math.floor
local byte, char, sub, format = string.byte, string.char, string.sub, string.format
local concat, unpack = table.concat, unpack
local raise, argerror, checkstring, optinteger = C.raise, C.argerror, C.checkstring, C.optinteger
local checkinteger, toint32 = C.checkinteger, C.toint32
local int64_halves, double_bits, double_from_bits = C.int64_halves, C.double_bits, C.double_from_bits
local float_bits, float_from_bits = C.float_bits, C.float_from_bits

local MAX_NESTING = 16
local TWO32 = 4294967296

local function u16(n) return char(floor(n / 256), n % 256) end
local function u32(n)
  return char(floor(n / 16777216), floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

local encode_value

local function encode_int(n)
  if n >= 0 then
    if n <= 127 then return char(n) end
    if n <= 255 then return char(0xcc, n) end
    if n <= 65535 then return "\205" .. u16(n) end
    if n <= 4294967295 then return "\206" .. u32(n) end
    local hi, lo = int64_halves(n)
    return "\207" .. u32(hi) .. u32(lo)
  end
  if n >= -32 then return char(n + 256) end
  if n >= -128 then return char(0xd0, n + 256) end
  if n >= -32768 then return "\209" .. u16(n + 65536) end
  if n >= -2147483648 then return "\210" .. u32(n + TWO32) end
  local hi, lo = int64_halves(n)
  return "\211" .. u32(hi) .. u32(lo)
end

local function float_exact(d)
  -- d == (double)(float)d
  local bits = float_bits(d)
  return float_from_bits(bits) == d, bits
end

local function encode_number(n)
  if n == floor(n) and n >= -9223372036854775808 and n < 9223372036854775808 then
    return encode_int(n) -- also -0.0, which C casts to 0
  end
  local exact, bits = float_exact(n)
  if exact then return "\202" .. u32(bits) end
  local hi, lo = double_bits(n)
  return "\203" .. u32(hi) .. u32(lo)
end

local function encode_string(s)
  local len = #s
  if len < 32 then return char(0xa0 + len) .. s end
  if len <= 255 then return char(0xd9, len) .. s end
  if len <= 65535 then return "\218" .. u16(len) .. s end
  return "\219" .. u32(len) .. s
end

local function encode_table(t, level, out, n)
  -- An array when every key is a positive number that a C int holds and they are exactly 1..count.
  local count, max, is_array = 0, 0, true
  for k in next, t do
    if type(k) ~= "number" or k <= 0 or k ~= floor(k) or k > 2147483647 then
      is_array = false
      break
    end
    if k > max then max = k end
    count = count + 1
  end
  if is_array and max == count then
    if count <= 15 then
      n = n + 1; out[n] = char(0x90 + count)
    elseif count <= 65535 then
      n = n + 1; out[n] = "\220" .. u16(count)
    else
      n = n + 1; out[n] = "\221" .. u32(count)
    end
    for j = 1, count do
      n = encode_value(t[j], level + 1, out, n)
    end
    return n
  end
  count = 0
  for _ in next, t do count = count + 1 end
  if count <= 15 then
    n = n + 1; out[n] = char(0x80 + count)
  elseif count <= 65535 then
    n = n + 1; out[n] = "\222" .. u16(count)
  else
    n = n + 1; out[n] = "\223" .. u32(count)
  end
  for k, v in next, t do
    n = encode_value(k, level + 1, out, n)
    n = encode_value(v, level + 1, out, n)
  end
  return n
end

function encode_value(v, level, out, n)
  local t = type(v)
  if t == "string" then
    n = n + 1; out[n] = encode_string(v)
  elseif t == "number" then
    n = n + 1; out[n] = encode_number(v)
  elseif t == "boolean" then
    n = n + 1; out[n] = v and "\195" or "\194"
  elseif t == "table" and level < MAX_NESTING then
    n = encode_table(v, level, out, n)
  else
    n = n + 1; out[n] = "\192"
  end
  return n
end

-- Decoding. Failures raise straight from where they are found (no pcall: a memory error must stay one).
local EOF_ERROR, BADFMT_ERROR = "Missing bytes in input.", "Bad data format in input."

-- The C decoder keeps every value it is building on the Lua stack of its C function, which Lua 5.1 caps at
-- LUAI_MAXCSTACK slots: `slots` counts what it would hold, so that the same inputs fail the same way.
local MAXCSTACK = 8000
local STACK_ERROR = "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"

local decode_value

local function decode_array(s, i, len, count, slots)
  local t = {}
  if slots + 2 > MAXCSTACK then raise("stack overflow (in function mp_decode_to_lua_array)") end
  for j = 1, count do
    t[j], i = decode_value(s, i, len, slots + 2)
  end
  return t, i
end

local function decode_map(s, i, len, count, slots)
  local t = {}
  for _ = 1, count do
    local k, v
    k, i = decode_value(s, i, len, slots + 1)
    v, i = decode_value(s, i, len, slots + 2)
    -- lua_settable raises these inside the C function: no position.
    if k == nil then error("table index is nil", 0) end
    if k ~= k then error("table index is NaN", 0) end
    t[k] = v
  end
  return t, i
end

local function need(i, n, len)
  if i + n - 1 > len then raise(EOF_ERROR) end
end

local function be_u32(s, i)
  local b1, b2, b3, b4 = byte(s, i, i + 3)
  return ((b1 * 256 + b2) * 256 + b3) * 256 + b4
end

-- Returns the value at s[i] and the index after it; `slots` are the stack slots in use below it.
function decode_value(s, i, len, slots)
  local b = byte(s, i)
  if b == nil then raise(EOF_ERROR) end
  if slots + 1 > MAXCSTACK then raise(STACK_ERROR) end
  if b < 0x80 then return b, i + 1 end
  if b >= 0xe0 then return b - 256, i + 1 end
  if b >= 0xa0 and b < 0xc0 then
    local l = b - 0xa0
    need(i, 1 + l, len)
    return sub(s, i + 1, i + l), i + 1 + l
  end
  if b >= 0x90 and b < 0xa0 then return decode_array(s, i + 1, len, b - 0x90, slots) end
  if b < 0x90 then return decode_map(s, i + 1, len, b - 0x80, slots) end
  if b == 0xc0 then return nil, i + 1 end
  if b == 0xc2 then return false, i + 1 end
  if b == 0xc3 then return true, i + 1 end
  if b == 0xcc then
    need(i, 2, len)
    return byte(s, i + 1), i + 2
  end
  if b == 0xd0 then
    need(i, 2, len)
    local v = byte(s, i + 1)
    return v >= 128 and v - 256 or v, i + 2
  end
  if b == 0xcd or b == 0xd1 then
    need(i, 3, len)
    local b1, b2 = byte(s, i + 1, i + 2)
    local v = b1 * 256 + b2
    if b == 0xd1 and v >= 32768 then v = v - 65536 end
    return v, i + 3
  end
  if b == 0xce or b == 0xd2 then
    need(i, 5, len)
    local v = be_u32(s, i + 1)
    if b == 0xd2 and v >= 2147483648 then v = v - TWO32 end
    return v, i + 5
  end
  if b == 0xcf or b == 0xd3 then
    -- Both reach Lua through a signed 64-bit integer, then a double.
    need(i, 9, len)
    local hi, lo = be_u32(s, i + 1), be_u32(s, i + 5)
    if hi >= 2147483648 then hi = hi - TWO32 end
    return hi * TWO32 + lo, i + 9
  end
  if b == 0xca then
    need(i, 5, len)
    return float_from_bits(be_u32(s, i + 1)), i + 5
  end
  if b == 0xcb then
    need(i, 9, len)
    return double_from_bits(be_u32(s, i + 1), be_u32(s, i + 5)), i + 9
  end
  if b == 0xd9 then
    need(i, 2, len)
    local l = byte(s, i + 1)
    need(i, 2 + l, len)
    return sub(s, i + 2, i + 1 + l), i + 2 + l
  end
  if b == 0xda then
    need(i, 3, len)
    local b1, b2 = byte(s, i + 1, i + 2)
    local l = b1 * 256 + b2
    need(i, 3 + l, len)
    return sub(s, i + 3, i + 2 + l), i + 3 + l
  end
  if b == 0xdb then
    need(i, 5, len)
    local l = be_u32(s, i + 1)
    need(i + 5, l, len)
    return sub(s, i + 5, i + 4 + l), i + 5 + l
  end
  if b == 0xdc then
    need(i, 3, len)
    local b1, b2 = byte(s, i + 1, i + 2)
    return decode_array(s, i + 3, len, b1 * 256 + b2, slots)
  end
  if b == 0xdd then
    need(i, 5, len)
    return decode_array(s, i + 5, len, be_u32(s, i + 1), slots)
  end
  if b == 0xde then
    need(i, 3, len)
    local b1, b2 = byte(s, i + 1, i + 2)
    return decode_map(s, i + 3, len, b1 * 256 + b2, slots)
  end
  if b == 0xdf then
    need(i, 5, len)
    return decode_map(s, i + 5, len, be_u32(s, i + 1), slots)
  end
  raise(BADFMT_ERROR) -- 0xc1, the ext and bin types
end

-- Decodes up to `limit` values from byte offset `offset` into `values`; returns the count and the next index.
local function decode_from(s, offset, limit, values)
  local len = #s
  local i, count = offset + 1, 0
  while i <= len and count < limit do
    local v, after = decode_value(s, i, len, 1 + count) -- the input string is in the first slot
    count = count + 1
    values[count] = v
    i = after
  end
  return count, i
end

-- Lua's unpack refuses more than about LUAI_MAXCSTACK results; the C library returns up to 7999.
local function unpack_values(values, count)
  if count < 7900 then return unpack(values, 1, count) end
  return values[1], values[2], values[3], values[4], unpack(values, 5, count)
end

local function unpack_full(s, limit, offset)
  local len = #s
  if offset < 0 or limit < 0 then
    raise(format("Invalid request to unpack with offset of %d and limit of %d.", toint32(offset), toint32(len)))
  elseif offset > len then
    raise(format("Start offset %d greater than input length %d.", toint32(offset), toint32(len)))
  end
  local values = {}
  if limit == 0 and offset == 0 then
    local count = decode_from(s, 0, 2147483647, values)
    return unpack_values(values, count)
  end
  local count, i = decode_from(s, offset, limit, values)
  if count + 2 > MAXCSTACK then raise("stack overflow (in function mp_unpack_full)") end
  return i > len and -1 or i - 1, unpack_values(values, count)
end

-- Public functions never tail-call a helper that can raise: the error must find their frame on the stack.
local function pass(...) return ... end

local cmsgpack = {
  _NAME = "cmsgpack",
  _VERSION = "lua-cmsgpack 0.4.0",
  _COPYRIGHT = "Copyright (C) 2012, Salvatore Sanfilippo",
  _DESCRIPTION = "MessagePack C implementation for Lua",
}

function cmsgpack.pack(...)
  local nargs = select("#", ...)
  if nargs == 0 then argerror(0, "MessagePack pack needs input.") end
  if nargs * 2 > MAXCSTACK then argerror(0, "Too many arguments for MessagePack pack.") end -- lua_checkstack
  local out, n = {}, 0
  for a = 1, nargs do
    n = encode_value((select(a, ...)), 0, out, n)
  end
  return concat(out, "", 1, n)
end

function cmsgpack.unpack(...)
  local nargs = select("#", ...)
  local s = checkstring((...), 1, nargs)
  local values = {}
  local count = decode_from(s, 0, 2147483647, values)
  return unpack_values(values, count)
end

function cmsgpack.unpack_one(...)
  local nargs = select("#", ...)
  local s, offset = ...
  offset = optinteger(offset, 2, nargs, 0)
  return pass(unpack_full(checkstring(s, 1, nargs), 1, offset))
end

function cmsgpack.unpack_limit(...)
  local nargs = select("#", ...)
  local s, limit, offset = ...
  limit = checkinteger(limit, 2, nargs)
  offset = optinteger(offset, 3, nargs, 0)
  return pass(unpack_full(checkstring(s, 1, nargs), limit, offset))
end

return C.register(cmsgpack)
