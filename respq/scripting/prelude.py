"""The Lua side of the scripts' environment (see respq.scripting.engine), kept as source text here rather than as
a package data file: it is compiled once per runtime as the chunk "=respq"."""

PRELUDE = r"""
-- The scripts' environment, built once per Lua runtime (respq/scripting/engine.py runs this chunk with the
-- Python callbacks as arguments). What scripts see is what Redis 7.0.15 (as Debian builds it)
-- leaves them; docs/scripting.md lists where stock Lua 5.1 makes it differ.
local py_call, py_pcall, py_unwrap, py_log, py_sha1hex, py_random, py_randomseed, py_interrupt, py_setresp,
    py_set_repl, py_acl, version, version_num = ...
-- Python callables made C functions: redis.call is one in Redis too, so `return redis.call(...)` keeps the
-- caller's frame (a Lua function would be tail-called) and errors report the script's line.
local as_function = python.as_function
py_call, py_pcall = as_function(py_call), as_function(py_pcall)

local G = _G
local debug = debug
local sethook, getinfo = debug.sethook, debug.getinfo
local error, type, tostring, tonumber, select = error, type, tostring, tonumber, select
local rawget, rawset, next, pairs, ipairs = rawget, rawset, next, pairs, ipairs
local setmetatable, getmetatable, xpcall, loadstring = setmetatable, getmetatable, xpcall, loadstring
local concat, format, gsub, byte, sub, find = table.concat, string.format, string.gsub, string.byte, string.sub,
    string.find
local huge = math.huge

local READONLY = "Attempt to modify a readonly table"
local INTERNAL = "=respq"
-- Chunks that stand where Redis has C code (this one, and the libraries' Lua code if any): errors and the hooks look
-- past their frames to the script's own.
local ours = {[INTERNAL] = true}

local function raise(message)
    error({err = message}, 0)
end

-- ---- redis.* -----------------------------------------------------------------------------------------------------
local redis = {}

redis.call = py_call -- raises the error table (wrapped in a Python exception: err_handler unwraps it)
redis.pcall = py_pcall

-- Python too, for the same reason as redis.call: their errors name the script's line even after `return f(...)`.
redis.sha1hex = as_function(py_sha1hex)
redis.log = as_function(py_log)
redis.setresp = as_function(py_setresp)
redis.set_repl = as_function(py_set_repl)
redis.acl_check_cmd = as_function(py_acl)

-- An error table as Redis builds one from "-CODE message" or "message" (luaPushErrorBuff).
local function error_table(text)
    local code, message
    if sub(text, 1, 1) == "-" then
        local space = find(text, " ", 1, true)
        if space then
            code, message = sub(text, 2, space - 1), sub(text, space + 1)
        else
            code, message = "ERR", sub(text, 2)
        end
    else
        code, message = "ERR", text
    end
    message = gsub(gsub(message, "^[\r\n]+", ""), "[\r\n]+$", "")
    return {err = code .. " " .. message}
end

function redis.error_reply(...)
    local text = ...
    if select("#", ...) ~= 1 or type(text) ~= "string" then
        return {err = "ERR wrong number or type of arguments"}
    end
    if sub(text, 1, 1) ~= "-" then
        text = "-" .. text
    end
    return error_table(text)
end

function redis.status_reply(...)
    local text = ...
    if select("#", ...) ~= 1 or type(text) ~= "string" then
        return {err = "ERR wrong number or type of arguments"}
    end
    return {ok = text}
end

redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = version, version_num

redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3

function redis.replicate_commands()
    return true
end

function redis.breakpoint()
    return false -- no debugging session is ever active
end

function redis.debug()
end

-- ---- math.random: Redis's own generator (lrand48), the same sequence on every platform --------------------------
math.random = as_function(py_random)
math.randomseed = as_function(py_randomseed)

-- ---- the error handler and the time-limit hook --------------------------------------------------------------------
-- Where the error happened, as Redis's __redis__err__handler reports it: the first frame that is neither a C
-- function nor respq's own code (which stands where Redis has C functions).
local function err_handler(err)
    local level = 2
    local info = getinfo(level, "nSl")
    while info and (info.what == "C" or info.what == "tail" or ours[info.source]) do
        level = level + 1
        info = getinfo(level, "nSl")
    end
    if type(err) == "userdata" then
        err = py_unwrap(err)
    end
    if type(err) ~= "table" then
        err = {err = "ERR " .. tostring(err)}
    end
    if info then
        err.source = info.source
        err.line = info.currentline
    end
    return err
end

-- luaL_where for errors raised from Python: "user_script:LINE: " of the script's frame.
local function where()
    local level = 1
    local info = getinfo(level, "Sl")
    while info and (info.what == "C" or info.what == "tail" or ours[info.source]) do
        level = level + 1
        info = getinfo(level, "Sl")
    end
    if info and info.currentline > 0 then
        return info.short_src .. ":" .. info.currentline .. ": "
    end
    return ""
end

-- The hooks act only while the script's own code runs: respq's code around it must finish undisturbed.
local function in_script()
    local info = getinfo(3, "S")
    return info ~= nil and not ours[info.source]
end

local function killed_hook()
    if in_script() then
        raise("ERR Script killed by user with SCRIPT KILL...")
    end
end

-- From the kill on, every line the script runs raises again: a pcall in the script cannot swallow it and go on.
local function arm_kill()
    sethook(killed_hook, "l")
end

local function count_hook()
    if in_script() and py_interrupt() then
        arm_kill()
        raise("ERR Script killed by user with SCRIPT KILL...")
    end
end

-- ---- globals: read-only, reading an undeclared one is an error ---------------------------------------------------
local visible = {}
for _, name in ipairs({
    "xpcall", "tostring", "setmetatable", "next", "assert", "tonumber", "rawequal", "collectgarbage",
    "getmetatable", "rawset", "pcall", "coroutine", "type", "select", "unpack", "gcinfo", "pairs", "rawget",
    "loadstring", "ipairs", "_VERSION", "load", "error", "string", "math", "table",
}) do
    visible[name] = G[name]
end
for _, name in ipairs({"cjson", "cmsgpack", "bit", "struct"}) do -- when the libraries are installed
    local library = rawget(G, name)
    visible[name] = library
    if type(library) == "table" then
        for _, member in pairs(library) do
            if type(member) == "function" then
                local info = getinfo(member, "S")
                if info.what ~= "C" then
                    ours[info.source] = true
                end
            end
        end
    end
end
visible.redis = redis

-- Redis's pcall (luaRedisPcall): an error table (from redis.call) becomes its message, as before 7.0.
local real_pcall, real_xpcall = pcall, xpcall
local function pcall_result(ok, ...)
    if ok then
        return true, ...
    end
    local err = ...
    if type(err) == "userdata" then
        err = py_unwrap(err)
    end
    if type(err) == "table" then
        local message = err.err
        if type(message) == "string" or type(message) == "number" then
            err = message
        end
    end
    return false, err
end
visible.pcall = function(...)
    return pcall_result(real_pcall(...))
end
visible.xpcall = function(f, handler)
    return real_xpcall(f, function(err)
        if type(err) == "userdata" then
            err = py_unwrap(err)
        end
        return handler(err)
    end)
end
visible.__redis__err__handler = err_handler

local function readonly_error()
    error(READONLY, 2)
end

local real_of = {} -- read-only stand-in -> the table it shows
local protected = {} -- every table scripts may not modify

local function protect(t)
    local proxy = {}
    real_of[proxy] = t
    protected[proxy] = true
    protected[t] = true
    setmetatable(proxy, {__index = t, __newindex = readonly_error})
    return proxy
end

for _, name in ipairs({"string", "math", "table", "coroutine", "redis", "cjson", "cmsgpack", "bit", "struct"}) do
    if visible[name] ~= nil then
        visible[name] = protect(visible[name])
    end
end

local function missing_global(_, name)
    if name == "debug" then
        local caller = getinfo(2, "S")
        if caller == nil or caller.what == "C" then
            return nil -- lupa looks for debug.traceback from C each time Python calls into Lua: it goes without
        end
    end
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end

-- What getmetatable shows for the globals and for strings: read-only stand-ins, as Redis's are read-only.
local globals_metatable = protect({__index = missing_global})
local string_metatable = protect({__index = visible.string})

visible._G = G
for name in pairs(G) do
    rawset(G, name, nil)
end
setmetatable(visible, {__index = missing_global})
setmetatable(G, {__index = visible, __newindex = readonly_error})
protected[G] = true
protected[visible] = true

-- The base functions that could reach around the stand-ins see through them instead.
local real_getmetatable, real_setmetatable = getmetatable, setmetatable
visible.rawset = function(t, k, v)
    if protected[t] then
        error(READONLY, 0)
    end
    return rawset(t, k, v)
end
visible.rawget = function(t, k)
    if t == G then
        t = visible
    end
    return rawget(real_of[t] or t, k)
end
local function see_through(t)
    if t == G then
        return visible
    end
    return real_of[t] or t
end
local function stand_in_next(t, k)
    if t == G then
        return next(visible, k)
    end
    return next(see_through(t), k)
end
visible.next = stand_in_next
visible.pairs = function(t)
    if type(t) ~= "table" then
        return pairs(t) -- the same error pairs gives
    end
    return stand_in_next, t, nil
end
visible.setmetatable = function(t, mt)
    if protected[t] then
        error(READONLY, 0)
    end
    return real_setmetatable(t, mt)
end
visible.getmetatable = function(value)
    if value == G then
        return globals_metatable
    elseif type(value) == "string" then
        return string_metatable
    elseif real_of[value] then
        return nil
    end
    return real_getmetatable(value)
end
local real_insert, real_remove, real_sort = table.insert, table.remove, table.sort
local table_lib = real_of[visible.table]
local function guard(f)
    return function(t, ...)
        if protected[t] then
            error(READONLY, 0)
        end
        return f(t, ...)
    end
end
table_lib.insert, table_lib.remove, table_lib.sort = guard(real_insert), guard(real_remove), guard(real_sort)

-- ---- running a script and converting its reply ---------------------------------------------------------------------
local function compile(body)
    return loadstring(body, "@user_script")
end

-- A Lua value as Redis replies it (luaReplyToRedisReply), appended to out as RESP for a client speaking `resp`;
-- `script_resp()` is the protocol the script chose with redis.setresp (booleans depend on it). Errors met inside a
-- reply are appended to errors, for errorstats.
local function no_newlines(s)
    return (gsub(s, "[\r\n]", " "))
end

local function encode(value, out, resp, script_resp, errors)
    local kind = type(value)
    if kind == "string" then
        out[#out + 1] = "$" .. #value .. "\r\n"
        out[#out + 1] = value
        out[#out + 1] = "\r\n"
    elseif kind == "number" then
        out[#out + 1] = format(":%d\r\n", value)
    elseif kind == "boolean" then
        if script_resp() == 2 then
            if value then
                out[#out + 1] = ":1\r\n"
            else
                out[#out + 1] = resp == 2 and "$-1\r\n" or "_\r\n"
            end
        elseif resp == 2 then
            out[#out + 1] = value and ":1\r\n" or ":0\r\n"
        else
            out[#out + 1] = value and "#t\r\n" or "#f\r\n"
        end
    elseif kind == "table" then
        local field = rawget(value, "err")
        if type(field) == "string" then
            local message = no_newlines(gsub(gsub(field, "^[\r\n]+", ""), "[\r\n]+$", ""))
            out[#out + 1] = "-" .. message .. "\r\n"
            if rawget(value, "ignore_error_stats_update") ~= true then
                errors[#errors + 1] = message
            end
            return
        end
        field = rawget(value, "ok")
        if type(field) == "string" then
            out[#out + 1] = "+" .. no_newlines(field) .. "\r\n"
            return
        end
        field = rawget(value, "double")
        if type(field) == "number" then
            local text
            if field == huge then
                text = "inf"
            elseif field == -huge then
                text = "-inf"
            else
                text = format("%.17g", field)
            end
            if resp == 2 then
                out[#out + 1] = "$" .. #text .. "\r\n" .. text .. "\r\n"
            else
                out[#out + 1] = "," .. text .. "\r\n"
            end
            return
        end
        field = rawget(value, "big_number")
        if type(field) == "string" then
            field = no_newlines(field)
            if resp == 2 then
                out[#out + 1] = "$" .. #field .. "\r\n" .. field .. "\r\n"
            else
                out[#out + 1] = "(" .. field .. "\r\n"
            end
            return
        end
        field = rawget(value, "verbatim_string")
        if type(field) == "table" then
            local fmt, text = rawget(field, "format"), rawget(field, "string")
            if type(fmt) == "string" and type(text) == "string" then
                if resp == 2 then
                    out[#out + 1] = "$" .. #text .. "\r\n"
                else
                    fmt = sub(fmt .. "   ", 1, 3)
                    local zero = find(fmt, "\0", 1, true)
                    if zero then
                        fmt = sub(fmt, 1, zero - 1) .. sub("   ", zero)
                    end
                    out[#out + 1] = "=" .. (#text + 4) .. "\r\n" .. fmt .. ":"
                end
                out[#out + 1] = text
                out[#out + 1] = "\r\n"
                return
            end
        end
        field = rawget(value, "map")
        if type(field) == "table" then
            local header = #out + 1
            out[header] = ""
            local count = 0
            for k, v in next, field do
                encode(k, out, resp, script_resp, errors)
                encode(v, out, resp, script_resp, errors)
                count = count + 1
            end
            out[header] = resp == 2 and ("*" .. (count * 2) .. "\r\n") or ("%" .. count .. "\r\n")
            return
        end
        field = rawget(value, "set")
        if type(field) == "table" then
            local header = #out + 1
            out[header] = ""
            local count = 0
            for k in next, field do
                encode(k, out, resp, script_resp, errors)
                count = count + 1
            end
            out[header] = (resp == 2 and "*" or "~") .. count .. "\r\n"
            return
        end
        local header = #out + 1
        out[header] = ""
        local count = 0
        while true do
            local item = rawget(value, count + 1)
            if item == nil then
                break
            end
            count = count + 1
            encode(item, out, resp, script_resp, errors)
        end
        out[header] = "*" .. count .. "\r\n"
    else
        out[#out + 1] = resp == 2 and "$-1\r\n" or "_\r\n"
    end
end

-- Runs a compiled script; returns true and its reply as RESP (with the texts of the errors inside it), or false,
-- the error message, whether errorstats already counted it, and where it happened.
local function run(fn, resp, hooked, script_resp, numkeys, ...)
    local all, keys, argv = {...}, {}, {}
    for i = 1, numkeys do
        keys[i] = all[i]
    end
    for i = numkeys + 1, select("#", ...) do
        argv[i - numkeys] = all[i]
    end
    visible.KEYS, visible.ARGV = keys, argv
    if hooked then
        sethook(count_hook, "", 100000)
    end
    local ok, value = xpcall(fn, err_handler)
    if hooked then
        sethook()
    end
    if not ok then
        if type(value) ~= "table" then
            return false, "ERR " .. tostring(value), false, nil, nil
        end
        local message = rawget(value, "err")
        return false, type(message) == "string" and message or nil, rawget(value, "ignore_error_stats_update") == true,
            rawget(value, "source"), rawget(value, "line")
    end
    local kind = type(value)
    if kind == "number" then
        return true, format(":%d\r\n", value)
    elseif kind == "string" then
        return true, "$" .. #value .. "\r\n" .. value .. "\r\n"
    end
    local out, errors = {}, {}
    encode(value, out, resp, script_resp, errors)
    return true, concat(out), errors[1] and errors or nil
end

-- Tables redis.call builds from replies: an error, a status, and RESP3's shapes.
local function make_error(message)
    return {err = message, ignore_error_stats_update = true}
end

local function make_status(text)
    return {ok = text}
end

local function make_tagged(tag, value)
    return {[tag] = value}
end

local function make_verbatim(fmt, text)
    return {verbatim_string = {format = fmt, string = text}}
end

local function make_set(...)
    local set = {}
    for i = 1, select("#", ...) do
        set[(select(i, ...))] = true
    end
    return {set = set}
end

local function make_map(...)
    local map = {}
    for i = 1, select("#", ...), 2 do
        local k, v = select(i, ...)
        map[k] = v
    end
    return {map = map}
end

local function make_array(n, ...)
    local t = {}
    for i = 1, n do
        t[i] = (select(i, ...))
    end
    return t
end

return {
    run = run,
    where = where,
    arm_kill = arm_kill,
    compile = compile,
    error_table = error_table,
    make_error = make_error,
    make_status = make_status,
    make_tagged = make_tagged,
    make_verbatim = make_verbatim,
    make_set = make_set,
    make_map = make_map,
    make_array = make_array,
    collect = collectgarbage,
}
"""
