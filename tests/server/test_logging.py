"""The log never stops the server: a reader that went away (a closed pipe) costs its lines, nothing else."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def _ask(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_the_server_keeps_serving_after_its_log_pipe_closes(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "respq", "serve", "--port", "0", "--dir", str(tmp_path / "data")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        port = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, "the server exited before it was ready"
            if b"Ready to accept connections" in line:
                port = int(line.rsplit(b"port=", 1)[1])
                break
        assert port
        process.stdout.close()  # nobody reads the log any more: its next line meets a broken pipe
        assert _ask(port, b"CONFIG SET appendfsync everysec\r\n") == b"+OK\r\n"  # logs a line
        assert _ask(port, b"CONFIG SET appendfsync always\r\n") == b"+OK\r\n"
        assert _ask(port, b"RPUSH q v\r\n") == b":1\r\n"
        assert process.poll() is None
    finally:
        process.kill()
        process.wait(10)
