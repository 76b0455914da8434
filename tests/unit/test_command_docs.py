"""docs/commands.md is generated from the command table and must not drift from it."""

from pathlib import Path

from respq.commands.docgen import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "commands.md"


def test_commands_md_is_current() -> None:
    assert DOC.read_text() == render(), "regenerate with: python -m respq.commands.docgen > docs/commands.md"


def test_every_command_is_listed() -> None:
    from respq.commands.table import COMMANDS

    text = DOC.read_text()
    for name, cmd in COMMANDS.items():
        assert f"`{name.decode().upper()}`" in text
        for sub in cmd.subcommands.values():
            assert f"`{sub.name.upper()}`" in text
