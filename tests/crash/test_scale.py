"""A crash with many queues and a large unsnapshotted backlog recovers completely; the restart time is reported."""

from __future__ import annotations

import re
import time
from pathlib import Path

from conftest import start_respq
from tests.crash.conftest import Campaign
from tests.crash.pipeline import Pipeline

BATCH = 2000  # commands per pipeline round trip


def test_crash_with_many_queues_recovers_completely(tmp_path: Path, campaign: Campaign) -> None:
    queues, messages = (10_000, 1_000_000) if campaign.long else (1_000, 100_000)
    rng = campaign.rng("scale")
    data_dir = tmp_path / "data"
    server = start_respq(data_dir, "--appendfsync", "always")
    expected: list[list[bytes]] = [[] for _ in range(queues)]
    try:
        pipe = Pipeline(server.port)
        sent = 0
        while sent < messages:
            commands = []
            while len(commands) < BATCH and sent < messages:
                queue = rng.randrange(queues)
                values = [b"%d:%d" % (queue, sent + i) for i in range(min(rng.choice((1, 1, 1, 10)), messages - sent))]
                expected[queue] += values
                sent += len(values)
                commands.append(("RPUSH", b"q%d" % queue, *values))
            replies, complete = pipe.run(commands)
            assert complete and not any(isinstance(reply, Exception) for reply in replies)
        # Every push is acknowledged; now a load still in flight when the kill lands (not checked: unacknowledged).
        pipe.sock.sendall(b"*3\r\n$5\r\nRPUSH\r\n$5\r\nextra\r\n$1\r\nx\r\n" * 500)
    finally:
        server.stop()
    started = time.monotonic()
    server = start_respq(data_dir, "--appendfsync", "always")
    restart = time.monotonic() - started
    try:
        loaded = re.search(rb"DB loaded from disk: ([0-9.]+) seconds", bytes(server.output))
        pipe = Pipeline(server.port)
        for first in range(0, queues, BATCH):
            keys = range(first, min(first + BATCH, queues))
            replies, complete = pipe.run([("LRANGE", b"q%d" % queue, 0, -1) for queue in keys])
            assert complete
            for queue, reply in zip(keys, replies, strict=True):
                assert reply == expected[queue], f"queue {queue} differs after recovery (seed {campaign.seed})"
    finally:
        server.stop()
    print(
        f"scale: {queues} queues, {messages} messages, killed with 500 pushes in flight; restart to ready "
        f"{restart:.2f}s (storage load {float(loaded.group(1)) if loaded else float('nan'):.2f}s)"
    )
