"""While the data directory loads, the server already listens and answers -LOADING (INFO says loading:1), as Redis
does, so clients such as ioredis wait instead of failing."""

from __future__ import annotations

import re
import socket
import sys
import time
from pathlib import Path

from conftest import ServerProcess
from respq.storage.engine import Engine
from respq.types import REGISTRY
from respq.types.lists.model import RIGHT

LISTENING = re.compile(rb"listening on .*? port=(\d+)")


def _journal_to_replay(data_dir: Path, queues: int, per_queue: int) -> None:
    """Many pushes after the last checkpoint, left by a crash: recovery must replay every one of them."""
    engine = Engine.open(str(data_dir), types=REGISTRY, log=lambda level, message: None)
    for q in range(queues):
        engine.create(0, b"q:%d" % q, "list").push(RIGHT, [b"m" * 64] * per_queue)
    engine.sync(engine.flush())
    engine.abandon()


def _ask(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_loading_replies_until_the_data_is_loaded(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _journal_to_replay(data_dir, queues=400, per_queue=500)
    argv = [sys.executable, "-m", "respq", "serve", "--port", "0", "--dir", str(data_dir)]
    server = ServerProcess(argv)
    try:
        deadline = time.monotonic() + 30
        while not (match := LISTENING.search(bytes(server.output))):
            assert time.monotonic() < deadline and server.alive(), server.output.decode(errors="replace")
            time.sleep(0.005)
        port = int(match.group(1))
        assert _ask(port, b"PING\r\n") == b"-LOADING Redis is loading the dataset in memory\r\n"
        info = _ask(port, b"INFO persistence\r\n")
        assert b"loading:1\r\n" in info
        server.wait_ready(120)
        assert _ask(port, b"PING\r\n") == b"+PONG\r\n"
        assert _ask(port, b"LLEN q:399\r\n") == b":500\r\n"
    finally:
        server.stop()


def test_a_connection_opened_while_loading_reaches_the_keys_once_loaded(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _journal_to_replay(data_dir, queues=400, per_queue=500)
    argv = [sys.executable, "-m", "respq", "serve", "--port", "0", "--dir", str(data_dir)]
    server = ServerProcess(argv)
    try:
        deadline = time.monotonic() + 30
        while not (match := LISTENING.search(bytes(server.output))):
            assert time.monotonic() < deadline and server.alive(), server.output.decode(errors="replace")
            time.sleep(0.005)
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=10) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(65536) == b"-LOADING Redis is loading the dataset in memory\r\n"
            server.wait_ready(120)
            sock.sendall(b"LLEN q:399\r\n")
            assert sock.recv(65536) == b":500\r\n"
            sock.sendall(b"WATCH q:1\r\nMULTI\r\nLPOP q:1\r\nEXEC\r\n")
            replies = b""
            while replies.count(b"\r\n") < 6:
                data = sock.recv(65536)
                assert data, replies
                replies += data
            assert replies == b"+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n$64\r\n" + b"m" * 64 + b"\r\n"
    finally:
        server.stop()


def test_a_key_watched_while_loading_aborts_exec_when_changed_after_loading(tmp_path: Path) -> None:
    """WATCH is allowed while loading (as in Redis): it must neither crash the server nor be forgotten."""
    data_dir = tmp_path / "data"
    _journal_to_replay(data_dir, queues=400, per_queue=500)
    argv = [sys.executable, "-m", "respq", "serve", "--port", "0", "--dir", str(data_dir)]
    server = ServerProcess(argv)
    try:
        deadline = time.monotonic() + 30
        while not (match := LISTENING.search(bytes(server.output))):
            assert time.monotonic() < deadline and server.alive(), server.output.decode(errors="replace")
            time.sleep(0.005)
        port = int(match.group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"WATCH q:1\r\n")
            assert sock.recv(65536) == b"+OK\r\n"
            assert _ask(port, b"PING\r\n") == b"-LOADING Redis is loading the dataset in memory\r\n"  # still loading
            server.wait_ready(120)
            assert _ask(port, b"LPOP q:1\r\n") == b"$64\r\n" + b"m" * 64 + b"\r\n"  # another client changes it
            sock.sendall(b"MULTI\r\nLPOP q:1\r\nEXEC\r\n")
            replies = b""
            while replies.count(b"\r\n") < 3:
                data = sock.recv(65536)
                assert data, replies
                replies += data
            assert replies == b"+OK\r\n+QUEUED\r\n*-1\r\n"
        assert _ask(port, b"LLEN q:1\r\n") == b":499\r\n"
    finally:
        server.stop()
