"""Error texts of the hash commands, each defined once (Redis 7.0's words; compat-tests cover each)."""

from respq.errors import COUNT_OUT_OF_RANGE as COUNT_OUT_OF_RANGE  # shared with SRANDMEMBER, ZRANDMEMBER

HASH_VALUE_NOT_INTEGER = b"ERR hash value is not an integer"
HASH_VALUE_NOT_FLOAT = b"ERR hash value is not a float"
INCREMENT_NAN_OR_INFINITY = b"ERR value is NaN or Infinity"
# HRANDFIELD's count: any long but LONG_MIN, and half that range with WITHVALUES (the reply holds twice as many).
WITHVALUES_COUNT_OUT_OF_RANGE = b"ERR value is out of range"
