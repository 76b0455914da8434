"""Redis-style log lines (``pid:M 27 Nov 2026 21:30:00.123 * message``) to stdout or the configured logfile."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

LEVELS = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3, "nothing": 4}
_MARKS = {"debug": ".", "verbose": "-", "notice": "*", "warning": "#"}


class Logger:
    def __init__(self, level: str = "notice", path: str = "") -> None:
        self.threshold = LEVELS[level]
        self.stream: TextIO = open(path, "a", buffering=1) if path else sys.stdout  # noqa: SIM115
        self.pid = os.getpid()

    def set_level(self, level: str) -> None:
        self.threshold = LEVELS[level]

    def __call__(self, level: str, message: str) -> None:
        if LEVELS[level] < self.threshold:
            return
        now = time.time()
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        try:
            self.stream.write(f"{self.pid}:M {stamp} {_MARKS[level]} {message}\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # as Redis: a log nobody can read (a closed pipe, a full disk) never stops the server

    def notice(self, message: str) -> None:
        self("notice", message)

    def warning(self, message: str) -> None:
        self("warning", message)
