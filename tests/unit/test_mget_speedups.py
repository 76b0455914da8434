"""MGET's C path (``read_slots`` in respq/_speedups.c) against its Python twin, the comprehension in
``Keyspace.read_many``: the same reply for any mix of the keys a catalog holds, and the catalog left the same."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import respq.keyspace
from conftest import require_speedups
from respq.commands.dispatch import execute
from respq.keyspace import now_ms
from respq.types.lists.model import RIGHT, push_keys
from respq.types.strings.model import DATA_SLOT, StringValue
from tests.unit.contexts import bare_context

pytestmark = pytest.mark.timeout(60)

# Every kind of key MGET may meet: strings held as bytes and as a bytearray (after APPEND), with a TTL to come and
# one past (lazily expired by the read), a hash, a list held cold (a bytes entry), a missing key.
KEYS = [b"plain", b"empty", b"appended", b"ttl", b"expired", b"hash", b"cold", b"missing"]


def test_mget_answers_the_same_through_c_and_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_speedups()
    replies = {}
    for path in ("c", "python"):
        if path == "python":
            monkeypatch.setattr(respq.keyspace, "_read_slots", None)
        ctx = bare_context(tmp_path / path)
        engine = ctx.engine
        execute(ctx, [b"SET", b"plain", b"p" * 100])
        execute(ctx, [b"SET", b"empty", b""])
        execute(ctx, [b"SET", b"appended", b"a"])
        execute(ctx, [b"APPEND", b"appended", b"bc"])
        execute(ctx, [b"SET", b"ttl", b"t", b"EX", b"1000"])
        execute(ctx, [b"SET", b"expired", b"gone"])
        engine.set_expire(0, b"expired", now_ms() - 1)
        execute(ctx, [b"HSET", b"hash", b"f", b"v"])
        push_keys(engine, 0, RIGHT, [(b"cold", [b"v"])])
        assert type(engine.catalog[0][b"cold"]) is bytes
        rng = random.Random(5)
        answers = [execute(ctx, [b"MGET", *rng.choices(KEYS, k=rng.randrange(1, 12))]) for _ in range(200)]
        answers.append(execute(ctx, [b"MGET", *KEYS]))
        replies[path] = (answers, sorted(engine.catalog[0]))
        engine.close()
    assert replies["c"] == replies["python"]
    assert replies["c"][0][-1] == [b"p" * 100, b"", b"abc", b"t", None, None, None, None]
    assert b"expired" not in replies["c"][1]


def test_read_slots_reads_strings_without_expiry_and_gives_up_on_anything_else(tmp_path: Path) -> None:
    read_slots = require_speedups().read_slots
    ctx = bare_context(tmp_path)
    execute(ctx, [b"SET", b"a", b"1"])
    execute(ctx, [b"SET", b"b", b"2"])
    execute(ctx, [b"APPEND", b"b", b"3"])
    execute(ctx, [b"SET", b"ttl", b"t", b"EX", b"1000"])
    execute(ctx, [b"HSET", b"h", b"f", b"v"])
    catalog = ctx.engine.catalog[0]
    expire = respq.keyspace.CatalogEntry.expire_ms
    found = read_slots(catalog, [b"a", b"x", b"b", b"a"], StringValue, DATA_SLOT, expire)
    assert found == [b"1", None, b"23", b"1"] and type(found[2]) is bytes
    assert read_slots(catalog, [], StringValue, DATA_SLOT, expire) == []
    for other in (b"ttl", b"h"):
        assert read_slots(catalog, [b"a", other], StringValue, DATA_SLOT, expire) is None
    for args in [
        (catalog, (b"a",), StringValue, DATA_SLOT, expire),  # keys not a list
        (list(catalog.items()), [b"a"], StringValue, DATA_SLOT, expire),  # not a dict
        (catalog, [b"a"], StringValue, StringValue.data, expire),  # a property, not a slot
        (catalog, [b"a"], int, DATA_SLOT, expire),  # a slot of another type
        (catalog, [[b"unhashable"]], StringValue, DATA_SLOT, expire),
        (catalog, [b"a"], StringValue, DATA_SLOT),
    ]:
        with pytest.raises(TypeError):
            read_slots(*args)
    ctx.engine.close()
