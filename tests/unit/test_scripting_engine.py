"""The script engine without a server: shebang parsing, the random generator, the cache, and a script's writes
journaled as one group (compat-tests/cases/scripting.redis compares the replies with
redis-server; tests/server/test_scripting.py covers BUSY, SCRIPT KILL and crashes)."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from respq.commands.context import Context
from respq.commands.dispatch import execute
from respq.errors import CommandError
from respq.replies import ErrorReply, Raw
from respq.scripting.engine import ALLOW_OOM, EVAL_COMPAT, NO_WRITES, RAND_MAX, parse_shebang, sha1hex
from tests.unit.contexts import bare_context


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    context = bare_context(tmp_path / "data")
    try:
        yield context
    finally:
        context.engine.close()


def test_shebang_flags_and_the_length_kept_out_of_the_code() -> None:
    assert parse_shebang(b"return 1") == (EVAL_COMPAT, 0)
    assert parse_shebang(b"#!lua\nreturn 1") == (0, 5)
    assert parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1") == (NO_WRITES | ALLOW_OOM, 31)
    for body, error in [
        (b"#!lua", b"ERR Invalid script shebang"),
        (b"#!python\n", b"ERR Unexpected engine in script shebang: #!python"),
        (b"#!lua flags=bogus\n", b"ERR Unexpected flag in script shebang: bogus"),
        (b"#!lua x=1\n", b"ERR Unknown lua shebang option: x=1"),
    ]:
        with pytest.raises(CommandError) as raised:
            parse_shebang(body)
        assert raised.value.message == error


def test_math_random_is_the_c_library_s_lrand48(ctx: Context) -> None:
    """Redis replaced math.random with lrand48 so that a seed gives the same numbers everywhere: the C library's
    own lrand48 is the oracle."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.lrand48.restype = ctypes.c_long
    body = b"math.randomseed(ARGV[1]) local t = {} for i = 1, 5 do t[i] = tostring(math.random()) end return t"
    for seed in (0, 42, -7):
        libc.srand48(ctypes.c_long(seed))
        expected = [b"%.14g" % ((libc.lrand48() % RAND_MAX) / RAND_MAX) for _ in range(5)]
        reply = execute(ctx, [b"EVAL", body, b"0", str(seed).encode()])
        assert reply == Raw(b"*5\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(v), v) for v in expected))


def test_scripts_are_cached_by_digest_and_flushed(ctx: Context) -> None:
    body = b"return 'cached'"
    sha = execute(ctx, [b"SCRIPT", b"LOAD", body])
    assert sha == sha1hex(body)
    assert execute(ctx, [b"SCRIPT", b"EXISTS", sha, sha.upper(), b"x"]) == [1, 1, 0]
    assert execute(ctx, [b"EVALSHA", sha, b"0"]) == Raw(b"$6\r\ncached\r\n")
    assert execute(ctx, [b"SCRIPT", b"FLUSH"]).text == b"OK"
    reply = execute(ctx, [b"EVALSHA", sha, b"0"])
    assert reply == ErrorReply(b"NOSCRIPT No matching script. Please use EVAL.")


def test_a_script_s_writes_are_one_journal_record(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = ctx.engine.journal
    appended: list[int] = []
    append, append_many = journal.append, journal.append_many
    monkeypatch.setattr(journal, "append", lambda op, payload: appended.append(op) or append(op, payload))
    monkeypatch.setattr(journal, "append_many", lambda op, payloads: appended.append(op) or append_many(op, payloads))
    body = b"for i = 1, 50 do redis.call('set', 'k' .. i, i) redis.call('rpush', 'l', i) end return 1"
    assert execute(ctx, [b"EVAL", body, b"0"]) == Raw(b":1\r\n")
    assert len(appended) == 1  # one batch record: all 100 writes, or none after a crash
    assert execute(ctx, [b"LLEN", b"l"]) == 50
    assert execute(ctx, [b"EVAL", b"redis.call('set', 'a', 1) error('stop')", b"0"]).message.startswith(b"ERR ")
    assert execute(ctx, [b"GET", b"a"]) == b"1"  # writes before an error stay, as in Redis
