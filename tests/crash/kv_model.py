"""Key-value types under kill -9: each client owns its keys, so what a restart may show is a prefix of its commands.

Strings and hashes (and any type whose whole value one command can read) are driven by the campaign's key-value
clients. Each client owns a fixed set of keys and is the only one to touch them, and the server runs one
connection's commands in order and journals them in that order: after a crash, the client's keys must hold exactly
the state after some prefix of the commands it sent, and that prefix must include every command that was answered.
That one check (``check_client``) covers what the durability promise says of these types:

  K1. every acknowledged write is there (a prefix shorter than the answered commands is no match);
  K2. no multi-key write (MSET, MSETNX, RENAME, COPY, DEL of several keys) is half-visible: a state in which only
      some of its keys changed is the state after no prefix;
  K3. nothing appears from nowhere, values are not damaged, and no expiry is lost or invented: a recovered key
      compares whole (its type, its value and its expiry time) with the model.

The model also predicts every reply (a reply that differs is reported at once: it shows a wrong recovered state
before the next restart does). Expiry: an expiry time set relative to the server's clock (``EX``, ``EXPIRE``) is
known to lie between the send time and the send time plus ``EXECUTION_SLACK``; the short ones are set absolute
(``PXAT``, ``PEXPIREAT``) so that the model knows exactly when the key goes. While a short expiry is close, the
client leaves the key alone (whether a command runs before or after it would be a race); once passed, the key is
absent to the model. After a restart a key whose expiry passed before the read must be gone, one whose expiry comes
after it must be there, and one that expired during the read may be either.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from tests.bigvalues import show

EXECUTION_SLACK = 120_000  # ms: a command sent at t runs before t + this (a cycle lasts well under a minute)
CLOSE = 30_000  # ms: a key whose expiry is nearer than this (and not passed) is left alone


@dataclass(frozen=True)
class Item:
    """One key as the model sees it: TYPE's answer, its value as its type's ``decode`` gives it, and the earliest
    and latest absolute time (ms) its expiry can be at (None: no expiry)."""

    type: bytes
    value: Hashable
    expire: tuple[int, int] | None = None

    def describe(self) -> str:
        value = self.value if not isinstance(self.value, bytes) else show(self.value)
        expire = "" if self.expire is None else f" expiring in [{self.expire[0]}, {self.expire[1]}]"
        return f"{self.type.decode()} {value}{expire}"


State = dict[bytes, Item]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Op:
    """A command, the reply the model expects, and the state of the client's keys after it."""

    command: tuple[Any, ...]
    reply: Any
    after: State


@dataclass
class KvClient:
    """One client's keys and model: ``state`` is after every command it has queued so far."""

    number: int
    keys: list[bytes]
    state: State
    rng: random.Random
    queued: list[Op] = field(default_factory=list)
    writes: int = 0  # makes every value written new

    def now(self) -> int:
        return now_ms()

    def value(self, tag: bytes = b"") -> bytes:
        self.writes += 1
        return b"c%d.%d%s" % (self.number, self.writes, tag)

    def live(self, key: bytes, now: int) -> Item | None:
        """The key's item when a command sent now runs (an expiry already passed: absent)."""
        item = self.state.get(key)
        if item is not None and item.expire is not None and item.expire[1] < now:
            return None
        return item

    def usable(self, now: int) -> list[bytes]:
        """Keys whose state when a command sent now runs is certain: no expiry close."""
        usable = []
        for key in self.keys:
            item = self.state.get(key)
            if item is None or item.expire is None or item.expire[1] < now or item.expire[0] > now + CLOSE:
                usable.append(key)
        return usable

    def pick(self, now: int, types: tuple[bytes | None, ...] | None = None) -> bytes | None:
        """A usable key holding one of ``types`` (None in it: or absent), or any usable key."""
        keys = [k for k in self.usable(now) if types is None or _type(self.live(k, now)) in types]
        return self.rng.choice(keys) if keys else None

    def queue(self, command: tuple[Any, ...], reply: Any, changes: dict[bytes, Item | None], now: int) -> None:
        """Queues ``command``; ``changes`` are the keys it writes (None: deletes). Keys it does not name keep their
        item, except that every expiry passed by now is dropped (so the state stays comparable)."""
        state = {k: v for k, v in self.state.items() if v.expire is None or v.expire[1] >= now}
        for key, item in changes.items():
            if item is None:
                state.pop(key, None)
            else:
                state[key] = item
        self.state = state
        self.queued.append(Op(command, reply, state))


def _type(item: Item | None) -> bytes | None:
    return None if item is None else item.type


def relative_expiry(now: int, ms: int) -> tuple[int, int]:
    return now + ms, now + ms + EXECUTION_SLACK


# A step queues one command on the client if the client's keys allow it (returns whether it did).
Step = Callable[[KvClient, int], bool]


@dataclass(frozen=True)
class KvType:
    """One key-value type's entry: the ``TYPE`` it answers, how to read a key of it whole and what that read gives
    (a hashable value compared with the model's), and its steps with their weights (the campaign's key-value clients
    draw from every entry's steps and from the generic ones, DEL, RENAME, COPY, EXPIRE ...)."""

    name: str
    type: bytes
    read: Callable[[bytes], tuple[Any, ...]]
    decode: Callable[[Any], Hashable]
    steps: tuple[tuple[float, Step], ...]
    required: tuple[str, ...] = ()  # commands a campaign must have had answered (else its steps never bit)


@dataclass
class ClientRun:
    """What one client sent in one cycle and how many of its commands were answered."""

    number: int
    baseline: State
    ops: list[Op]
    answered: int
    wrong_replies: list[str]


def visible(item: Item | None, read_start: int, read_end: int) -> bool | None:
    """Whether a read between the two times must see the item (None: it expired during the read, either)."""
    if item is None:
        return False
    if item.expire is None or item.expire[0] > read_end:
        return True
    if item.expire[1] < read_start:
        return False
    return None


def differences(model: State, observed: State, read: tuple[int, int]) -> list[str]:
    """How ``observed`` (expiry times exact) differs from ``model`` for a read during ``read``."""
    found = []
    for key in sorted(model.keys() | observed.keys()):
        expected, got = model.get(key), observed.get(key)
        must = visible(expected, *read)
        if got is None:
            if must:
                found.append(f"{key!r} is missing, expected {expected.describe()}")  # type: ignore[union-attr]
            continue
        if must is False:
            found.append(f"{key!r} holds {got.describe()}, expected no key" + (" (expired)" if expected else ""))
            continue
        assert expected is not None
        if got.type != expected.type or got.value != expected.value:
            found.append(f"{key!r} holds {got.describe()}, expected {expected.describe()}")
        elif (got.expire is None) != (expected.expire is None) or (
            got.expire is not None
            and expected.expire is not None
            and not expected.expire[0] <= got.expire[0] <= expected.expire[1]
        ):
            found.append(f"{key!r} expiry: {got.describe()}, expected {expected.describe()}")
    return found


def check_client(run: ClientRun, observed: State, read: tuple[int, int]) -> tuple[list[str], int]:
    """K1-K3 for one client: problems, and how many unanswered commands the recovered state kept (-1: no match)."""
    states = [run.baseline] + [op.after for op in run.ops]
    for prefix in range(run.answered, len(states)):
        if not differences(states[prefix], observed, read):
            return list(run.wrong_replies), prefix - run.answered
    problems = list(run.wrong_replies)
    shown = differences(states[run.answered], observed, read)
    problems.append(
        f"client {run.number}: the recovered keys are the state after no prefix of its {len(run.ops)} commands "
        f"that includes the {run.answered} answered ones; against the state after the answered ones: "
        + "; ".join(shown[:6])
    )
    return problems, -1


# -- the generic steps: commands over keys of every type, drawn beside the types' own steps

LONG_TTL = 100_000  # seconds: an expiry that never comes during a run
SHORT_TTL = (50, 1500)  # ms: an expiry that comes during the cycle, or during the next one


def short_expiry(client: KvClient, now: int) -> tuple[int, int]:
    at = now + client.rng.randint(*SHORT_TTL)
    return at, at


def step_del(client: KvClient, now: int) -> bool:
    keys = list(dict.fromkeys(client.pick(now) for _ in range(client.rng.choice((1, 1, 2, 3)))))
    if None in keys:
        return False
    count = sum(client.live(key, now) is not None for key in keys)  # type: ignore[arg-type]
    client.queue(("DEL", *keys), count, dict.fromkeys(keys), now)  # type: ignore[arg-type]
    return True


def step_rename(client: KvClient, now: int) -> bool:
    """RENAME onto any key: a string onto a hash and back, the expiry going with the value."""
    src = client.pick(now, tuple({item.type for item in client.state.values()}))
    dst = client.pick(now)
    if src is None or dst is None or src == dst:
        return False
    client.queue(("RENAME", src, dst), b"OK", {src: None, dst: client.live(src, now)}, now)
    return True


def step_copy(client: KvClient, now: int) -> bool:
    src = client.pick(now, tuple({item.type for item in client.state.values()}))
    dst = client.pick(now)
    if src is None or dst is None or src == dst:
        return False
    replace = client.rng.random() < 0.5
    if client.live(dst, now) is not None and not replace:
        client.queue(("COPY", src, dst), 0, {}, now)
    else:
        client.queue(("COPY", src, dst, *(("REPLACE",) if replace else ())), 1, {dst: client.live(src, now)}, now)
    return True


def step_expire(client: KvClient, now: int) -> bool:
    """EXPIRE far away, PEXPIREAT soon (the key goes during the run) or PERSIST."""
    key = client.pick(now)
    if key is None:
        return False
    item = client.live(key, now)
    roll = client.rng.random()
    if roll < 0.4:
        command: tuple[Any, ...] = ("EXPIRE", key, LONG_TTL)
        expire = relative_expiry(now, LONG_TTL * 1000)
    elif roll < 0.7:
        expire = short_expiry(client, now)
        command = ("PEXPIREAT", key, expire[0])
    else:
        had = item is not None and item.expire is not None
        client.queue(("PERSIST", key), int(had), {key: _with_expiry(item, None)} if had else {}, now)
        return True
    client.queue(command, int(item is not None), {key: _with_expiry(item, expire)} if item else {}, now)
    return True


def _with_expiry(item: Item | None, expire: tuple[int, int] | None) -> Item:
    assert item is not None
    return Item(item.type, item.value, expire)


GENERIC_STEPS: tuple[tuple[float, Step], ...] = (
    (0.5, step_del),
    (0.7, step_rename),
    (0.7, step_copy),
    (1.0, step_expire),
)
