"""SORT pieces that the differential cases cannot reach yet or cannot reach cheaply: scores against the C library's
own strtod, BY/GET reading strings and hash fields through their types' contracts (``StringValue.data``,
``HashValue.get``), and SORT ... STORE lost whole or kept whole by a torn journal."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from respq.commands.dispatch import execute
from respq.commands.sort import strtod_score
from respq.replies import ErrorReply
from respq.storage import Engine
from respq.types import REGISTRY
from tests.unit.contexts import bare_context

_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_LIBC.strtod.restype = ctypes.c_double
_LIBC.strtod.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
ERANGE = 34


def libc_score(text: bytes) -> float | None:
    """What Redis's SORT makes of ``text`` with a clean errno: strtod, then nothing may follow, no ERANGE, no NaN."""
    buffer = ctypes.create_string_buffer(text)
    end = ctypes.c_char_p()
    ctypes.set_errno(0)
    value = _LIBC.strtod(buffer, ctypes.byref(end))
    failed = ctypes.get_errno() == ERANGE
    stop = ctypes.cast(end, ctypes.c_void_p).value - ctypes.addressof(buffer)  # type: ignore[operator]
    if buffer.raw[stop] != 0 or failed or math.isnan(value):
        return None
    return value


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).encode()),
    st.floats(allow_nan=False).map(lambda f: f.hex().encode()),
    st.integers(-(10**30), 10**30).map(lambda n: str(n).encode()),
    st.from_regex(rb"\A[ \t]*[+-]?(0[xX])?[0-9a-fA-F]{0,5}\.?[0-9]{0,4}([eEpP][+-]?[0-9]{0,4})?[ x]?\Z"),
    st.from_regex(rb"\A[+-]?(inf|INF|Infinity|nan|NaN|nan\(12\)|infinit|in)\Z"),
    st.sampled_from([b"", b" ", b"1e-310", b"4.9e-324", b"0x1p-1074", b"2.2250738585072011e-308", b"1e400"]),
)


@given(NUMBERS)
def test_scores_are_what_the_c_library_makes_of_them(text: bytes) -> None:
    expected = libc_score(text)
    got = strtod_score(text)
    if expected is None or got is None:
        assert got == expected
    else:
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected)


def test_a_score_stops_at_a_nul_byte() -> None:
    assert strtod_score(b"3\x00junk") == 3.0
    assert strtod_score(b"\x00junk") == 0.0


@dataclass
class FakeString:
    """A value as the string type's contract shows it to SORT."""

    data: bytes
    type: str = "string"


@dataclass
class FakeHash:
    fields: dict[bytes, bytes]
    type: str = "hash"

    def get(self, field: bytes) -> bytes | None:
        return self.fields.get(field)


def test_by_and_get_read_strings_and_hash_fields_through_their_contracts(tmp_path: Path) -> None:
    ctx = bare_context(tmp_path)
    try:
        assert execute(ctx, [b"RPUSH", b"jobs", b"1", b"2", b"3", b"4"]) == 4
        fakes: dict[bytes, Any] = {
            b"w_1": FakeString(b"30"),
            b"w_2": FakeString(b"10"),
            b"w_3": FakeString(b"20"),
            b"w_4": FakeHash({b"x": b"1"}),  # not a string: weighs 0
            b"job:1": FakeHash({b"name": b"one", b"at": b"b"}),
            b"job:2": FakeHash({b"name": b"two", b"at": b"a"}),
            b"job:3": FakeString(b"not a hash"),  # not a hash: its fields are missing
        }
        real = ctx.keyspace.lookup
        ctx.keyspace.lookup = lambda db, key: fakes.get(key) or real(db, key)  # type: ignore[method-assign]
        assert execute(ctx, [b"SORT", b"jobs", b"BY", b"w_*"]) == [b"4", b"2", b"3", b"1"]
        assert execute(ctx, [b"SORT", b"jobs", b"BY", b"w_*", b"DESC", b"LIMIT", b"0", b"2"]) == [b"1", b"3"]
        reply = execute(ctx, [b"SORT", b"jobs", b"BY", b"job:*->at", b"ALPHA", b"GET", b"#", b"GET", b"job:*->name"])
        assert reply == [b"3", None, b"4", None, b"2", b"two", b"1", b"one"]
        assert execute(ctx, [b"SORT", b"jobs", b"GET", b"w_*", b"GET", b"job:*->missing"]) == [
            b"30", None, b"10", None, b"20", None, None, None,
        ]
        assert execute(ctx, [b"SORT", b"jobs", b"GET", b"w_*", b"STORE", b"out"]) == 4
        assert execute(ctx, [b"LRANGE", b"out", b"0", b"-1"]) == [b"30", b"10", b"20", b""]
        fakes[b"w_4"] = FakeString(b"heavy")
        reply = execute(ctx, [b"SORT", b"jobs", b"BY", b"w_*"])
        assert isinstance(reply, ErrorReply) and b"can't be converted into double" in reply.message
    finally:
        ctx.engine.close()


def test_a_torn_sort_store_keeps_the_old_value_or_the_whole_new_list(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    ctx = bare_context(base)
    assert execute(ctx, [b"RPUSH", b"src", *[b"%05d" % (i * 7919 % 1000) for i in range(1000)]]) == 1000
    assert execute(ctx, [b"XADD", b"dst", b"1-1", b"f", b"old"]) == b"1-1"
    ctx.engine.sync(ctx.engine.flush())
    wal = max((base / "journal").glob("*.wal"))
    start = wal.stat().st_size
    assert execute(ctx, [b"SORT", b"src", b"STORE", b"dst"]) == 1000
    ctx.engine.sync(ctx.engine.flush())
    ctx.engine.abandon()
    end = wal.stat().st_size
    wanted = sorted(b"%05d" % (i * 7919 % 1000) for i in range(1000))
    for cut in sorted({start + 1, (start + end) // 2, end - 1, end}):
        trial = tmp_path / f"cut-{cut}"
        shutil.copytree(base, trial)
        with open(trial / "journal" / wal.name, "r+b") as f:
            f.truncate(cut)
        engine = Engine.open(str(trial), types=REGISTRY, log=lambda *_: None)
        entry = engine.get(0, b"dst")
        assert entry is not None
        if cut == end:
            assert entry.type == "list" and list(entry) == wanted  # type: ignore[call-overload]
        else:
            assert entry.type == "stream" and entry.length == 1  # type: ignore[attr-defined]
        engine.close()


@pytest.mark.parametrize("store", [False, True])
def test_alpha_compares_bytes_as_c_strings_unless_storing(tmp_path: Path, store: bool) -> None:
    ctx = bare_context(tmp_path)
    try:
        execute(ctx, [b"RPUSH", b"l", b"a\x00b", b"a\x00a", b"a"])
        argv = [b"SORT", b"l", b"ALPHA"] + ([b"STORE", b"out"] if store else [])
        reply = execute(ctx, argv)
        if store:
            assert reply == 3
            reply = execute(ctx, [b"LRANGE", b"out", b"0", b"-1"])
            assert reply == [b"a", b"a\x00a", b"a\x00b"]  # whole bytes
        else:
            assert reply == [b"a\x00b", b"a\x00a", b"a"]  # equal as C strings: list order
    finally:
        ctx.engine.close()
