"""Redis 7.0 ACL users: the model (users, selectors, rules), the permission check, the log, the ACL file.

``Acl.authenticate(username, password)`` is the one credential check; ``check`` decides a call."""

from respq.acl.check import DENIED_AUTH, DENIED_CHANNEL, DENIED_COMMAND, DENIED_KEY, OK, check
from respq.acl.registry import Acl, AclError, load_users
from respq.acl.users import RuleError, User

__all__ = [
    "DENIED_AUTH",
    "DENIED_CHANNEL",
    "DENIED_COMMAND",
    "DENIED_KEY",
    "OK",
    "Acl",
    "AclError",
    "RuleError",
    "User",
    "check",
    "load_users",
]
