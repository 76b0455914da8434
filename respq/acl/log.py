"""The ACL log (``ACL LOG``): denied commands, keys, channels and failed authentications, newest first, a repeat of
a recent entry counted on it rather than added, as Redis 7.0 keeps it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from respq.acl.check import DENIED_AUTH, DENIED_CHANNEL, DENIED_COMMAND, DENIED_KEY

REASONS = {DENIED_COMMAND: b"command", DENIED_KEY: b"key", DENIED_CHANNEL: b"channel", DENIED_AUTH: b"auth"}
TOPLEVEL = b"toplevel"
MULTI = b"multi"
LUA = b"lua"
_GROUPING_MS = 60_000  # a repeat within a minute of an entry is counted on it
_SCANNED = 10  # entries looked at for a repeat


@dataclass(slots=True, eq=False)
class Entry:
    count: int
    reason: int
    context: bytes
    object: bytes
    username: bytes
    ctime_ms: int
    client_info: bytes


class AclLog:
    def __init__(self, max_len: int = 128) -> None:
        self.entries: list[Entry] = []  # newest first
        self.max_len = max_len

    def add(self, reason: int, context: bytes, obj: bytes, username: bytes, client_info: bytes) -> None:
        now = int(time.time() * 1000)
        for index, entry in enumerate(self.entries[:_SCANNED]):
            if (
                entry.reason == reason
                and entry.context == context
                and abs(entry.ctime_ms - now) <= _GROUPING_MS
                and entry.object == obj
                and entry.username == username
            ):
                del self.entries[index]
                self.entries.insert(0, entry)
                entry.count += 1
                entry.ctime_ms = now
                entry.client_info = client_info
                return
        self.entries.insert(0, Entry(1, reason, context, obj, username, now, client_info))
        del self.entries[max(self.max_len, 0) :]

    def reset(self) -> None:
        self.entries.clear()
