"""Runs docs/http.md's curl examples, in order, against a fresh server and compares their output with the page's:
stream IDs differ from run to run (each one on the page stands for the one the server chose at that place), and an
output ending in ``...`` is compared up to there."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import require_tool
from tests.server.test_http import start_with_http

DOC = Path(__file__).resolve().parents[2] / "docs" / "http.md"
DOC_ADDRESS = "127.0.0.1:9121"
STREAM_ID = re.compile(rb"\b\d{10,}-\d+\b")


def examples(text: str) -> list[tuple[str, str]]:
    """(command, expected output) for each ``$ `` line of the page's console blocks."""
    found: list[tuple[str, str]] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            found.append((command, output.rstrip("\n")))
    return found


def test_the_curl_examples_of_docs_http_md(tmp_path: Path) -> None:
    require_tool("curl")
    cases = examples(DOC.read_text())
    assert len(cases) >= 10
    server, port = start_with_http(tmp_path)
    ids: dict[bytes, bytes] = {}  # an ID on the page -> the one the server chose
    try:
        for command, expected_text in cases:
            command_bytes = STREAM_ID.sub(lambda m: ids.get(m.group(), m.group()), command.encode())
            command_bytes = command_bytes.replace(DOC_ADDRESS.encode(), b"127.0.0.1:%d" % port)
            done = subprocess.run(["bash", "-c", command_bytes], capture_output=True, timeout=30)
            assert done.returncode == 0, (command, done.stderr)
            actual = done.stdout.rstrip(b"\n")
            expected = expected_text.encode()
            for shown, chosen in zip(STREAM_ID.findall(expected), STREAM_ID.findall(actual), strict=False):
                ids.setdefault(shown, chosen)
            expected = STREAM_ID.sub(lambda m: ids.get(m.group(), m.group()), expected)
            if expected.endswith(b"..."):
                assert actual.startswith(expected[:-3]), (command, actual)
            else:
                assert actual == expected, (command, actual)
    finally:
        server.stop()
