"""Error texts of the set commands, each defined once (Redis 7.0's words; compat-tests cover each)."""

# SRANDMEMBER's count: any long but LONG_MIN.
COUNT_OUT_OF_RANGE = b"ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
# SINTERCARD's arguments: numkeys (not a number, or below 1), more keys than arguments, a bad LIMIT.
NUMKEYS_NOT_POSITIVE = b"ERR numkeys should be greater than 0"
NUMKEYS_TOO_MANY = b"ERR Number of keys can't be greater than number of args"
LIMIT_NEGATIVE = b"ERR LIMIT can't be negative"
