"""Whether a user may run one call: its command, every key it names (with the access each key needs) and every
channel it publishes or subscribes to, tried selector by selector as Redis 7.0's ACLCheckAllUserCommandPerm."""

from __future__ import annotations

from respq.acl.keyspecs import KEY_SPECS, READ, WRITE
from respq.acl.users import Selector, User
from respq.commands.table import Command
from respq.errors import CommandError
from respq.glob import glob_match

OK = 0
DENIED_COMMAND = 1
DENIED_KEY = 2
DENIED_AUTH = 3  # only for the log
DENIED_CHANNEL = 4

# Commands naming channels: where the channels are and whether they are patterns. Unsubscribing is never checked.
_PUBLISH = frozenset({"publish", "spublish"})
_SUBSCRIBE = frozenset({"subscribe", "ssubscribe"})
_PSUBSCRIBE = frozenset({"psubscribe"})


def _set_access(argv: list[bytes]) -> int:
    """SET reads the old value only with GET."""
    return READ | WRITE if any(arg.lower() == b"get" for arg in argv[3:]) else WRITE


def _bitfield_access(argv: list[bytes]) -> int:
    """BITFIELD of GET and OVERFLOW operations only reads (anything unparsable counts as a write)."""
    i = 2
    while i < len(argv):
        remaining = len(argv) - i - 1
        word = argv[i].lower()
        if word == b"get" and remaining >= 2:
            i += 3
        elif word == b"overflow" and remaining >= 1:
            i += 2
        else:
            return READ | WRITE
    return READ


# Commands whose key access depends on their arguments (Redis's VARIABLE_FLAGS key specs).
_VARIABLE_ACCESS = {"set": _set_access, "bitfield": _bitfield_access}


def key_permission(cmd: Command, argv: list[bytes], position: int) -> int:
    """The access (READ, WRITE bits) the key at ``position`` needs, from the command's key specs."""
    variable = _VARIABLE_ACCESS.get(cmd.name)
    if variable is not None:
        return variable(argv)
    specs = KEY_SPECS.get(cmd.name)
    if not specs:
        return READ | WRITE if cmd.is_write else READ
    chosen = specs[0][2]
    chosen_at = -1
    for index, keyword, bits in specs:
        if keyword is None:
            if chosen_at < index <= position:
                chosen, chosen_at = bits, index
            continue
        for at in range(position - 1, chosen_at, -1):  # the latest occurrence of the keyword before the key
            if argv[at].upper() == keyword:
                chosen, chosen_at = bits, at
                break
    return chosen


def _key_allowed(selector: Selector, key: bytes, needed: int) -> bool:
    return any(bits & needed == needed and glob_match(pattern, key) for pattern, bits in selector.patterns)


def _channel_allowed(channels: list[bytes], channel: bytes, is_pattern: bool) -> bool:
    if is_pattern:  # PSUBSCRIBE needs its very pattern allowed, not just channels it would match
        return channel in channels
    return any(glob_match(pattern, channel) for pattern in channels)


def channel_positions(cmd: Command, argv: list[bytes]) -> tuple[list[int], bool]:
    """Positions of the channels a call publishes or subscribes to, and whether they are patterns."""
    name = cmd.name
    if name in _PUBLISH:
        return [1], False
    if name in _SUBSCRIBE:
        return list(range(1, len(argv))), False
    if name in _PSUBSCRIBE:
        return list(range(1, len(argv))), True
    return [], False


def _selector_check(selector: Selector, cmd: Command, argv: list[bytes], keys: list[int]) -> tuple[int, int]:
    if not selector.all_commands and "no_auth" not in cmd.flags and cmd.name not in selector.allowed:
        first_args = selector.first_args.get(cmd.name)
        if len(argv) < 2 or not first_args:
            return DENIED_COMMAND, 0
        wanted = argv[2 if cmd.parent else 1].lower()
        if not any(arg.lower() == wanted for arg in first_args):
            return DENIED_COMMAND, 0
    if not selector.all_keys:
        for position in keys:
            if not _key_allowed(selector, argv[position], key_permission(cmd, argv, position)):
                return DENIED_KEY, position
    if not selector.all_channels:
        positions, is_pattern = channel_positions(cmd, argv)
        for position in positions:
            if not _channel_allowed(selector.channels, argv[position], is_pattern):
                return DENIED_CHANNEL, position
    return OK, 0


def check(user: User, cmd: Command, argv: list[bytes]) -> tuple[int, int]:
    """(OK or the reason a call is denied, the argument position the denial is about). The most telling denial of
    all selectors is reported: a key or channel over a command, a later argument over an earlier one."""
    if user.unrestricted:
        return OK, 0
    try:
        keys = cmd.key_positions(argv) if cmd.first_key > 0 or cmd.key_finder is not None else []
    except CommandError:  # keys that cannot be found (a bad numkeys): none are checked, the command then fails
        keys = []
    worst, worst_at = DENIED_COMMAND, 0
    for selector in user.selectors:
        result, position = _selector_check(selector, cmd, argv, keys)
        if result == OK:
            return OK, 0
        if result > worst or (result == worst and position > worst_at):
            worst, worst_at = result, position
    return worst, worst_at


def channel_allowed(user: User, channel: bytes, is_pattern: bool) -> bool:
    for selector in user.selectors:
        if selector.all_channels or _channel_allowed(selector.channels, channel, is_pattern):
            return True
    return False


def channels_revoked(new: User, old: User) -> tuple[bool, list[bytes]]:
    """Whether changing ``old`` into ``new`` may take away channels (then subscribers are checked), and the
    channel patterns ``new`` allows: Redis 7.0's ACLKillPubsubClientsIfNeeded."""
    if any(selector.all_channels for selector in new.selectors):
        return False, []
    upcoming = [channel for selector in new.selectors for channel in selector.channels]
    for selector in old.selectors:
        if selector.all_channels:
            return True, upcoming
        if any(channel not in upcoming for channel in selector.channels):
            return True, upcoming
    return False, upcoming


def subscriber_denied(upcoming: list[bytes], channels: set[bytes], patterns: set[bytes]) -> bool:
    return any(not _channel_allowed(upcoming, pattern, True) for pattern in patterns) or any(
        not _channel_allowed(upcoming, channel, False) for channel in channels
    )
