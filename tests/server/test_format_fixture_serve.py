"""The format fixtures (tests/fixtures/format-v*/) through `respq serve` and redis-py: the server starts on each
directory, every key holds what expected.json says, and what a client writes after survives a shutdown and a
kill -9. A directory holding a file of a newer format version is refused at start-up, untouched."""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerProcess, start_respq, wait_until
from respq.storage import manifest
from respq.storage.fileio import DEFAULT_IO
from respq.storage.segments import QUEUES_DIR, parse_segment_name, queue_dir_name
from respq.types import REGISTRY
from tests.fixtures.make_datadir import connection, read_state
from tests.unit.test_format_fixture import DIRECTORIES, assert_written_more, fixture_copy, write_more
from tests.unit.test_format_versions import CRASH, NEWER, refusal, set_version, tree


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


READY = b"Ready to accept connections"


def _unlisted_stream_file() -> str:
    """A stream's segment file created after the last checkpoint of the crash fixture: recovery reads the
    entries in it that the journal names (and those past them), though no manifest lists it."""
    state = manifest.read(DEFAULT_IO, str(CRASH))
    assert state is not None
    streams = {qid for _, type_code, _, qid, _, _ in state.keys if type_code == REGISTRY["stream"].code}
    listed = {(qid, fid) for fid, (qid, _) in state.files.items()}
    for qid in sorted(streams):
        for path in sorted((CRASH / QUEUES_DIR / queue_dir_name(qid)).iterdir()):
            fid = parse_segment_name(path.name)
            if fid is not None and (qid, fid) not in listed:
                return str(path.relative_to(CRASH))
    raise AssertionError("no stream file past the last checkpoint")


@pytest.mark.parametrize("name", ["MANIFEST", _unlisted_stream_file()])
def test_respq_serve_refuses_a_newer_format_naming_the_file_and_both_versions(tmp_path: Path, name: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(CRASH, data)
    set_version(data / name, NEWER)
    before = tree(data)
    server = ServerProcess([sys.executable, "-m", "respq", "serve", "--port", "0", "--dir", str(data)])
    try:
        wait_until(lambda: not server.alive() or READY in server.output, timeout=30)
        assert READY not in server.output
        status = server.proc.wait(timeout=10)
    finally:
        server.stop()  # also reads the output to its end
    output = server.output.decode(errors="replace")
    assert status != 0, output
    assert refusal(data / name) in output
    assert tree(data) == before
