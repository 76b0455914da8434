"""Error texts of EVAL, EVALSHA, SCRIPT and of the redis.* API scripts call, as Redis 7.0 words them (src/eval.c,
src/script.c, src/script_lua.c). A text without a code gets "ERR " where Redis adds it."""

from __future__ import annotations

from respq.errors import NUMKEYS_TOO_MANY

NUMKEYS_TOO_BIG = NUMKEYS_TOO_MANY  # the text EVAL, FCALL and SINTERCARD share
NOSCRIPT = b"NOSCRIPT No matching script. Please use EVAL."
NUMKEYS_NEGATIVE = b"ERR Number of keys can't be negative"
BUSY_EVAL = b"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
NOTBUSY = b"NOTBUSY No scripts in execution right now."
UNKILLABLE = (
    b"UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the "
    b"script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
)
FLUSH_OPTION = b"ERR SCRIPT FLUSH only support SYNC|ASYNC option"
DEBUG_OPTION = b"ERR Use SCRIPT DEBUG YES/SYNC/NO"
# respq has no Lua debugger (LDB): SCRIPT DEBUG YES/SYNC are refused rather than accepted and ignored.
DEBUG_UNSUPPORTED = b"ERR SCRIPT DEBUG YES/SYNC is not supported by this server (it has no Lua debugger)"
COMPILE = b"ERR Error compiling script (new function): %s"
SHEBANG_INVALID = b"ERR Invalid script shebang"
SHEBANG_ENGINE_MISSING = b"ERR Invalid engine in script shebang"
SHEBANG_ENGINE = b"ERR Unexpected engine in script shebang: %s"
SHEBANG_FLAG = b"ERR Unexpected flag in script shebang: %s"
SHEBANG_OPTION = b"ERR Unknown lua shebang option: %s"
RO_SCRIPT_WRITES = b"ERR Can not execute a script with write flag using *_ro command."

# What redis.call / redis.pcall answer (the script sees them as error tables, "ERR " added)
CALL_NO_ARGS = b"ERR Please specify at least one argument for this redis lib call"
CALL_BAD_ARG = b"ERR Lua redis lib command arguments must be strings or integers"
CALL_UNKNOWN = b"ERR Unknown Redis command called from script"
CALL_ARITY = b"ERR Wrong number of args calling Redis command from script"
CALL_NOSCRIPT = b"ERR This Redis command is not allowed from script"
CALL_WRITE_RO = b"ERR Write commands are not allowed from read-only scripts."
SCRIPT_KILLED = b"ERR Script killed by user with SCRIPT KILL..."
# Cluster mode: a script's calls may only touch keys of one slot served here (Redis's scriptVerifyClusterState).
CALL_NON_LOCAL_KEY = b"ERR Script attempted to access a non local key in a cluster node"
CALL_CROSS_SLOT = b"ERR Script attempted to access keys that do not hash to the same slot"
CALL_CLUSTER_DOWN = b"ERR Script attempted to execute a command while the cluster is down"
NO_CLUSTER_FLAG = b"ERR Can not run script on cluster, 'no-cluster' flag is set."
# respq's bound on a script's Lua memory (script-memory-limit); Redis 7.0 has none.
SCRIPT_MEMORY = b"ERR Script exceeded script-memory-limit (%d bytes) and was stopped"
ACL_CHECK_UNKNOWN = b"ERR Invalid command passed to redis.acl_check_cmd()"
ACL_CHECK_OUTSIDE = b"ERR redis.acl_check_cmd can only be called inside a script invocation"
# redis.call of a command the caller's user may not run (the reason as getAclErrorMessage words it).
ACL_DENIED = {
    1: b"ERR The user executing the script can't run this command or subcommand",
    2: b"ERR The user executing the script can't access at least one of the keys mentioned in the command arguments",
    4: b"ERR The user executing the script can't publish to the channel mentioned in the command",
}

# FUNCTION and FCALL (src/functions.c, src/function_lua.c, src/script.c)
BUSY_FUNCTION = b"BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
FUNCTION_NAME_RULE = (
    b"ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
)
FUNCTION_NOT_FOUND = b"ERR Function not found"
FUNCTION_BAD_NUMKEYS = b"ERR Bad number of keys provided"
LIBRARY_NOT_FOUND = b"ERR Library not found"
FUNCTION_CODE_MISSING = b"ERR Function code is missing"
FUNCTION_UNKNOWN_OPTION = b"ERR Unknown option given: %s"
FUNCTION_LIST_NAME_MISSING = b"ERR library name argument was not given"
FUNCTION_LIST_UNKNOWN = b"ERR Unknown argument %s"
FUNCTION_FLUSH_OPTION = b"ERR FUNCTION FLUSH only supports SYNC|ASYNC option"
FUNCTION_RESTORE_POLICY = b"ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
LIBRARY_EXISTS_AT_LOAD = b"ERR Library '%s' already exists"
LIBRARY_EXISTS_AT_RESTORE = b"ERR Library %s already exists"  # FUNCTION RESTORE's wording has no quotes
FUNCTION_EXISTS = b"ERR Function %s already exists"
INVALID_LIBRARY_METADATA = b"ERR Invalid library metadata"
