"""Every command module, named once. Importing this module registers all of respq's commands in the table.

A command module registers its handlers with ``@command`` when it is imported; the table itself imports none of them,
so the table and its modules form no import cycle. A new command module is one more line here.
"""

from __future__ import annotations

from types import ModuleType

from respq.commands import (
    acl,
    cluster,
    connection,
    dump,
    introspection,
    keys,
    migrate,
    ops,
    pubsub,
    replication,
    server,
    sort,
    transactions,
)
from respq.commands.table import COMMANDS, Command
from respq.scripting import commands as scripting
from respq.scripting import function_commands
from respq.types.hashes import commands as hashes
from respq.types.lists import commands as lists
from respq.types.sets import commands as sets
from respq.types.streams import commands as streams
from respq.types.strings import bitcommands
from respq.types.strings import commands as strings
from respq.types.zsets import commands as zsets

# In registration order: COMMAND and COMMAND LIST reply in it.
MODULES: tuple[ModuleType, ...] = (
    acl,
    bitcommands,
    cluster,
    connection,
    dump,
    function_commands,
    introspection,
    keys,
    hashes,
    migrate,
    ops,
    lists,
    pubsub,
    replication,
    scripting,
    server,
    sets,
    sort,
    streams,
    strings,
    transactions,
    zsets,
)


def load_all() -> dict[bytes, Command]:
    """The command table, every module of MODULES registered (done when this module was imported)."""
    return COMMANDS
