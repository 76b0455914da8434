"""The format fixtures (tests/fixtures/format-v*/) through `respq serve` and redis-py: the server starts on each
directory, every key holds what expected.json says, and what a client writes after survives a shutdown and a
kill -9."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from conftest import start_respq
from tests.fixtures.make_datadir import connection, read_state
from tests.unit.test_format_fixture import DIRECTORIES, assert_written_more, fixture_copy, write_more


@pytest.mark.parametrize(("version", "kind"), DIRECTORIES, ids=[f"{v}-{k}" for v, k in DIRECTORIES])
def test_respq_serve_opens_the_fixture_and_keeps_what_is_written_after(tmp_path: Path, version: str, kind: str) -> None:
    path, expected = fixture_copy(tmp_path, version, kind)
    server = start_respq(path)
    try:
        with connection(server.port) as call:
            assert read_state(call) == expected
            ids = write_more(call)
            after = read_state(call)
        assert_written_more(json.loads(json.dumps(after)), expected, ids)
        assert server.terminate() == 0  # a clean shutdown
        server = start_respq(path)
        with connection(server.port) as call:
            assert read_state(call) == after
            assert call(["RPUSH", "after:new", "before-kill"]) == 2  # acknowledged: synced under appendfsync always
        after["0"]["after:new"]["values"].append("before-kill")
        server.kill(signal.SIGKILL)
        server.stop()
        server = start_respq(path)
        with connection(server.port) as call:
            state: dict[str, Any] = read_state(call)
        assert state == after
    finally:
        server.stop()
