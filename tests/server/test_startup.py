"""Start-up failures end with Redis-style fatal lines and exit status 1, never a Python traceback; a server refused
its data directory never binds its port."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import start_respq
from respq import config
from respq.storage import framing

RUN_TIMEOUT = 60.0  # a server that failed to refuse would run until this kills it


def _serve(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "respq", "serve", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def _fails_cleanly(result: subprocess.CompletedProcess[str], *messages: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    for message in messages:
        assert message in output, output
    return output


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on: a server that binds it fails with 'Address already in use'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_second_server_on_a_locked_directory_is_refused_before_it_binds(tmp_path: Path, taken_port: int) -> None:
    data = tmp_path / "data"
    first = start_respq(data)
    try:
        result = _serve(tmp_path, "--port", str(taken_port), "--dir", str(data))
        output = _fails_cleanly(result, f"Can't lock the data directory: {data} is in use by another process")
        # Its port was taken: a bind before the lock would have failed on it. Nothing was bound at all.
        assert "Address already in use" not in output and "listening on" not in output, output
        with socket.create_connection(("127.0.0.1", first.port), timeout=10) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(64) == b"+PONG\r\n"
    finally:
        first.stop()


def test_a_data_directory_whose_lock_file_cannot_be_opened(tmp_path: Path, taken_port: int) -> None:
    # What an unwritable directory does for a user without root (root writes anyway): the lock file cannot be made.
    data = tmp_path / "data"
    (data / "LOCK").mkdir(parents=True)
    output = _fails_cleanly(
        _serve(tmp_path, "--port", str(taken_port), "--dir", str(data)),
        f"Can't open or create the data directory {data}: Is a directory",
    )
    assert "Address already in use" not in output, output


def test_missing_parent_of_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "missing" / "data"
    _fails_cleanly(
        _serve(tmp_path, "--port", "0", "--dir", str(data)),
        f"Can't open or create the data directory {data}: No such file or directory",
    )
    assert not (tmp_path / "missing").exists()


def test_port_already_in_use(tmp_path: Path, taken_port: int) -> None:
    _fails_cleanly(
        _serve(tmp_path, "--port", str(taken_port), "--dir", str(tmp_path / "data")),
        f"# Warning: Could not create server TCP listening socket 127.0.0.1:{taken_port}: bind: Address already in use",
        f"# Failed listening on port {taken_port} (TCP), aborting.",
    )


def test_bind_address_that_does_not_resolve(tmp_path: Path) -> None:
    _fails_cleanly(
        _serve(tmp_path, "--port", "0", "--bind", "999.1.1.1", "--dir", str(tmp_path / "data")),
        "Could not create server TCP listening socket 999.1.1.1:0: ",
        "# Failed listening on port 0 (TCP), aborting.",
    )


def test_data_directory_of_a_newer_format(tmp_path: Path) -> None:
    data = tmp_path / "data"
    start_respq(data).terminate()
    manifest = data / "MANIFEST"
    header = bytearray(manifest.read_bytes())
    header[6:8] = (framing.FORMAT_VERSION + 1).to_bytes(2, "little")
    manifest.write_bytes(bytes(header))
    _fails_cleanly(
        _serve(tmp_path, "--port", "0", "--dir", str(data)),
        "# Fatal error loading the DB: ",
        f"format version {framing.FORMAT_VERSION + 1} is newer than this build supports",
    )


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_serve_help_prints_usage_and_directives(tmp_path: Path, flag: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "respq", "serve", flag],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FATAL" not in result.stdout + result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines[0].startswith("Usage: respq serve [/path/to/respq.conf] [--directive value ...]")
    honoured = [d for d in config.DIRECTIVES if d.handling is config.Handling.SUPPORTED]
    for directive in honoured:
        assert any(line.split(" ")[0] == directive.name for line in lines), directive.name
    assert "port 6379" in lines
    assert "appendfsync always" in lines
    assert "segment-size 4mb" in lines
    assert not (tmp_path / "respq-data").exists()


def test_nothing_left_to_listen_on(tmp_path: Path) -> None:
    # 192.0.2.1 is reserved for documentation (RFC 5737): no host has it, and "-" makes it optional.
    _fails_cleanly(
        _serve(tmp_path, "--port", "0", "--bind", "-192.0.2.1", "--dir", str(tmp_path / "data")),
        "# Warning: Could not create server TCP listening socket 192.0.2.1:0: bind: Cannot assign requested address",
        "# Configured to not listen anywhere, exiting.",
    )
