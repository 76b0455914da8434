"""The value types, one package each (its model, commands and errors), and the one table registering them.

Adding a type: a package ``respq/types/<name>/`` whose model subclasses ``respq.storage.port.ValueType`` and
``Value``, plus one line in ``REGISTRY`` below. The registry refuses, at import, any type code, journal op, segment
record type or cold-entry kind that collides with another type's or the engine's own. docs/storage.md, "Value
types", walks through it.
"""

from respq.config import Config
from respq.storage.port import TypeRegistry
from respq.types.codec import CodecTable
from respq.types.hashes import rdb as hash_rdb
from respq.types.hashes.model import HASH
from respq.types.lists import rdb as list_rdb
from respq.types.lists.model import LIST
from respq.types.sets import rdb as set_rdb
from respq.types.sets.model import SET
from respq.types.streams import rdb as stream_rdb
from respq.types.streams.model import STREAM, node_settings
from respq.types.strings import rdb as string_rdb
from respq.types.strings.model import STRING
from respq.types.zsets import rdb as zset_rdb
from respq.types.zsets.model import ZSET

REGISTRY = TypeRegistry([LIST, STREAM, STRING, HASH, SET, ZSET])
# Each type's DUMP/RESTORE codec (respq/types/<type>/rdb.py): its RDB object both ways.
RDB_CODECS = CodecTable(
    [list_rdb.CODEC, stream_rdb.CODEC, string_rdb.CODEC, hash_rdb.CODEC, set_rdb.CODEC, zset_rdb.CODEC]
)

# The directives that types' settings come from: CONFIG SET of one hands the engine new settings.
SETTINGS_DIRECTIVES = frozenset({"stream-node-max-entries", "stream-node-max-bytes"})


def type_settings(config: Config) -> dict[str, bytes]:
    """Each type with settings: its payload for ``Engine.set_type_settings``, from the directives."""
    return {"stream": node_settings(config.stream_node_max_entries, config.stream_node_max_bytes)}


__all__ = ["RDB_CODECS", "REGISTRY", "SETTINGS_DIRECTIVES", "type_settings"]
