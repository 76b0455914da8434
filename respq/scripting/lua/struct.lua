-- lua-struct 0.2 as Redis 7.0 embeds it, with the sizes of x86-64 Linux (long and size_t 8 bytes, int 4,
-- maximum alignment 8) and native little-endian order. Integers go through C's unsigned long: more than 8 bytes
-- keep the low 64 bits, as the C shifts do.
local C = ...
local type, tonumber, select = type, tonumber, select
local floor = math.floor
local byte, char, sub, find, format = string.byte, string.char, string.sub, string.find, string.format
local rep, reverse = string.rep, string.reverse
local concat = table.concat
local raise, argerror, checknumber = C.raise, C.argerror, C.checknumber
local checkstring, optinteger, band = C.checkstring, C.optinteger, C.band
local int64_halves, double_bits, double_from_bits = C.int64_halves, C.double_bits, C.double_from_bits
local float_bits, float_from_bits, unpack = C.float_bits, C.float_from_bits, unpack

local BIG, LITTLE = 0, 1
local NATIVE = LITTLE
local MAXALIGN = 8
local MAXINTSIZE = 32
local INT_MAX = 2147483647

local SIZES = { b = 1, B = 1, h = 2, H = 2, l = 8, L = 8, T = 8, f = 4, d = 8, x = 1 }
local INTEGER = { b = true, B = true, h = true, H = true, l = true, L = true, T = true, i = true, I = true }

-- getnum: a decimal number at fmt[i], or the default. Returns the number and the next index.
local function getnum(fmt, i, default)
  local a = 0
  local c = byte(fmt, i)
  if not c or c < 48 or c > 57 then return default, i end
  repeat
    local digit = c - 48
    if a > floor(INT_MAX / 10) or a * 10 > INT_MAX - digit then raise("integral size overflow") end
    a = a * 10 + digit
    i = i + 1
    c = byte(fmt, i)
  until not c or c < 48 or c > 57
  return a, i
end

local function optsize(opt, fmt, i)
  local size = SIZES[opt]
  if size then return size, i end
  if opt == "c" then return getnum(fmt, i, 1) end
  if opt == "i" or opt == "I" then
    local sz
    sz, i = getnum(fmt, i, 4)
    if sz > MAXINTSIZE then raise(format("integral size %d is larger than limit of %d", sz, MAXINTSIZE)) end
    return sz, i
  end
  return 0, i
end

local function gettoalign(len, align, opt, size)
  if size == 0 or opt == "c" then return 0 end
  if size > align then size = align end
  return band((size - band(len % 4294967296, size - 1)) % 4294967296, size - 1)
end

-- Endianness and alignment options; returns the new endian, align and index.
local function controloptions(opt, fmt, i, endian, align)
  if opt == " " then return endian, align, i end
  if opt == ">" then return BIG, align, i end
  if opt == "<" then return LITTLE, align, i end
  if opt == "!" then
    local a
    a, i = getnum(fmt, i, MAXALIGN)
    if a <= 0 or band(a, a - 1) ~= 0 then raise(format("alignment %d is not a power of 2", a)) end
    return endian, a, i
  end
  argerror(1, format("invalid format option '%s'", opt))
end

local function reversed(s, endian)
  if endian ~= NATIVE then return reverse(s) end
  return s
end

-- The bytes of a number stored in a C unsigned long, `size` of them in the given order.
local function putinteger(n, size, endian)
  local hi, lo
  if n < 0 then
    if n < -9223372036854775808 then
      hi, lo = 2147483648, 0 -- (long) of an out-of-range double on x86-64
    else
      hi, lo = int64_halves(-floor(-n))
    end
  elseif n ~= n then
    hi, lo = 2147483648, 0
  elseif n >= 18446744073709551616 then
    hi, lo = 0, 0
  else
    hi, lo = int64_halves(floor(n))
  end
  local out = {}
  for k = 1, size do
    local v
    if k <= 4 then
      v = lo % 256; lo = floor(lo / 256)
    elseif k <= 8 then
      v = hi % 256; hi = floor(hi / 256)
    else
      v = 0
    end
    out[k] = v
  end
  local s = char(unpack(out, 1, size))
  if endian == BIG then return reverse(s) end
  return s
end

local function getinteger(data, pos, endian, issigned, size)
  -- Only the last 8 bytes shifted in survive in the 64-bit accumulator.
  local b = { byte(data, pos + 1, pos + size) }
  local v = {} -- v[1] is the least significant byte
  for k = 1, size < 8 and size or 8 do
    if endian == BIG then v[k] = b[size + 1 - k] else v[k] = b[k] end
  end
  for k = #v + 1, 8 do v[k] = 0 end
  local lo = ((v[4] * 256 + v[3]) * 256 + v[2]) * 256 + v[1]
  local hi = ((v[8] * 256 + v[7]) * 256 + v[6]) * 256 + v[5]
  if not issigned then return hi * 4294967296 + lo end
  local shift = (size * 8 - 1) % 64 -- C shifts by the count modulo 64 on x86-64
  if shift >= 32 then
    local low_bits = 2 ^ (shift - 32)
    if hi >= low_bits then hi = hi % low_bits + (4294967296 - low_bits) end
  elseif hi ~= 0 or lo >= 2 ^ shift then
    hi, lo = 4294967295, lo % 2 ^ shift + (4294967296 - 2 ^ shift)
  end
  if hi >= 2147483648 then hi = hi - 4294967296 end
  return hi * 4294967296 + lo
end

local function u32_bytes_le(v)
  return char(v % 256, floor(v / 256) % 256, floor(v / 65536) % 256, floor(v / 16777216))
end

local function le_u32(s, i)
  local b0, b1, b2, b3 = byte(s, i, i + 3)
  return ((b3 * 256 + b2) * 256 + b1) * 256 + b0
end

local struct = {}

function struct.pack(...)
  local nargs = select("#", ...)
  local fmt = checkstring((...), 1, nargs)
  nargs = nargs + 1 -- lua-struct pushes a nil after the arguments: a missing first one reads "got nil"
  local endian, align = NATIVE, 1
  local arg = 2
  local totalsize = 0
  local out, nout = {}, 0
  local i, len = 1, #fmt
  while i <= len do
    local opt = sub(fmt, i, i)
    if opt == "\0" then break end
    i = i + 1
    local size
    size, i = optsize(opt, fmt, i)
    local toalign = gettoalign(totalsize, align, opt, size)
    totalsize = totalsize + toalign
    if toalign > 0 then nout = nout + 1; out[nout] = rep("\0", toalign) end
    if INTEGER[opt] then
      local n = checknumber((select(arg, ...)), arg, nargs)
      arg = arg + 1
      nout = nout + 1; out[nout] = putinteger(n, size, endian)
    elseif opt == "x" then
      nout = nout + 1; out[nout] = "\0"
    elseif opt == "f" then
      local n = checknumber((select(arg, ...)), arg, nargs)
      arg = arg + 1
      nout = nout + 1; out[nout] = reversed(u32_bytes_le(float_bits(n)), endian)
    elseif opt == "d" then
      local n = checknumber((select(arg, ...)), arg, nargs)
      arg = arg + 1
      local hi, lo = double_bits(n)
      nout = nout + 1; out[nout] = reversed(u32_bytes_le(lo) .. u32_bytes_le(hi), endian)
    elseif opt == "c" or opt == "s" then
      local s = checkstring((select(arg, ...)), arg, nargs)
      arg = arg + 1
      local l = #s
      if size == 0 then size = l end
      if l < size then argerror(arg, "string too short") end -- lua-struct names the next argument
      nout = nout + 1; out[nout] = sub(s, 1, size)
      if opt == "s" then
        nout = nout + 1; out[nout] = "\0"
        size = size + 1
      end
    else
      endian, align, i = controloptions(opt, fmt, i, endian, align)
    end
    totalsize = totalsize + size
  end
  return concat(out, "", 1, nout)
end

function struct.unpack(...)
  local nargs = select("#", ...)
  local fmt_arg, data_arg, pos_arg = ...
  local fmt = checkstring(fmt_arg, 1, nargs)
  local data = checkstring(data_arg, 2, nargs)
  local ld = #data
  local pos = optinteger(pos_arg, 3, nargs, 1)
  if pos == 0 then argerror(3, "offset must be 1 or greater") end
  local start = pos
  -- size_t arithmetic: a negative offset is a huge one, past any data.
  pos = pos < 0 and 1e300 or pos - 1
  local endian, align = NATIVE, 1
  local results, n = {}, 0
  local i, len = 1, #fmt
  while i <= len do
    local opt = sub(fmt, i, i)
    if opt == "\0" then break end
    i = i + 1
    local size
    size, i = optsize(opt, fmt, i)
    if pos < 1e300 then pos = pos + gettoalign(pos, align, opt, size) end
    if not (size <= ld and pos <= ld - size) then argerror(2, "data string too short") end
    if INTEGER[opt] then
      n = n + 1
      results[n] = getinteger(data, pos, endian, find(opt, "^[a-z]") ~= nil, size)
    elseif opt == "x" then
      -- padding: nothing to return
    elseif opt == "f" then
      local s = reversed(sub(data, pos + 1, pos + 4), endian)
      n = n + 1
      results[n] = float_from_bits(le_u32(s, 1))
    elseif opt == "d" then
      local s = reversed(sub(data, pos + 1, pos + 8), endian)
      n = n + 1
      results[n] = double_from_bits(le_u32(s, 5), le_u32(s, 1))
    elseif opt == "c" then
      if size == 0 then
        local previous = results[n]
        if n == 0 or not (type(previous) == "number" or tonumber(previous)) then
          raise("format 'c0' needs a previous size")
        end
        size = floor(tonumber(previous) % 18446744073709551616) -- (size_t) of the number
        results[n] = nil
        n = n - 1
        if not (size <= ld and pos <= ld - size) then argerror(2, "data string too short") end
      end
      n = n + 1
      results[n] = sub(data, pos + 1, pos + size)
    elseif opt == "s" then
      local e = find(data, "\0", pos + 1, true)
      if e == nil then raise("unfinished string in data") end
      size = e - pos
      n = n + 1
      results[n] = sub(data, pos + 1, e - 1)
    else
      endian, align, i = controloptions(opt, fmt, i, endian, align)
    end
    pos = pos + size
  end
  n = n + 1
  results[n] = pos < 1e300 and pos + 1 or start
  return unpack(results, 1, n)
end

function struct.size(...)
  local nargs = select("#", ...)
  local fmt = checkstring((...), 1, nargs)
  local endian, align = NATIVE, 1
  local pos = 0
  local i, len = 1, #fmt
  while i <= len do
    local opt = sub(fmt, i, i)
    if opt == "\0" then break end
    i = i + 1
    local size
    size, i = optsize(opt, fmt, i)
    pos = pos + gettoalign(pos, align, opt, size)
    if opt == "s" then
      argerror(1, "option 's' has no fixed size")
    elseif opt == "c" and size == 0 then
      argerror(1, "option 'c0' has no fixed size")
    end
    if not find(opt, "^[0-9A-Za-z]") then -- isalnum in the C locale
      endian, align, i = controloptions(opt, fmt, i, endian, align)
    end
    pos = pos + size
  end
  return pos
end

return C.register(struct)
