"""The server's users: the ``default`` user, those from ``user`` config lines or the ACL file, those ACL SETUSER
made; credentials checked in one place (``Acl.authenticate``), the ACL file read and written whole."""

from __future__ import annotations

import hmac
import os
import tempfile
from typing import TYPE_CHECKING

from respq.acl.log import AclLog
from respq.acl.users import (
    DUPLICATE_USER,
    UNKNOWN_NAME,
    RuleError,
    User,
    has_spaces,
    hash_password,
    merge_selectors,
)

if TYPE_CHECKING:
    from respq.config import Config

DEFAULT = b"default"
USERS_AND_ACLFILE = (
    "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This "
    "setup is very likely to lead to configuration errors and security holes, please define either an ACL file or "
    "declare users directly in your redis.conf, but not both."
)


class AclError(Exception):
    """Users could not be loaded; the message says why, as Redis words it."""


class Acl:
    def __init__(self, pubsub_default_all: bool = False, log_max_len: int = 128) -> None:
        self.pubsub_default_all = pubsub_default_all  # acl-pubsub-default allchannels
        self.default = self._default_user()
        self.users: dict[bytes, User] = {DEFAULT: self.default}
        self.log = AclLog(log_max_len)

    def _default_user(self) -> User:
        user = User.new(DEFAULT, self.pubsub_default_all)
        for rule in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
            user.apply(rule, self.pubsub_default_all)
        return user

    # ---- credentials ----------------------------------------------------------------------------------------------
    def authenticate(self, username: bytes, password: bytes) -> User | None:
        """The user these credentials log in as, or None (no such user, disabled, wrong password). AUTH, HELLO
        and any other listener that takes credentials call this and nothing else."""
        user = self.users.get(username)
        if user is None or not user.enabled:
            return None
        if user.nopass:
            return user
        digest = hash_password(password)
        if any(hmac.compare_digest(digest, stored) for stored in user.passwords):
            return user
        return None

    @property
    def auth_required(self) -> bool:
        """Connections that have not authenticated may run only no_auth commands (default user off or with a
        password)."""
        default = self.default
        return not default.nopass or not default.enabled

    def set_requirepass(self, password: str | None) -> None:
        """``requirepass`` sets the default user's one password, or ``nopass`` when empty."""
        self.default.apply(b"resetpass", self.pubsub_default_all)
        if password:
            self.default.apply(b">" + password.encode("latin-1"), self.pubsub_default_all)
        else:
            self.default.apply(b"nopass", self.pubsub_default_all)

    # ---- changes --------------------------------------------------------------------------------------------------
    def updated(self, user: User | None, name: bytes, args: list[bytes]) -> User:
        """The user ``name`` (an existing ``user`` or a new one) as the rules would leave it, not yet stored;
        raises RuleError with the rule that failed, or ValueError with the unmatched selector's argument."""
        merged = merge_selectors(args)
        if isinstance(merged, int):
            raise ValueError(args[merged])
        candidate = user.clone() if user is not None else User.new(name, self.pubsub_default_all)
        for rule in merged:
            try:
                candidate.apply(rule, self.pubsub_default_all)
            except RuleError as error:
                raise RuleError(error.reason, rule) from None
        return candidate

    def store(self, name: bytes, candidate: User) -> User:
        """Makes ``candidate`` the rules of user ``name``: an existing user object is changed in place (its
        connections keep it)."""
        user = self.users.get(name)
        if user is None:
            candidate.name = name
            self.users[name] = candidate
            return candidate
        user.copy_from(candidate)
        return user

    def delete(self, name: bytes) -> User | None:
        return self.users.pop(name, None)

    # ---- config lines and the ACL file ----------------------------------------------------------------------------
    def load_config_users(self, lines: list[list[bytes]]) -> None:
        """``user`` lines of the config file (name, rules...), checked when read; raises AclError."""
        seen: set[bytes] = set()
        for name, *rules in lines:
            if has_spaces(name):
                raise AclError("Spaces not allowed in ACL usernames")
            if name in seen:
                raise AclError(DUPLICATE_USER)
            seen.add(name)
            user = self.users.get(name)
            if user is None:
                user = self.users[name] = User.new(name, self.pubsub_default_all)
            else:
                user.apply(b"reset", self.pubsub_default_all)
            merged = merge_selectors(rules)
            if isinstance(merged, int):
                raise AclError(f"Unmatched parenthesis in acl selector starting at '{_text(rules[merged])}'.")
            for rule in merged:
                try:
                    user.apply(rule, self.pubsub_default_all)
                except RuleError as error:
                    # Two log lines, as Redis logs a bad rule of a user line and then gives up.
                    raise AclError(
                        f"Error loading ACL rule '{_text(rule)}' for the user named '{_text(name)}': {error.reason}"
                        "\nCritical error while loading ACLs. Exiting."
                    ) from None

    def load_file(self, path: str) -> str | None:
        """ACL LOAD / start-up: replaces every user by the file's, or changes nothing and returns the errors."""
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError as error:
            return f"Error loading ACLs, opening file '{path}': {os.strerror(error.errno or 0)}"
        users: dict[bytes, User] = {}
        errors = ""
        for number, raw in enumerate(data.split(b"\n"), 1):
            line = raw.strip(b" \t\r\n")
            if not line:
                continue
            words = [word for word in line.split(b" ") if word]
            if not words:
                continue
            if words[0] != b"user" or len(words) < 2:
                errors += f"{path}:{number} should start with user keyword followed by the username. "
                continue
            name = words[1]
            if has_spaces(name):
                errors += f"'{path}:{number}: username '{_text(name)}' contains invalid characters. "
                continue
            if name in users:
                errors += f"WARNING: Duplicate user '{_text(name)}' found on line {number}. "
                continue
            user = users[name] = User.new(name, self.pubsub_default_all)
            merged = merge_selectors(words[2:])
            if isinstance(merged, int):
                errors += f"{path}:{number}: Unmatched parenthesis in selector definition."
                continue
            syntax_error = False
            for rule in merged:
                rule = rule.strip(b"\t\r\n")
                try:
                    user.apply(rule, self.pubsub_default_all)
                except RuleError as error:
                    if error.reason == UNKNOWN_NAME:
                        errors += f"{path}:{number}: Error in applying operation '{_text(rule)}': {error.reason}. "
                    elif not syntax_error:
                        errors += f"{path}:{number}: {error.reason}. "
                        syntax_error = True
        if errors:
            return errors + "WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        loaded_default = users.pop(DEFAULT, None) or self._default_user()
        self.default.copy_from(loaded_default)
        users[DEFAULT] = self.default
        self.users = users
        return None

    def describe_all(self) -> list[bytes]:
        """``user name rules`` lines, by name (ACL LIST, the ACL file, CONFIG REWRITE)."""
        return [b"user " + name + b" " + self.users[name].describe().encode("latin-1") for name in self.names()]

    def names(self) -> list[bytes]:
        return sorted(self.users)

    def save_file(self, path: str) -> bool:
        """ACL SAVE: the users written to a temporary file renamed over the ACL file."""
        text = b"".join(line + b"\n" for line in self.describe_all())
        directory = os.path.dirname(os.path.abspath(path))
        try:
            fd, temp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp-", dir=directory)
        except OSError:
            return False
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temp, 0o644)
            os.replace(temp, path)
        except OSError:
            try:
                os.unlink(temp)
            except OSError:
                pass
            return False
        return True


def _text(data: bytes) -> str:
    return data.decode("latin-1")


def load_users(config: Config) -> Acl:
    """The users at start-up: ``requirepass`` sets the default user's password, then ``user`` lines or the ACL
    file (not both) define the users; raises AclError with the reason to refuse to start."""
    values = config.values
    acl = Acl(bool(values["acl-pubsub-default"]), values["acllog-max-len"])
    acl.set_requirepass(config.requirepass)
    aclfile = values["aclfile"]
    if aclfile and config.users:
        raise AclError(USERS_AND_ACLFILE)
    acl.load_config_users([[word.encode("latin-1") for word in line] for line in config.users])
    if aclfile:
        errors = acl.load_file(aclfile)
        if errors is not None:
            raise AclError("Aborting startup because of ACL errors: " + errors)
    return acl
