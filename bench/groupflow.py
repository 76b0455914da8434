"""Consumer-group flow: producer processes XADD, consumer processes XREADGROUP COUNT 100 and XACK what they read.

A message counts as consumed once acknowledged; the closed loop and measurements are bench/flow.py's.
"""

from __future__ import annotations

from bench.client import Client, encode
from bench.flow import READ_COUNT, Consumer, Flow
from bench.workloads import CheckFailed

STREAM = b"s"
GROUP = b"g"


class GroupConsumer(Consumer):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.read = encode(b"XREADGROUP", b"GROUP", GROUP, b"c%d" % index, b"COUNT", READ_COUNT, b"BLOCK", 100,
                           b"STREAMS", STREAM, b">")
        self.unacknowledged: list[bytes] = []

    @property
    def holding(self) -> bool:
        return bool(self.unacknowledged)

    def take(self, client: Client) -> tuple[list[bytes], int]:
        acknowledging = self.unacknowledged
        if acknowledging:
            # XACK of the previous batch rides in the same write as the next read.
            ack_reply, reply = client.exchange(encode(b"XACK", STREAM, GROUP, *acknowledging) + self.read, 2)
            if ack_reply != len(acknowledging):
                raise CheckFailed(f"XACK acknowledged {ack_reply} of {len(acknowledging)}")
        else:
            (reply,) = client.exchange(self.read, 1)
        entries = reply[0][1] if reply else []  # type: ignore[index]
        self.unacknowledged = [entry_id for entry_id, _ in entries]
        return [fields[1] for _, fields in entries], len(acknowledging)


def _create_group(client: Client) -> None:
    client.call(b"XGROUP", b"CREATE", STREAM, GROUP, b"$", b"MKSTREAM")


def _check_stream(client: Client, produced: int) -> None:
    length = client.call(b"XLEN", STREAM)
    if length != produced:
        raise CheckFailed(f"XLEN {STREAM.decode()}: got {length}, expected {produced}")
    summary = client.call(b"XPENDING", STREAM, GROUP)
    if not isinstance(summary, list) or summary[0] != 0:
        raise CheckFailed(f"PEL not empty after every entry was acknowledged: {summary!r}")


GROUP_FLOW = Flow(row="groupflow", produce=(b"XADD", STREAM, b"*", b"f"), consumer=GroupConsumer,
                  setup=_create_group, check=_check_stream)
