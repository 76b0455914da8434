"""kill -9 under load: a respq subprocess under ``appendfsync always`` loses nothing it acknowledged.

Every type's clients run at once against one server: list producers and consumers, stream producers and consumer
groups, and key-value clients writing strings and hashes (SET with its options, APPEND, SETRANGE, INCR family,
INCRBYFLOAT, MSET, MSETNX, HSET, HDEL, HINCRBY), sets (SADD, SREM, SPOP, SMOVE, the S*STORE forms) and sorted sets
(ZADD with its options, ZINCRBY, ZREM, the pops, BZPOPMIN/BZPOPMAX served at once, ZREMRANGEBY*, the Z*STORE forms
over sorted sets and sets, ZRANGESTORE) beside the generic commands over them (DEL, RENAME and COPY across types,
EXPIRE, PEXPIREAT, PERSIST). Every reply is recorded. The whole process group is SIGKILLed while hundreds of
commands are unanswered, a journal sync is almost always in flight and checkpoints run every megabyte of journal.
After each restart every part reads its keys back and checks them against the replies: tests/crash/model.py
(lists), tests/crash/stream_model.py (streams) and tests/crash/kv_model.py (strings, hashes, sets, sorted sets,
expiry, multi-key writes) say exactly what is checked.

``TYPES`` is the campaign's table of per-type parts; tests/crash/kill9.py says what an entry is and how to add one
(a new key-value type, such as sets or sorted sets, is one ``KvType`` entry with its steps; the core does not change).
"""

from __future__ import annotations

from pathlib import Path

from tests.crash.conftest import Campaign
from tests.crash.kill9 import kill9_campaign
from tests.crash.kill9_queues import Lists, Streams
from tests.crash.kv_sets import SETS, ZSETS
from tests.crash.kv_types import HASHES, SCRIPTS, STRINGS, TRANSACTIONS
from tests.crash.model import SIZE_MIXES

TYPES = (Lists, Streams, STRINGS, HASHES, SETS, ZSETS, SCRIPTS, TRANSACTIONS)
# The large-value run aims at the storage's block boundaries: the types whose values can be large. Members and
# scripts would only thin out its two CI cycles (every entry's required commands must be answered).
LARGE_VALUE_TYPES = (Lists, Streams, STRINGS, HASHES)


def test_kill9_under_load_loses_nothing_acknowledged(tmp_path: Path, campaign: Campaign) -> None:
    rng = campaign.rng("kill9")
    kill9_campaign(tmp_path, campaign, rng, campaign.cycles_or(ci=8, long=1000), campaign.sizes, TYPES)


def test_kill9_with_large_values_loses_nothing_acknowledged(tmp_path: Path, campaign: Campaign) -> None:
    """The same load with messages and stream values around the storage's blocks (1 in 20 of them)."""
    rng = campaign.rng("kill9-large")
    kill9_campaign(tmp_path, campaign, rng, campaign.cycles_or(ci=2, long=100), SIZE_MIXES["large"], LARGE_VALUE_TYPES)
