"""List queue flow: producer processes LPUSH, consumer processes RPOP 100 at a time and block only when it is empty.

A blocking pop per message (BRPOP) costs a round trip each; RPOP with a count (Redis 6.2+) takes up to 100 in one, and
answers nil on an empty list, so a consumer then waits in BLMPOP (Redis 7.0+) rather than spinning. A popped message
is consumed: nothing is acknowledged. The closed loop and measurements are bench/flow.py's.
"""

from __future__ import annotations

from bench.client import Client, encode
from bench.flow import READ_COUNT, Consumer, Flow
from bench.workloads import CheckFailed

QUEUE = b"q"
EMPTY_WAIT_SECONDS = b"0.1"


class ListConsumer(Consumer):
    POP = encode(b"RPOP", QUEUE, READ_COUNT)
    WAIT = encode(b"BLMPOP", EMPTY_WAIT_SECONDS, 1, QUEUE, b"RIGHT", b"COUNT", READ_COUNT)

    def take(self, client: Client) -> tuple[list[bytes], int]:
        (values,) = client.exchange(self.POP, 1)
        if values is None:
            (reply,) = client.exchange(self.WAIT, 1)
            values = reply[1] if reply else []  # type: ignore[index]  # [key, values], nil on timeout
        assert isinstance(values, list)
        return values, len(values)


def _check_emptied(client: Client, produced: int) -> None:
    length = client.call(b"LLEN", QUEUE)
    if length != 0:
        raise CheckFailed(f"LLEN {QUEUE.decode()} after consuming all {produced} messages: got {length}, expected 0")


LIST_FLOW = Flow(row="listflow", produce=(b"LPUSH", QUEUE), consumer=ListConsumer, check=_check_emptied)
