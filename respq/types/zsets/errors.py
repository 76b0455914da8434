"""Error texts of the sorted set commands, each defined once (Redis 7.0's words; compat-tests cover each)."""

from respq.errors import LIMIT_NEGATIVE as LIMIT_NEGATIVE  # shared with SINTERCARD

XX_AND_NX = b"ERR XX and NX options at the same time are not compatible"
GT_LT_NX = b"ERR GT, LT, and/or NX options at the same time are not compatible"
INCR_ONE_PAIR = b"ERR INCR option supports a single increment-element pair"
SCORE_NAN = b"ERR resulting score is not a number (NaN)"
MIN_MAX_NOT_FLOAT = b"ERR min or max is not a float"
MIN_MAX_NOT_LEX = b"ERR min or max not valid string range item"
LIMIT_NEEDS_BY = b"ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
WITHSCORES_BYLEX = b"ERR syntax error, WITHSCORES not supported in combination with BYLEX"
NO_INPUT_KEY = b"ERR at least 1 input key is needed for '%s' command"
WEIGHT_NOT_FLOAT = b"ERR weight value is not a float"
