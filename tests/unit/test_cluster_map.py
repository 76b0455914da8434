"""The slot map on its own: key slots as Redis computes them, Kvrocks's SETNODES grammar and version rules, and the
map's file surviving a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from respq.cluster import SLOTS, MapError, SlotMap, key_slot
from respq.cluster.keyslot import py_key_slot
from respq.cluster.slotmap import NO_REPLICAS, SLOT_OVERLAPPED

A, B, C = "a" * 40, "b" * 40, "c" * 40
THREE = (
    f"{A} 127.0.0.1 7001 master - 0-5460\n{B} 127.0.0.1 7002 master - 5461-10922\n"
    f"{C} 127.0.0.1 7003 master - 10923-16383"
)


@pytest.mark.parametrize(
    ("key", "slot"),
    [
        # values from redis-server 7.0.15's CLUSTER KEYSLOT
        (b"foo", 12182),
        (b"a", 15495),
        (b"{a}x", 15495),
        (b"", 0),
        (b"{}", 15257),  # an empty tag: the whole key is hashed
        (b"{}a", 10875),
        (b"{{a}}", 10276),  # the tag is "{a"
        (b"a{", 14311),
        (b"a{b", 13340),
        (b"x{a}{b}", 15495),  # the first tag only
        (b"\xff\x00{\x01}", 4129),
        (b"a{}{b}", 15033),  # the first tag is empty: the whole key,
    ],
)
def test_key_slot_matches_redis(key: bytes, slot: int) -> None:
    assert key_slot(key) == slot
    assert py_key_slot(key) == slot  # the Python twin of the C function key_slot is when the module is built


def test_setnodes_assigns_ranges_and_finds_myself_by_port() -> None:
    slots = SlotMap(None, port=7002, binds=["127.0.0.1"])
    assert slots.set_nodes(THREE, 1)
    assert slots.myid == B and slots.covered and slots.size == 3
    assert slots.serves(5461) and not slots.serves(0)
    assert slots.owner(16383).port == 7003  # type: ignore[union-attr]
    assert not slots.set_nodes(THREE, 1)  # the same version: nothing to do
    with pytest.raises(MapError):
        slots.set_nodes(THREE, 0)  # a lower version is refused
    assert slots.set_nodes(THREE, 1, force=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{A} h 1 slave {B}", NO_REPLICAS),
        (f"{A} h 1 master - 0-10\n{B} h 2 master - 10", SLOT_OVERLAPPED),
        (f"{A} h 1 master - 16384", "Slot is out of range"),
        (f"{A} h 1 master - 5-3", "Slot is out of range"),
        (f"{A} h 0 master - 1", "Invalid cluster node port"),
        ("abc h 1 master - 1", "Invalid cluster node id"),
        (f"{A} h 1 boss - 1", "Invalid cluster node role"),
        (f"{A} h 1", "Invalid cluster nodes info"),
        ("", "Invalid cluster nodes info"),
    ],
)
def test_bad_maps_are_refused(text: str, message: str) -> None:
    slots = SlotMap(None)
    with pytest.raises(MapError) as refused:
        slots.set_nodes(text, 1)
    assert refused.value.message == message
    assert slots.version == -1


def test_setslot_needs_the_next_version() -> None:
    slots = SlotMap(None, port=7001, binds=["127.0.0.1"])
    slots.set_nodes(THREE, 5)
    with pytest.raises(MapError):
        slots.set_slot(0, B, 5)
    slots.set_slot(0, B, 6)
    assert slots.owner(0).id == B and slots.nodes[A].ranges == [(1, 5460)]  # type: ignore[union-attr]
    assert slots.nodes[B].ranges == [(0, 0), (5461, 10922)]


def test_map_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "nodes.conf")
    first = SlotMap(path, port=9999, binds=["127.0.0.1"])
    first.set_node_id(C)
    first.set_nodes(THREE.replace("10923-16383", "10923-16000"), 7)
    assert not first.covered and first.assigned == SLOTS - 383
    again = SlotMap(path, port=1, binds=[])
    again.load()
    assert (again.version, again.myid, again.myself.port) == (7, C, 7003)  # type: ignore[union-attr]
    assert again.node_lines() == first.node_lines()
    assert not Path(path + ".tmp").exists()
