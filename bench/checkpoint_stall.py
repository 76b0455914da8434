"""What a checkpoint costs a server holding many keys: the loop's longest stall and the catalog bytes it writes.

``python -m bench.checkpoint_stall`` starts respq (pinned to core 0, like the other benchmarks), loads ``--keys``
string keys (``SET s:<i> <value>``, pipelined), waits for the checkpoints of the load to end, then changes
``--changed`` keys with values large enough that the journal reaches ``--checkpoint-mb`` and a checkpoint runs.
Meanwhile a second client sends PING one at a time and times each reply. It prints PING latency (p50, p99, max)
before the trigger and from the trigger to the end of the checkpoint (the new MANIFEST: a PING the loop holds is
sent before the stall), and the bytes the checkpoint wrote to the catalog (new packs and the MANIFEST). Not run by CI.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

from bench.client import Client, encode
from bench.servers import RespqServer

BATCH = 2000


class StallServer(RespqServer):
    def __init__(self, checkpoint_mb: int) -> None:
        super().__init__("everysec")
        self.checkpoint_mb = checkpoint_mb

    def argv(self) -> list[str]:
        return [*super().argv(), "--checkpoint-bytes", f"{self.checkpoint_mb}mb"]


def journal_files(data: Path) -> set[str]:
    return {path.name for path in (data / "journal").glob("*.wal")}


def catalog_files(data: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in (data / "catalog").glob("*.cat")}


def manifest_mtime(data: Path) -> float:
    try:
        return (data / "MANIFEST").stat().st_mtime
    except FileNotFoundError:
        return 0.0


def wait_quiet(data: Path, seconds: float) -> None:
    """Until the directory shows no new journal file nor a new MANIFEST for ``seconds``."""
    last = (frozenset(journal_files(data)), manifest_mtime(data))
    since = time.monotonic()
    while time.monotonic() - since < seconds:
        time.sleep(0.2)
        now = (frozenset(journal_files(data)), manifest_mtime(data))
        if now != last:
            last, since = now, time.monotonic()


def summary(latencies: list[float]) -> str:
    if not latencies:
        return "no samples"
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{len(ordered)} PINGs, p50 {statistics.median(ordered) * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, "
        f"max {ordered[-1] * 1e3:.2f} ms"
    )


def measure(port: int, data: Path, args: argparse.Namespace, label: str) -> None:
    """Changes ``args.changed`` keys until a checkpoint runs, with a client timing PINGs meanwhile."""
    samples: list[tuple[float, float]] = []  # (sent at, latency)
    stop = threading.Event()

    def ping() -> None:
        with Client(port) as client:
            payload = encode("PING")
            while not stop.is_set():
                sent = time.monotonic()
                client.exchange(payload, 1)
                samples.append((sent, time.monotonic() - sent))

    pinger = threading.Thread(target=ping, daemon=True)
    pinger.start()
    time.sleep(1.0)
    trigger = time.monotonic()
    journals, packs, manifest_before = journal_files(data), catalog_files(data), manifest_mtime(data)
    big = b"x" * (64 << 10)
    rotated = 0.0
    with Client(port) as writer:
        n = 0
        while not rotated:
            writer.call("SET", b"s:%d" % (n % args.changed * (args.keys // max(1, args.changed))), big)
            n += 1
            if journal_files(data) - journals:
                rotated = time.monotonic()
    while manifest_mtime(data) == manifest_before:
        time.sleep(0.002)
    done = time.monotonic()
    time.sleep(0.5)
    stop.set()
    pinger.join(10)
    new_packs = {name: size for name, size in catalog_files(data).items() if name not in packs}
    manifest_bytes = (data / "MANIFEST").stat().st_size
    before = [latency for sent, latency in samples if sent < trigger]
    # From the first write of the trigger on: a PING the loop held is sent before the stall and answered after it,
    # and the rotation is only seen once the writer's reply comes, after the stall too.
    during = [latency for sent, latency in samples if trigger <= sent <= done]
    print(f"{label}:")
    print(f"  PING before: {summary(before)}")
    print(
        f"  PING from the trigger's first write to the new MANIFEST ({(done - trigger) * 1e3:.0f} ms; rotation seen "
        f"at {(rotated - trigger) * 1e3:.0f} ms): {summary(during)}"
    )
    print(
        f"  catalog bytes written: {sum(new_packs.values())} in {len(new_packs)} pack(s), MANIFEST {manifest_bytes};"
        f" catalog on disk {sum(catalog_files(data).values())}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--value-size", type=int, default=16)
    parser.add_argument("--changed", type=int, default=5)
    parser.add_argument("--checkpoint-mb", type=int, default=16)
    args = parser.parse_args(argv)
    value = b"v" * args.value_size
    with StallServer(args.checkpoint_mb) as server:
        data = server.dir / "data"
        started = time.monotonic()
        with Client(server.port) as loader:
            for first in range(0, args.keys, BATCH):
                last = min(args.keys, first + BATCH)
                loader.exchange(b"".join(encode("SET", b"s:%d" % n, value) for n in range(first, last)), last - first)
        print(
            f"loaded {args.keys} keys of {args.value_size} B in {time.monotonic() - started:.1f} s "
            f"(checkpoint-bytes {args.checkpoint_mb} MB)",
            flush=True,
        )
        wait_quiet(data, 3.0)
        # The first writes the keys the load's checkpoints left (and the few); the second the few changed alone.
        labels = ("first checkpoint after the load", f"checkpoint with {args.changed} keys changed")
        for label in labels:
            measure(server.port, data, args, label)
            wait_quiet(data, 2.0)
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
