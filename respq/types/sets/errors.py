"""Error texts of the set commands, each defined once (Redis 7.0's words; compat-tests cover each)."""

# SRANDMEMBER's count and SINTERCARD's numkeys and LIMIT use the shared texts in respq/errors.py.
from respq.errors import COUNT_OUT_OF_RANGE as COUNT_OUT_OF_RANGE
from respq.errors import LIMIT_NEGATIVE as LIMIT_NEGATIVE
from respq.errors import NUMKEYS_NOT_POSITIVE as NUMKEYS_NOT_POSITIVE
from respq.errors import NUMKEYS_TOO_MANY as NUMKEYS_TOO_MANY
