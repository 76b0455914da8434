"""Differential runner: play one scenario against Redis (the oracle) and respq over raw sockets, compare every reply.

Scenario files (cases/*.redis) hold blocks separated by blank lines; each block is one test, run once over RESP2
and once over RESP3 (every connection then starts with HELLO 3). See README.md in this folder for the syntax.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from normalizations import NORMALIZATIONS, allowed, normalize
from resp_wire import CLOSED, NO_REPLY, Connection, encode_command, parse
from version_differences import RESPQ_TARGET, Version, expected_form, is_listed, parse_version, respq_version

DEFAULT_CLIENT = "main"
WAIT_TIMEOUT = 10.0
REPLY_TIMEOUT = 5.0  # per reply, and for a close to arrive
HELLO_NORMS = ("client-id", "server-version")


class ScenarioError(Exception):
    """The case itself is malformed, or the oracle did not behave as the case assumes."""


class Divergence(AssertionError):
    """respq answered differently from Redis."""


# ---------------------------------------------------------------------------------------------------------------
# Parsing case files

_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "b": b"\b", "a": b"\a", "\\": b"\\", '"': b'"'}


_GENERATED = re.compile(r"@gen:(\d+):(\d+)")
GENERATED_LINE = 16  # bytes of generated value per line of text: "SSSSS:OOOOOOOOO\n", seed and offset
GENERATED_MAX = 512 << 20  # proto-max-bulk-len's default; offsets keep their nine digits


def generated_value(size: int, seed: int) -> bytes:
    """``size`` bytes for ``@gen:SIZE:SEED``: lines of 16 bytes naming the seed and their own offset, so values of
    different seeds differ and a piece of one, cut or shifted, says where it came from."""
    if not 0 <= seed <= 99999 or not 0 <= size <= GENERATED_MAX:
        raise ScenarioError(f"@gen:{size}:{seed}: SIZE up to {GENERATED_MAX}, SEED up to 99999")
    lines = b"".join(b"%5d:%09d\n" % (seed, offset) for offset in range(0, size, GENERATED_LINE))
    return lines[:size]


def split_args(line: str) -> list[bytes]:
    """Splits a line like redis-cli does: double quotes take \\xHH, \\r, \\n... escapes; single quotes only \\'.
    An unquoted ``@gen:SIZE:SEED`` stands for ``generated_value(SIZE, SEED)`` (quoted, it is the text itself)."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            return args
        current = bytearray()
        if line[i] == '"':
            i += 1
            while True:
                if i >= n:
                    raise ScenarioError(f"unbalanced double quote in: {line}")
                char = line[i]
                if char == "\\" and i + 3 < n and line[i + 1] == "x" and _is_hex(line[i + 2 : i + 4]):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 4
                elif char == "\\" and i + 1 < n:
                    current += _ESCAPES.get(line[i + 1], line[i + 1].encode())
                    i += 2
                elif char == '"':
                    i += 1
                    break
                else:
                    current += char.encode()
                    i += 1
        elif line[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise ScenarioError(f"unbalanced single quote in: {line}")
                if line.startswith("\\'", i):
                    current += b"'"
                    i += 2
                elif line[i] == "'":
                    i += 1
                    break
                else:
                    current += line[i].encode()
                    i += 1
        else:
            while i < n and not line[i].isspace():
                current += line[i].encode()
                i += 1
            generated = _GENERATED.fullmatch(current.decode("utf-8", "replace"))
            args.append(generated_value(int(generated[1]), int(generated[2])) if generated else bytes(current))
            continue
        if i < n and not line[i].isspace():
            raise ScenarioError(f"a closing quote must be followed by a space in: {line}")
        args.append(bytes(current))


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


@dataclass
class Step:
    line: int
    client: str
    action: str  # command | send | read | raw | send-raw | wait | closed
    args: list[bytes] = field(default_factory=list)
    norms: tuple[str, ...] = ()
    text: str = ""  # the command as written, for messages and the version table

    def describe(self) -> str:
        return f"line {self.line} [{self.client}] {self.text or self.action}"


@dataclass
class Block:
    path: Path
    line: int
    title: str
    steps: list[Step]
    protocols: tuple[int, ...] = (2, 3)
    isolated: bool = False
    server_args: tuple[str, ...] = ()

    @property
    def case_id(self) -> str:
        return f"{self.path.name}:{self.line}"

    def commands(self) -> list[list[bytes]]:
        return [step.args for step in self.steps if step.action in ("command", "send")]


_CLIENT_PREFIX = re.compile(r"^\[([\w.-]+)\]\s*(.*)$")
_WAIT_KINDS = {"blocked_clients": 1, "connected_clients": 1, "numsub": 2, "shardnumsub": 2}


def parse_file(path: Path) -> list[Block]:
    blocks: list[Block] = []
    pending: list[tuple[int, str]] = []
    for number, raw in enumerate([*path.read_text(encoding="utf-8").splitlines(), ""], start=1):
        line = raw.strip()
        if line:
            pending.append((number, line))
        elif pending:
            block = parse_block(path, pending)
            if block is not None:
                blocks.append(block)
            pending = []
    return blocks


def parse_block(path: Path, lines: list[tuple[int, str]]) -> Block | None:
    """One block from its non-blank lines; None if it holds only comments."""
    block = Block(path=path, line=lines[0][0], title="", steps=[])
    current_client = DEFAULT_CLIENT
    norms: tuple[str, ...] = ()
    # What each client still owes a reply for, to check normalizations on @read against the right command.
    awaiting: dict[str, deque[list[bytes] | None]] = {}
    last_sent: dict[str, list[bytes]] = {}

    def fail(number: int, message: str) -> ScenarioError:
        return ScenarioError(f"{path.name}:{number}: {message}")

    for number, line in lines:
        if line.startswith("#"):
            if not block.title and not block.steps:
                block.title = line.lstrip("# ")
            continue
        client = current_client
        match = _CLIENT_PREFIX.match(line)
        if match:
            client, line = match.group(1), match.group(2)
        words = split_args(line)
        if not words:
            raise fail(number, "a client prefix needs a command")
        head = words[0].decode("latin-1")
        if not head.startswith("@"):
            step = Step(number, client, "command", words, norms, line)
            _check_norms(step, step.args, fail)
            block.steps.append(step)
            norms = ()
            continue
        directive, rest = head[1:], words[1:]
        text_rest = [w.decode("latin-1") for w in rest]
        if directive == "client":
            if len(rest) != 1:
                raise fail(number, "@client NAME")
            current_client = text_rest[0]
        elif directive == "isolated":
            if block.steps:
                raise fail(number, "@isolated must come before the first command")
            block.isolated, block.server_args = True, tuple(text_rest)
        elif directive == "proto":
            if not rest or any(p not in ("2", "3") for p in text_rest):
                raise fail(number, "@proto 2 and/or 3")
            block.protocols = tuple(int(p) for p in text_rest)
        elif directive == "norm":
            unknown = [name for name in text_rest if name not in NORMALIZATIONS]
            if not rest or unknown:
                raise fail(number, f"@norm needs known normalization names, not {unknown}: {sorted(NORMALIZATIONS)}")
            norms = tuple(text_rest)
            continue  # applies to the next reply
        elif directive == "repeat":
            if len(rest) < 2 or not rest[0].isdigit() or int(rest[0]) < 1:
                raise fail(number, "@repeat N CMD ... ({i} is the iteration, from 1; {K*C} is K bytes C)")
            for iteration in range(1, int(rest[0]) + 1):
                args = [_expand(word, iteration) for word in rest[1:]]
                step = Step(number, client, "command", args, norms, f"{line.split(None, 2)[2]} [i={iteration}]")
                _check_norms(step, step.args, fail)
                block.steps.append(step)
            norms = ()
        elif directive == "send":
            if not rest:
                raise fail(number, "@send CMD ...")
            step = Step(number, client, "send", rest, norms, line.split(None, 1)[1])
            block.steps.append(step)
            awaiting.setdefault(client, deque()).append(rest)
            last_sent[client] = rest
        elif directive == "read":
            if len(rest) > 1:
                raise fail(number, "@read [NAME]")
            reader = text_rest[0] if rest else client
            queue = awaiting.get(reader)
            # A stream (MONITOR) goes on replying to the last command sent once its first reply is read.
            command = queue.popleft() if queue else last_sent.get(reader)
            step = Step(number, reader, "read", [], norms, f"@read {reader}")
            if norms:
                if command is None:
                    raise fail(number, "@norm before @read needs an earlier @send on that client")
                _check_norms(step, command, fail)
            block.steps.append(step)
            norms = ()
        elif directive in ("raw", "send-raw"):
            if len(rest) != 1:
                raise fail(number, f'@{directive} "BYTES" (one quoted argument)')
            block.steps.append(Step(number, client, directive, rest, (), line))
            if directive == "send-raw":
                awaiting.setdefault(client, deque()).append(None)
        elif directive == "wait":
            if not rest or text_rest[0] not in _WAIT_KINDS or len(rest) != 1 + _WAIT_KINDS[text_rest[0]]:
                raise fail(number, "@wait blocked_clients N | connected_clients N | numsub CHANNEL N"
                                   " | shardnumsub CHANNEL N")
            if not rest[-1].isdigit():
                raise fail(number, "@wait needs a number")
            block.steps.append(Step(number, client, "wait", rest, (), line))
        elif directive == "closed":
            block.steps.append(Step(number, text_rest[0] if rest else client, "closed", [], (), line))
        else:
            raise fail(number, f"unknown directive @{directive}")
        if norms:
            raise fail(number, "@norm must be followed by a command or @read")
    if norms:
        raise fail(lines[-1][0], "@norm at the end of a block")
    return block if block.steps else None


_REPEAT_TOKEN = re.compile(rb"\{(i|(\d+)\*(.))\}")


def _expand(word: bytes, iteration: int) -> bytes:
    """A word of an @repeat line: {i} becomes the iteration number, {K*C} K bytes C (K up to 1,000,000)."""

    def replace(match: re.Match[bytes]) -> bytes:
        if match.group(1) == b"i":
            return b"%d" % iteration
        count = int(match.group(2))
        if count > 1_000_000:
            raise ScenarioError(f"{{{count}*...}} is too long")
        return match.group(3) * count

    return _REPEAT_TOKEN.sub(replace, word)


def _check_norms(step: Step, command: list[bytes], fail) -> None:  # type: ignore[no-untyped-def]
    for name in step.norms:
        if not allowed(name, command):
            allowed_for = ", ".join(sorted(NORMALIZATIONS[name].commands))
            raise fail(step.line, f"normalization {name!r} is only allowed for: {allowed_for}")


def load_cases(cases_dir: Path) -> list[Block]:
    return [block for path in sorted(cases_dir.glob("*.redis")) for block in parse_file(path)]


# ---------------------------------------------------------------------------------------------------------------
# Running


@dataclass
class Server:
    label: str
    host: str
    port: int
    password: str | None = None  # for the control connection when the case configures requirepass
    control: Connection | None = None

    def connect(self) -> Connection:
        return Connection(self.host, self.port, timeout=REPLY_TIMEOUT)

    def control_call(self, *args: str) -> bytes:
        if self.control is None:
            self._open_control()
        assert self.control is not None
        reply = self.control.call(*args)
        if reply == CLOSED:  # a case may have killed it (CLIENT KILL): reconnect once
            self.control.close()
            self._open_control()
            reply = self.control.call(*args)
        return reply

    def _open_control(self) -> None:
        self.control = self.connect()
        if self.password is not None:
            reply = self.control.call("AUTH", self.password)
            if reply != b"+OK\r\n":
                raise ScenarioError(f"{self.label}: control connection AUTH answered {reply!r}")


@dataclass
class Pair:
    oracle: Server
    subject: Server
    oracle_version: str
    subject_is_redis: bool = False  # the runner's self-validation mode

    @property
    def version(self) -> Version:
        return parse_version(self.oracle_version)

    def sides(self) -> tuple[Server, Server]:
        return self.oracle, self.subject

    def reset(self) -> None:
        """Back to an empty server with only the control connection open, on both sides."""
        for server in self.sides():
            wait_for(lambda s=server: _info_field(s, "connected_clients") in (None, 1), f"{server.label}: clients left")
            for reset in (("FLUSHALL",), ("FUNCTION", "FLUSH")):  # FLUSHALL leaves function libraries
                reply = server.control_call(*reset)
                if reply != b"+OK\r\n":
                    raise ScenarioError(f"{server.label}: {' '.join(reset)} answered {reply!r}")

    def close(self) -> None:
        for server in self.sides():
            if server.control is not None:
                server.control.close()
                server.control = None


def make_pair(oracle_port: int, subject_port: int, subject_label: str, server_args: tuple[str, ...] = (), *,
              subject_is_redis: bool = False) -> Pair:
    """A Pair for two running servers started with ``server_args``; its control connections authenticate if needed."""
    password = None
    for flag, value in itertools.pairwise(server_args):
        if flag == "--requirepass":
            password = value
    oracle = Server("Redis", "127.0.0.1", oracle_port, password)
    pair = Pair(oracle, Server(subject_label, "127.0.0.1", subject_port, password), server_version(oracle),
                subject_is_redis=subject_is_redis)
    oracle.label = f"Redis {pair.oracle_version}"
    return pair


def wait_for(predicate, description: str, timeout: float = WAIT_TIMEOUT) -> None:  # type: ignore[no-untyped-def]
    """Polls observable server state; never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise Divergence(f"timed out waiting for {description}")
        time.sleep(0.002)


def _info_field(server: Server, name: str) -> int | None:
    """An integer field of INFO clients; None if the server has no INFO yet (its state cannot be awaited)."""
    reply = server.control_call("INFO", "clients")
    match = re.search(rb"\r\n" + name.encode() + rb":(\d+)\r\n", reply)
    return int(match.group(1)) if match else None


def _numsub(server: Server, subcommand: str, channel: bytes) -> int | None:
    """Subscribers of a channel (NUMSUB) or of a shard channel (SHARDNUMSUB)."""
    reply = server.control_call("PUBSUB", subcommand, channel.decode("latin-1"))
    match = re.fullmatch(rb"\*2\r\n\$\d+\r\n.*\r\n:(\d+)\r\n", reply, re.DOTALL)
    return int(match.group(1)) if match else None


@dataclass
class _Client:
    oracle: Connection
    subject: Connection | _Echo


class _Echo:
    """Stands in for the subject when only the oracle's replies are wanted: answers what the oracle answered."""

    def __init__(self, oracle: Connection) -> None:
        self.oracle = oracle
        self.oracle_reply = b""

    def send(self, data: bytes) -> None:
        pass

    def read_reply(self) -> bytes:
        return self.oracle_reply

    def read_close(self) -> bytes:
        return b""

    def close(self) -> None:
        pass


class ScenarioRun:
    """One block (or generated step list) on one protocol version against a pair of servers."""

    def __init__(self, pair: Pair, protocol: int, case_id: str, *, oracle_only: bool = False) -> None:
        self.pair = pair
        self.oracle_only = oracle_only
        self.protocol = protocol
        self.case_id = case_id
        self.clients: dict[str, _Client] = {}
        self.transcript: list[str] = []
        self.replies_seen: list[bytes] = []  # the oracle's replies, for the coverage report
        # Consecutive @send lines of one client, written together when any other step comes (a pipeline).
        self.unsent: dict[str, list[bytes]] = {}

    def run(self, steps: list[Step]) -> None:
        try:
            for step in steps:
                self._run_step(step)
            self._send_pipelined()
        finally:
            for client in self.clients.values():
                client.oracle.close()
                client.subject.close()

    def _client(self, name: str, line: int) -> _Client:
        if name not in self.clients:
            oracle = self.pair.oracle.connect()
            client = _Client(oracle, _Echo(oracle) if self.oracle_only else self.pair.subject.connect())
            self.clients[name] = client
            if self.protocol == 3:
                hello = Step(line, name, "command", [b"HELLO", b"3"], HELLO_NORMS, "HELLO 3 (connection setup)")
                self._exchange(hello, client)
        return self.clients[name]

    def _send_pipelined(self) -> None:
        for name, payloads in self.unsent.items():
            client = self.clients[name]
            client.oracle.send(b"".join(payloads))
            client.subject.send(b"".join(payloads))
        self.unsent.clear()

    def _run_step(self, step: Step) -> None:
        if step.action == "send":
            self._client(step.client, step.line)
            self.unsent.setdefault(step.client, []).append(encode_command(step.args))
            self.transcript.append(f"{step.describe()}  (sent, reply read later)")
            return
        self._send_pipelined()
        if step.action == "wait":
            self._wait(step)
            return
        client = self._client(step.client, step.line)
        if step.action in ("command", "raw"):
            self._exchange(step, client)
        elif step.action == "send-raw":
            client.oracle.send(step.args[0])
            client.subject.send(step.args[0])
            self.transcript.append(f"{step.describe()}  (sent, reply read later)")
        elif step.action == "read":
            self._compare(step, *self._read_both(client))
        elif step.action == "closed":
            oracle_rest, subject_rest = client.oracle.read_close(), client.subject.read_close()
            if oracle_rest:
                raise ScenarioError(f"{self._where(step)}: Redis did not close the connection, sent {oracle_rest!r}")
            if subject_rest:
                raise Divergence(self._report(step, "Redis closed the connection; respq sent instead",
                                              b"<closed>", subject_rest))
            self.transcript.append(f"{step.describe()}  -> both closed")

    def _exchange(self, step: Step, client: _Client) -> None:
        payload = step.args[0] if step.action == "raw" else encode_command(step.args)
        client.oracle.send(payload)
        client.subject.send(payload)
        self._compare(step, *self._read_both(client))

    def _read_both(self, client: _Client) -> tuple[bytes, bytes]:
        oracle_reply = client.oracle.read_reply()
        if isinstance(client.subject, _Echo):
            client.subject.oracle_reply = oracle_reply
        return oracle_reply, client.subject.read_reply()

    def _compare(self, step: Step, oracle_reply: bytes, subject_reply: bytes) -> None:
        if oracle_reply == NO_REPLY:
            raise ScenarioError(f"{self._where(step)}: Redis sent no reply (use @send for commands without one)")
        self.replies_seen.append(oracle_reply)
        oracle_form = normalize(oracle_reply, step.norms)
        subject_form = normalize(subject_reply, step.norms)
        self.transcript.append(f"{step.describe()}  -> {_show(oracle_form)}")
        if step.action == "command" and is_listed(step.text):
            self._compare_across_versions(step, oracle_form, subject_form)
            return
        if oracle_form != subject_form:
            hint = ""
            if self.pair.version != RESPQ_TARGET:
                hint = (f"\n  (oracle is Redis {self.pair.oracle_version}: if this is a version difference, add it "
                        "to version_differences.KNOWN_DIFFERENCES)")
            raise Divergence(self._report(step, "replies differ", oracle_form, subject_form, raw=subject_reply) + hint)

    def _compare_across_versions(self, step: Step, oracle_form: bytes, subject_form: bytes) -> None:
        oracle_expected = expected_form(step.text, self.pair.version, self.protocol)
        if oracle_form != oracle_expected:
            raise ScenarioError(
                f"{self._where(step)}: KNOWN_DIFFERENCES says Redis {self.pair.oracle_version} answers "
                f"{_show(oracle_expected or b'')}, it answered {_show(oracle_form)}"
            )
        follows = respq_version(step.text)
        if self.pair.subject_is_redis:
            follows = self.pair.version  # redis-vs-redis validation: both sides are the same version
        target = expected_form(step.text, follows, self.protocol)
        if subject_form != target:
            version = ".".join(map(str, follows))
            raise Divergence(self._report(step, f"reply differs from the Redis {version} form in KNOWN_DIFFERENCES",
                                          target or b"", subject_form, oracle_label=f"KNOWN_DIFFERENCES {version}"))

    def _wait(self, step: Step) -> None:
        kind = step.args[0].decode()
        wanted = int(step.args[-1])
        for server in self.pair.sides()[: 1 if self.oracle_only else 2]:
            if kind in ("numsub", "shardnumsub"):
                def probe(s: Server = server) -> int | None:
                    return _numsub(s, kind.upper(), step.args[1])
            else:
                def probe(s: Server = server) -> int | None:
                    value = _info_field(s, kind)
                    # The control connection is not one of the scenario's clients.
                    return value - 1 if value is not None and kind == "connected_clients" else value
            if probe() is None:
                raise Divergence(self._report(step, f"{server.label} cannot report {kind}", b"", b""))
            wait_for(lambda p=probe: p() == wanted, f"{server.label}: {kind} == {wanted} ({self._where(step)})")
        self.transcript.append(f"{step.describe()}  -> reached on both")

    def _where(self, step: Step) -> str:
        return f"{self.case_id} line {step.line} [resp{self.protocol}]"

    def _report(self, step: Step, what: str, oracle_form: bytes, subject_form: bytes, raw: bytes = b"",
                oracle_label: str = "") -> str:
        lines = [f"{self._where(step)}: {what}", "  transcript:"]
        lines += [f"    {entry}" for entry in self.transcript[-12:]]
        lines += [
            f"  {oracle_label or 'Redis ' + self.pair.oracle_version}: {_show(oracle_form)}",
            f"  {self.pair.subject.label}: {_show(subject_form)}",
        ]
        if step.norms:
            lines.append(f"  (normalized with {', '.join(step.norms)}; respq raw: {_show(raw)})")
        if max(len(oracle_form), len(subject_form)) > SHOWN_BYTES:
            lines += _where_they_differ(oracle_form, subject_form, oracle_label or "Redis", self.pair.subject.label)
        return "\n".join(lines)


SHOWN_BYTES = 200  # replies longer than this are shown cut, with the place where the two first differ


def _show(reply: bytes, limit: int = 400) -> str:
    text = repr(reply)
    return text if len(text) <= limit else text[:limit] + f"... ({len(reply)} bytes)"


def _where_they_differ(expected: bytes, got: bytes, expected_label: str, got_label: str) -> list[str]:
    """Long replies: their lengths, the first byte at which they differ, and the bytes around it on each side."""
    at = _first_difference(expected, got)
    start, end = max(0, at - 48), at + 48
    return [
        f"  the replies ({len(expected)} and {len(got)} bytes) first differ at byte {at}:",
        f"    {expected_label}: ...{expected[start:end]!r}...",
        f"    {got_label}: ...{got[start:end]!r}...",
    ]


def _first_difference(a: bytes, b: bytes) -> int:
    """The first offset where ``a`` and ``b`` differ (the shorter one's length if it is a prefix of the other)."""
    common = min(len(a), len(b))
    page = next((i for i in range(0, common, 4096) if a[i : i + 4096] != b[i : i + 4096]), common)
    return next((i for i in range(page, min(common, page + 4096)) if a[i] != b[i]), common)


def run_block(pair: Pair, block: Block, protocol: int) -> ScenarioRun:
    run = ScenarioRun(pair, protocol, block.case_id)
    run.run(block.steps)
    return run


def server_version(server: Server) -> str:
    reply = server.control_call("INFO", "server")
    match = re.search(rb"redis_version:([\w.]+)", reply)
    if not match:
        raise ScenarioError(f"{server.label}: INFO server has no redis_version: {reply[:200]!r}")
    return match.group(1).decode()


def error_replies(replies: list[bytes]) -> set[bytes]:
    """The error texts among replies, top level and inside arrays (EXEC results)."""
    found: set[bytes] = set()

    def visit(node) -> None:  # type: ignore[no-untyped-def]
        if node.kind in "-!" and isinstance(node.value, bytes):
            found.add(node.value)
        elif isinstance(node.value, list):
            for child in node.value:
                visit(child)

    for reply in replies:
        if reply not in (CLOSED, NO_REPLY):
            visit(parse(reply))
    return found


def _show_oracle_replies() -> None:
    """`python compat_runner.py CASEFILE PORT`: prints what a running Redis answers to each step (RESP2)."""
    import sys

    path, port = Path(sys.argv[1]), int(sys.argv[2])
    server = Server("Redis", "127.0.0.1", port)
    for block in parse_file(path):
        server.control_call("FLUSHALL")
        server.control_call("FUNCTION", "FLUSH")
        pair = Pair(server, server, server_version(server), subject_is_redis=True)
        run = ScenarioRun(pair, 2, block.case_id, oracle_only=True)
        try:
            run.run(block.steps)
        except (Divergence, ScenarioError) as error:
            run.transcript.append(f"!! {error}")
        print(f"== {block.case_id} {block.title}")
        print("\n".join(f"   {entry}" for entry in run.transcript))


if __name__ == "__main__":
    _show_oracle_replies()
