"""The stream check must catch each kind of violation it claims to, from fabricated histories."""

from __future__ import annotations

import copy

import pytest

from tests.crash.stream_model import (
    Ack,
    Add,
    Claim,
    Delete,
    GroupState,
    Read,
    StreamHistory,
    Streams,
    StreamState,
    check_streams,
    entry_fields,
)

S, G = b"s", b"g"


def entry(ms: int, seq: int) -> tuple[tuple[int, int], list[bytes]]:
    """The campaign entry of producer 0 with ``seq`` at ID ms-0."""
    return (ms, 0), list(entry_fields(0, seq))


def baseline() -> Streams:
    """1-0 was delivered to c0 before the previous restart and is still pending."""
    return {S: StreamState([entry(1, 1)], {G: GroupState((1, 0), {(1, 0): b"c0"}, 1)})}


def history() -> StreamHistory:
    """Two answered XADDs and one unanswered; c1 got 2-0 and 3-0, acked and deleted 2-0, and claimed 1-0."""
    h = StreamHistory()
    h.adds += [Add(S, 0, 2, (2, 0)), Add(S, 0, 3, (3, 0)), Add(S, 0, 4, None)]
    h.reads += [Read(S, G, b"c1", [(2, 0), (3, 0)]), Read(S, G, b"c0", None)]
    h.acks.append(Ack(S, G, [(2, 0)], True))
    h.deletes.append(Delete(S, [(2, 0)], True))
    h.claims.append(Claim(S, G, b"c1", [(1, 0)], []))
    return h


def recovered() -> Streams:
    return {S: StreamState([entry(1, 1), entry(3, 3)], {G: GroupState((3, 0), {(1, 0): b"c1", (3, 0): b"c1"}, 2)})}


def test_a_correct_recovery_passes() -> None:
    assert check_streams(baseline(), history(), recovered()) == []


def test_an_unanswered_xadd_and_xreadgroup_may_both_have_happened() -> None:
    observed = recovered()
    observed[S].entries.append(entry(4, 4))
    assert check_streams(baseline(), history(), observed) == []  # added, never delivered
    observed[S].groups[G] = GroupState((4, 0), {(1, 0): b"c1", (3, 0): b"c1", (4, 0): b"c0"}, 3)
    assert check_streams(baseline(), history(), observed) == []  # delivered to c0 by its unanswered read


def test_an_unanswered_xack_may_or_may_not_have_happened() -> None:
    h = history()
    h.acks.append(Ack(S, G, [(3, 0)], False))
    assert check_streams(baseline(), h, recovered()) == []
    observed = recovered()
    del observed[S].groups[G].pending[(3, 0)]
    observed[S].groups[G].pending_count = 1
    assert check_streams(baseline(), h, observed) == []


def _with(change: str) -> Streams:
    observed = copy.deepcopy(recovered())
    stream, group = observed[S], observed[S].groups[G]
    if change == "acknowledged XADD missing":
        stream.entries.remove(entry(3, 3))
    elif change == "acknowledged XADD at another ID":
        stream.entries[1] = ((3, 1), stream.entries[1][1])
    elif change == "acknowledged XDEL undone":
        stream.entries.insert(1, entry(2, 2))
    elif change == "acknowledged XACK undone: the ID is still pending":
        group.pending[(2, 0)], group.pending_count = b"c1", 3
    elif change == "delivered ID beyond last-delivered-id":
        group.last_delivered = (2, 0)
    elif change == "last-delivered-id went back":
        group.last_delivered, group.pending = (0, 9), {}
        group.pending_count = 0
    elif change == "delivered and unacknowledged, no longer pending":
        del group.pending[(3, 0)]
        group.pending_count = 1
    elif change == "pending at the baseline and claimed, no longer pending":
        del group.pending[(1, 0)]
        group.pending_count = 1
    elif change == "owned by a consumer that never received it":
        group.pending[(3, 0)] = b"c0"
    elif change == "acknowledged before the previous restart, pending again":
        group.pending[(0, 5)], group.pending_count = b"c0", 3
    elif change == "marked delivered without being pending":
        stream.entries.append(entry(4, 4))
        group.last_delivered = (4, 0)
    elif change == "order broken":
        stream.entries.insert(0, ((0, 5), list(entry_fields(0, 4))))
    elif change == "entry present twice":
        stream.entries.append(((4, 0), list(entry_fields(0, 3))))
    elif change == "garbage entry":
        stream.entries.append(((4, 0), [b"x", b"y"]))
    elif change == "entry never added":
        stream.entries.append(((4, 0), list(entry_fields(7, 1))))
    elif change == "XINFO pending count disagrees with XPENDING":
        group.pending_count = 5
    elif change == "group gone":
        del stream.groups[G]
    elif change == "stream gone":
        del observed[S]
    else:
        raise AssertionError(change)
    return observed


@pytest.mark.parametrize(
    "change",
    [
        "acknowledged XADD missing",
        "acknowledged XADD at another ID",
        "acknowledged XDEL undone",
        "acknowledged XACK undone: the ID is still pending",
        "delivered ID beyond last-delivered-id",
        "last-delivered-id went back",
        "delivered and unacknowledged, no longer pending",
        "pending at the baseline and claimed, no longer pending",
        "owned by a consumer that never received it",
        "acknowledged before the previous restart, pending again",
        "marked delivered without being pending",
        "order broken",
        "entry present twice",
        "garbage entry",
        "entry never added",
        "XINFO pending count disagrees with XPENDING",
        "group gone",
        "stream gone",
    ],
)
def test_each_violation_is_caught(change: str) -> None:
    assert check_streams(baseline(), history(), _with(change)), change


def test_answered_replies_must_give_increasing_ids_in_send_order() -> None:
    h = history()
    h.adds[1] = Add(S, 0, 3, (1, 5))  # seq 3 answered with an ID below seq 2's
    observed = recovered()
    observed[S].entries[1] = ((1, 5), list(entry_fields(0, 3)))
    observed[S].entries.sort()
    observed[S].groups[G].pending = {(1, 0): b"c1", (1, 5): b"c1"}
    assert any("answered with an ID" in p for p in check_streams(baseline(), h, observed))


def test_an_id_delivered_twice_is_caught() -> None:
    h = history()
    h.reads.append(Read(S, G, b"c0", [(3, 0)]))
    assert check_streams(baseline(), h, recovered())
