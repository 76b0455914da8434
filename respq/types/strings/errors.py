"""Error texts of the string commands, each defined once (Redis 7.0's words; compat-tests cover each)."""

STRING_TOO_LONG = b"ERR string exceeds maximum allowed size (proto-max-bulk-len)"
OFFSET_OUT_OF_RANGE = b"ERR offset is out of range"
DECR_OVERFLOW = b"ERR decrement would overflow"
LCS_NOT_STRINGS = b"ERR The specified keys must contain string values"
LCS_LEN_AND_IDX = b"ERR If you want both the length and indexes, please just use IDX."
LCS_TOO_LONG = b"ERR String too long for LCS"
LCS_TABLE_TOO_BIG = b"ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
LCS_NO_MEMORY = b"ERR Insufficient memory, failed allocating transient memory for LCS"

# ---- bit commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO): bitops.c ----------------------
BIT_OFFSET_INVALID = b"ERR bit offset is not an integer or out of range"
BIT_VALUE_INVALID = b"ERR bit is not an integer or out of range"
BITPOS_BIT_INVALID = b"ERR The bit argument must be 1 or 0."
BITOP_NOT_ONE_SOURCE = b"ERR BITOP NOT must be called with a single source key."
BITFIELD_TYPE_INVALID = (
    b"ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
)
BITFIELD_OVERFLOW_INVALID = b"ERR Invalid OVERFLOW type specified"
BITFIELD_RO_GET_ONLY = b"ERR BITFIELD_RO only supports the GET subcommand"
