"""COMMAND INFO, DOCS, COUNT and LIST against redis-server 7.0.15, for every command respq implements, RESP2 and RESP3.

COMMAND INFO must match byte for byte, field by field; COMMAND DOCS too, but for the summary and the complexity, which
are respq's own wording (its table's, that docs/commands.md is generated from). Subcommands are compared by name:
Redis lists them in the hash order of its command dict, which changes with each process. COUNT and LIST may differ
only by the commands respq does not implement, and by respq's extensions (commands of later Redis versions).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from resp_wire import Connection, Node, encode, parse

from conftest import ServerProcess
from respq.commands.modules import load_all
from respq.commands.table import Command

INFO_FIELDS = ("name", "arity", "flags", "first key", "last key", "step", "ACL categories", "tips", "key specs")
OWN_WORDING = (b"summary", b"complexity")  # present where Redis has them, worded by respq


@pytest.fixture
def servers(respq_server: ServerProcess, redis_oracle: ServerProcess) -> Iterator[tuple[Connection, Connection]]:
    redis_conn = Connection("127.0.0.1", redis_oracle.port, timeout=10)
    respq_conn = Connection("127.0.0.1", respq_server.port, timeout=10)
    try:
        yield redis_conn, respq_conn
    finally:
        redis_conn.close()
        respq_conn.close()


def _calls(conn: Connection, calls: list[list[bytes]]) -> list[Node]:
    """Replies to pipelined calls (one write), parsed."""
    for args in calls:
        conn.send(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    return [parse(conn.read_reply()) for _ in calls]


def _names(conn: Connection) -> list[bytes]:
    return [name.value for name in parse(conn.call("COMMAND", "LIST")).items]  # type: ignore[misc]


def _show(node: Node) -> str:
    return repr(encode(node))[2:-1]


def _compare_info(name: str, theirs: Node, mine: Node, out: list[str]) -> None:
    if theirs.value is None or mine.value is None:
        if encode(theirs) != encode(mine):
            out.append(f"{name}: redis {_show(theirs)}\n  respq {_show(mine)}")
        return
    for field, a, b in zip(INFO_FIELDS, theirs.items, mine.items, strict=False):
        if encode(a) != encode(b):
            out.append(f"{name} {field}:\n  redis {_show(a)}\n  respq {_show(b)}")
    a_subs, b_subs = theirs.items[9], mine.items[9]
    if a_subs.kind != b_subs.kind:
        out.append(f"{name} subcommands: redis type {a_subs.kind}, respq {b_subs.kind}")
    a_by_name = {sub.items[0].value: sub for sub in a_subs.items}
    b_by_name = {sub.items[0].value: sub for sub in b_subs.items}
    for sub_name in sorted(a_by_name.keys() & b_by_name.keys()):  # type: ignore[type-var]
        _compare_info(sub_name.decode(), a_by_name[sub_name], b_by_name[sub_name], out)  # type: ignore[union-attr]


def _compare_docs(name: str, theirs: Node, mine: Node, implemented: set[bytes], out: list[str]) -> None:
    if theirs.kind != mine.kind:
        out.append(f"{name}: redis type {theirs.kind}, respq {mine.kind}")
        return
    a_fields, b_fields = dict((k.value, v) for k, v in theirs.pairs()), dict((k.value, v) for k, v in mine.pairs())
    if list(a_fields) != list(b_fields):
        out.append(f"{name} fields: redis {list(a_fields)}, respq {list(b_fields)}")
    for field in a_fields.keys() & b_fields.keys():
        a, b = a_fields[field], b_fields[field]
        if field in OWN_WORDING:
            if a.kind != b.kind:
                out.append(f"{name} {field!r}: redis type {a.kind}, respq {b.kind}")
        elif field == b"subcommands":
            a_subs = {k.value: v for k, v in a.pairs() if k.value in implemented}
            b_subs = {k.value: v for k, v in b.pairs()}
            for sub_name in sorted(a_subs.keys() & b_subs.keys()):  # type: ignore[type-var]
                _compare_docs(sub_name.decode(), a_subs[sub_name], b_subs[sub_name], implemented, out)  # type: ignore[union-attr]
        elif encode(a) != encode(b):
            out.append(f"{name} {field.decode()}:\n  redis {_show(a)}\n  respq {_show(b)}")  # type: ignore[union-attr]


@pytest.mark.parametrize("protocol", [2, 3])
def test_info_and_docs_are_redis_s(servers: tuple[Connection, Connection], protocol: int) -> None:
    redis_conn, respq_conn = servers
    for conn in servers:
        conn.call("HELLO", str(protocol))
    theirs = set(_names(redis_conn))
    compared = [name for name in _names(respq_conn) if name in theirs]
    assert len(compared) > 250, compared  # commands and subcommands
    out: list[str] = []
    info_calls = [[b"COMMAND", b"INFO", name] for name in compared]
    for name, a, b in zip(compared, _calls(redis_conn, info_calls), _calls(respq_conn, info_calls), strict=True):
        _compare_info(name.decode(), a.items[0], b.items[0], out)
    implemented = set(compared)
    docs_calls = [[b"COMMAND", b"DOCS", name] for name in compared]
    for name, a, b in zip(compared, _calls(redis_conn, docs_calls), _calls(respq_conn, docs_calls), strict=True):
        if a.kind != b.kind or len(a.items) != len(b.items) != 2:
            out.append(f"{name.decode()}: redis {_show(a)[:200]}\n  respq {_show(b)[:200]}")
            continue
        _compare_docs(name.decode(), a.items[1], b.items[1], implemented, out)
    out = list(dict.fromkeys(out))  # a subcommand is compared alone and under its parent
    assert not out, f"{len(out)} differences:\n" + "\n".join(out)


def _table() -> list[Command]:
    return [cmd for top in load_all().values() for cmd in (top, *top.subcommands.values())]


def _list(conn: Connection, *filterby: str) -> set[bytes]:
    reply = parse(conn.call("COMMAND", "LIST", *(("FILTERBY", *filterby) if filterby else ())))
    return {name.value for name in reply.items}  # type: ignore[misc]


@pytest.mark.parametrize("protocol", [2, 3])
def test_count_and_list_differ_only_by_unimplemented_commands(
    servers: tuple[Connection, Connection], protocol: int
) -> None:
    redis_conn, respq_conn = servers
    for conn in servers:
        conn.call("HELLO", str(protocol))
    theirs, mine = _list(redis_conn), _list(respq_conn)
    extensions = mine - theirs
    # CLIENT SETINFO and NO-TOUCH are Redis 7.2's; CLUSTERX is Kvrocks's (the slot map's commands).
    assert extensions == {cmd.name.encode() for cmd in _table() if cmd.extension}
    categories = [c.value.decode() for c in parse(redis_conn.call("ACL", "CAT")).items]  # type: ignore[union-attr]
    filters = [("ACLCAT", category) for category in categories] + [
        ("PATTERN", pattern) for pattern in ("*", "x*", "client|*", "*|help", "?et", "CLIENT*", "[a-c]*", "nosuch*")
    ]
    filters.append(("MODULE", "nosuchmodule"))
    out = []
    for filterby in filters:
        expected = _list(redis_conn, *filterby) & mine
        got = _list(respq_conn, *filterby) - extensions
        if got != expected:
            missing, extra = sorted(expected - got), sorted(got - expected)
            out.append(f"FILTERBY {' '.join(filterby)}: missing {missing}, extra {extra}")
    assert not out, "\n".join(out)
    redis_count = int(parse(redis_conn.call("COMMAND", "COUNT")).value)  # type: ignore[arg-type]
    respq_count = int(parse(respq_conn.call("COMMAND", "COUNT")).value)  # type: ignore[arg-type]
    top_level = {name for name in mine if b"|" not in name}
    assert respq_count == len(top_level)
    unimplemented = {name for name in theirs if b"|" not in name} - top_level
    assert redis_count - len(unimplemented) + len({name for name in extensions if b"|" not in name}) == respq_count


def _plain(node: Node) -> object:
    if node.kind == "%":
        return {key.value.decode(): _plain(value) for key, value in node.pairs()}  # type: ignore[union-attr]
    if isinstance(node.value, list):
        return [_plain(child) for child in node.value]
    return node.value.decode() if isinstance(node.value, bytes) else node.value


class _LineMaker:
    """A command line from Redis's COMMAND DOCS arguments: keys k1, k2, ...; two of each repeatable argument (two
    keys where a numkeys-like count says 2); with ``optional`` every optional argument too, first choice of each
    oneof. Not always a valid call, but one both servers must find the same keys in."""

    def __init__(self, optional: bool) -> None:
        self.optional, self.keys = optional, 0

    def line(self, arguments: list[dict]) -> list[str]:  # type: ignore[type-arg]
        return [
            word
            for argument in arguments
            if self.optional or "optional" not in argument.get("flags", [])
            for word in self.argument(argument)
        ]

    def argument(self, argument: dict) -> list[str]:  # type: ignore[type-arg]
        kind = argument["type"]
        words = [argument["token"]] if "token" in argument else []
        if kind == "pure-token":
            return words
        repeat = 2 if "multiple" in argument.get("flags", []) else 1
        for _ in range(repeat):
            if kind == "key":
                self.keys += 1
                words.append(f"k{self.keys}")
            elif kind == "oneof":
                words += self.argument(argument["arguments"][0])
            elif kind == "block":
                words += self.line(argument["arguments"])
            elif kind == "integer":
                words.append("2" if argument["name"] in ("numkeys", "count") else "1")
            else:
                words.append({"double": "1.5", "unix-time": "100", "pattern": "p*"}.get(kind, "v"))
        return words


@pytest.mark.parametrize("optional", [False, True], ids=["required", "all-options"])
def test_keys_and_flags_of_every_command_are_redis_s(servers: tuple[Connection, Connection], optional: bool) -> None:
    """COMMAND GETKEYS and GETKEYSANDFLAGS on a line made for each command with keys: respq's key finders and the
    flags it gives each key must agree with Redis's key specs and key finders."""
    redis_conn, respq_conn = servers
    for conn in servers:
        conn.call("HELLO", "3")
    mine = _list(respq_conn)
    docs = _plain(parse(redis_conn.call("COMMAND", "DOCS", *(name.decode() for name in sorted(mine)))))
    calls = []
    for name, doc in docs.items():  # type: ignore[union-attr]
        info = parse(redis_conn.call("COMMAND", "INFO", name)).items[0]
        if not info.items[8].items or "arguments" not in doc:  # no key specs: nothing to find
            continue
        line = [word.encode() for word in name.split("|") + _LineMaker(optional).line(doc["arguments"])]
        calls += [[b"COMMAND", b"GETKEYS", *line], [b"COMMAND", b"GETKEYSANDFLAGS", *line]]
    assert len(calls) > 300, len(calls)  # commands with keys, each asked twice
    out = [
        f"{b' '.join(call).decode()}:\n  redis {_show(a)}\n  respq {_show(b)}"
        for call, a, b in zip(calls, _calls(redis_conn, calls), _calls(respq_conn, calls), strict=True)
        if encode(a) != encode(b)
    ]
    assert not out, f"{len(out)} differences:\n" + "\n".join(out)
