"""Debian's redis-cli and redis-benchmark (7.0) against the server: one-shot, RESP3, piped stdin, the REPL."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time

import pytest

from conftest import require_tool

COMMAND_TIMEOUT = 30.0


def run_cli(port: int, *args: str, stdin: bytes = b"") -> str:
    completed = subprocess.run(
        [require_tool("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *args],
        input=stdin, capture_output=True, timeout=COMMAND_TIMEOUT, check=False,
    )
    assert completed.returncode == 0, completed
    assert completed.stderr == b"", completed
    return completed.stdout.decode()


def test_one_shot_commands(server: int) -> None:
    assert run_cli(server, "PING") == "PONG\n"
    assert run_cli(server, "ECHO", "hello queue") == "hello queue\n"
    assert run_cli(server, "DBSIZE") == "0\n"
    assert run_cli(server, "CLIENT", "GETNAME") == "\n"


def test_one_shot_error_reply(server: int) -> None:
    assert run_cli(server, "NOSUCHCOMMAND", "x").strip() == (
        "ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x'"
    )


def test_resp3_hello(server: int) -> None:
    # -3 makes redis-cli itself open with HELLO 3 before sending ours.
    lines = run_cli(server, "-3", "HELLO", "3").splitlines()
    fields = dict(line.partition(" ")[::2] for line in lines)
    assert fields["proto"] == "3"
    assert fields["version"].startswith("7.0.")
    assert fields["id"].isdigit()
    assert fields["mode"] == "standalone"
    assert fields["role"] == "master"
    assert "modules" in fields


def test_resp3_one_shot(server: int) -> None:
    assert run_cli(server, "-3", "PING") == "PONG\n"
    assert run_cli(server, "-3", "ECHO", "three") == "three\n"


def test_commands_piped_on_stdin(server: int) -> None:
    output = run_cli(server, stdin=b"PING\nECHO hi\nSELECT 0\nECHO \"two words\"\nCLIENT SETNAME cli\nCLIENT GETNAME\n")
    assert output.splitlines() == ["PONG", "hi", "OK", "two words", "OK", "cli"]


class Terminal:
    """redis-cli on a pseudo-terminal: the interactive REPL (prompt, COMMAND DOCS for hints, typed replies)."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        # TERM=dumb: linenoise would otherwise query the cursor position and wait for a terminal to answer.
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, env={**os.environ, "TERM": "dumb"},
        )
        os.close(slave)
        self.buffer = b""

    def read_until(self, expected: bytes, timeout: float = COMMAND_TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while expected not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{expected!r} not seen; the terminal shows {self.buffer!r}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the other side closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"redis-cli exited before {expected!r}; it printed {self.buffer!r}")
                self.buffer += chunk
        before, _, self.buffer = self.buffer.partition(expected)
        return before

    def type_line(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def close(self) -> int | None:
        try:
            return self.process.wait(COMMAND_TIMEOUT)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            os.close(self.master)


def test_interactive_repl(server: int) -> None:
    prompt = f"127.0.0.1:{server}> ".encode()
    terminal = Terminal([require_tool("redis-cli"), "-h", "127.0.0.1", "-p", str(server)])
    try:
        terminal.read_until(prompt)
        exchanges = [
            ("PING", "PONG"),
            ("ECHO hi", '"hi"'),
            ("CLIENT SETNAME repl", "OK"),
            ("CLIENT GETNAME", '"repl"'),
            ("DBSIZE", "(integer) 0"),
            ("NOSUCHCOMMAND x", "(error) ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' "),
        ]
        for typed, shown in exchanges:
            terminal.type_line(typed)
            echoed_and_reply = terminal.read_until(prompt).decode().replace("\r\n", "\n")
            assert echoed_and_reply == f"{typed}\n{shown}\n"
        terminal.type_line("exit")
    finally:
        exit_code = terminal.close()
    assert exit_code == 0


BENCHMARK_RESULT = re.compile(r"^(PING_INLINE|PING_MBULK): ([\d.]+) requests per second")


@pytest.mark.parametrize("extra", [[], ["-P", "16", "-c", "8"]], ids=["plain", "pipelined"])
def test_benchmark_ping(server: int, extra: list[str]) -> None:
    """Inline and multibulk PINGs (after CONFIG GET save/appendonly); completion and errors are checked, not speed."""
    completed = subprocess.run(
        [require_tool("redis-benchmark"), "-h", "127.0.0.1", "-p", str(server), "-t", "ping", "-n", "10000", "-q",
         *extra],
        capture_output=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )
    output = completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")
    assert completed.returncode == 0, output
    # -q redraws a progress line with carriage returns; the final result of each test ends with a newline.
    lines = [line.strip() for line in re.split(r"[\r\n]", output)]
    results = {match[1]: float(match[2]) for line in lines if (match := BENCHMARK_RESULT.match(line))}
    assert set(results) == {"PING_INLINE", "PING_MBULK"}, output
    assert all(rate > 0 for rate in results.values()), output
    assert not re.search(r"error|warning|could not", output, re.IGNORECASE), output
