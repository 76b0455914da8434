"""A data directory names its format version in the header of every file it holds (MANIFEST, journal files,
segment files). A file of a newer version than this build's, wherever it is, is refused with a message naming it
and both versions, by Engine.open before anything in the directory changes, and by `respq check`. There is no
directory-level marker: a directory without files holds nothing to misread, and every build writes its version
into the first file it creates (see docs/storage.md, "Format versions")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from respq.storage import framing
from respq.storage.check import check_directory
from respq.storage.engine import Engine
from respq.storage.errors import FormatError
from respq.types import REGISTRY
from respq.types.lists.model import RIGHT
from tests.unit.test_format_fixture import FIXTURES

NEWER = framing.FORMAT_VERSION + 1
CRASH = FIXTURES / f"format-v{framing.FORMAT_VERSION}" / "crash"


def refusal(path: Path) -> str:
    return f"{path}: format version {NEWER} is newer than this build supports ({framing.FORMAT_VERSION})"


def set_version(path: Path, version: int) -> None:
    with open(path, "r+b") as file:
        file.seek(len(framing.SEGMENT_MAGIC))
        file.write(version.to_bytes(2, "little"))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and its bytes (LOCK aside: an open creates it)."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "LOCK"
    }


def _fixture_files() -> list[str]:
    return sorted(str(path.relative_to(CRASH)) for path in CRASH.rglob("*") if path.is_file())


@pytest.mark.parametrize("name", _fixture_files())
def test_a_newer_file_anywhere_is_refused_and_nothing_changes(tmp_path: Path, name: str) -> None:
    """Each file of the crash fixture in turn (manifest, both journal files, segment files the manifest lists and
    files created after it: a stream's, which recovery would read, and lists', which it would delete)."""
    data = tmp_path / "data"
    shutil.copytree(CRASH, data)
    set_version(data / name, NEWER)
    before = tree(data)
    with pytest.raises(FormatError) as raised:
        Engine.open(str(data), types=REGISTRY, log=lambda _level, _message: None)
    assert str(raised.value) == refusal(data / name)
    assert tree(data) == before
    assert refusal(data / name) in check_directory(str(data), REGISTRY)


def test_respq_check_names_the_newer_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(CRASH, data)
    journal = sorted((data / "journal").iterdir())[-1]
    set_version(journal, NEWER)
    result = subprocess.run(
        [sys.executable, "-m", "respq", "check", str(data)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [refusal(journal), f"1 problem(s) found in {data}"]


def test_a_directory_a_newer_build_wrote_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Written as a build of the next version would (every header says so), crashed after a checkpoint."""
    data = tmp_path / "data"
    monkeypatch.setattr(framing, "FORMAT_VERSION", NEWER)
    engine = Engine.open(str(data), types=REGISTRY, segment_size=4096, log=lambda _level, _message: None)
    engine.create(0, b"q", "list").push(RIGHT, [b"v" * 1000] * 10)
    engine.create(0, b"s", "stream").add(1 << 64, [b"f", b"v"])
    engine.checkpoint()
    engine.create(0, b"later", "list").push(RIGHT, [b"w"])
    engine.sync(engine.flush())
    engine.abandon()
    monkeypatch.undo()
    before = tree(data)
    with pytest.raises(FormatError, match=f"format version {NEWER} is newer than this build supports"):
        Engine.open(str(data), types=REGISTRY, log=lambda _level, _message: None)
    assert tree(data) == before
    assert refusal(data / "MANIFEST") in check_directory(str(data), REGISTRY)


def _journal_only(data: Path) -> Path:
    """A directory without a manifest, as a crash leaves one between the first journal file and the first
    checkpoint: a push and an LINSERT recovery replays from the journal's start (the LINSERT settles the list into
    a segment file, deleted and written again by recovery)."""
    engine = Engine.open(str(data), types=REGISTRY, log=lambda _level, _message: None)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"a", b"b"])
    log.insert(b"b", b"c", before=False)
    engine.sync(engine.flush())
    engine.abandon()
    os.unlink(data / "MANIFEST")
    assert list((data / "queues").rglob("*.seg"))
    (journal,) = (data / "journal").iterdir()
    return journal


def test_a_directory_holding_a_journal_alone_names_its_version_there(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _journal_only(data)
    engine = Engine.open(str(data), types=REGISTRY, log=lambda _level, _message: None)
    try:
        log = engine.get(0, b"q")
        assert log is not None and list(log) == [b"a", b"b", b"c"]
    finally:
        engine.abandon()

    newer = tmp_path / "newer"
    journal = _journal_only(newer)
    set_version(journal, NEWER)
    before = tree(newer)
    with pytest.raises(FormatError) as raised:
        Engine.open(str(newer), types=REGISTRY, log=lambda _level, _message: None)
    assert str(raised.value) == refusal(journal)
    assert tree(newer) == before
    assert check_directory(str(newer), REGISTRY) == [refusal(journal)]


def test_an_empty_directory_opens_as_a_new_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    Engine.open(str(data), types=REGISTRY, log=lambda _level, _message: None).close()
    assert check_directory(str(data), REGISTRY) == []
    header = (data / "MANIFEST").read_bytes()[: framing.FILE_PREFIX.size]
    assert framing.FILE_PREFIX.unpack(header) == (framing.MANIFEST_MAGIC, framing.FORMAT_VERSION)
