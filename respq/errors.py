"""Every error text respq sends, defined once. Texts follow Redis 7.0 exactly: clients match on them. Also the
exception that stops start-up."""

from __future__ import annotations


class CommandError(Exception):
    """Raised by a handler; the client gets ``-<message>``. ``message`` carries its code (ERR, WRONGTYPE, ...)."""

    counted = False  # errorstats already counted it (a script's error repeating its command's own)

    def __init__(self, message: bytes | str) -> None:
        if isinstance(message, str):
            message = message.encode()
        super().__init__(message)
        self.message: bytes = message


class StartupError(Exception):
    """The server cannot start: ``message`` is the fatal line to log, worded as Redis words its own (``...,
    aborting.``, ``... Exiting.``). The process exits with status 1 and no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DataDirectoryLocked(StartupError):
    """Another process (a server, or an application with the directory open in-process) holds the data directory's
    lock: one process at a time owns a data directory."""


# Generic
SYNTAX = b"ERR syntax error"
READONLY_REPLICA = b"READONLY You can't write against a read only replica."
NOREPLICAS = b"NOREPLICAS Not enough good replicas to write."
WRONGTYPE = b"WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = b"ERR value is not an integer or out of range"
NOT_INT32 = b"ERR value is out of range, value must between -2147483648 and 2147483647"
NO_SUCH_KEY = b"ERR no such key"
# Shared by several commands of different types (and scripts): a count that may be any long but LONG_MIN, numkeys.
COUNT_OUT_OF_RANGE = b"ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
NUMKEYS_NOT_POSITIVE = b"ERR numkeys should be greater than 0"
NUMKEYS_TOO_MANY = b"ERR Number of keys can't be greater than number of args"
LIMIT_NEGATIVE = b"ERR LIMIT can't be negative"
INDEX_OUT_OF_RANGE = b"ERR index out of range"
DB_INDEX_OUT_OF_RANGE = b"ERR DB index is out of range"
TIMEOUT_NOT_FLOAT = b"ERR timeout is not a float or out of range"
TIMEOUT_NOT_INTEGER = b"ERR timeout is not an integer or out of range"
TIMEOUT_NEGATIVE = b"ERR timeout is negative"
INVALID_EXPIRE = b"ERR invalid expire time in '%s' command"
MUST_BE_POSITIVE = b"ERR value is out of range, must be positive"
# INCRBYFLOAT and HINCRBYFLOAT (strings and hashes)
NOT_A_FLOAT = b"ERR value is not a valid float"
NAN_OR_INFINITY = b"ERR increment would produce NaN or Infinity"
INCR_OVERFLOW = b"ERR increment or decrement would overflow"  # INCR* and HINCRBY

SAME_OBJECT = b"ERR source and destination objects are the same"
UNSUPPORTED_OPTION = b"ERR Unsupported option %s"
SORT_NOT_DOUBLE = b"ERR One or more scores can't be converted into double"
LFU_NOT_SELECTED = (
    b"ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching "
    b"between policies at runtime LRU and LFU data will take some time to adjust."
)
LFU_SELECTED = (
    b"ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between "
    b"policies at runtime LRU and LFU data will take some time to adjust."
)

# Authentication and access
NOAUTH = b"NOAUTH Authentication required."
NOAUTH_HELLO = (
    b"NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    b"AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol "
    b"version at the same time"
)
WRONGPASS = b"WRONGPASS invalid username-password pair or user is disabled."
NOPERM_KEY = b"NOPERM this user has no permissions to access one of the keys used as arguments"
NOPERM_CHANNEL = b"NOPERM this user has no permissions to access one of the channels used as arguments"


def noperm_command(name: str) -> bytes:
    return b"NOPERM this user has no permissions to run the '" + name.encode() + b"' command"


_NOPERM_EXEC_REASONS = {
    1: b"no permission to execute the command or subcommand",
    2: b"no permission to touch the specified keys",
    4: b"no permission to access one of the channels used as arguments",
}


def noperm_exec(denial: int) -> bytes:
    """EXEC re-checks each queued command: the rules may have changed since it was queued."""
    return (
        b"NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. "
        b"This command is no longer allowed for the following reason: " + _NOPERM_EXEC_REASONS[denial]
    )
AUTH_NO_PASSWORD = (
    b"ERR AUTH <password> called without any password configured for the default user. "
    b"Are you sure your configuration is correct?"
)
MAX_CLIENTS = b"ERR max number of clients reached"
NOPROTO = b"NOPROTO unsupported protocol version"

# Server state
LOADING = b"LOADING Redis is loading the dataset in memory"
OOM = b"OOM command not allowed when used memory > 'maxmemory'."

# Transactions
MULTI_NESTED = b"ERR MULTI calls can not be nested"
EXEC_WITHOUT_MULTI = b"ERR EXEC without MULTI"
DISCARD_WITHOUT_MULTI = b"ERR DISCARD without MULTI"
WATCH_INSIDE_MULTI = b"ERR WATCH inside MULTI is not allowed"
EXECABORT = b"EXECABORT Transaction discarded because of previous errors."
# Operator commands (MONITOR, SLOWLOG, LATENCY).
REPLICA_KEYSPACE = b"ERR Replica can't interact with the keyspace"  # a MONITOR client naming keys
MONITOR_DENY_BLOCKING = b"ERR MONITOR isn't allowed for DENY BLOCKING client"
SLOWLOG_COUNT = b"ERR count should be greater than or equal to -1"
LATENCY_NO_SAMPLES = b"ERR No samples available for event '%s'"


def unknown_command(name: bytes, args: list[bytes]) -> bytes:
    """Redis quotes the name (128 bytes at most) and then arguments until 128 bytes of them are shown."""
    shown = b""
    for arg in args:
        if len(shown) >= 128:
            break
        shown += b"'" + _c_string(arg)[: 128 - len(shown)] + b"' "
    return _one_line(b"ERR unknown command '" + _c_string(name)[:128] + b"', with args beginning with: " + shown)


def unknown_subcommand(sub: bytes, command: bytes) -> bytes:
    return _one_line(b"ERR unknown subcommand '" + _c_string(sub)[:128] + b"'. Try " + command.upper() + b" HELP.")


def subcommand_syntax(sub: bytes, command: bytes) -> bytes:
    """A known subcommand given the wrong arguments, caught by its own handler (Redis's
    addReplySubcommandSyntaxError)."""
    return _one_line(
        b"ERR unknown subcommand or wrong number of arguments for '" + _c_string(sub)[:128] + b"'. Try "
        + command + b" HELP."
    )


def unsupported_option(option: bytes) -> bytes:
    """The EXPIRE family's reply to an option it does not know (printed as a C string, on one line)."""
    return _one_line(UNSUPPORTED_OPTION.replace(b"%s", _c_string(option)))


def wrong_arity(name: bytes) -> bytes:
    return b"ERR wrong number of arguments for '" + name.lower() + b"' command"


def _c_string(text: bytes) -> bytes:
    # Redis formats these with %s, which stops at the first NUL byte.
    end = text.find(0)
    return text if end < 0 else text[:end]


def _one_line(message: bytes) -> bytes:
    # An error reply must stay on one line: Redis maps CR and LF to spaces.
    return message.replace(b"\r", b" ").replace(b"\n", b" ")


def misconf(reason: str) -> bytes:
    """Writes refused because storage failed (Redis's AOF write-error reply)."""
    return b"MISCONF Errors writing to the AOF file: " + reason.encode(errors="replace")


def corrupt_data(reason: str) -> bytes:
    """A read met a record that fails its checksum, or the disk failed to read: nothing is served in its place,
    and the error says where."""
    return b"ERR " + reason.encode(errors="replace")


def execabort_because(error: bytes) -> bytes:
    reason = error[4:] if error.startswith(b"ERR ") else error
    return b"EXECABORT Transaction discarded because of: " + reason


def pubsub_context(name: bytes) -> bytes:
    return (
        b"ERR Can't execute '" + name.lower() + b"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
        b"are allowed in this context"
    )


# RESTORE (DUMP payloads; the checksum error is respq.rdb.BAD_PAYLOAD, shared with FUNCTION RESTORE)
BUSY_KEY = b"BUSYKEY Target key name already exists."
BAD_DATA_FORMAT = b"ERR Bad data format"
INVALID_TTL = b"ERR Invalid TTL value, must be >= 0"
INVALID_IDLETIME = b"ERR Invalid IDLETIME value, must be >= 0"
INVALID_FREQ = b"ERR Invalid FREQ value, must be >= 0 and <= 255"

# MIGRATE
MIGRATE_KEYS_NEED_EMPTY_KEY = b"ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"
MIGRATE_CONNECT = b"IOERR error or timeout connecting to the client"


def migrate_io(writing: bool) -> bytes:
    return b"IOERR error or timeout %s to target instance" % (b"writing" if writing else b"reading")


def migrate_target(line: bytes) -> bytes:
    return b"ERR Target instance replied with error: " + line
