"""The value types, one package each (its model, commands and errors), and the one table registering them.

Adding a type: a package ``respq/types/<name>/`` whose model subclasses ``respq.storage.port.ValueType`` and
``Value``, plus one line in ``REGISTRY`` below. The registry refuses, at import, any type code, journal op, segment
record type or cold-entry kind that collides with another type's or the engine's own. docs/storage.md, "Value
types", walks through it.
"""

from respq.storage.port import TypeRegistry
from respq.types.hashes.model import HASH
from respq.types.lists.model import LIST
from respq.types.streams.model import STREAM
from respq.types.strings.model import STRING

REGISTRY = TypeRegistry([LIST, STREAM, STRING, HASH])

__all__ = ["REGISTRY"]
