"""Bit commands that write in several steps refuse up front when storage cannot take the whole write: a refused
BITOP leaves its destination as it was (it used to delete it, then fail to write the new value)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from respq.commands.context import Context
from respq.storage.errors import StorageError
from respq.types.strings.bitcommands import bitop
from tests.unit.contexts import bare_context


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    context = bare_context(tmp_path)
    with context.engine.atomic():
        context.keyspace.create(0, b"src", "string").set(b"\xff" * 1000)
    context.keyspace.create(0, b"dest", "list").push(1, [b"kept"])
    yield context
    context.engine.close()


def _full(ctx: Context) -> None:
    """No write that adds anything to the disk fits any more."""
    ctx.engine.maxdisk = 1


def test_a_refused_bitop_keeps_its_destination(ctx: Context) -> None:
    _full(ctx)
    with pytest.raises(StorageError):
        bitop(ctx, [b"BITOP", b"NOT", b"dest", b"src"])
    entry = ctx.keyspace.lookup(0, b"dest")
    assert entry is not None and entry.type == "list" and len(entry.value) == 1
