"""Delayed-job flow on a sorted set: producer processes ZADD each job (its member) at score 0, consumer processes
take one at a time with BZPOPMIN, blocking while the set is empty: each job is a wake-up or a pop served at once.
The closed loop and measurements are bench/flow.py's."""

from __future__ import annotations

from bench.client import Client, encode
from bench.flow import Consumer, Flow
from bench.workloads import CheckFailed

ZSET = b"z"
EMPTY_WAIT_SECONDS = b"0.1"


class ZSetConsumer(Consumer):
    POP = encode(b"BZPOPMIN", ZSET, EMPTY_WAIT_SECONDS)

    def take(self, client: Client) -> tuple[list[bytes], int]:
        (reply,) = client.exchange(self.POP, 1)
        values = [reply[1]] if reply else []  # type: ignore[index]  # [key, member, score], nil on timeout
        return values, len(values)


def _check_emptied(client: Client, produced: int) -> None:
    members = client.call(b"ZCARD", ZSET)
    if members != 0:
        raise CheckFailed(f"ZCARD {ZSET.decode()} after consuming all {produced} jobs: got {members}, expected 0")


ZSET_FLOW = Flow(row="bzpopminflow", produce=(b"ZADD", ZSET, b"0"), consumer=ZSetConsumer, check=_check_emptied)
