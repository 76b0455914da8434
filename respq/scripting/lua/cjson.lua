-- lua_cjson 2.1.0 as Redis 7.0 embeds it, with its settings (encode_max_depth 1000, decode_max_depth 1000,
-- numbers as "%.14g", invalid numbers refused when encoding and accepted when decoding, sparse arrays refused).
-- Each cjson.new() table has its own settings, as each C instance has its own configuration userdata.
local C = ...
local type, select, next, rawget, tonumber, tostring = type, select, next, rawget, tonumber, tostring
local newproxy = newproxy
local floor, huge = math.floor, math.huge
local byte, char, sub, find, gsub, format, lower =
  string.byte, string.char, string.sub, string.find, string.gsub, string.format, string.lower
local concat = table.concat
local raise, argerror, checkstring, checkinteger, toint32 =
  C.raise, C.argerror, C.checkstring, C.checkinteger, C.toint32

local INT_MAX = 2147483647
-- The C code keeps what it is walking on the Lua stack of its C function, which Lua 5.1 caps at LUAI_MAXCSTACK
-- slots: past it, its depth checks fail even below the configured maximum depth. `slots` tracks that height.
local MAXCSTACK = 8000

-- lua_cjson's null is a NULL light userdata, which Lua code cannot make: one opaque userdata per runtime.
local null = newproxy(false)

-- Encoding ------------------------------------------------------------------------------------------------------

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["/"] = "\\/", ["\127"] = "\\u007f",
  ["\b"] = "\\b", ["\t"] = "\\t", ["\n"] = "\\n", ["\f"] = "\\f", ["\r"] = "\\r" }
for c = 0, 31 do
  local ch = char(c)
  if not ESCAPES[ch] then ESCAPES[ch] = format("\\u%04x", c) end
end
-- Explicit byte ranges: %c would depend on the process's locale.
local ESCAPE_PATTERN = '[%z\1-\31"/\\\127]'

local function encode_string(s)
  if find(s, ESCAPE_PATTERN) then s = gsub(s, ESCAPE_PATTERN, ESCAPES) end
  return '"' .. s .. '"'
end

local function new_cjson()
  local cfg = {
    sparse_convert = 0, sparse_ratio = 2, sparse_safe = 10,
    encode_max_depth = 1000, decode_max_depth = 1000,
    encode_invalid_numbers = 0, decode_invalid_numbers = 1,
    encode_keep_buffer = 1, encode_number_precision = 14,
  }
  local number_format = "%.14g"

  local function encode_number(num)
    local invalid = cfg.encode_invalid_numbers
    if num ~= num or num == huge or num == -huge then
      if invalid == 0 then raise("Cannot serialise number: must not be NaN or Inf") end
      if invalid == 2 then return "null" end
      if num ~= num then return "nan" end
    end
    return format(number_format, num)
  end

  -- The array length of t, or -1 for an object (lua_array_length, with its C int arithmetic).
  local function array_length(t)
    local max, items = 0, 0
    for k in next, t do
      if type(k) == "number" and k ~= 0 and floor(k) == k and k >= 1 then
        if k > max then max = k < 2147483648 and k or -2147483648 end
        items = items + 1
      else
        return -1
      end
    end
    local ratio = cfg.sparse_ratio
    if ratio > 0 and max > toint32(items * ratio) and max > cfg.sparse_safe then
      if cfg.sparse_convert == 0 then raise("Cannot serialise table: excessively sparse array") end
      return -1
    end
    return max
  end

  local encode_value

  local function encode_table(t, depth, out, n, slots)
    depth = depth + 1
    if depth > cfg.encode_max_depth or slots + 3 > MAXCSTACK then raise(format("Cannot serialise, excessive nesting (%d)", depth)) end
    local len = array_length(t)
    if len > 0 then
      n = n + 1; out[n] = "["
      for i = 1, len do
        if i > 1 then n = n + 1; out[n] = "," end
        n = encode_value(rawget(t, i), depth, out, n, slots + 1)
      end
      n = n + 1; out[n] = "]"
      return n
    end
    n = n + 1; out[n] = "{"
    local comma = false
    for k, v in next, t do
      if comma then n = n + 1; out[n] = "," else comma = true end
      local kt = type(k)
      if kt == "number" then
        n = n + 1; out[n] = '"' .. encode_number(k) .. '":'
      elseif kt == "string" then
        n = n + 1; out[n] = encode_string(k) .. ":"
      else
        raise("Cannot serialise " .. kt .. ": table key must be a number or string")
      end
      n = encode_value(v, depth, out, n, slots + 2)
    end
    n = n + 1; out[n] = "}"
    return n
  end

  function encode_value(v, depth, out, n, slots)
    local t = type(v)
    if t == "string" then
      n = n + 1; out[n] = encode_string(v)
    elseif t == "number" then
      n = n + 1; out[n] = encode_number(v)
    elseif t == "boolean" then
      n = n + 1; out[n] = v and "true" or "false"
    elseif t == "table" then
      return encode_table(v, depth, out, n, slots)
    elseif v == nil or v == null then
      n = n + 1; out[n] = "null"
    else
      raise("Cannot serialise " .. t .. ": type not supported")
    end
    return n
  end

  -- Decoding ----------------------------------------------------------------------------------------------------
  -- The C parser reads a NUL-terminated buffer: a NUL byte ends the input wherever it is.

  local T_STRING, T_NUMBER, T_BOOLEAN, T_NULL = "T_STRING", "T_NUMBER", "T_BOOLEAN", "T_NULL"
  local T_END, T_ERROR = "T_END", "T_ERROR"
  local SINGLE = { [123] = "T_OBJ_BEGIN", [125] = "T_OBJ_END", [91] = "T_ARR_BEGIN", [93] = "T_ARR_END",
    [44] = "T_COMMA", [58] = "T_COLON" }
  local UNESCAPE = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [116] = "\t", [110] = "\n",
    [102] = "\f", [114] = "\r" }

  local function hex4(s, i)
    local h = sub(s, i, i + 3)
    if #h < 4 or find(h, "[^0-9A-Fa-f]") then return -1 end
    return tonumber(h, 16)
  end

  local function utf8(cp)
    if cp <= 0x7F then return char(cp) end
    if cp <= 0x7FF then return char(floor(cp / 64) + 0xC0, cp % 64 + 0x80) end
    if cp <= 0xFFFF then
      return char(floor(cp / 4096) + 0xE0, floor(cp / 64) % 64 + 0x80, cp % 64 + 0x80)
    end
    return char(floor(cp / 262144) + 0xF0, floor(cp / 4096) % 64 + 0x80, floor(cp / 64) % 64 + 0x80,
      cp % 64 + 0x80)
  end

  -- A \u escape at s[i] (the backslash): the UTF-8 bytes and the index after it, or nil.
  local function unicode_escape(s, i)
    local cp = hex4(s, i + 2)
    if cp < 0 then return nil end
    local after = i + 6
    if cp >= 0xD800 and cp <= 0xDFFF then
      if cp >= 0xDC00 then return nil end
      if sub(s, i + 6, i + 7) ~= "\\u" then return nil end
      local low = hex4(s, i + 8)
      if low < 0xDC00 or low > 0xDFFF then return nil end
      cp = (cp - 0xD800) * 1024 + (low - 0xDC00) + 0x10000
      after = i + 12
    end
    return utf8(cp), after
  end

  -- Each token function returns: type, value, 0-based index (for messages), next index.
  local function string_token(s, i, len)
    local j = i + 1
    local parts, np = nil, 0
    while true do
      local k = find(s, '["\\]', j)
      if k == nil then return T_ERROR, "unexpected end of string", len, len + 1 end
      if byte(s, k) == 34 then
        if parts == nil then return T_STRING, sub(s, j, k - 1), i - 1, k + 1 end
        np = np + 1; parts[np] = sub(s, j, k - 1)
        return T_STRING, concat(parts, "", 1, np), i - 1, k + 1
      end
      parts = parts or {}
      np = np + 1; parts[np] = sub(s, j, k - 1)
      local e = byte(s, k + 1)
      if e == 117 then -- u
        local bytes, after = unicode_escape(s, k)
        if bytes == nil then return T_ERROR, "invalid unicode escape code", k - 1, k end
        np = np + 1; parts[np] = bytes
        j = after
      else
        local ch = e and UNESCAPE[e]
        if ch == nil then return T_ERROR, "invalid escape code", k - 1, k end
        np = np + 1; parts[np] = ch
        j = k + 2
      end
    end
  end

  -- The last index of the longest prefix of s[i..] that C's strtod converts, or nil.
  local function strtod_end(s, i)
    local j = i
    local c = byte(s, j)
    if c == 43 or c == 45 then j = j + 1; c = byte(s, j) end
    if c == 48 and (byte(s, j + 1) == 120 or byte(s, j + 1) == 88) then
      local _, b = find(s, "^[0-9A-Fa-f]*", j + 2)
      local digits = b - (j + 2) + 1
      if byte(s, b + 1) == 46 then
        local _, b2 = find(s, "^[0-9A-Fa-f]*", b + 2)
        if b2 > b + 1 then digits = digits + (b2 - b - 1); b = b2 elseif digits > 0 then b = b + 1 end
      end
      if digits == 0 then return j end -- just the "0"
      local _, e = find(s, "^[pP][+-]?%d+", b + 1)
      return e or b
    end
    local word = lower(sub(s, j, j + 7))
    if word == "infinity" then return j + 7 end
    if sub(word, 1, 3) == "inf" then return j + 2 end
    if sub(word, 1, 3) == "nan" then
      if byte(s, j + 3) == 40 then
        local _, e = find(s, "^[0-9A-Za-z_]*%)", j + 4)
        if e then return e end
      end
      return j + 2
    end
    local _, b = find(s, "^%d*", j)
    local digits = b - j + 1
    if byte(s, b + 1) == 46 then
      local _, b2 = find(s, "^%d*", b + 2)
      digits = digits + (b2 - b - 1)
      b = b2
    end
    if digits == 0 then return nil end
    local _, e = find(s, "^[eE][+-]?%d+", b + 1)
    return e or b
  end

  -- json_is_invalid_number: what strict JSON refuses but strtod takes (+, hex, leading zeros, inf, nan).
  local function is_invalid_number(s, i)
    local c = byte(s, i)
    if c == 43 then return true end
    if c == 45 then i = i + 1; c = byte(s, i) end
    if c == 48 then
      local c2 = byte(s, i + 1)
      return c2 ~= nil and (c2 == 120 or c2 == 88 or (c2 >= 48 and c2 <= 57))
    end
    if c == nil or c <= 57 then return false end
    local word = lower(sub(s, i, i + 2))
    return word == "inf" or word == "nan"
  end

  local function number_token(s, i)
    -- Fast path: decimal numbers, the common case, need none of strtod's alternatives (hex, inf, nan).
    local _, e = find(s, "^-?%d+", i)
    if e then
      local c = byte(s, e + 1)
      if c ~= 120 and c ~= 88 then
        if c == 46 then
          _, e = find(s, "^%d*", e + 2)
          c = byte(s, e + 1)
        end
        if c == 101 or c == 69 then
          local _, exponent_end = find(s, "^[+-]?%d+", e + 2)
          if exponent_end then e = exponent_end end
        end
        return T_NUMBER, tonumber(sub(s, i, e)), i - 1, e + 1
      end
    end
    e = strtod_end(s, i)
    if e == nil then return T_ERROR, "invalid number", i - 1, i end
    return T_NUMBER, tonumber(sub(s, i, e)), i - 1, e + 1
  end

  local function next_token(s, i, len)
    local c = byte(s, i)
    if c == 32 or c == 9 or c == 10 or c == 13 then
      i = find(s, "[^ \t\n\r]", i + 1)
      c = i and byte(s, i)
    end
    if c == nil then return T_END, nil, len, len + 1 end
    local single = SINGLE[c]
    if single then return single, nil, i - 1, i + 1 end
    if c == 34 then return string_token(s, i, len) end
    if c == 45 or (c >= 48 and c <= 57) then
      if cfg.decode_invalid_numbers == 0 and is_invalid_number(s, i) then
        return T_ERROR, "invalid number", i - 1, i
      end
      return number_token(s, i)
    end
    if c == 116 or c == 102 or c == 110 or c == 105 or c == 73 or c == 78 or c == 43 then
      if sub(s, i, i + 3) == "true" then return T_BOOLEAN, true, i - 1, i + 4 end
      if sub(s, i, i + 4) == "false" then return T_BOOLEAN, false, i - 1, i + 5 end
      if sub(s, i, i + 3) == "null" then return T_NULL, null, i - 1, i + 4 end
      if cfg.decode_invalid_numbers ~= 0 and is_invalid_number(s, i) then return number_token(s, i) end
    end
    return T_ERROR, "invalid token", i - 1, i
  end

  local function parse_error(expected, ttype, tvalue, tindex)
    local found = ttype == T_ERROR and tvalue or ttype
    raise(format("Expected %s but found %s at character %d", expected, found, tindex + 1))
  end

  local parse_value

  local function descend(depth, i, slots)
    depth = depth + 1
    if depth > cfg.decode_max_depth or slots > MAXCSTACK then
      raise(format("Found too many nested data structures (%d) at character %d", depth, i - 1))
    end
    return depth
  end

  local function parse_object(s, i, len, depth, slots)
    depth = descend(depth, i, slots + 3)
    local t = {}
    local ttype, tvalue, tindex
    ttype, tvalue, tindex, i = next_token(s, i, len)
    if ttype == "T_OBJ_END" then return t, i end
    while true do
      if ttype ~= T_STRING then parse_error("object key string", ttype, tvalue, tindex) end
      local key = tvalue
      ttype, tvalue, tindex, i = next_token(s, i, len)
      if ttype ~= "T_COLON" then parse_error("colon", ttype, tvalue, tindex) end
      ttype, tvalue, tindex, i = next_token(s, i, len)
      t[key], i = parse_value(s, i, len, depth, slots + 2, ttype, tvalue, tindex)
      ttype, tvalue, tindex, i = next_token(s, i, len)
      if ttype == "T_OBJ_END" then return t, i end
      if ttype ~= "T_COMMA" then parse_error("comma or object end", ttype, tvalue, tindex) end
      ttype, tvalue, tindex, i = next_token(s, i, len)
    end
  end

  local function parse_array(s, i, len, depth, slots)
    depth = descend(depth, i, slots + 2)
    local t = {}
    local ttype, tvalue, tindex
    ttype, tvalue, tindex, i = next_token(s, i, len)
    if ttype == "T_ARR_END" then return t, i end
    local n = 0
    while true do
      n = n + 1
      t[n], i = parse_value(s, i, len, depth, slots + 1, ttype, tvalue, tindex)
      ttype, tvalue, tindex, i = next_token(s, i, len)
      if ttype == "T_ARR_END" then return t, i end
      if ttype ~= "T_COMMA" then parse_error("comma or array end", ttype, tvalue, tindex) end
      ttype, tvalue, tindex, i = next_token(s, i, len)
    end
  end

  -- The value that starts with the token just read; returns it and the index after it.
  function parse_value(s, i, len, depth, slots, ttype, tvalue, tindex)
    if ttype == T_STRING or ttype == T_NUMBER or ttype == T_BOOLEAN or ttype == T_NULL then return tvalue, i end
    if ttype == "T_OBJ_BEGIN" then return parse_object(s, i, len, depth, slots) end
    if ttype == "T_ARR_BEGIN" then return parse_array(s, i, len, depth, slots) end
    parse_error("value", ttype, tvalue, tindex)
  end

  -- Settings ----------------------------------------------------------------------------------------------------

  local function arg_init(nargs, max)
    if nargs > max then argerror(max + 1, "found too many arguments") end
  end

  local function integer_option(value, narg, nargs, key, min, max)
    if value ~= nil then
      local v = toint32(checkinteger(value, narg, nargs))
      if v < min or v > max then argerror(1, format("expected integer between %d and %d", min, max)) end
      cfg[key] = v
    end
    return cfg[key]
  end

  local BOOL_OPTIONS = { off = 0, on = 1 }
  local function enum_option(value, narg, nargs, key, options)
    if value ~= nil then
      if type(value) == "boolean" then
        cfg[key] = value and 1 or 0
      else
        local name = checkstring(value, narg, nargs)
        local index = (options or BOOL_OPTIONS)[name]
        if index == nil then argerror(narg, format("invalid option '%s'", name)) end
        cfg[key] = index
      end
    end
    local setting = cfg[key]
    if setting == 0 or setting == 1 then return setting == 1 end
    return "null"
  end

  -- Public functions never tail-call a helper that can raise: the error must find their frame on the stack.
  local function pass(...) return ... end

  local cjson = { _NAME = "cjson", _VERSION = "2.1.0", null = null, new = new_cjson }

  function cjson.encode(...)
    if select("#", ...) ~= 1 then argerror(1, "expected 1 argument") end
    local out = {}
    local n = encode_value((...), 0, out, 0, 1)
    return concat(out, "", 1, n)
  end

  function cjson.decode(...)
    local nargs = select("#", ...)
    if nargs ~= 1 then argerror(1, "expected 1 argument") end
    local s = checkstring((...), 1, nargs)
    local len = #s
    if len >= 2 and (byte(s, 1) == 0 or byte(s, 2) == 0) then raise("JSON parser does not support UTF-16 or UTF-32") end
    local nul = find(s, "\0", 1, true)
    if nul then s = sub(s, 1, nul - 1); len = nul - 1 end
    local ttype, tvalue, tindex, i = next_token(s, 1, len)
    local value
    value, i = parse_value(s, i, len, 0, 1, ttype, tvalue, tindex)
    ttype, tvalue, tindex = next_token(s, i, len)
    if ttype ~= T_END then parse_error("the end", ttype, tvalue, tindex) end
    return value
  end

  function cjson.encode_sparse_array(...)
    local nargs = select("#", ...)
    arg_init(nargs, 3)
    local convert, ratio, safe = ...
    return enum_option(convert, 1, nargs, "sparse_convert"),
      integer_option(ratio, 2, nargs, "sparse_ratio", 0, INT_MAX),
      integer_option(safe, 3, nargs, "sparse_safe", 0, INT_MAX)
  end

  function cjson.encode_max_depth(...)
    local nargs = select("#", ...)
    arg_init(nargs, 1)
    return pass(integer_option((...), 1, nargs, "encode_max_depth", 1, INT_MAX))
  end

  function cjson.decode_max_depth(...)
    local nargs = select("#", ...)
    arg_init(nargs, 1)
    return pass(integer_option((...), 1, nargs, "decode_max_depth", 1, INT_MAX))
  end

  function cjson.encode_number_precision(...)
    local nargs = select("#", ...)
    arg_init(nargs, 1)
    local precision = integer_option((...), 1, nargs, "encode_number_precision", 1, 14)
    number_format = "%." .. precision .. "g"
    return precision
  end

  function cjson.encode_keep_buffer(...)
    local nargs = select("#", ...)
    arg_init(nargs, 1)
    return pass(enum_option((...), 1, nargs, "encode_keep_buffer")) -- no observable effect here
  end

  function cjson.encode_invalid_numbers(...)
    local nargs = select("#", ...)
    arg_init(nargs, 1)
    return pass(enum_option((...), 1, nargs, "encode_invalid_numbers", { off = 0, on = 1, null = 2 }))
  end

  function cjson.decode_invalid_numbers(...)
    local nargs = select("#", ...)
    arg_init(nargs, 1)
    return pass(enum_option((...), 1, nargs, "decode_invalid_numbers"))
  end

  return C.register(cjson)
end

return new_cjson()
