"""Error texts of the lists commands, each defined once (Redis 7.0's words; compat-tests cover each)."""

from respq.errors import NUMKEYS_NOT_POSITIVE as NUMKEYS_NOT_POSITIVE  # shared with SINTERCARD, ZMPOP, ...

RANK_ZERO = (
    b"ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start "
    b"from the end of the list"
)
COUNT_NEGATIVE = b"ERR COUNT can't be negative"
MAXLEN_NEGATIVE = b"ERR MAXLEN can't be negative"
COUNT_NOT_POSITIVE = b"ERR count should be greater than 0"
