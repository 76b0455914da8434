"""Key positions from the command table: NOT_KEY specs (shard channels) are found only when asked for."""

import respq.commands.modules  # noqa: F401  (registers every command)
from respq.commands.table import COMMANDS


def test_shard_channels_are_not_keys_but_are_routed_as_keys() -> None:
    spublish, ssubscribe, sunsubscribe = (COMMANDS[name] for name in (b"spublish", b"ssubscribe", b"sunsubscribe"))
    assert spublish.key_positions([b"spublish", b"ch", b"msg"]) == []
    assert spublish.key_positions([b"spublish", b"ch", b"msg"], include_not_keys=True) == [1]
    assert ssubscribe.key_positions([b"ssubscribe", b"a", b"b"], include_not_keys=True) == [1, 2]
    assert sunsubscribe.key_positions([b"sunsubscribe"], include_not_keys=True) == []
    assert COMMANDS[b"get"].key_positions([b"get", b"k"]) == [1]
    assert COMMANDS[b"publish"].key_positions([b"publish", b"ch", b"m"], include_not_keys=True) == []
