"""A fixed-bucket histogram for durations and sizes the metrics endpoint exports (Prometheus's cumulative buckets
are derived when rendering, so recording is one bisect and two additions)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence


class Histogram:
    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)  # upper bounds, ascending; a last bucket past them counts the rest
        self.counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound as Prometheus writes it, observations at most that) for each bucket, ``+Inf`` last."""
        total = 0
        out = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
        return out


# Journal fdatasync durations in seconds: this disk syncs in ~0.2 ms; a slow or failing disk takes far longer.
SYNC_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5)
# Journal bytes made durable by one sync (group commit: one sync covers every client's records of a loop pass).
SYNC_BATCH_BYTES = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
# Checkpoint durations in seconds.
CHECKPOINT_SECONDS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)
