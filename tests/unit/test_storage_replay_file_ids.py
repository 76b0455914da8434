"""Replay must never give a segment file an id that a later journal record names for another queue.

Stream records name the file ids the live run allocated; list segment files are not named by the journal (replay
creates its own). Each test makes the live run and replay take different decisions about creating list files, then
creates a stream file, and recovers after a crash."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from respq.storage import Engine
from respq.types.lists import model as listlog
from respq.types.lists.model import LEFT, RIGHT
from respq.types.streams.model import id_of
from tests.unit.test_storage_engine import Logs, contents, durable, open_engine


def add_streams(engine: Engine, names: list[bytes]) -> None:
    """A new stream per name, each creating a segment file the journal names."""
    for name in names:
        engine.create(0, name, "stream").add(id_of(1, 0), [b"f", name])


def check_streams(engine: Engine, names: list[bytes]) -> None:
    for name in names:
        assert engine.get(0, name).value.range(0, id_of(9, 0)) == [(id_of(1, 0), [b"f", name])]  # type: ignore[union-attr]


def crash_and_check(  # type: ignore[no-untyped-def]
    tmp_path: Path, engine: Engine, expected: dict[bytes, list[bytes]], streams: list[bytes], **options
) -> None:
    assert {key: contents(engine, key) for key in expected} == expected
    durable(engine)
    engine.abandon()
    engine = open_engine(tmp_path, **options)
    assert {key: contents(engine, key) for key in expected} == expected
    check_streams(engine, streams)
    engine.checkpoint()
    engine.close()
    engine = open_engine(tmp_path, **options)
    assert {key: contents(engine, key) for key in expected} == expected
    check_streams(engine, streams)
    engine.close()


def test_a_middle_operation_after_a_checkpoint_settles_into_the_shared_file_the_live_run_had(tmp_path: Path) -> None:
    """A checkpoint leaves a current shared file; the live run appends to it when a middle operation settles a
    list after it. Replay must not start a shared file of its own there."""
    engine = open_engine(tmp_path)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"a", b"b"])
    engine.checkpoint()  # settles q into a shared file
    log.push(RIGHT, [b"c", b"d"])
    log.set(3, b"D")  # splits the journal run: settles c and d (into the shared file), then writes D
    add_streams(engine, [b"s1", b"s2"])
    crash_and_check(tmp_path, engine, {b"q": [b"a", b"b", b"c", b"D"]}, [b"s1", b"s2"])


def test_a_stream_file_lost_to_a_power_cut_ends_the_journal_even_if_replay_gave_its_id_away(tmp_path: Path) -> None:
    """A stream file that never reached the disk has no reserved id, so replay may give that id to a list's file:
    the record naming it is still a torn reference (nothing from it on was acknowledged), not corruption."""
    engine = open_engine(tmp_path)
    log = engine.create(0, b"q", "list")
    log.push(RIGHT, [b"a", b"b"])
    engine.checkpoint()
    log.push(RIGHT, [b"c", b"d"])
    log.set(3, b"D")  # replay settles c and d into a new shared file, taking the id the stream's file had live
    add_streams(engine, [b"s1"])
    qid = engine.get(0, b"s1").value.qid  # type: ignore[union-attr]
    durable(engine)
    engine.abandon()
    for path in (tmp_path / "queues" / f"{qid:016x}").glob("*.seg"):
        path.unlink()  # as if the power cut kept the file's creation from the disk
    logs = Logs()
    engine = open_engine(tmp_path, log=logs)
    assert contents(engine, b"q") == [b"a", b"b", b"c", b"D"]
    stream = engine.get(0, b"s1")
    assert stream is None or stream.value.range(0, id_of(9, 0)) == []  # type: ignore[union-attr]
    assert any(level == "warning" and "journal ends at" in line for level, line in logs.lines)
    engine.checkpoint()
    engine.close()
    engine = open_engine(tmp_path)
    assert contents(engine, b"q") == [b"a", b"b", b"c", b"D"]
    engine.close()


def test_pushes_behind_a_backlog_then_a_middle_operation(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Live, pushes behind a backlog go to the segment at once; replayed, they are journal runs, which a middle
    operation then settles into files the live run never created."""
    monkeypatch.setattr(listlog, "BACKLOG_VALUES", 100)
    engine = open_engine(tmp_path, segment_size=4096)
    log = engine.create(0, b"q", "list")
    values = [b"v%03d" % i for i in range(100)]
    log.push(RIGHT, values)
    engine.checkpoint()
    log.push(RIGHT, [b"x", b"y"])  # behind the backlog: written to q's right file
    log.push(LEFT, [b"w"])
    log.set(101, b"X")
    log.insert(b"y", b"z", before=True)
    add_streams(engine, [b"s1", b"s2", b"s3"])
    log.push(RIGHT, [b"t", b"u"])
    log.trim(0, 103)
    add_streams(engine, [b"s4"])
    expected = [b"w", *values, b"X", b"z", b"y"]
    crash_and_check(tmp_path, engine, {b"q": expected}, [b"s1", b"s2", b"s3", b"s4"], segment_size=4096)


def test_a_checkpoint_that_never_finished_settled_lists_replay_keeps_in_the_journal(tmp_path: Path) -> None:
    """A checkpoint settles lists into a new shared file and rotates the journal, then the run goes on while its
    worker writes the manifest; a crash before that replays both journal files from the previous manifest, with
    the lists' values still journal runs."""
    engine = open_engine(tmp_path)
    lists = {b"q%d" % i: [b"%d-%d" % (i, j) for j in range(3)] for i in range(3)}
    engine.checkpoint()
    for key, values in lists.items():
        engine.create(0, key, "list").push(RIGHT, values)
    cp = engine.begin_checkpoint()  # settles the three lists into a shared file; never completed
    assert cp is not None
    for key, values in lists.items():
        engine.get(0, key).value.set(1, b"S")  # type: ignore[union-attr]
        values[1] = b"S"
        add_streams(engine, [b"s" + key])
    crash_and_check(tmp_path, engine, lists, [b"s" + key for key in lists])


def test_removing_values_the_live_run_had_in_segments_and_replay_in_the_journal(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """LREM rewrites a list whose matches are in segments and drops matches that are all in journal runs: live
    and replay decide differently after pushes behind a backlog."""
    monkeypatch.setattr(listlog, "BACKLOG_VALUES", 50)
    engine = open_engine(tmp_path, segment_size=4096)
    log = engine.create(0, b"q", "list")
    values = [b"v%03d" % i for i in range(50)]
    log.push(RIGHT, values)
    engine.checkpoint()
    log.push(RIGHT, [b"m", b"k", b"m", b"k"])
    assert log.remove(1, b"m") == 1  # live: a rewrite into new files; replay: dropped from the journal run
    add_streams(engine, [b"s1"])
    log.set(51, b"K")
    add_streams(engine, [b"s2", b"s3"])
    crash_and_check(tmp_path, engine, {b"q": [*values, b"k", b"K", b"k"]}, [b"s1", b"s2", b"s3"], segment_size=4096)


def random_run(tmp_path: Path, seed: int) -> None:
    """Random list operations of every kind (pushes behind a small backlog too), new streams and streams rolling
    to new files, checkpoints (the last perhaps begun and never written), then a crash: replay must rebuild every
    list and stream."""
    rng = random.Random(seed)
    options = {"segment_size": 1024}
    engine = open_engine(tmp_path, **options)
    lists: dict[bytes, list[bytes]] = {}
    streams: dict[bytes, list[bytes]] = {}
    counter = 0
    unfinished = False
    for _ in range(400):
        counter += 1
        roll = rng.random()
        key = b"q%d" % rng.randrange(4)
        model = lists.get(key)
        log = engine.get(0, key).value if model is not None else None  # type: ignore[union-attr]
        if roll < 0.30 or log is None:
            values = [b"v%d-%d" % (counter, i) + b"." * rng.choice((0, 0, 40)) for i in range(rng.randint(1, 8))]
            if log is None:
                log, model = engine.create(0, key, "list"), []
                lists[key] = model
            side = rng.choice((LEFT, RIGHT))
            log.push(side, values)
            model[:0] = values[::-1] if side == LEFT else []
            model += values if side == RIGHT else []
        elif roll < 0.40:
            count = rng.randint(1, 5)
            if rng.random() < 0.5:
                assert log.pop(LEFT, count) == model[:count]
                del model[:count]
            else:
                taken = model[-count:][::-1]
                assert log.pop(RIGHT, count) == taken
                del model[len(model) - len(taken) :]
        elif roll < 0.50:
            i = rng.randrange(len(model))
            assert log.set(i, b"S%d" % counter)
            model[i] = b"S%d" % counter
        elif roll < 0.58:
            i = rng.randrange(len(model))
            before = rng.random() < 0.5
            log.insert(model[i], b"I%d" % counter, before)
            at = model.index(model[i])
            model.insert(at if before else at + 1, b"I%d" % counter)
        elif roll < 0.64:
            value = rng.choice(model)
            count = rng.choice((0, 1, -1, 2))
            log.remove(count, value)
            matches = [i for i, v in enumerate(model) if v == value]
            doomed = set(matches if count == 0 else matches[:count] if count > 0 else matches[count:])
            model[:] = [v for i, v in enumerate(model) if i not in doomed]
        elif roll < 0.68:
            start, stop = rng.randint(0, 3), rng.randint(-4, -1)
            log.trim(start, stop)
            model[:] = model[start : len(model) + stop + 1]
        elif roll < 0.88:
            name = b"s%d" % rng.randrange(12)
            entries = streams.get(name)
            if entries is None:
                stream, entries = engine.create(0, name, "stream"), []
                streams[name] = entries
            else:
                stream = engine.get(0, name).value  # type: ignore[union-attr]
            body = b"e%d" % counter + b"-" * rng.choice((0, 300))
            stream.add(id_of(counter, 0), [b"f", body])  # type: ignore[union-attr]
            entries.append(body)
        elif not unfinished:
            if rng.random() < 0.8:
                engine.checkpoint()
            else:
                engine.begin_checkpoint()  # the worker never writes its manifest: a crash replays from the last one
                unfinished = True
        if model is not None and not model:
            engine.delete(0, key)
            del lists[key]
        if rng.random() < 0.3:
            durable(engine)
    durable(engine)
    engine.abandon()

    def check(engine: Engine) -> None:
        assert {key: contents(engine, key) for key in lists} == lists
        for name, bodies in streams.items():
            found = engine.get(0, name).value.range(0, id_of(counter + 1, 0))  # type: ignore[union-attr]
            assert [fields[1] for _, fields in found] == bodies

    engine = open_engine(tmp_path, **options)
    check(engine)
    engine.checkpoint()
    engine.close()
    engine = open_engine(tmp_path, **options)
    check(engine)
    engine.close()


@pytest.mark.parametrize("seed", range(40))
def test_random_list_operations_streams_and_checkpoints_recover_after_a_crash(
    tmp_path: Path, monkeypatch, seed: int  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr(listlog, "BACKLOG_VALUES", 30)
    random_run(tmp_path, seed)


@pytest.mark.parametrize("seed", range(100, 120))
def test_random_runs_with_lists_compacted_after_a_few_chunks_recover_after_a_crash(
    tmp_path: Path, monkeypatch, seed: int  # type: ignore[no-untyped-def]
) -> None:
    """Whether a middle operation rewrites a list depends on its chunk count, which journal runs make differ
    between the live run and replay."""
    monkeypatch.setattr(listlog, "BACKLOG_VALUES", 30)
    monkeypatch.setattr(listlog, "COMPACT_CHUNKS", 6)
    random_run(tmp_path, seed)
