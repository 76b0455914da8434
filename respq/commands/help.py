"""The layout of the HELP subcommands (CLIENT HELP, CONFIG HELP, XINFO HELP, ...), shared by every command group."""

from __future__ import annotations

from respq.replies import SimpleString


def help_lines(name: bytes, lines: list[str]) -> list[SimpleString]:
    """Redis's HELP layout: a title line, the entries, and a closing HELP entry."""
    return (
        [SimpleString(name + b" <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")]
        + [SimpleString(line.encode()) for line in lines]
        + [SimpleString(b"HELP"), SimpleString(b"    Prints this help.")]
    )
