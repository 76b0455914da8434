"""ACL users as Redis 7.0 models them: flags, password hashes and selectors, each selector a set of allowed
commands, key patterns and channel patterns. Rules change a user exactly as ``ACL SETUSER`` does, and a user
describes itself back in rules (``ACL LIST``, ``ACL GETUSER``, the ACL file) with Redis's algorithm."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from respq.acl.keyspecs import READ, WRITE
from respq.commands.table import CATEGORIES, ORIGINAL_COMMANDS, Command

ALL = READ | WRITE

# Why a rule was refused: the text after "Error in ACL SETUSER modifier '...': " (acl.c's errno mapping).
WRONG_FORMAT = "Wrong format"
UNKNOWN_NAME = "Unknown command or category name in ACL"
SYNTAX = "Syntax error"
PATTERN_AFTER_ALLKEYS = (
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect."
    " Try 'resetkeys' to start with an empty list of patterns"
)
PATTERN_AFTER_ALLCHANNELS = (
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect."
    " Try 'resetchannels' to start with an empty list of channels"
)
NO_SUCH_PASSWORD = "The password you are trying to remove from the user does not exist"
BAD_HASH = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
DUPLICATE_USER = "Duplicate user found. A user can only be defined once in config files"
SUBCOMMAND_FIRST_ARG = "Allowing first-arg of a subcommand is not supported"

USER_FLAGS = ("on", "off", "nopass", "skip-sanitize-payload", "sanitize-payload")  # the order Redis lists them in


class RuleError(Exception):
    """A rule ACL SETUSER (or an ACL file) cannot apply; ``reason`` is one of the texts above."""

    def __init__(self, reason: str, rule: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule  # the rule that failed, when several were applied


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


def has_spaces(text: bytes) -> bool:
    """Usernames and patterns may not hold white space or NUL (they could not be written back as rules)."""
    return any(c in b" \t\n\v\f\r\x00" for c in text)


# Flag rules that clear their opposite.
_EXCLUSIVE_FLAGS = {
    b"on": "off",
    b"off": "on",
    b"skip-sanitize-payload": "sanitize-payload",
    b"sanitize-payload": "skip-sanitize-payload",
}


def _all_commands() -> list[Command]:
    """Every command and subcommand, parents before their subcommands, under their original (unrenamed) names."""
    found = []
    for cmd in ORIGINAL_COMMANDS.values():
        found.append(cmd)
        found.extend(cmd.subcommands.values())
    return found


_members: dict[str, list[Command]] = {}
_members_of = 0  # how many commands the cached membership was computed from


def category_members(category: str) -> list[Command]:
    """The commands (and subcommands) of a category (``@name``), parents first, computed once per command table."""
    global _members_of
    if _members_of != len(ORIGINAL_COMMANDS):
        _members.clear()
        _members_of = len(ORIGINAL_COMMANDS)
    members = _members.get(category)
    if members is None:
        members = _members[category] = [cmd for cmd in _all_commands() if category in cmd.acl_categories]
    return members


def _lookup(name: str) -> Command | None:
    """A command or ``parent|sub`` by its original name (ACL rules ignore rename-command, as in Redis)."""
    parent_name, _, sub = name.lower().partition("|")
    cmd = ORIGINAL_COMMANDS.get(parent_name.encode())
    if cmd is None or not sub:
        return cmd
    return cmd.subcommands.get(sub.encode())


@dataclass(eq=False)
class Selector:
    """One set of permissions; a command runs when any of its user's selectors allows it whole."""

    root: bool = False
    all_keys: bool = False
    all_channels: bool = False
    all_commands: bool = False
    future: bool = False  # +@all was the last word on commands: it covers commands added later (Redis's spare bit)
    allowed: set[str] = field(default_factory=set)  # full command names ("client|kill")
    first_args: dict[str, list[bytes]] = field(default_factory=dict)  # command name -> first arguments allowed
    patterns: list[list] = field(default_factory=list)  # [pattern, READ|WRITE bits], in the order given
    channels: list[bytes] = field(default_factory=list)

    def copy(self) -> Selector:
        return Selector(
            self.root,
            self.all_keys,
            self.all_channels,
            self.all_commands,
            self.future,
            set(self.allowed),
            {name: list(args) for name, args in self.first_args.items()},
            [list(pattern) for pattern in self.patterns],
            list(self.channels),
        )

    # ---- rules ------------------------------------------------------------------------------------------------
    def apply(self, op: bytes) -> None:
        """One selector rule (keys, channels, commands); raises RuleError."""
        word = op.lower()
        if word in (b"allkeys", b"~*"):
            self.all_keys = True
            self.patterns.clear()
        elif word == b"resetkeys":
            self.all_keys = False
            self.patterns.clear()
        elif word in (b"allchannels", b"&*"):
            self.all_channels = True
            self.channels.clear()
        elif word == b"resetchannels":
            self.all_channels = False
            self.channels.clear()
        elif word in (b"allcommands", b"+@all"):
            self.allowed = {cmd.name for cmd in _all_commands()}
            self.all_commands = self.future = True
            self.first_args.clear()
        elif word in (b"nocommands", b"-@all"):
            self.allowed = set()
            self.all_commands = self.future = False
            self.first_args.clear()
        elif op[:1] in (b"~", b"%"):
            self._add_key_pattern(op)
        elif op[:1] == b"&":
            if self.all_channels:
                raise RuleError(PATTERN_AFTER_ALLCHANNELS)
            if has_spaces(op[1:]):
                raise RuleError(SYNTAX)
            if op[1:] not in self.channels:
                self.channels.append(op[1:])
            self.all_channels = False
        elif op[:1] == b"+" and op[1:2] != b"@":
            self._allow(op[1:].decode("latin-1"))
        elif op[:1] == b"-" and op[1:2] != b"@":
            cmd = _lookup(op[1:].decode("latin-1"))
            if cmd is None:
                raise RuleError(UNKNOWN_NAME)
            self.change(cmd, False)
        elif op[:1] in (b"+", b"-") and op[1:2] == b"@":
            category = "@" + op[2:].decode("latin-1").lower()
            if category[1:] not in CATEGORIES:
                raise RuleError(UNKNOWN_NAME)
            self.set_category(category, op[:1] == b"+")
        else:
            raise RuleError(SYNTAX)

    def _add_key_pattern(self, op: bytes) -> None:
        if self.all_keys:
            raise RuleError(PATTERN_AFTER_ALLKEYS)
        offset = 1
        bits = 0
        if op[:1] == b"%":
            bits = 0
            while offset < len(op):
                char = op[offset : offset + 1].upper()
                offset += 1
                if char == b"R" and not bits & READ:
                    bits |= READ
                elif char == b"W" and not bits & WRITE:
                    bits |= WRITE
                elif char == b"~":
                    break
                else:
                    raise RuleError(SYNTAX)
        else:
            bits = ALL
        pattern = op[offset:]
        if has_spaces(pattern):
            raise RuleError(SYNTAX)
        for existing in self.patterns:
            if existing[0] == pattern:
                existing[1] |= bits
                break
        else:
            self.patterns.append([pattern, bits])
        self.all_keys = False

    def _allow(self, name: str) -> None:
        if "|" not in name:
            cmd = _lookup(name)
            if cmd is None:
                raise RuleError(UNKNOWN_NAME)
            self.change(cmd, True)
            return
        parent_name, _, first_arg = name.rpartition("|")
        cmd = _lookup(parent_name)
        if cmd is None:
            raise RuleError(UNKNOWN_NAME)
        if cmd.parent is not None:
            raise RuleError(SUBCOMMAND_FIRST_ARG)
        if not first_arg:
            raise RuleError(SYNTAX)
        if cmd.subcommands:
            sub = _lookup(name)
            if sub is None:
                raise RuleError(UNKNOWN_NAME)
            self.change(sub, True)
            return
        # A first argument of an otherwise denied command (SELECT|0): Redis deprecates it but still accepts it.
        allowed = self.first_args.setdefault(cmd.name, [])
        if not any(existing.lower() == first_arg.encode("latin-1").lower() for existing in allowed):
            allowed.append(first_arg.encode("latin-1"))

    def change(self, cmd: Command, allow: bool) -> None:
        """Allows or denies a command and, for a container, all its subcommands."""
        self._set_bit(cmd.name, allow)
        self.first_args.pop(cmd.name, None)
        for sub in cmd.subcommands.values():
            self._set_bit(sub.name, allow)

    def _set_bit(self, name: str, allow: bool) -> None:
        if allow:
            self.allowed.add(name)
        else:
            self.allowed.discard(name)
            self.all_commands = False

    def set_category(self, category: str, allow: bool) -> None:
        for cmd in category_members(category):
            self.change(cmd, allow)

    # ---- description --------------------------------------------------------------------------------------------
    def _count(self, category: str) -> tuple[int, int]:
        members = category_members(category)
        allowed = self.allowed
        on = sum(1 for cmd in members if cmd.name in allowed)
        return on, len(members) - on

    def command_rules(self) -> str:
        """The command rules that rebuild this selector's commands: +@all or -@all, then the categories that fit
        best (more commands in common than different, fewest differences first), then single commands, as Redis
        7.0 derives them (so the text can differ from the rules given)."""
        additive = not self.future
        fake = Selector()
        fake.apply(b"-@all" if additive else b"+@all")
        rules = ["-@all" if additive else "+@all"]
        temp = Selector(allowed=set(self.allowed))
        applied: set[str] = set()
        while True:
            best = None
            min_diff, max_same = 1 << 62, 0
            for name in CATEGORIES:
                if name in applied:
                    continue
                on, off = temp._count("@" + name)
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < min_diff or (diff == min_diff and same > max_same)):
                    best, min_diff, max_same = name, diff, same
            if best is None:
                break
            fake.set_category("@" + best, additive)
            temp.set_category("@" + best, not additive)
            rules.append(("+@" if additive else "-@") + best)
            applied.add(best)
        for top in ORIGINAL_COMMANDS.values():
            for cmd in (top, *top.subcommands.values()):
                mine = cmd.name in self.allowed
                if mine != (cmd.name in fake.allowed):
                    rules.append(("+" if mine else "-") + cmd.name)
                    fake.change(cmd, mine)
            if top.name not in self.allowed:
                rules.extend(f"+{top.name}|{arg.decode('latin-1')}" for arg in self.first_args.get(top.name, ()))
        return " ".join(rules)

    def key_rules(self, separator: str = " ") -> str:
        if self.all_keys:
            return "~*"
        return separator.join(_pattern_text(pattern, bits) for pattern, bits in self.patterns)

    def channel_rules(self) -> str:
        if self.all_channels:
            return "&*"
        return " ".join("&" + channel.decode("latin-1") for channel in self.channels)

    def describe(self) -> str:
        parts = []
        if self.all_keys:
            parts.append("~*")
        else:
            parts.extend(_pattern_text(pattern, bits) for pattern, bits in self.patterns)
        if self.all_channels:
            parts.append("&*")
        else:
            parts.append("resetchannels")
            parts.extend("&" + channel.decode("latin-1") for channel in self.channels)
        parts.append(self.command_rules())
        return " ".join(parts)


def _pattern_text(pattern: bytes, bits: int) -> str:
    prefix = "~" if bits == ALL else "%R~" if bits == READ else "%W~"
    return prefix + pattern.decode("latin-1")


@dataclass(eq=False)
class User:
    name: bytes
    flags: set[str] = field(default_factory=lambda: {"off"})
    passwords: list[str] = field(default_factory=list)  # SHA-256 hex digests, in the order added
    selectors: list[Selector] = field(default_factory=list)
    # Root selector allows every command, key and channel: the permission check has nothing to do.
    unrestricted: bool = False

    @classmethod
    def new(cls, name: bytes, pubsub_default_all: bool) -> User:
        user = cls(name)
        user.selectors.append(Selector(root=True, all_channels=pubsub_default_all))
        return user

    @property
    def enabled(self) -> bool:
        return "on" in self.flags

    @property
    def nopass(self) -> bool:
        return "nopass" in self.flags

    def copy_from(self, other: User) -> None:
        """Takes another user's rules, keeping this object (connections hold it) and its name."""
        self.flags = set(other.flags)
        self.passwords = list(other.passwords)
        self.selectors = [selector.copy() for selector in other.selectors]
        self.refresh()

    def clone(self) -> User:
        user = User(self.name)
        user.copy_from(self)
        return user

    def refresh(self) -> None:
        root = self.selectors[0]
        self.unrestricted = root.all_commands and root.all_keys and root.all_channels

    def apply(self, op: bytes, pubsub_default_all: bool) -> None:
        """One ACL SETUSER rule; raises RuleError."""
        try:
            self._apply(op, pubsub_default_all)
        finally:
            self.refresh()

    def _apply(self, op: bytes, pubsub_default_all: bool) -> None:
        if not op:
            return
        word = op.lower()
        flags = self.flags
        if word in _EXCLUSIVE_FLAGS:
            flags.discard(_EXCLUSIVE_FLAGS[word])
            flags.add(word.decode())
        elif word == b"nopass":
            flags.add("nopass")
            self.passwords.clear()
        elif word == b"resetpass":
            flags.discard("nopass")
            self.passwords.clear()
        elif op[:1] in (b">", b"#"):
            digest = hash_password(op[1:]) if op[:1] == b">" else _checked_hash(op[1:])
            if digest not in self.passwords:
                self.passwords.append(digest)
            flags.discard("nopass")
        elif op[:1] in (b"<", b"!"):
            digest = hash_password(op[1:]) if op[:1] == b"<" else _checked_hash(op[1:])
            if digest not in self.passwords:
                raise RuleError(NO_SUCH_PASSWORD)
            self.passwords.remove(digest)
        elif op[:1] == b"(" and op[-1:] == b")":
            selector = Selector(all_channels=pubsub_default_all)
            for rule in split_rules(op[1:-1]):
                selector.apply(rule)
            self.selectors.append(selector)
        elif word == b"clearselectors":
            del self.selectors[1:]
        elif word == b"reset":
            for rule in (b"resetpass", b"resetkeys", b"resetchannels"):
                self._apply(rule, pubsub_default_all)
            if pubsub_default_all:
                self._apply(b"allchannels", pubsub_default_all)
            for rule in (b"off", b"sanitize-payload", b"clearselectors", b"-@all"):
                self._apply(rule, pubsub_default_all)
        else:
            self.selectors[0].apply(op)

    def describe(self) -> str:
        """The user as rules (ACL LIST, the ACL file, CONFIG REWRITE), without the leading ``user name``."""
        parts = [flag for flag in USER_FLAGS if flag in self.flags]
        parts.extend("#" + digest for digest in self.passwords)
        text = " ".join(parts)
        text = (text + " " if text else "") + self.selectors[0].describe()
        for selector in self.selectors[1:]:
            text += " (" + selector.describe() + ")"
        return text


def _checked_hash(text: bytes) -> str:
    if len(text) != 64 or any(c not in b"0123456789abcdef" for c in text):
        raise RuleError(BAD_HASH)
    return text.decode()


def split_rules(text: bytes) -> list[bytes]:
    """The rules inside a selector's parentheses, split as Redis's sdssplitargs does for plain words."""
    return [word for word in text.replace(b"\t", b" ").split(b" ") if word]


def merge_selectors(args: list[bytes]) -> list[bytes] | int:
    """Joins the words of a selector given as several arguments (``(~x`` ``+get)``) into one rule; an opening
    parenthesis never closed gives the index of its argument instead."""
    merged: list[bytes] = []
    open_at = -1
    current = b""
    for index, arg in enumerate(args):
        if arg[:1] == b"(" and arg[-1:] != b")":  # even inside an open selector: Redis starts a new one there
            open_at, current = index, arg
            continue
        if open_at != -1:
            current += b" " + arg
            if arg[-1:] == b")":
                merged.append(current)
                open_at = -1
            continue
        merged.append(arg)
    return open_at if open_at != -1 else merged
