"""Credential checks shared by every front end (AUTH and HELLO over RESP, basic and bearer over HTTP), so that they
accept exactly the same credentials. Users other than ``default`` arrive with ACLs."""

from __future__ import annotations

import hmac

from respq.config import Config


def default_user_password_ok(config: Config, user: bytes, password: bytes) -> bool:
    """Whether ``user`` with ``password`` may log in: only ``default``, with requirepass when one is set."""
    required = config.requirepass
    if user != b"default":
        return False
    # Compared in constant time: the HTTP listener may face a network that times its answers.
    return not required or hmac.compare_digest(password, required.encode("utf-8", "surrogateescape"))
