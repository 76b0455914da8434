"""The only ways two replies may differ and still count as equal. Each is named, says why, and is allowed only for
the commands listed with it; a case that asks for one on another command is rejected when it is parsed.

A normalization maps one parsed reply to a canonical one; both servers' replies go through it and are then compared
byte for byte, so a reply the normalization does not recognise passes through unchanged and still has to match.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from resp_wire import CLOSED, NO_REPLY, Node, encode, parse


@dataclass(frozen=True)
class Normalization:
    name: str
    commands: frozenset[str]  # "name" or "container subcommand", lowercase
    why: str
    apply: Callable[[Node], Node]


def _placeholder(node: Node, text: bytes) -> Node:
    return Node(node.kind, text)


def _map_field(node: Node, fields: dict[bytes, Callable[[Node], Node]]) -> Node:
    """Rewrites the values of the named fields of a map (RESP3) or flat key/value array (RESP2)."""
    if node.kind not in "%*" or not isinstance(node.value, list) or len(node.value) % 2:
        return node
    rewritten: list[Node] = []
    for key, value in node.pairs():
        rule = fields.get(key.value) if isinstance(key.value, bytes) else None
        rewritten += [key, rule(value) if rule else value]
    return Node(node.kind, rewritten)


def _client_id(node: Node) -> Node:
    if node.kind == ":" and isinstance(node.value, bytes) and node.value.isdigit() and int(node.value) > 0:
        return _placeholder(node, b"<client-id>")
    return _map_field(node, {b"id": _client_id}) if node.kind in "%*" else node


def _server_version(node: Node) -> Node:
    def version(value: Node) -> Node:
        if isinstance(value.value, bytes) and re.fullmatch(rb"\d+\.\d+\.\d+", value.value):
            return _placeholder(value, b"<server-version>")
        return value

    return _map_field(node, {b"version": version})


# Sections whose field names are compared. None: every field; a tuple: just these fields must be present (the
# rest of the section is Redis internals no client reads). Headers of all other sections are still compared.
INFO_FIELDS_COMPARED: dict[str, tuple[str, ...] | None] = {
    "server": None,
    "clients": None,
    "replication": None,
    "keyspace": None,
    "persistence": ("loading", "async_loading", "aof_enabled"),
}


def _info_values(node: Node) -> Node:
    if node.kind not in "$=" or not isinstance(node.value, bytes):
        return node
    text = node.value
    prefix = b""
    if node.kind == "=":
        prefix, text = text[:4], text[4:]  # "txt:"
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.decode("latin-1").split("\r\n"):
        if line.startswith("# "):
            current = sections.setdefault(line[2:], [])
        elif ":" in line and current is not None and not line.startswith("respq_"):
            # respq_* fields are respq's own additions (respq_version, storage figures), documented in commands.md.
            current.append(line.split(":", 1)[0])
    canonical = [f"headers: {', '.join(sorted(sections))}"]
    for header in sorted(sections):
        wanted = INFO_FIELDS_COMPARED.get(header.lower(), ())
        present = sorted(sections[header]) if wanted is None else [f for f in wanted if f in sections[header]]
        if present:
            canonical.append(f"{header}: {', '.join(present)}")
    return Node(node.kind, prefix + "\n".join(canonical).encode("latin-1"))


def _time(node: Node) -> Node:
    items = node.value if node.kind == "*" and isinstance(node.value, list) else []
    if len(items) != 2 or not all(isinstance(i.value, bytes) and i.value.isdigit() for i in items):
        return node
    seconds, micros = int(items[0].value), int(items[1].value)  # type: ignore[arg-type]
    if abs(seconds - time.time()) > 60 or micros >= 1_000_000:
        return node
    return Node("*", [_placeholder(items[0], b"<unix-seconds>"), _placeholder(items[1], b"<microseconds>")])


def _unordered(node: Node) -> Node:
    if not isinstance(node.value, list) or node.kind not in "*~":
        return node
    children = [_unordered(child) for child in node.value]
    if all(not isinstance(child.value, list) for child in children):
        children.sort(key=encode)
    return Node(node.kind, children)


def _is_pair(node: Node) -> bool:
    return node.kind == "*" and isinstance(node.value, list) and len(node.value) == 2


def _unordered_pairs(node: Node) -> Node:
    if not isinstance(node.value, list) or node.kind not in "*%":
        return node
    items = node.value
    if node.kind == "*" and len(items) == 2 and items[0].kind == "$" and isinstance(items[1].value, list):
        return Node("*", [items[0], _unordered_pairs(items[1])])  # HSCAN: the cursor, then field, value, ...
    if node.kind == "*" and items and all(_is_pair(item) for item in items):  # RESP3 [field, value] arrays
        return Node("*", sorted(items, key=encode))
    if len(items) % 2:
        return node
    pairs = sorted(node.pairs(), key=lambda pair: encode(pair[0]) + encode(pair[1]))
    return Node(node.kind, [item for pair in pairs for item in pair])


def _positive_ttl(node: Node) -> Node:
    if node.kind == ":" and isinstance(node.value, bytes) and node.value.isdigit() and int(node.value) > 0:
        return _placeholder(node, b"<positive>")
    return node


def _small_count(node: Node) -> Node:
    if node.kind == ":" and isinstance(node.value, bytes) and node.value in (b"0", b"1"):
        return _placeholder(node, b"<0 or 1>")
    return node


def _stream_id(node: Node) -> Node:
    if isinstance(node.value, list):
        return Node(node.kind, [_stream_id(child) for child in node.value])
    if node.kind == "$" and isinstance(node.value, bytes) and re.fullmatch(rb"\d+-\d+", node.value):
        return _placeholder(node, b"<stream-id>")
    return node


# CLIENT INFO / LIST fields whose values are facts about the connection both servers must agree on; the rest
# (ids, addresses, ages, buffer sizes) are reduced to their names.
CLIENT_FIELDS_COMPARED = frozenset({"name", "flags", "db", "sub", "psub", "ssub", "multi", "cmd", "user", "resp"})


def _client_fields(node: Node) -> Node:
    if node.kind not in "$=" or not isinstance(node.value, bytes):
        return node
    prefix, text = (node.value[:4], node.value[4:]) if node.kind == "=" else (b"", node.value)
    lines = []
    for line in text.decode("latin-1").splitlines():
        fields = [f.split("=", 1) for f in line.split(" ") if "=" in f]
        lines.append(" ".join(k if k not in CLIENT_FIELDS_COMPARED else f"{k}={v}" for k, v in fields))
    return Node(node.kind, prefix + "\n".join(sorted(lines)).encode("latin-1"))


def _acl_log(node: Node) -> Node:
    """ACL LOG entries: an entry's age and its client's id, address and buffers are each server's own; the
    count, reason, context, object, username and the client's state must match."""
    if node.kind != "*" or not isinstance(node.value, list):
        return node
    fields = {b"age-seconds": lambda value: _placeholder(value, b"<age>"), b"client-info": _client_fields}
    return Node("*", [_map_field(entry, fields) for entry in node.value])


def _genpass(node: Node) -> Node:
    """A random password: only its length and its lowercase hexadecimal alphabet are comparable."""
    if node.kind == "$" and isinstance(node.value, bytes) and re.fullmatch(rb"[0-9a-f]*", node.value):
        return _placeholder(node, b"<%d hex digits>" % len(node.value))
    return node


def _help_text(node: Node) -> Node:
    # The wording is each server's own; what clients rely on is a non-empty list of status lines.
    if node.kind == "*" and isinstance(node.value, list) and node.value and all(c.kind == "+" for c in node.value):
        return Node("*", [Node("+", b"<help lines>")])
    return node


def _command_entry(node: Node) -> Node:
    """A COMMAND INFO entry as is, but for its subcommands' order: Redis lists them in its dict's hash order, which
    changes with each process (compat-tests/test_command_metadata.py compares them one by one)."""
    if node.kind != "*" or not isinstance(node.value, list) or len(node.value) != 10:
        return node
    subcommands = node.value[9]
    if not isinstance(subcommands.value, list):
        return node
    ordered = sorted((_command_entry(sub) for sub in subcommands.value), key=encode)
    return Node("*", [*node.value[:9], Node(subcommands.kind, ordered)])


def _is_docs(node: Node) -> bool:
    """A COMMAND DOCS reply: a map (RESP3) or flat array (RESP2) of command name -> doc map."""
    if node.kind not in "%*" or not isinstance(node.value, list) or not node.value or len(node.value) % 2:
        return False
    return all(name.kind == "$" and name.value is not None and doc.kind in "%*" for name, doc in node.pairs())


# COMMAND DOCS fields each server words in its own way (respq's docs/commands.md is generated from them).
_OWN_WORDING = frozenset({b"summary", b"complexity"})


def _doc_entry(node: Node) -> Node:
    """One command's docs as is, but for the wording of its summary and complexity and its subcommands' order."""
    if not isinstance(node.value, list):
        return node
    fields: list[Node] = []
    for key, value in node.pairs():
        if key.value in _OWN_WORDING and value.kind == "$":
            value = Node("$", b"<own wording>")
        elif key.value == b"subcommands" and isinstance(value.value, list):
            subs = sorted(((name, _doc_entry(doc)) for name, doc in value.pairs()), key=lambda pair: encode(pair[0]))
            value = Node(value.kind, [child for pair in subs for child in pair])
        fields += [key, value]
    return Node(node.kind, fields)


def _command_structure(node: Node) -> Node:
    if node.kind == ":":
        return _placeholder(node, b"<count>")  # COMMAND COUNT: respq implements fewer commands by design
    if _is_docs(node):
        return Node(node.kind, [child for name, doc in node.pairs() for child in (name, _doc_entry(doc))])
    if node.kind == "*" and isinstance(node.value, list):
        if node.value and all(child.kind == "$" and child.value is not None for child in node.value):  # COMMAND LIST
            return _placeholder(Node("*", None), b"<command names>")
        return Node("*", [_command_entry(entry) for entry in node.value])
    return node


_MONITOR_LINE = re.compile(rb"\d+\.\d{6} \[(\d+) (lua|unix:\S+|\S+:\d+)\] (.*)", re.DOTALL)


def _monitor_line(node: Node) -> Node:
    """``+<unix>.<usec> [<db> <addr>] "cmd" ...``: the time and the client's port differ, the rest must match."""
    match = _MONITOR_LINE.fullmatch(node.value) if node.kind == "+" and isinstance(node.value, bytes) else None
    if match is None:
        return node
    origin = match.group(2) if match.group(2) == b"lua" else b"<addr>"
    return Node("+", b"<time> [" + match.group(1) + b" " + origin + b"] " + match.group(3))


def _slowlog_entries(node: Node) -> Node:
    """SLOWLOG GET entries: id, argv and client name must match; time, duration and address are each server's."""
    if node.kind != "*" or not isinstance(node.value, list):
        return node
    entries = []
    for entry in node.value:
        items = entry.value if entry.kind == "*" and isinstance(entry.value, list) else None
        if items is None or len(items) != 6:
            return node
        entries.append(Node("*", [items[0], _placeholder(items[1], b"<time>"), _placeholder(items[2], b"<usec>"),
                                  items[3], _placeholder(items[4], b"<addr>"), items[5]]))
    return Node("*", entries)


def _numbers(node: Node) -> Node:
    """Every integer and double replaced by a placeholder of its kind; names, nesting and order kept."""
    if isinstance(node.value, list):
        return Node(node.kind, [_numbers(child) for child in node.value])
    if node.kind in ":,":
        return _placeholder(node, b"<number>")
    if node.kind == "$" and isinstance(node.value, bytes) and re.fullmatch(rb"-?\d+(\.\d+)?(e[+-]?\d+)?", node.value):
        return _placeholder(node, b"<number>")  # a RESP2 double
    return node


def _report_text(node: Node) -> Node:
    if node.kind in "$=" and isinstance(node.value, bytes) and node.value:
        return _placeholder(node, b"txt:<report>" if node.kind == "=" else b"<report>")
    return node


def _latency_histogram(node: Node) -> Node:
    """LATENCY HISTOGRAM: the commands and their call counts must match; the buckets hold each server's timings."""
    if node.kind not in "%*" or not isinstance(node.value, list) or len(node.value) % 2:
        return node
    out: list[Node] = []
    for name, detail in sorted(node.pairs(), key=lambda pair: encode(pair[0])):  # Redis lists them in hash order
        out += [name, _map_field(detail, {b"histogram_usec": lambda value: _placeholder(value, b"<buckets>")})]
    return Node(node.kind, out)


NORMALIZATIONS: dict[str, Normalization] = {
    n.name: n
    for n in (
        Normalization("client-id", frozenset({"client id", "hello"}),
                      "connection ids count every connection a server ever accepted", _client_id),
        Normalization("server-version", frozenset({"hello"}),
                      "respq reports its own version in HELLO", _server_version),
        Normalization("info-values", frozenset({"info"}),
                      "INFO values are counters and process facts; section headers and field names must match",
                      _info_values),
        Normalization("time", frozenset({"time"}),
                      "the clock moves; both replies must be the current time as [seconds, microseconds]", _time),
        Normalization("acl-log", frozenset({"acl log"}),
                      "an entry's age and its client's id, address and buffers are each server's own", _acl_log),
        Normalization("genpass", frozenset({"acl genpass"}),
                      "passwords are random: compare length and alphabet", _genpass),
        Normalization("unordered",
                      frozenset({"acl cat", "keys", "scan", "pubsub channels", "pubsub shardchannels", "hkeys", "hvals",
                                 "hrandfield", "smembers", "sinter", "sunion", "sdiff", "srandmember", "spop",
                                 "sscan", "zrandmember"}),
                      "Redis returns these in hash-table order (hashes no longer listpacks, sets no longer intsets)",
                      _unordered),
        Normalization("unordered-pairs",
                      frozenset({"config get", "hgetall", "hscan", "hrandfield", "zscan", "zrandmember"}),
                      "CONFIG GET, and hashes no longer listpacks, return pairs in hash-table order",
                      _unordered_pairs),
        Normalization("positive-ttl", frozenset({"ttl", "pttl", "expiretime", "pexpiretime"}),
                      "a remaining or absolute time depends on when each server ran the command; -1/-2 must match",
                      _positive_ttl),
        Normalization("small-count", frozenset({"object idletime"}),
                      "Redis's idle time is whole seconds of a clock that may tick between two commands; respq "
                      "answers 0 (it keeps no access times)", _small_count),
        Normalization("stream-id", frozenset({"xadd"}),
                      "auto-generated stream ids come from each server's clock", _stream_id),
        Normalization("client-fields", frozenset({"client info", "client list"}),
                      "ids, addresses, ages and buffer sizes differ; compare field names and connection state",
                      _client_fields),
        Normalization("help-text",
                      frozenset({"client help", "config help", "pubsub help", "command help", "object help",
                                 "xinfo help", "xgroup help", "memory help", "acl help", "debug help", "slowlog help",
                                 "latency help"}),
                      "HELP wording is each server's own text", _help_text),
        Normalization("monitor-line", frozenset({"monitor"}),
                      "a MONITOR line starts with the time and the client's address: each server's own",
                      _monitor_line),
        Normalization("slowlog-entries", frozenset({"slowlog get"}),
                      "an entry's time, duration and client address are each server's own", _slowlog_entries),
        Normalization("numbers", frozenset({"latency latest", "latency history", "memory stats", "lastsave"}),
                      "times, latencies and memory figures are each server's own; names and shape must match",
                      _numbers),
        Normalization("report-text",
                      frozenset({"latency doctor", "latency graph", "memory doctor", "memory malloc-stats"}),
                      "reports written for people, in each server's own words and figures", _report_text),
        Normalization("latency-histogram", frozenset({"latency histogram"}),
                      "the buckets depend on each server's timings, and Redis lists commands in hash order; the "
                      "commands and their calls must match",
                      _latency_histogram),
        Normalization("command-structure",
                      frozenset({"command info", "command docs", "command count", "command list"}),
                      "subcommands come in Redis's per-process hash order, summaries and complexities are each "
                      "server's own wording; COUNT and LIST differ by the commands respq does not implement "
                      "(test_command_metadata.py checks them)",
                      _command_structure),
    )
}


def command_names(args: list[bytes]) -> set[str]:
    """The names a normalization's command list may use for this command: "name" and "name subcommand"."""
    if not args:
        return set()
    name = args[0].decode("latin-1").lower()
    names = {name}
    if len(args) > 1:
        names.add(f"{name} {args[1].decode('latin-1').lower()}")
    return names


def allowed(norm_name: str, args: list[bytes]) -> bool:
    return bool(NORMALIZATIONS[norm_name].commands & command_names(args))


def normalize(reply: bytes, norm_names: tuple[str, ...]) -> bytes:
    if not norm_names or reply in (CLOSED, NO_REPLY):
        return reply
    node = parse(reply)
    for name in norm_names:
        node = NORMALIZATIONS[name].apply(node)
    return encode(node)
