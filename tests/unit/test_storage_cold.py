"""Lists nobody uses are kept as bytes in the catalog (cold entries), not as objects: a new list holding one pushed
value at once, every settled list at a checkpoint. The first use turns one back into objects; nothing a client sees
changes, and a list object somebody still holds is never replaced."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

from respq.commands.dispatch import execute
from respq.storage import Engine
from respq.storage.segments import SHARED_QID, queue_dir_name
from respq.types.lists.model import COLD_IN_JOURNAL, COLD_IN_SEGMENTS, LEFT, RIGHT, ListLog, cold_kind, push_keys
from tests.unit.test_dispatch_order import server_with_client
from tests.unit.test_storage_engine import contents, durable, open_engine

VALUE = b"v" * 100


def is_cold(engine: Engine, key: bytes, db: int = 0) -> bool:
    return type(engine.catalog[db][key]) is bytes


def shared_files(path: Path) -> set[Path]:
    return set((path / "queues" / queue_dir_name(SHARED_QID)).glob("*.seg"))


def test_idle_lists_of_one_value_cost_a_fraction_of_their_objects(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, appendfsync="no")
    keys = [b"idle:%d" % n for n in range(20_000)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for first in range(0, len(keys), 100):
            push_keys(engine, 0, RIGHT, [(key, [VALUE]) for key in keys[first : first + 100]])
            engine.flush()
        per_list = (tracemalloc.get_traced_memory()[0] - before) / len(keys)
    finally:
        tracemalloc.stop()
    # Key, catalog slot and a ~64 B entry; as objects (list, journal run, arrays, registry) it was over 600 B.
    assert per_list < 250, per_list
    assert all(is_cold(engine, key) for key in keys)
    assert contents(engine, keys[7]) == [VALUE]
    engine.close()


def test_cold_lists_read_pop_push_expire_and_survive_checkpoints_crashes_and_reopens(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=64 << 10)
    push_keys(engine, 0, RIGHT, [(b"a", [b"a1"]), (b"b", [b"b1"]), (b"c", [b"c1", b"c2"]), (b"d", [b"d1"])])
    push_keys(engine, 0, LEFT, [(b"e", [b"e1"])])
    assert [is_cold(engine, key) for key in (b"a", b"b", b"c", b"d", b"e")] == [True, True, False, True, True]
    engine.set_expire(0, b"d", 4_000_000_000_000)
    assert engine.peek(0, b"d") == ("list", 4_000_000_000_000)
    engine.checkpoint()  # everything settled into the shared file; c, pushed to since the last checkpoint, kept
    assert not is_cold(engine, b"c")
    engine.checkpoint()  # a whole interval unused: cold
    assert all(is_cold(engine, key) for key in (b"a", b"b", b"c", b"d", b"e"))
    assert engine.peek(0, b"d") == ("list", 4_000_000_000_000) and engine.peek(0, b"a") == ("list", None)
    assert engine.get(0, b"d").expire_ms == 4_000_000_000_000  # type: ignore[union-attr]
    assert not is_cold(engine, b"d")
    assert engine.get(0, b"a").pop(LEFT, 1) == [b"a1"]  # type: ignore[union-attr]
    engine.delete(0, b"a")
    engine.get(0, b"b").push(LEFT, [b"b0"])  # type: ignore[union-attr]
    push_keys(engine, 0, RIGHT, [(b"f", [b"f1"])])  # cold in the journal: replayed after the crash
    durable(engine)
    engine.abandon()
    expected = {b"a": None, b"b": [b"b0", b"b1"], b"c": [b"c1", b"c2"], b"d": [b"d1"], b"e": [b"e1"], b"f": [b"f1"]}
    for _ in range(2):  # a crash, then a clean close and reopen
        engine = open_engine(tmp_path, segment_size=64 << 10)
        assert {key: contents(engine, key) for key in expected} == expected
        assert engine.peek(0, b"d") == ("list", 4_000_000_000_000)
        engine.checkpoint()
        assert {key: contents(engine, key) for key in expected} == expected
        engine.close()


def test_settling_ahead_of_a_checkpoint_copies_cold_journal_values_a_few_lists_at_a_time(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    push_keys(engine, 0, LEFT, [(b"k%d" % n, [b"v%d" % n]) for n in range(300)])
    assert all(cold_kind(engine.catalog[0][b"k%d" % n]) == COLD_IN_JOURNAL for n in range(300))  # type: ignore[arg-type]
    slices = 1
    while engine.settle_some(1000):
        slices += 1
    assert slices > 3
    assert all(cold_kind(engine.catalog[0][b"k%d" % n]) == COLD_IN_SEGMENTS for n in range(300))  # type: ignore[arg-type]
    assert contents(engine, b"k299") == [b"v299"]
    engine.close()
    engine = open_engine(tmp_path)
    assert contents(engine, b"k0") == [b"v0"]
    engine.close()


def test_catalog_operations_on_cold_lists(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    push_keys(engine, 0, RIGHT, [(b"k%d" % n, [b"v%d" % n]) for n in range(6)])
    engine.checkpoint()
    engine.rename(0, b"k0", b"k1")  # a cold list moves; the cold one it replaces lets go of its chunk
    assert engine.move(0, 1, b"k2")
    engine.swapdb(0, 2)
    assert contents(engine, b"k1", db=2) == [b"v0"] and contents(engine, b"k2", db=1) == [b"v2"]
    assert engine.delete(2, b"k3")
    engine.flushdb(2)
    assert engine.dbsize(2) == 0 and contents(engine, b"k2", db=1) == [b"v2"]
    engine.close()
    engine = open_engine(tmp_path)
    assert engine.dbsize(0) == 0 and engine.dbsize(2) == 0 and contents(engine, b"k2", db=1) == [b"v2"]
    engine.close()


def test_a_list_object_somebody_holds_stays_an_object(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    log = engine.create(0, b"held", "list")
    log.push(RIGHT, [b"x"])
    push_keys(engine, 0, RIGHT, [(b"free", [b"y"]), (b"free", [b"z"])])
    engine.checkpoint()  # both pushed to since the last checkpoint: left objects
    engine.checkpoint()
    assert not is_cold(engine, b"held") and is_cold(engine, b"free")
    assert engine.get(0, b"held") is log
    log.push(RIGHT, [b"x2"])  # still the catalog's object: nothing pushed here is lost
    assert contents(engine, b"held") == [b"x", b"x2"]
    del log
    engine.checkpoint()
    engine.checkpoint()
    assert is_cold(engine, b"held")
    engine.close()


def test_lists_pushed_to_between_checkpoints_stay_objects_and_idle_ones_turn_cold(tmp_path: Path) -> None:
    """Freezing a list that is pushed to again at once costs a freeze and a thaw per checkpoint for nothing: a
    checkpoint leaves the lists pushed to since the previous one as objects."""
    engine = open_engine(tmp_path)
    push_keys(engine, 0, RIGHT, [(b"busy", [b"b0", b"b1"]), (b"idle", [b"i0", b"i1"])])
    engine.checkpoint()
    assert not is_cold(engine, b"busy") and not is_cold(engine, b"idle")
    for round_ in range(3):
        push_keys(engine, 0, RIGHT, [(b"busy", [b"b%d" % (round_ + 2)])])
        engine.checkpoint()
        assert not is_cold(engine, b"busy") and is_cold(engine, b"idle")
    engine.checkpoint()
    assert is_cold(engine, b"busy")
    assert contents(engine, b"busy") == [b"b0", b"b1", b"b2", b"b3", b"b4"]
    engine.close()
    engine = open_engine(tmp_path)
    assert contents(engine, b"busy") == [b"b0", b"b1", b"b2", b"b3", b"b4"]
    assert contents(engine, b"idle") == [b"i0", b"i1"]
    engine.close()


def test_shared_files_live_while_cold_lists_hold_chunks_and_sparse_ones_are_emptied(tmp_path: Path) -> None:
    engine = open_engine(tmp_path, segment_size=16 << 10)
    for first in range(0, 300, 100):
        push_keys(engine, 0, RIGHT, [(b"q%d" % n, [b"%d:" % n + VALUE]) for n in range(first, first + 100)])
        engine.checkpoint()
    assert len(shared_files(tmp_path)) >= 3 and all(is_cold(engine, b"q%d" % n) for n in range(300))
    assert isinstance(engine.get(0, b"q5"), ListLog) and not is_cold(engine, b"q5")
    for n in range(1, 300):  # everyone but q0 is consumed: its file is mostly dead, it keeps only its value
        assert engine.get(0, b"q%d" % n).pop(LEFT, 1) == [b"%d:" % n + VALUE]  # type: ignore[union-attr]
        engine.delete(0, b"q%d" % n)
    engine.checkpoint()
    engine.checkpoint()
    assert len(shared_files(tmp_path)) == 1  # q0's value moved into the current shared file; the others died
    assert is_cold(engine, b"q0") and contents(engine, b"q0") == [b"0:" + VALUE]
    engine.close()
    engine = open_engine(tmp_path, segment_size=16 << 10)
    assert contents(engine, b"q0") == [b"0:" + VALUE]
    engine.delete(0, b"q0")
    engine.checkpoint()
    engine.checkpoint()
    assert len(shared_files(tmp_path)) <= 1  # at most the current one
    engine.close()


def test_lists_used_through_commands_turn_cold_and_answer_the_same(tmp_path: Path) -> None:
    """No layer above the engine keeps a list object between commands, or checkpoints would leave them objects."""
    server, ctx = server_with_client(tmp_path)
    engine = server.engine
    assert engine is not None
    try:
        for n in range(50):
            execute(ctx, [b"RPUSH", b"q%d" % n, b"a", b"b"])
            execute(ctx, [b"LRANGE", b"q%d" % n, b"0", b"-1"])
        execute(ctx, [b"BLPOP", b"q0", b"q1", b"0"])
        execute(ctx, [b"LMOVE", b"q2", b"moved", b"LEFT", b"RIGHT"])
        execute(ctx, [b"EXPIRE", b"q3", b"1000"])
        engine.checkpoint()  # lists pushed to since the last checkpoint stay objects until one passes unused
        engine.checkpoint()
        assert [key for key in engine.keys(0) if not is_cold(engine, key)] == []
        assert execute(ctx, [b"LRANGE", b"q0", b"0", b"-1"]) == [b"b"]
        assert execute(ctx, [b"LRANGE", b"moved", b"0", b"-1"]) == [b"a"]
        assert execute(ctx, [b"TTL", b"q3"]) == 1000
        assert execute(ctx, [b"SCAN", b"0", b"TYPE", b"list", b"COUNT", b"1000"])[1] != []
        assert is_cold(engine, b"q4")  # SCAN and KEYS look without turning lists into objects
        assert len(execute(ctx, [b"KEYS", b"*"])) == 51 and is_cold(engine, b"q4")
    finally:
        engine.close()


def test_a_restart_loads_lists_cold_and_replays_records_that_rename_move_or_swap_them(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    push_keys(engine, 0, RIGHT, [(key, [key + b"1", key + b"2"]) for key in (b"a", b"b", b"c", b"d", b"e", b"f", b"g")])
    engine.checkpoint()
    engine.close()  # a clean close: the manifest holds every list
    engine = open_engine(tmp_path)
    assert all(is_cold(engine, key) for key in (b"a", b"b", b"c", b"d", b"e", b"f", b"g"))
    # Journaled after the checkpoint, replayed on the next start with the lists loaded cold:
    engine.rename(0, b"a", b"a2")
    engine.get(0, b"a2").push(RIGHT, [b"a3"])  # type: ignore[union-attr]
    assert engine.move(0, 1, b"b")
    engine.get(1, b"b").push(RIGHT, [b"b3"])  # type: ignore[union-attr]
    engine.swapdb(0, 2)
    engine.get(2, b"c").push(LEFT, [b"c0"])  # type: ignore[union-attr]
    engine.swapdb(0, 2)
    engine.delete(0, b"d")
    engine.set_expire(0, b"e", 4_000_000_000_000)
    engine.rename(0, b"f", b"g")  # replaces g
    durable(engine)
    engine.abandon()
    engine = open_engine(tmp_path)
    assert contents(engine, b"a2") == [b"a1", b"a2", b"a3"] and contents(engine, b"a") is None
    assert contents(engine, b"b", db=1) == [b"b1", b"b2", b"b3"] and contents(engine, b"b") is None
    assert contents(engine, b"c") == [b"c0", b"c1", b"c2"]
    assert contents(engine, b"d") is None and engine.peek(0, b"e") == ("list", 4_000_000_000_000)
    assert contents(engine, b"g") == [b"f1", b"f2"] and engine.dbsize(0) == 4
    engine.close()
    engine = open_engine(tmp_path)  # and once more from the manifest alone
    assert contents(engine, b"g") == [b"f1", b"f2"] and contents(engine, b"b", db=1) == [b"b1", b"b2", b"b3"]
    engine.close()
