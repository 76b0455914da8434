"""Pushes live only in the journal until a checkpoint: written once, copied to segments only if still queued."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from respq.storage import CorruptionError, DiskFullError, Engine
from respq.storage.fileio import FileIO
from respq.storage.journal import READ_BLOCK
from respq.types.lists import model as listlog
from respq.types.lists.model import LEFT, RIGHT, push_keys
from respq.types.streams.model import id_of
from tests.unit.test_storage_engine import contents, durable, journals, open_engine, segment_bytes


def disk_bytes_written(path: Path) -> int:
    return segment_bytes(path) + sum(p.stat().st_size for p in journals(path))


def test_values_consumed_before_a_checkpoint_never_reach_a_segment(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    log = engine.create(0, b"q", "list")
    for i in range(2000):
        log.push(LEFT, [b"m%06d" % i])
        if i % 10 == 9:
            assert log.pop(RIGHT, 10) == [b"m%06d" % n for n in range(i - 9, i + 1)]
    durable(engine)
    assert segment_bytes(tmp_path) == 0
    log.push(LEFT, [b"last"])
    engine.checkpoint()
    # Only the value still queued was copied; the journal that held the other 2000 is gone.
    assert 0 < segment_bytes(tmp_path) < 8192
    assert contents(engine, b"q") == [b"last"]
    engine.close()
    engine = open_engine(tmp_path)
    assert contents(engine, b"q") == [b"last"]
    engine.close()


def test_queued_values_are_copied_at_a_checkpoint_and_the_journal_released(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=8192)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"r%04d" % i for i in range(500)])
    for i in range(500):
        log.push(LEFT, [b"l%04d" % i])
    expected = [b"l%04d" % i for i in reversed(range(500))] + [b"r%04d" % i for i in range(500)]
    assert contents(engine, b"q") == expected  # read back from the journal's buffer and file
    first_journal = journals(tmp_path)[0]
    engine.checkpoint()
    assert first_journal not in journals(tmp_path)
    assert contents(engine, b"q") == expected  # now from segments
    assert log.pop(LEFT, 3) == expected[:3] and log.pop(RIGHT, 2) == expected[:-3:-1]
    engine.close()
    engine = open_engine(tmp_path)
    assert contents(engine, b"q") == expected[3:-2]
    engine.close()


def test_settling_a_slice_at_a_time_keeps_the_order(tmp_path: Path) -> None:
    rng = random.Random(3)
    engine = open_engine(tmp_path, segment_size=4096)
    log = engine.create(0, b"q", "list")
    model: list[bytes] = []
    for i in range(3000):
        value = b"v%05d" % i
        if rng.random() < 0.5:
            log.push(LEFT, [value])
            model.insert(0, value)
        else:
            log.push(RIGHT, [value])
            model.append(value)
    assert engine.journaled_values == 3000  # what the checkpointer paces its settling by
    steps = 0
    while engine.settle_some(137):
        steps += 1
        assert list(log.range(0, -1)) == model
        if steps % 3 == 0:  # consumption and new pushes between slices
            assert log.pop(LEFT, 2) == model[:2]
            del model[:2]
            log.push(RIGHT, [b"late%d" % steps])
            model.append(b"late%d" % steps)
    assert steps > 10
    assert list(log.range(0, -1)) == model
    engine.checkpoint()
    engine.close()
    engine = open_engine(tmp_path)
    assert contents(engine, b"q") == model
    engine.close()


def test_replayed_pushes_are_read_from_the_journal_for_middle_operations(tmp_path: Path) -> None:
    """After a crash, replayed pushes point into the replayed journal files; an LSET, LINSERT or LREM replayed
    after them reads those values back from there."""
    engine = open_engine(tmp_path)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"a", b"b", b"c", b"d"])
    log.push(LEFT, [b"z"])
    log.set(2, b"B")
    log.insert(b"c", b"c2", before=False)
    log.remove(1, b"a")
    log.push(RIGHT, [b"e"])
    assert log.pop(LEFT, 1) == [b"z"]
    durable(engine)
    expected = [b"B", b"c", b"c2", b"d", b"e"]
    assert contents(engine, b"q") == expected
    written_before = segment_bytes(tmp_path)
    engine.abandon()
    engine = open_engine(tmp_path)
    assert contents(engine, b"q") == expected
    assert segment_bytes(tmp_path) >= written_before
    engine.close()


def test_steady_produce_and_consume_writes_each_byte_about_once(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, checkpoint_bytes=256 << 10)
    log = engine.create(0, b"q", "list")
    value = b"x" * 100
    for _ in range(200):
        log.push(LEFT, [value] * 50)
        assert len(log.pop(RIGHT, 50)) == 50
        durable(engine)
        if engine.checkpoint_due():
            engine.checkpoint()
    # 10k messages of 100 B: the journal holds each once (plus framing); segments hold none of them.
    assert segment_bytes(tmp_path) == 0
    assert disk_bytes_written(tmp_path) < 300 << 10
    engine.close()


def test_a_reopened_engine_without_a_clean_close_keeps_both_sides(tmp_path: Path) -> None:
    engine: Engine = open_engine(tmp_path)
    log = engine.create(0, b"q", "list")
    log.push(LEFT, [b"1", b"2"])
    engine.checkpoint()  # 1 and 2 settle into segments
    log.push(RIGHT, [b"3"])
    log.push(LEFT, [b"0"])
    durable(engine)
    engine.abandon()
    engine = open_engine(tmp_path)
    assert contents(engine, b"q") == [b"0", b"2", b"1", b"3"]
    engine.close()


class CountingIO(FileIO):
    def __init__(self) -> None:
        self.preads = 0
        self.bytes_read = 0

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        self.preads += 1
        data = super().pread(fd, length, offset)
        self.bytes_read += len(data)
        return data

    def pread_many(self, fd: int, offsets: Sequence[int], lengths: Sequence[int]) -> list[bytes]:
        self.preads += 1
        values = super().pread_many(fd, offsets, lengths)
        self.bytes_read += sum(map(len, values))
        return values


def test_reading_journal_resident_values_newest_first_reads_blocks_not_values(tmp_path: Path) -> None:
    io = CountingIO()
    engine = open_engine(tmp_path, io=io)
    log = engine.create(0, b"q", "list")
    values = [b"%05d:" % i + b"v" * 94 for i in range(3000)]  # ~400 KiB of journal: several read blocks
    for start in range(0, len(values), 100):
        log.push(RIGHT, values[start : start + 100])
    durable(engine)  # written out: reads now come from the journal file, not its buffer
    before = io.preads
    assert log.pop(RIGHT, 1500) == values[:1499:-1]  # RPOP of right pushes: descending positions
    assert log.pop(LEFT, 1500) == values[:1500]
    journal_bytes = sum(len(value) + 30 for value in values)  # value plus its length and a share of its record
    assert io.preads - before <= 2 * (journal_bytes // READ_BLOCK + 2)
    engine.close()


def test_settling_lists_pushed_far_apart_reads_their_values_not_blocks(tmp_path: Path) -> None:
    """Thousands of lists taking turns: each list's values sit far apart in the journal. Settling a list reads its
    values in one call, about their own bytes, not a read-ahead block per value (which read the journal hundreds of
    times over)."""
    io = CountingIO()
    engine = open_engine(tmp_path, io=io)
    lists = [engine.create(0, b"q%d" % n, "list") for n in range(1000)]
    for round_ in range(20):
        for n, log in enumerate(lists):
            log.push(LEFT if n % 2 else RIGHT, [b"%04d:%02d:" % (n, round_) + b"v" * 92])
    durable(engine)
    before, calls_before = io.bytes_read, io.preads
    engine.checkpoint()
    values_bytes = 1000 * 20 * 100
    assert io.bytes_read - before < 2 * values_bytes  # one block per value would read ~READ_BLOCK * 20000
    assert io.preads - calls_before < 2 * len(lists)  # a call per list, not per value
    for n in (0, 1, 999):
        expected = [b"%04d:%02d:" % (n, r) + b"v" * 92 for r in range(20)]
        assert contents(engine, b"q%d" % n) == (expected[::-1] if n % 2 else expected)
    engine.close()


class ShortReadIO(FileIO):
    """Returns the ``short``-th value of the next scattered read one byte short, as a cut journal file would."""

    def __init__(self) -> None:
        self.short: int | None = None

    def pread_many(self, fd: int, offsets: Sequence[int], lengths: Sequence[int]) -> list[bytes]:
        values = super().pread_many(fd, offsets, lengths)
        if self.short is not None:
            values[self.short] = values[self.short][:-1]
            self.short = None
        return values


def test_a_value_read_short_while_settling_far_apart_values_is_corruption(tmp_path: Path) -> None:
    io = ShortReadIO()
    engine = open_engine(tmp_path, io=io)
    lists = [engine.create(0, b"q%d" % n, "list") for n in range(200)]
    for round_ in range(5):
        for n, log in enumerate(lists):
            log.push(RIGHT, [b"%04d:%02d:" % (n, round_) + b"v" * 92])
    durable(engine)
    io.short = 3
    with pytest.raises(CorruptionError) as raised:
        lists[0].settle()
    assert raised.value.path.endswith(".wal") and "shorter than a value" in str(raised.value)
    assert contents(engine, b"q0") == [b"0000:%02d:" % r + b"v" * 92 for r in range(5)]  # the list is unchanged
    engine.close()


def test_pushes_behind_a_backlog_go_to_the_segment_at_once(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Values pushed onto a long list would be copied out of the journal at the next checkpoint anyway: they are
    written to the segment with the push; after a crash, recovery cuts those bytes and replays the journal."""
    monkeypatch.setattr(listlog, "BACKLOG_VALUES", 300)
    engine = open_engine(tmp_path, segment_size=8192)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"a%04d" % i for i in range(300)])  # journal-resident: the list was short
    assert engine.journaled_values == 300 and segment_bytes(tmp_path) == 0
    engine.checkpoint()
    settled = segment_bytes(tmp_path)
    log.push(RIGHT, [b"b%04d" % i for i in range(200)])
    log.push(LEFT, [b"c%04d" % i for i in range(50)])
    engine.flush()
    assert engine.journaled_values == 300  # the later pushes did not join the journal's runs
    assert segment_bytes(tmp_path) > settled + 250 * 5
    expected = [b"c%04d" % i for i in reversed(range(50))] + [b"a%04d" % i for i in range(300)]
    expected += [b"b%04d" % i for i in range(200)]
    assert contents(engine, b"q") == expected
    durable(engine)
    engine.abandon()
    engine = open_engine(tmp_path, segment_size=8192)  # a crash: the checkpoint, then the journal replayed
    assert contents(engine, b"q") == expected
    engine.close()
    engine = open_engine(tmp_path, segment_size=8192)
    assert contents(engine, b"q") == expected
    assert engine.get(0, b"q").value.pop(LEFT, 60) == expected[:60]  # type: ignore[union-attr]
    engine.close()


def test_pushes_to_many_lists_in_one_go_match_pushes_one_by_one_after_a_crash(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(listlog, "BACKLOG_VALUES", 40)  # some lists cross it: their runs take the segment path
    rng = random.Random(5)
    engine = open_engine(tmp_path)
    expected: dict[bytes, list[bytes]] = {}
    for round_ in range(60):
        side = rng.choice((LEFT, RIGHT))
        pushes = []
        for call in range(rng.randrange(1, 12)):
            key = b"k%d" % rng.randrange(8)  # repeats within a run, and missing keys created by their first call
            values = [b"%d.%d.%d" % (round_, call, n) for n in range(rng.randrange(1, 4))]
            pushes.append((key, values))
        lengths = push_keys(engine, 0, side, pushes)
        for (key, values), length in zip(pushes, lengths, strict=True):
            queued = expected.setdefault(key, [])
            if side == LEFT:
                queued[:0] = values[::-1]
            else:
                queued += values
            assert length == len(queued)
        if round_ == 30:
            engine.checkpoint()
    assert {key: contents(engine, key) for key in expected} == expected
    durable(engine)
    engine.abandon()
    engine = open_engine(tmp_path)
    assert {key: contents(engine, key) for key in expected} == expected
    engine.close()


def test_pushes_to_many_lists_refused_for_a_full_disk_create_nothing(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, maxdisk=100_000)
    with pytest.raises(DiskFullError):
        push_keys(engine, 0, RIGHT, [(b"a", [b"x"]), (b"b", [b"y" * 200_000])])
    assert engine.dbsize(0) == 0
    assert push_keys(engine, 0, RIGHT, [(b"a", [b"x"]), (b"a", [b"z"])]) == [1, 2]
    engine.close()


@pytest.mark.parametrize("size", [READ_BLOCK - 1, READ_BLOCK, READ_BLOCK + 1, 2 * READ_BLOCK + 7, 200 * 1024])
@pytest.mark.parametrize("side", [LEFT, RIGHT])
def test_a_value_longer_than_a_read_block_comes_back_whole_from_the_end_it_was_pushed_to(
    tmp_path: Path, side: int, size: int
) -> None:
    """Read against its push direction, a journal value is read backwards: the block must still start at the value
    when the value is longer than a block (it started a block before the value's end, cutting its head off)."""
    engine = open_engine(tmp_path)
    log = engine.create(0, b"q", "list")
    values = [bytes([n]) * 10 + random.Random(size + n).randbytes(size) for n in range(3)]
    for value in values:
        log.push(side, [value])
    durable(engine)  # out of the buffer: the reads go to the journal file
    assert contents(engine, b"q") == (values[::-1] if side == LEFT else values)
    assert log.pop(side, 1) == [values[-1]]
    assert log.pop(side, 2) == [values[1], values[0]]
    engine.close()


def test_pushes_inside_atomic_blocks_stay_in_the_journal_and_survive_a_crash(tmp_path: Path) -> None:
    """LMOVE, scripts and COPY push inside an atomic block: the values are read back inside the block (before its
    record has a position) and after it, and no segment is written until a checkpoint."""
    engine = open_engine(tmp_path)
    src = engine.create(0, b"src", "list")
    src.push(RIGHT, [b"a", b"b", b"c", b"d"])
    with engine.atomic():  # one push alone: the block's record is a plain OP_PUSH
        engine.create(0, b"one", "list").push(LEFT, [b"solo"])
    for moved in (b"a", b"b", b"c"):  # LMOVE src dst LEFT RIGHT, each into a new or an existing list
        with engine.atomic():
            dst = engine.get(0, b"dst")
            dst = dst.value if dst is not None else engine.create(0, b"dst", "list")
            dst.push(RIGHT, [src.index(0)])
            assert src.pop(LEFT, 1) == [moved]
            assert list(dst.range(0, -1))[-1] == moved  # read at its provisional position
    with engine.atomic():  # several pushes, pops from both ends and a middle read inside one block
        other = engine.create(0, b"other", "list")
        other.push(LEFT, [b"x", b"y"])
        other.push(RIGHT, [b"z"])
        assert other.index(1) == b"x"
        assert other.pop(LEFT, 1) == [b"y"] and other.pop(RIGHT, 1) == [b"z"]
        other.push(RIGHT, [b"w", b"v"])
        engine.copy(0, b"dst", 0, b"copy")
        assert contents(engine, b"copy") == [b"a", b"b", b"c"]
    expected = {
        b"src": [b"d"], b"one": [b"solo"], b"dst": [b"a", b"b", b"c"], b"other": [b"x", b"w", b"v"],
        b"copy": [b"a", b"b", b"c"],
    }
    assert {key: contents(engine, key) for key in expected} == expected
    durable(engine)
    assert segment_bytes(tmp_path) == 0
    # A stream file created after the blocks: replay must give the pushes no segment file either, or its id would
    # be taken by the time the stream's journal record names it.
    engine.create(0, b"s", "stream").add(id_of(5, 0), [b"f", b"v"])
    assert other.pop(RIGHT, 1) == [b"v"]  # read from the journal after the block, at the record's own position
    durable(engine)
    expected[b"other"] = [b"x", b"w"]
    engine.abandon()
    engine = open_engine(tmp_path)
    assert {key: contents(engine, key) for key in expected} == expected
    assert engine.get(0, b"s").value.range(0, id_of(9, 0)) == [(id_of(5, 0), [b"f", b"v"])]
    engine.checkpoint()
    engine.close()
    engine = open_engine(tmp_path)
    assert {key: contents(engine, key) for key in expected} == expected
    engine.close()


def test_an_atomic_block_of_journal_resident_pushes_torn_by_a_power_cut_is_lost_whole(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    engine.create(0, b"src", "list").push(RIGHT, [b"a", b"b"])
    durable(engine)
    with engine.atomic():  # LMOVE src dst: acknowledged
        engine.create(0, b"dst", "list").push(RIGHT, [b"a"])
        engine.get(0, b"src").value.pop(LEFT, 1)
    durable(engine)
    with engine.atomic():  # its record torn: neither the push nor the pop happened
        engine.get(0, b"dst").value.push(RIGHT, [b"b"])
        engine.get(0, b"src").value.pop(LEFT, 1)
    engine.flush()
    engine.abandon()
    last = journals(tmp_path)[-1]
    with last.open("r+b") as f:
        f.truncate(last.stat().st_size - 3)
    engine = open_engine(tmp_path)
    assert contents(engine, b"src") == [b"b"] and contents(engine, b"dst") == [b"a"]
    engine.close()


def test_removing_values_at_either_end_pops_them_rather_than_rewriting_the_list(tmp_path: Path) -> None:
    """RQ's LREM of the one job its intermediate list holds, and removals of a list's first or last values: no
    segment is written, live or on replay (whose segment file ids must match the live run's)."""
    engine = open_engine(tmp_path)
    wip = engine.create(0, b"wip", "list")
    wip.push(RIGHT, [b"job1"])
    assert wip.remove(1, b"job1") == 1 and len(wip) == 0
    engine.delete(0, b"wip")
    q = engine.create(0, b"q", "list")
    q.push(RIGHT, [b"a", b"a", b"b", b"c", b"a", b"a"])
    assert q.remove(2, b"a") == 2  # the first two
    assert q.remove(-5, b"a") == 2  # the last two
    assert q.remove(0, b"z") == 0
    durable(engine)
    assert segment_bytes(tmp_path) == 0
    engine.create(0, b"s", "stream").add(id_of(5, 0), [b"f", b"v"])
    q.push(LEFT, [b"x"])
    assert q.remove(1, b"b") == 1  # in the middle: rewritten
    durable(engine)
    assert contents(engine, b"q") == [b"x", b"c"]
    engine.abandon()
    engine = open_engine(tmp_path)
    assert contents(engine, b"q") == [b"x", b"c"] and contents(engine, b"wip") is None
    assert engine.get(0, b"s").value.range(0, id_of(9, 0)) == [(id_of(5, 0), [b"f", b"v"])]
    engine.close()


def test_removing_values_still_in_the_journal_from_the_middle_writes_no_segment(tmp_path: Path) -> None:
    """BullMQ's LREM of a finished job from its active list: values pushed since the last checkpoint leave their
    journal runs' arrays, live and on replay, whichever end they were pushed at."""
    rng = random.Random(7)
    engine = open_engine(tmp_path)
    q = engine.create(0, b"q", "list")
    model: list[bytes] = []
    for i in range(60):
        value = b"j%d" % (i % 20)
        if rng.random() < 0.5:
            q.push(LEFT, [value])
            model.insert(0, value)
        else:
            q.push(RIGHT, [value])
            model.append(value)
    for count, value in ((1, b"j3"), (-2, b"j7"), (0, b"j11"), (2, b"j0"), (-1, b"j19")):
        removed = q.remove(count, value)
        indices = [i for i, v in enumerate(model) if v == value]
        if count < 0:
            indices = indices[::-1]
        doomed = set(indices[: abs(count)] if count else indices)
        model = [v for i, v in enumerate(model) if i not in doomed]
        assert removed == len(doomed) and list(q.range(0, -1)) == model
    durable(engine)
    assert segment_bytes(tmp_path) == 0
    engine.abandon()
    engine = open_engine(tmp_path)
    assert contents(engine, b"q") == model
    engine.checkpoint()
    assert contents(engine, b"q") == model
    engine.close()
