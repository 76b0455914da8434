"""Counters behind INFO stats, commandstats and errorstats."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from respq.replies import ErrorReply

if TYPE_CHECKING:
    from respq.commands.table import Command


@dataclass(slots=True)
class CommandStat:
    calls: int = 0
    usec: int = 0
    rejected_calls: int = 0
    failed_calls: int = 0


@dataclass
class Stats:
    commands: dict[str, CommandStat] = field(default_factory=dict)
    errors: Counter[bytes] = field(default_factory=Counter)
    total_commands: int = 0
    total_connections: int = 0
    rejected_connections: int = 0
    net_input_bytes: int = 0
    net_output_bytes: int = 0
    expired_keys: int = 0
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    total_error_replies: int = 0

    def count_call(self, cmd: Command, nanoseconds: int, *, failed: bool) -> None:
        stat = self.commands.get(cmd.name)
        if stat is None:
            stat = self.commands[cmd.name] = CommandStat()
        stat.calls += 1
        stat.usec += nanoseconds // 1000
        if failed:
            stat.failed_calls += 1
        self.total_commands += 1

    def count_error(self, message: bytes) -> None:
        # errorstats is keyed by the first word of the message (ERR, WRONGTYPE, ...), as in Redis.
        self.errors[message.split(b" ", 1)[0]] += 1
        self.total_error_replies += 1

    def rejected(self, message: bytes) -> ErrorReply:
        """Counts an error raised before any handler ran and returns it as a reply."""
        self.count_error(message)
        return ErrorReply(message)

    def reset(self) -> None:
        self.commands.clear()
        self.errors.clear()
        self.total_commands = self.total_connections = self.rejected_connections = 0
        self.net_input_bytes = self.net_output_bytes = self.expired_keys = 0
        self.keyspace_hits = self.keyspace_misses = self.total_error_replies = 0
