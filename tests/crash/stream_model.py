"""Consumer-group streams: what clients were told, and the check that a recovered stream honours it.

Entries are ``XADD <stream> * p <producer> n <seq>`` with ``seq`` increasing per producer for the life of a data
directory, so an entry names the command that added it. IDs are compared as (milliseconds, sequence) pairs.
"Answered" means the reply reached the client; an unanswered command may or may not have taken effect
(at-most-once, as with pops), an answered one must have. ``check_streams(baseline, history, observed)`` compares the
read-back after a restart (XRANGE s - +, XINFO GROUPS s, XPENDING s g - + <all>) with the read-back after the
previous restart (the baseline) and what the clients were told in between. Per stream it reports:

Entries
  E1. every entry present at the baseline, and every entry whose XADD was answered, is present exactly once with the
      ID it had (the answered ID), unless an XDEL named that ID: an answered XDEL must have removed it, an unanswered
      one may have;
  E2. every present entry is a campaign entry whose XADD was sent; an answered one sits at its answered ID; no
      entry is present twice; no ID named by an answered XDEL is present;
  E3. order: XRANGE returns strictly increasing IDs, and each producer's entries in a stream have IDs increasing in
      send order (``seq``), both in the answered XADD replies and in the read-back.

Consumer groups (L = the group's last-delivered-id, P = its pending entries list with owners)
  G1. every group of the baseline still exists and no other group appears; XINFO GROUPS' pending count is len(P);
  G2. L never goes back (>= the baseline's L) and L >= every ID an answered XREADGROUP delivered; every ID in P is
      <= L; no ID is delivered twice by answered XREADGROUP ... > (nor one at or below the baseline's L);
  G3. no acknowledged XACK is undone: an ID named by an answered XACK is not in P, nor is an ID that was already
      acknowledged at the baseline (<= the baseline's L and not in its P), nor one an answered XAUTOCLAIM reported
      deleted;
  G4. an ID delivered by an answered XREADGROUP, or pending at the baseline, is in P unless some XACK (answered or
      not) named it, an answered XAUTOCLAIM reported it deleted, or its entry is gone and an unanswered XAUTOCLAIM
      may have dropped it;
  G5. the owner of an ID in P is the consumer an answered XREADGROUP delivered it to (else its baseline owner; else,
      if only unanswered XREADGROUPs can have delivered it, any consumer that sent one), or any consumer that claimed
      it: by an answered XAUTOCLAIM that returned it, or by any unanswered XAUTOCLAIM on that group;
  G6. nothing is marked delivered without being pending: every present entry with ID <= L is in P or was named by
      some XACK (answered or not), or was already acknowledged at the baseline.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NamedTuple

from tests.bigvalues import show
from tests.crash.model import message, parse_message

StreamId = tuple[int, int]


def parse_id(text: bytes) -> StreamId:
    ms, _, seq = text.partition(b"-")
    return int(ms), int(seq)


def format_id(stream_id: StreamId) -> bytes:
    return b"%d-%d" % stream_id


def entry_fields(producer: int, seq: int, size: int = 0) -> tuple[bytes, ...]:
    """``p <producer> n <seq>``, and with ``size`` a field ``d`` holding the padded message of that size."""
    fields = (b"p", b"%d" % producer, b"n", b"%d" % seq)
    return (*fields, b"d", message(producer, seq, size)) if size else fields


def parse_fields(fields: list[bytes]) -> tuple[int, int]:
    """(producer, seq) of a campaign entry; ValueError for anything else (a padded value cut or damaged too)."""
    if len(fields) not in (4, 6) or fields[0] != b"p" or fields[2] != b"n" or fields[4:5] not in ([], [b"d"]):
        raise ValueError(f"not a campaign entry: {[show(f) for f in fields]}")
    key = int(fields[1]), int(fields[3])
    if len(fields) == 6 and parse_message(fields[5]) != key:
        raise ValueError(f"entry of producer {key[0]} seq {key[1]} holds another message: {show(fields[5])}")
    return key


class Add(NamedTuple):
    stream: bytes
    producer: int
    seq: int
    id: StreamId | None  # None: unanswered


class Read(NamedTuple):
    """One stream's part of an XREADGROUP ... >."""

    stream: bytes
    group: bytes
    consumer: bytes
    ids: list[StreamId] | None  # None: unanswered


class Ack(NamedTuple):
    stream: bytes
    group: bytes
    ids: list[StreamId]
    answered: bool


class Delete(NamedTuple):
    stream: bytes
    ids: list[StreamId]
    answered: bool


class Claim(NamedTuple):
    """XAUTOCLAIM: the IDs it handed to ``consumer`` and those it dropped as deleted, None when unanswered."""

    stream: bytes
    group: bytes
    consumer: bytes
    claimed: list[StreamId] | None
    deleted: list[StreamId] | None


@dataclass
class StreamHistory:
    """Every stream command of one run between two crashes."""

    adds: list[Add] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)

    def extend(self, other: StreamHistory) -> None:
        self.adds += other.adds
        self.reads += other.reads
        self.acks += other.acks
        self.deletes += other.deletes
        self.claims += other.claims


@dataclass
class GroupState:
    last_delivered: StreamId
    pending: dict[StreamId, bytes]  # ID -> owning consumer, from XPENDING
    pending_count: int  # as XINFO GROUPS reports it


@dataclass
class StreamState:
    entries: list[tuple[StreamId, list[bytes]]]  # XRANGE order
    groups: dict[bytes, GroupState]


Streams = dict[bytes, StreamState]
EMPTY = StreamState([], {})


def check_streams(baseline: Streams, history: StreamHistory, observed: Streams) -> list[str]:
    """Violations of E1-E3 and G1-G6 above (an empty list means none)."""
    problems: list[str] = []
    names = set(baseline) | set(observed) | {add.stream for add in history.adds}
    for name in sorted(names):
        before, after = baseline.get(name, EMPTY), observed.get(name, EMPTY)
        problems += [f"{name!r}: {p}" for p in _check_entries(name, before, history, after)]
        problems += [f"{name!r}: {p}" for p in _check_groups(name, before, history, after)]
    return problems


def _ids(text: list[StreamId]) -> str:
    return ", ".join(format_id(i).decode() for i in sorted(text)[:5]) + (" ..." if len(text) > 5 else "")


def _check_entries(name: bytes, before: StreamState, history: StreamHistory, after: StreamState) -> list[str]:
    problems: list[str] = []
    sent: dict[tuple[int, int], StreamId | None] = {}  # (producer, seq) -> answered ID
    for add in history.adds:
        if add.stream == name:
            if (add.producer, add.seq) in sent:
                problems.append(f"test bug: producer {add.producer} sent seq {add.seq} twice")
            sent[(add.producer, add.seq)] = add.id
    required = {key: stream_id for key, stream_id in sent.items() if stream_id is not None}
    for stream_id, fields in before.entries:
        key = parse_fields(fields)
        required[key] = sent[key] = stream_id
    deleted = {i for d in history.deletes if d.stream == name and d.answered for i in d.ids}
    maybe_deleted = {i for d in history.deletes if d.stream == name and not d.answered for i in d.ids}

    found: dict[tuple[int, int], StreamId] = {}
    previous: StreamId | None = None
    last_seq: dict[int, int] = {}
    for stream_id, fields in after.entries:
        if previous is not None and stream_id <= previous:
            problems.append(f"XRANGE returned {format_id(stream_id)!r} after {format_id(previous)!r}")
        previous = stream_id
        try:
            key = parse_fields(fields)
        except ValueError:
            problems.append(f"{format_id(stream_id)!r} holds {[show(f) for f in fields]}, not a campaign entry")
            continue
        producer, seq = key
        if key in found:
            problems.append(f"producer {producer} seq {seq} is present twice: {_ids([found[key], stream_id])}")
        found[key] = stream_id
        if key not in sent:
            problems.append(f"{format_id(stream_id)!r} (producer {producer} seq {seq}) was never added")
        elif sent[key] is not None and sent[key] != stream_id:
            problems.append(
                f"producer {producer} seq {seq} was acknowledged as {format_id(sent[key])!r} "  # type: ignore[arg-type]
                f"but is at {format_id(stream_id)!r}"
            )
        if stream_id in deleted:
            problems.append(f"{format_id(stream_id)!r} is back after an acknowledged XDEL")
        if producer in last_seq and seq <= last_seq[producer]:
            problems.append(f"producer {producer}: seq {seq} follows seq {last_seq[producer]} in ID order")
        last_seq[producer] = seq

    lost = [
        stream_id
        for key, stream_id in required.items()
        if key not in found and stream_id not in deleted and stream_id not in maybe_deleted
    ]
    if lost:
        problems.append(f"{len(lost)} acknowledged entries are missing: {_ids(lost)}")

    answered_ids: defaultdict[int, list[tuple[int, StreamId]]] = defaultdict(list)
    for add in history.adds:
        if add.stream == name and add.id is not None:
            answered_ids[add.producer].append((add.seq, add.id))
    for producer, pairs in answered_ids.items():
        pairs.sort()
        for (seq_a, id_a), (seq_b, id_b) in pairwise(pairs):
            if id_b <= id_a:
                problems.append(f"producer {producer}: XADD seq {seq_b} was answered with an ID <= seq {seq_a}'s")
    return problems


def _check_groups(name: bytes, before: StreamState, history: StreamHistory, after: StreamState) -> list[str]:
    problems: list[str] = []
    for group in before.groups.keys() - after.groups.keys():
        problems.append(f"group {group!r} is gone")
    for group in after.groups.keys() - before.groups.keys():
        problems.append(f"group {group!r} appeared from nowhere")
    present = {stream_id for stream_id, _ in after.entries}
    for group, new in after.groups.items():
        old = before.groups.get(group)
        if old is None:
            continue
        problems += [f"group {group!r}: {p}" for p in _check_group(name, group, old, new, history, present)]
    return problems


def _check_group(
    name: bytes, group: bytes, old: GroupState, new: GroupState, history: StreamHistory, present: set[StreamId]
) -> list[str]:
    problems: list[str] = []
    delivered: dict[StreamId, bytes] = {}
    unanswered_readers: set[bytes] = set()
    for read in history.reads:
        if read.stream != name or read.group != group:
            continue
        if read.ids is None:
            unanswered_readers.add(read.consumer)
            continue
        for stream_id in read.ids:
            if stream_id in delivered or stream_id <= old.last_delivered:
                problems.append(f"{format_id(stream_id)!r} was delivered twice by XREADGROUP >")
            delivered[stream_id] = read.consumer
    acked = {i for a in history.acks if (a.stream, a.group) == (name, group) and a.answered for i in a.ids}
    maybe_acked = {i for a in history.acks if (a.stream, a.group) == (name, group) and not a.answered for i in a.ids}
    claimers: defaultdict[StreamId, set[bytes]] = defaultdict(set)
    claim_deleted: set[StreamId] = set()
    unanswered_claimers: set[bytes] = set()
    for claim in history.claims:
        if (claim.stream, claim.group) != (name, group):
            continue
        if claim.claimed is None or claim.deleted is None:
            unanswered_claimers.add(claim.consumer)
            continue
        for stream_id in claim.claimed:
            claimers[stream_id].add(claim.consumer)
        claim_deleted.update(claim.deleted)

    def acked_at_baseline(stream_id: StreamId) -> bool:
        return stream_id <= old.last_delivered and stream_id not in old.pending

    last = new.last_delivered
    if new.pending_count != len(new.pending):
        problems.append(f"XINFO GROUPS says {new.pending_count} pending, XPENDING lists {len(new.pending)}")
    if last < old.last_delivered:
        problems.append(f"last-delivered-id went back from {format_id(old.last_delivered)!r} to {format_id(last)!r}")
    beyond = [i for i in delivered if i > last]
    if beyond:
        problems.append(f"last-delivered-id {format_id(last)!r} is below delivered IDs {_ids(beyond)}")

    for stream_id, owner in new.pending.items():
        shown = format_id(stream_id)
        if stream_id > last:
            problems.append(f"{shown!r} is pending but beyond last-delivered-id {format_id(last)!r}")
        if stream_id in acked:
            problems.append(f"{shown!r} is pending after an acknowledged XACK")
            continue
        if acked_at_baseline(stream_id):
            problems.append(f"{shown!r} was acknowledged before the previous restart and is pending again")
            continue
        if stream_id in claim_deleted:
            problems.append(f"{shown!r} is pending after an acknowledged XAUTOCLAIM reported it deleted")
            continue
        if stream_id in delivered:
            owners = {delivered[stream_id]}
        elif stream_id in old.pending:
            owners = {old.pending[stream_id]}
        else:
            owners = set(unanswered_readers)
        owners |= claimers.get(stream_id, set()) | unanswered_claimers
        if owner not in owners:
            problems.append(f"{shown!r} is owned by {owner!r}; only {sorted(owners)} can have received it")

    must_be_pending = set(delivered) | set(old.pending)
    missing = [
        stream_id
        for stream_id in must_be_pending
        if stream_id not in new.pending
        and stream_id not in acked
        and stream_id not in maybe_acked
        and stream_id not in claim_deleted
        and not (stream_id not in present and unanswered_claimers)
    ]
    if missing:
        problems.append(f"delivered, never acknowledged, and no longer pending: {_ids(missing)}")

    unaccounted = [
        stream_id
        for stream_id in present
        if stream_id <= last
        and stream_id not in new.pending
        and stream_id not in acked
        and stream_id not in maybe_acked
        and not acked_at_baseline(stream_id)
    ]
    if unaccounted:
        problems.append(f"at or below last-delivered-id but neither pending nor acknowledged: {_ids(unaccounted)}")
    return problems
