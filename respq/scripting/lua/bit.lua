-- LuaBitOp 1.0.2 as Redis 7.0 embeds it: 32-bit operations whose arguments are normalised as the C library does
-- (the low 32 bits of the double n + 2^52 + 2^51, so non-integers round to nearest even and large values wrap
-- through the mantissa) and whose results are signed 32-bit numbers.
local C = ...
local type, tonumber, select = type, tonumber, select
local floor, frexp, huge = math.floor, math.frexp, math.huge
local format, sub = string.format, string.sub
local typeerror, bxor, band, bor = C.typeerror, C.bxor, C.band, C.bor

local TWO32 = 4294967296
local MAGIC = 6755399441055744 -- 2^52 + 2^51

-- barg: argument narg as an unsigned 32-bit value.
local function barg(value, narg, nargs)
  local n = value
  if type(n) ~= "number" then
    n = type(n) == "string" and tonumber(n) or nil
    if n == nil then
      typeerror(narg, nargs, value, "number")
    end
  end
  if n > -2251799813685248 and n < 2251799813685248 then -- |n| < 2^51: the sum is in [2^52, 2^53), ulp 1
    return ((n + MAGIC) - MAGIC) % TWO32
  end
  local d = n + MAGIC
  if d ~= d or d == huge or d == -huge or d == 0 then return 0 end
  local m = frexp(d)
  if m < 0 then m = -m end
  return (m * 9007199254740992) % TWO32 -- the significand's low 32 bits
end

local function signed(b)
  if b >= 2147483648 then return b - TWO32 end
  return b
end

local bit = {}

function bit.tobit(...)
  return signed(barg((...), 1, select("#", ...)))
end

function bit.bnot(...)
  return signed(4294967295 - barg((...), 1, select("#", ...)))
end

local function reducer(op)
  return function(...)
    local nargs = select("#", ...)
    local b = barg((...), 1, nargs)
    for i = nargs, 2, -1 do -- LuaBitOp folds from the last argument down
      b = op(b, barg((select(i, ...)), i, nargs))
    end
    return signed(b)
  end
end
bit.band = reducer(band)
bit.bor = reducer(bor)
bit.bxor = reducer(bxor)

local POW2 = {}
for i = 0, 32 do POW2[i] = 2 ^ i end

local function shifter(op)
  return function(...)
    local nargs = select("#", ...)
    local a, s = ...
    local b = barg(a, 1, nargs)
    return signed(op(b, barg(s, 2, nargs) % 32))
  end
end
bit.lshift = shifter(function(b, n) return (b * POW2[n]) % TWO32 end)
bit.rshift = shifter(function(b, n) return floor(b / POW2[n]) end)
bit.arshift = shifter(function(b, n) return floor(signed(b) / POW2[n]) % TWO32 end)
bit.rol = shifter(function(b, n) return (b * POW2[n]) % TWO32 + floor(b / POW2[32 - n]) end)
bit.ror = shifter(function(b, n) return floor(b / POW2[n]) + (b * POW2[32 - n]) % TWO32 end)

function bit.bswap(...)
  local b = barg((...), 1, select("#", ...))
  local b0, b1, b2 = b % 256, floor(b / 256) % 256, floor(b / 65536) % 256
  local b3 = floor(b / 16777216)
  return signed(((b0 * 256 + b1) * 256 + b2) * 256 + b3)
end

function bit.tohex(...)
  local nargs = select("#", ...)
  local a, w = ...
  local b = barg(a, 1, nargs)
  local n = 8
  local fmt = "%08x"
  if nargs >= 2 then
    n = signed(barg(w, 2, nargs))
    if n < 0 then n, fmt = -n, "%08X" end
    if n > 8 then n = 8 end
  end
  return sub(format(fmt, b), 9 - n)
end

return C.register(bit)
