-- Helpers shared by the four libraries: error raising that reads as Redis's C libraries raise (luaL_error,
-- luaL_argerror), argument coercions as the Lua C API does them, and IEEE 754 / two's complement conversions
-- done with doubles (Lua 5.1 has no integer type and no bit operators).
-- Runs once per runtime at install time: everything it uses is captured here as upvalues.
local type, tostring, tonumber, error, setmetatable, pairs = type, tostring, tonumber, error, setmetatable, pairs
local floor, frexp, ldexp, huge = math.floor, math.frexp, math.ldexp, math.huge
local format, byte = string.format, string.byte
local getinfo = debug and debug.getinfo

local M = {}

-- The functions scripts call. An error raised anywhere inside a library names the frame of the public function
-- (for the function name) and of its caller (for the "source:line: " prefix), as luaL_error does from a C function.
local public = setmetatable({}, { __mode = "k" })

function M.register(lib)
  for name, f in pairs(lib) do
    if type(f) == "function" then public[f] = name end
  end
  return lib
end

local function public_level()
  if not getinfo then return nil end
  local level = 3 -- 1 is this function, 2 the raising helper
  while true do
    local info = getinfo(level, "f")
    if info == nil then return nil end
    if info.func and public[info.func] then return level - 1 end -- relative to the caller of public_level
    level = level + 1
  end
end

-- luaL_where(L, 1) seen from the public function (at `level` from here): the caller's "short_src:line: " when
-- it is a Lua function.
local function where(level)
  if level == nil then return "" end
  local info = getinfo(level + 1, "Sl")
  if info and info.currentline and info.currentline > 0 then
    return info.short_src .. ":" .. info.currentline .. ": "
  end
  return ""
end

function M.raise(msg)
  local level = public_level()
  error(where(level and level + 1) .. msg, 0)
end

function M.argerror(narg, extramsg)
  local level = public_level()
  local name, namewhat
  if level then
    local info = getinfo(level, "n")
    name, namewhat = info.name, info.namewhat
    if name == nil then
      -- A tail call (`return bit.tohex(x)`) replaced the caller's frame, which a C function keeps: the
      -- field name is the best guess of what the caller called it.
      local caller = getinfo(level + 1, "S")
      if caller and caller.what == "tail" then name = public[getinfo(level, "f").func] end
    end
  end
  if namewhat == "method" then
    narg = narg - 1
    if narg == 0 then
      error(where(level and level + 1) .. format("calling '%s' on bad self (%s)", tostring(name), extramsg), 0)
    end
  end
  error(where(level and level + 1) .. format("bad argument #%d to '%s' (%s)", narg, name or "?", extramsg), 0)
end
local argerror = M.argerror

-- luaL_typerror; `nargs` is the number of arguments passed, so a missing one reads "no value".
function M.typeerror(narg, nargs, value, expected)
  local got = narg > nargs and "no value" or type(value)
  argerror(narg, expected .. " expected, got " .. got)
end
local typeerror = M.typeerror

-- luaL_checknumber: numbers and strings that convert.
function M.checknumber(value, narg, nargs)
  if type(value) == "number" then return value end
  local n = type(value) == "string" and tonumber(value) or nil
  if n == nil then typeerror(narg, nargs, value, "number") end
  return n
end
local checknumber = M.checknumber

-- lua_tointeger on x86-64: truncation toward zero; out of range and NaN give INT64_MIN.
local function tointeger(n)
  if n ~= n or n >= 9223372036854775808 or n < -9223372036854775808 then return -9223372036854775808 end
  if n >= 0 then return floor(n) end
  return -floor(-n)
end
M.tointeger = tointeger

function M.checkinteger(value, narg, nargs)
  return tointeger(checknumber(value, narg, nargs))
end

function M.optinteger(value, narg, nargs, default)
  if value == nil then return default end
  return tointeger(checknumber(value, narg, nargs))
end

-- luaL_checklstring: strings, and numbers converted as Lua converts them ("%.14g").
function M.checkstring(value, narg, nargs)
  local t = type(value)
  if t == "string" then return value end
  if t == "number" then return tostring(value) end
  typeerror(narg, nargs, value, "string")
end

-- A C cast of an integral double to int: the low 32 bits, signed.
function M.toint32(n)
  n = n % 4294967296
  if n >= 2147483648 then return n - 4294967296 end
  return n
end

-- Bitwise operations on unsigned 32-bit values held in doubles, a nibble at a time.
local XOR4 = {}
for a = 0, 15 do
  for b = 0, 15 do
    local r, p, x, y = 0, 1, a, b
    for _ = 1, 4 do
      if x % 2 ~= y % 2 then r = r + p end
      x, y, p = floor(x / 2), floor(y / 2), p * 2
    end
    XOR4[a * 16 + b] = r
  end
end

local function bxor(a, b)
  local r, p = 0, 1
  while a > 0 or b > 0 do
    local x, y = a % 16, b % 16
    r = r + XOR4[x * 16 + y] * p
    a, b, p = (a - x) / 16, (b - y) / 16, p * 16
  end
  return r
end
M.bxor = bxor
function M.band(a, b) return (a + b - bxor(a, b)) / 2 end
function M.bor(a, b) return (a + b + bxor(a, b)) / 2 end

-- NaN's sign is only visible through its printed form; x86's default NaN (0/0) is negative.
local function nan_is_negative(d)
  return byte(format("%f", d)) == 45 -- "-"
end
M.NEG_NAN = 0 / 0
M.POS_NAN = -(0 / 0)
if nan_is_negative(M.POS_NAN) then M.NEG_NAN, M.POS_NAN = M.POS_NAN, M.NEG_NAN end

local function is_negative(d)
  if d ~= d then return nan_is_negative(d) end
  return d < 0 or (d == 0 and 1 / d < 0)
end

-- The IEEE 754 binary64 encoding of d as two unsigned 32-bit halves.
function M.double_bits(d)
  local sign = 0
  if is_negative(d) then sign = 2147483648; d = -d end
  if d ~= d then return sign + 2146959360, 0 end -- quiet NaN
  if d == huge then return sign + 2146435072, 0 end
  if d == 0 then return sign, 0 end
  local m, e = frexp(d)
  local mant, expf
  if e + 1022 <= 0 then
    expf, mant = 0, ldexp(d, 1074)
  else
    expf, mant = e + 1022, ldexp(m, 53) - 4503599627370496
  end
  return sign + expf * 1048576 + floor(mant / 4294967296), mant % 4294967296
end

function M.double_from_bits(hi, lo)
  local negative = hi >= 2147483648
  if negative then hi = hi - 2147483648 end
  local expf = floor(hi / 1048576)
  local mant = (hi % 1048576) * 4294967296 + lo
  local d
  if expf == 2047 then
    if mant == 0 then d = huge else return negative and M.NEG_NAN or M.POS_NAN end
  elseif expf == 0 then
    d = ldexp(mant, -1074)
  else
    d = ldexp(mant + 4503599627370496, expf - 1075)
  end
  if negative then return -d end
  return d
end

local function round_half_even(x)
  local f = floor(x)
  local diff = x - f
  if diff > 0.5 or (diff == 0.5 and f % 2 == 1) then return f + 1 end
  return f
end

-- The IEEE 754 binary32 encoding of (float)d: rounded to nearest even, overflowing to infinity.
function M.float_bits(d)
  local sign = 0
  if is_negative(d) then sign = 2147483648; d = -d end
  if d ~= d then return sign + 2143289344 end
  if d == huge then return sign + 2139095040 end
  if d == 0 then return sign end
  local m, e = frexp(d)
  local expf = e + 126
  if expf >= 1 then
    local r = round_half_even(ldexp(m, 24))
    if r == 16777216 then r, expf = 8388608, expf + 1 end
    if expf >= 255 then return sign + 2139095040 end
    return sign + expf * 8388608 + (r - 8388608)
  end
  return sign + round_half_even(ldexp(d, 149)) -- subnormal; may round up to the smallest normal
end

function M.float_from_bits(bits)
  local negative = bits >= 2147483648
  if negative then bits = bits - 2147483648 end
  local expf = floor(bits / 8388608)
  local mant = bits % 8388608
  local d
  if expf == 255 then
    if mant == 0 then d = huge else return negative and M.NEG_NAN or M.POS_NAN end
  elseif expf == 0 then
    d = ldexp(mant, -149)
  else
    d = ldexp(mant + 8388608, expf - 150)
  end
  if negative then return -d end
  return d
end

-- Two's complement halves (unsigned 32-bit hi, lo) of an integral double in [-2^63, 2^64).
function M.int64_halves(t)
  if t >= 0 then return floor(t / 4294967296), t % 4294967296 end
  local m = -t
  local hi, lo = floor(m / 4294967296), m % 4294967296
  if lo == 0 then return (4294967296 - hi) % 4294967296, 0 end
  return 4294967295 - hi, 4294967296 - lo
end

return M
