"""Data directories written by earlier builds (tests/fixtures/format-v*/) open unchanged with this one: every key
holds exactly what it held, `respq check` finds nothing wrong, and writing on, then restarting, keeps it all.
See docs/storage.md, "Format versions"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from respq.storage import journal, manifest
from respq.storage.check import check_directory
from respq.storage.fileio import DEFAULT_IO
from respq.storage.segments import SHARED_QID
from respq.types import REGISTRY
from respq.types.hashes.model import HASH
from respq.types.lists.model import LIST
from respq.types.streams import model as streamlog
from respq.types.streams.model import STREAM
from respq.types.strings.model import STRING
from tests.fixtures.make_datadir import CLOCK_MS, DATABASES, Call, InProcess, read_state

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
VERSIONS = sorted(path.name for path in FIXTURES.glob("format-v*"))
DIRECTORIES = [(version, kind) for version in VERSIONS for kind in ("crash", "clean")]
MARK = "written-after-open"  # what write_more appends


def fixture_copy(tmp_path: Path, version: str, kind: str) -> tuple[Path, dict[str, Any]]:
    """A copy of one fixture directory (opening it writes: the fixture itself must stay as it is) and what it
    holds."""
    copy = tmp_path / f"{version}-{kind}"
    shutil.copytree(FIXTURES / version / kind, copy)
    return copy, json.loads((FIXTURES / version / "expected.json").read_text())


@pytest.fixture(params=DIRECTORIES, ids=[f"{version}-{kind}" for version, kind in DIRECTORIES])
def fixture_dir(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return fixture_copy(tmp_path, *request.param)


def test_there_is_a_fixture_of_the_current_format_version() -> None:
    from respq.storage.framing import FORMAT_VERSION

    assert f"format-v{FORMAT_VERSION}" in VERSIONS, "a new format version needs its fixture (docs/storage.md)"


def write_more(call: Call) -> dict[tuple[str, str], bytes]:
    """After opening: a value appended to every list, an entry to every stream, MARK to every string, a field to
    every hash, a member to every set and sorted set (scored 7) and a new list in database 0.
    Returns the IDs the entries got, by (database, key)."""
    ids = {}
    for db in range(DATABASES):
        call(["SELECT", db])
        for key in call(["KEYS", "*"]):
            kind = call(["TYPE", key])
            if kind == b"list":
                call(["RPUSH", key, MARK])
            elif kind == b"string":
                call(["APPEND", key, MARK])
            elif kind == b"hash":
                call(["HSET", key, "after", MARK])
            elif kind == b"set":
                call(["SADD", key, MARK])
            elif kind == b"zset":
                call(["ZADD", key, 7, MARK])
            elif kind == b"stream":
                ids[(str(db), key.decode("latin-1"))] = call(["XADD", key, "*", "after", MARK])
    call(["SELECT", 0])
    call(["RPUSH", "after:new", MARK])
    return ids


def assert_written_more(state: dict[str, Any], expected: dict[str, Any], ids: dict[tuple[str, str], bytes]) -> None:
    """``state`` is ``expected`` with write_more's writes: lists end in the new value, streams in the new entry
    (which moves what an XADD moves, and nothing else)."""
    assert state["0"].pop("after:new") == {"type": "list", "pexpiretime": -1, "values": [MARK]}
    assert state.keys() == expected.keys()
    assert state.get("functions") == expected.get("functions")  # the libraries (format 3 on), unchanged
    for db, keys in expected.items():
        if db == "functions":
            continue
        assert state[db].keys() == keys.keys(), db
        for key, entry in keys.items():
            got = json.loads(json.dumps(state[db][key]))
            if entry["type"] == "list":
                assert got["values"] == entry["values"] + [MARK], (db, key)
                got["values"] = entry["values"]
            elif entry["type"] == "string":
                if isinstance(entry["value"], str):  # longer values are kept as size and digest: compared below
                    assert got["value"] == entry["value"] + MARK, (db, key)
                got["value"] = entry["value"]
            elif entry["type"] == "hash":
                assert got["fields"] == entry["fields"] + ["after", MARK], (db, key)
                got["fields"] = entry["fields"]
            elif entry["type"] == "set":
                assert got["members"] == sorted(entry["members"] + [MARK]), (db, key)
                got["members"] = entry["members"]
            elif entry["type"] == "zset":
                pairs = list(zip(got["members"][::2], got["members"][1::2], strict=True))
                assert [MARK, "7"] in [list(pair) for pair in pairs], (db, key)
                got["members"] = [part for pair in pairs if list(pair) != [MARK, "7"] for part in pair]
            else:
                stream, new_id = got["stream"], ids[(db, key)].decode()
                assert stream["entries"] == entry["stream"]["entries"] + [[new_id, ["after", MARK]]], (db, key)
                assert stream["length"] == entry["stream"]["length"] + 1
                assert stream["entries-added"] == entry["stream"]["entries-added"] + 1
                assert stream["last-generated-id"] == new_id
                for name in ("entries", "length", "entries-added", "last-generated-id", "radix-tree-keys"):
                    stream[name] = entry["stream"][name]
                stream["radix-tree-nodes"] = entry["stream"]["radix-tree-nodes"]
                for group, old in zip(stream["groups"], entry["stream"]["groups"], strict=True):
                    group["lag"] = old["lag"]  # one more entry not yet read
            assert got == entry, (db, key)


def test_respq_check_finds_the_fixture_clean(fixture_dir: tuple[Path, dict[str, Any]]) -> None:
    path, _ = fixture_dir
    assert check_directory(str(path), REGISTRY) == []
    result = subprocess.run(
        [sys.executable, "-m", "respq", "check", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{path}: no problems found"


@pytest.mark.parametrize("restart", ["clean", "crash"])
def test_the_fixture_opens_with_its_contents_and_keeps_what_is_written_after(
    fixture_dir: tuple[Path, dict[str, Any]], restart: str
) -> None:
    path, expected = fixture_dir
    server = InProcess(str(path), segment_size=None)  # the server's configuration and loading
    try:
        assert read_state(server.call) == expected
        ids = write_more(server.call)
        server.end_pass()
        after = read_state(server.call)
    finally:
        if restart == "clean":
            server.engine.close()
        else:
            server.engine.abandon()
    assert_written_more(json.loads(json.dumps(after)), expected, ids)
    server = InProcess(str(path), segment_size=None)
    try:
        assert read_state(server.call) == after
    finally:
        server.engine.close()
    assert check_directory(str(path), REGISTRY) == []


def _journal_ops(path: Path) -> Iterator[int]:
    names = sorted(os.listdir(path / "journal"))
    ops: list[int] = []

    def apply(op: int, payload: bytes, _lsn: int) -> None:
        ops.append(op)
        if op == journal.OP_BATCH:
            ops.extend(inner for inner, _ in journal.decode_batch(payload))

    for index, name in enumerate(names):
        seq = journal.parse_journal_name(name)
        assert seq is not None
        journal.replay_file(
            DEFAULT_IO,
            str(path / "journal" / name),
            seq=seq,
            start_lsn=None,
            last=index == len(names) - 1,
            apply=apply,
            cut_torn_tail=False,
        )
    return iter(ops)


def test_the_version_1_crash_fixture_holds_what_it_was_written_for() -> None:
    """What the fixture's README promises, so that a fixture written again by a changed generator would say so."""
    path = FIXTURES / "format-v1" / "crash"
    state = manifest.read(DEFAULT_IO, str(path))
    assert state is not None
    ops = set(_journal_ops(path))
    every_op = set(journal.ENGINE_OPS - {journal.OP_METADATA, journal.OP_CLOCK}) | set(LIST.ops) | set(STREAM.ops)
    # Version 1's records: OP_METADATA came with version 3, OP_CLOCK with 4. OP_XADD is an earlier build's (entries
    # are written once now); a FLUSHALL would leave nothing to check; OP_TYPE_SETTINGS came with version 2.
    assert every_op - ops == {streamlog.OP_XADD, journal.OP_FLUSHALL, journal.OP_TYPE_SETTINGS}
    assert len(os.listdir(path / "journal")) == 2
    assert sum(1 for qid, _ in state.files.values() if qid == SHARED_QID) >= 2
    listed = {(f"{qid:016x}", f"{fid:016x}.seg") for fid, (qid, _) in state.files.items()}
    on_disk = {(qdir, name) for qdir in os.listdir(path / "queues") for name in os.listdir(path / "queues" / qdir)}
    assert on_disk - listed, "a stream file created after the last checkpoint"
    assert max(len(files) for files in _files_by_queue(state).values()) >= 3  # a list spanning several files


def test_the_version_2_crash_fixture_holds_every_string_and_hash_record() -> None:
    """Version 2 added strings and hashes: the crash fixture's journal holds each of their records (and every other
    record version 1's holds), and its manifest holds both."""
    path = FIXTURES / "format-v2" / "crash"
    state = manifest.read(DEFAULT_IO, str(path))
    assert state is not None
    ops = set(_journal_ops(path))
    # OP_METADATA came with version 3, OP_CLOCK with 4.
    every_op = set(journal.ENGINE_OPS - {journal.OP_METADATA, journal.OP_CLOCK}) | set(LIST.ops) | set(STREAM.ops)
    every_op |= set(STRING.ops) | set(HASH.ops)
    # OP_TYPE_SETTINGS is written only when a type's settings differ from its defaults (test_storage_stream.py).
    assert every_op - ops == {streamlog.OP_XADD, journal.OP_FLUSHALL, journal.OP_TYPE_SETTINGS}
    assert {STRING.code, HASH.code} <= {type_code for _, type_code, *_ in state.keys}


def test_the_version_4_crash_fixture_holds_clock_records_and_type_settings() -> None:
    """Version 4 added clock records; its fixture also holds a type's settings record (stream-node-max-entries) and
    every record of every type (OP_XADD and FLUSHALL aside, as in the earlier ones)."""
    path = FIXTURES / "format-v4" / "crash"
    ops = set(_journal_ops(path))
    every_op = set(journal.ENGINE_OPS) | {op for vtype in REGISTRY for op in vtype.ops}
    assert every_op - ops == {streamlog.OP_XADD, journal.OP_FLUSHALL}
    clean = manifest.read(DEFAULT_IO, str(FIXTURES / "format-v4" / "clean"))
    assert clean is not None and STREAM.code in clean.settings


def _list_push_times(server: InProcess) -> dict[tuple[int, bytes], int]:
    times = {}
    for db in range(DATABASES):
        for key in list(server.engine.keys(db)):
            value = server.engine.get(db, key)
            if value is not None and value.type == "list":
                times[(db, key)] = value.oldest_push_ms()  # type: ignore[attr-defined]
    return times


@pytest.mark.parametrize("kind", ["crash", "clean"])
def test_lists_of_format_4_know_their_push_times(tmp_path: Path, kind: str) -> None:
    """Lists written by format 4 know when their values were pushed (the generator's fixed clock: 2026-01-01 and
    its ticks); lists of earlier formats open with their push times unknown (0), and a list pushed to now knows."""
    for version in VERSIONS:
        path, _ = fixture_copy(tmp_path, version, kind)
        server = InProcess(str(path), segment_size=None)
        try:
            times = _list_push_times(server)
            assert times
            if version >= "format-v4":
                assert all(CLOCK_MS <= ms <= CLOCK_MS + 10_000 for ms in times.values()), times
            else:
                assert set(times.values()) == {0}, times
            before = journal.wall_ms()
            server.call(["RPUSH", "pushed:now", "x"])
            server.end_pass()
            # to within a clock record's interval: the batch may follow one written a moment before
            assert before - journal.CLOCK_MARK_MS <= _list_push_times(server)[(0, b"pushed:now")] <= journal.wall_ms()
        finally:
            server.engine.close()


def _files_by_queue(state: manifest.ManifestData) -> dict[int, list[int]]:
    by_queue: dict[int, list[int]] = {}
    for fid, (qid, _) in state.files.items():
        if qid != SHARED_QID:
            by_queue.setdefault(qid, []).append(fid)
    return by_queue
