"""The key-value entries of the kill -9 campaign: strings and hashes, their steps and how to read them back.

Each step picks one of the client's keys whose type allows the command, queues the command with the reply and the
new state the model expects (tests/crash/kv_model.py), and returns False when no key fits.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from tests.crash.kv_model import (
    LONG_TTL,
    Item,
    KvClient,
    KvType,
    Op,
    relative_expiry,
    short_expiry,
    step_copy,
    step_del,
    step_expire,
    step_rename,
)

STRING, HASH = b"string", b"hash"
_INTEGER = re.compile(rb"-?[1-9][0-9]{0,15}|0")
_DECIMAL = re.compile(rb"-?[0-9]{1,15}(\.[0-9]{1,4})?")
FLOAT_STEPS = (Fraction(1, 4), Fraction(1, 2), Fraction(-3, 4), Fraction(3), Fraction(3, 2))


def _string(client: KvClient, key: bytes, now: int) -> bytes | None:
    item = client.live(key, now)
    return None if item is None else item.value  # type: ignore[return-value]


def _expire(client: KvClient, key: bytes, now: int) -> tuple[int, int] | None:
    item = client.live(key, now)
    return None if item is None else item.expire


def step_set(client: KvClient, now: int) -> bool:
    """SET over any type, with EX (far), PXAT (soon), KEEPTTL, NX, XX or GET."""
    rng = client.rng
    roll = rng.random()
    key = client.pick(now, (STRING, None) if roll >= 0.85 else None)  # GET needs a string or nothing
    if key is None:
        return False
    value = client.value()
    old = client.live(key, now)
    if roll < 0.35:
        client.queue(("SET", key, value), b"OK", {key: Item(STRING, value)}, now)
    elif roll < 0.5:
        item = Item(STRING, value, relative_expiry(now, LONG_TTL * 1000))
        client.queue(("SET", key, value, "EX", LONG_TTL), b"OK", {key: item}, now)
    elif roll < 0.6:
        expire = short_expiry(client, now)
        client.queue(("SET", key, value, "PXAT", expire[0]), b"OK", {key: Item(STRING, value, expire)}, now)
    elif roll < 0.65:
        kept = None if old is None else old.expire
        client.queue(("SET", key, value, "KEEPTTL"), b"OK", {key: Item(STRING, value, kept)}, now)
    elif roll < 0.75:
        changes = {key: Item(STRING, value)} if old is None else {}
        client.queue(("SET", key, value, "NX"), b"OK" if old is None else None, changes, now)
    elif roll < 0.85:
        changes = {key: Item(STRING, value)} if old is not None else {}
        client.queue(("SET", key, value, "XX"), b"OK" if old is not None else None, changes, now)
    else:
        client.queue(("SET", key, value, "GET"), _string(client, key, now), {key: Item(STRING, value)}, now)
    return True


def step_get(client: KvClient, now: int) -> bool:
    """GET or GETDEL: the value the model says, and a GETDEL deletes."""
    key = client.pick(now, (STRING, None))
    if key is None:
        return False
    if client.rng.random() < 0.5:
        client.queue(("GET", key), _string(client, key, now), {}, now)
    else:
        client.queue(("GETDEL", key), _string(client, key, now), {key: None}, now)
    return True


def step_append(client: KvClient, now: int) -> bool:
    """APPEND or SETRANGE (inside, at the end or past it: zeros fill the gap); both keep the expiry."""
    key = client.pick(now, (STRING, None))
    if key is None:
        return False
    old = _string(client, key, now) or b""
    value = client.value(b"+")
    if client.rng.random() < 0.5:
        new, command = old + value, ("APPEND", key, value)
    else:
        offset = client.rng.randint(0, len(old) + 3)
        padded = old.ljust(offset, b"\0")
        new, command = padded[:offset] + value + padded[offset + len(value) :], ("SETRANGE", key, offset, value)
    client.queue(command, len(new), {key: Item(STRING, new, _expire(client, key, now))}, now)
    return True


def _numeric(client: KvClient, now: int, pattern: re.Pattern[bytes]) -> bytes | None:
    keys = [
        key
        for key in client.usable(now)
        if (item := client.live(key, now)) is None or (item.type == STRING and pattern.fullmatch(item.value))  # type: ignore[arg-type]
    ]
    return client.rng.choice(keys) if keys else None


def step_incr(client: KvClient, now: int) -> bool:
    """INCR, INCRBY or DECRBY of an integer (or of nothing: 0); the expiry stays."""
    key = _numeric(client, now, _INTEGER)
    if key is None:
        return False
    by = client.rng.choice((1, 1, 7, -3, 1000))
    new = int(_string(client, key, now) or b"0") + by
    command = ("INCR", key) if by == 1 else ("INCRBY", key, by) if by > 0 else ("DECRBY", key, -by)
    client.queue(command, new, {key: Item(STRING, b"%d" % new, _expire(client, key, now))}, now)
    return True


def format_float(value: Fraction) -> bytes:
    """As Redis prints a long double with no trailing zeros; exact for the quarters the campaign adds."""
    return b"%d" % value if value.denominator == 1 else repr(float(value)).encode()


def step_incrbyfloat(client: KvClient, now: int) -> bool:
    key = _numeric(client, now, _DECIMAL)
    if key is None:
        return False
    by = client.rng.choice(FLOAT_STEPS)
    new = format_float(Fraction((_string(client, key, now) or b"0").decode()) + by)
    shown = format_float(by)
    client.queue(("INCRBYFLOAT", key, shown), new, {key: Item(STRING, new, _expire(client, key, now))}, now)
    return True


def step_mset(client: KvClient, now: int) -> bool:
    """MSET over keys of any type (all become strings without expiry), or MSETNX: all or none."""
    keys = list(dict.fromkeys(client.pick(now) for _ in range(client.rng.randint(2, 4))))
    if None in keys or len(keys) < 2:
        return False
    values = {key: client.value() for key in keys}
    pairs = [part for key, value in values.items() for part in (key, value)]
    changes = {key: Item(STRING, value) for key, value in values.items()}
    if client.rng.random() < 0.6:
        client.queue(("MSET", *pairs), b"OK", changes, now)  # type: ignore[arg-type]
    else:
        free = all(client.live(key, now) is None for key in keys)  # type: ignore[arg-type]
        client.queue(("MSETNX", *pairs), int(free), changes if free else {}, now)  # type: ignore[arg-type]
    return True


STRINGS = KvType(
    "strings",
    STRING,
    read=lambda key: ("GET", key),
    decode=lambda reply: reply,
    steps=(
        (2.5, step_set),
        (1.0, step_get),
        (2.0, step_append),
        (1.5, step_incr),
        (1.0, step_incrbyfloat),
        (1.2, step_mset),
    ),
    required=("SET", "APPEND", "SETRANGE", "INCRBYFLOAT", "MSET", "MSETNX"),
)


# -- hashes: a value is its fields and values, sorted (a hashtable's HGETALL order is its own)

TEXT_FIELDS = (b"f0", b"f1", b"f2", b"f3", b"f4", b"f5")
NUMBER_FIELDS = (b"n0", b"n1")


def _fields(client: KvClient, key: bytes, now: int) -> dict[bytes, bytes]:
    item = client.live(key, now)
    return {} if item is None else dict(item.value)  # type: ignore[arg-type]


def _hash(fields: dict[bytes, bytes], expire: tuple[int, int] | None) -> Item | None:
    return Item(HASH, tuple(sorted(fields.items())), expire) if fields else None


def step_hset(client: KvClient, now: int) -> bool:
    """HSET of 1-4 fields (a field may come twice: the last value wins), some values long enough for a hashtable."""
    key = client.pick(now, (HASH, None))
    if key is None:
        return False
    fields = _fields(client, key, now)
    pairs: list[bytes] = []
    new: set[bytes] = set()
    for _ in range(client.rng.randint(1, 4)):
        name = client.rng.choice(TEXT_FIELDS)
        value = client.value()
        if client.rng.random() < 0.1:
            value = value.ljust(70, b"x")
        if name not in fields:
            new.add(name)
        fields[name] = value
        pairs += [name, value]
    client.queue(("HSET", key, *pairs), len(new), {key: _hash(fields, _expire(client, key, now))}, now)
    return True


def step_hdel(client: KvClient, now: int) -> bool:
    """HDEL of a field or two, sometimes all (and one that is not there); deleting the last field deletes the key."""
    key = client.pick(now, (HASH,))
    if key is None:
        return False
    fields = _fields(client, key, now)
    gone = client.rng.sample(sorted(fields), min(len(fields), client.rng.choice((1, 1, 1, 2, len(fields)))))
    for name in gone:
        del fields[name]
    command: tuple[Any, ...] = ("HDEL", key, *gone, b"missing")
    client.queue(command, len(gone), {key: _hash(fields, _expire(client, key, now))}, now)
    return True


def step_hincrby(client: KvClient, now: int) -> bool:
    key = client.pick(now, (HASH, None))
    if key is None:
        return False
    fields = _fields(client, key, now)
    name = client.rng.choice(NUMBER_FIELDS)
    by = client.rng.choice((1, 5, -2))
    fields[name] = b"%d" % (int(fields.get(name, b"0")) + by)
    client.queue(("HINCRBY", key, name, by), int(fields[name]), {key: _hash(fields, _expire(client, key, now))}, now)
    return True


def step_hget(client: KvClient, now: int) -> bool:
    key = client.pick(now, (HASH, None))
    if key is None:
        return False
    name = client.rng.choice(TEXT_FIELDS + NUMBER_FIELDS)
    client.queue(("HGET", key, name), _fields(client, key, now).get(name), {}, now)
    return True


def decode_hash(reply: list[Any]) -> Any:
    return tuple(sorted(zip(reply[::2], reply[1::2], strict=True)))


HASHES = KvType(
    "hashes",
    HASH,
    read=lambda key: ("HGETALL", key),
    decode=decode_hash,
    steps=((3.0, step_hset), (1.5, step_hdel), (1.5, step_hincrby), (0.5, step_hget)),
    required=("HSET", "HDEL", "HINCRBY"),
)


# -- scripts: not a type of their own; an EVAL writes strings and hashes, several keys in one command, so the
# check's "state after a prefix of the commands" sees a script's writes all or none (its type is never read)

SCRIPT_WRITES = (
    b"for i = 1, #KEYS - 1 do redis.call('set', KEYS[i], ARGV[i]) end "
    b"redis.call('hset', KEYS[#KEYS], 'f0', ARGV[#KEYS]) return #KEYS"
)
SCRIPT_MOVE = (
    b"local v = redis.call('get', KEYS[1]) redis.call('set', KEYS[2], ARGV[1]) redis.call('del', KEYS[1]) return v"
)


def step_script_writes(client: KvClient, now: int) -> bool:
    """EVAL setting 1-5 keys of any type to strings and one field of a hash (or absent) key."""
    target = client.pick(now, (HASH, None))
    keys = list(dict.fromkeys(client.pick(now) for _ in range(client.rng.randint(1, 5))))
    if target is None or None in keys:
        return False
    keys = [key for key in keys if key != target] + [target]
    values = [client.value() for _ in keys]
    changes: dict[bytes, Item | None] = {
        key: Item(STRING, value) for key, value in zip(keys[:-1], values[:-1], strict=True)
    }
    fields = _fields(client, target, now)
    fields[b"f0"] = values[-1]
    changes[target] = _hash(fields, _expire(client, target, now))
    client.queue(("EVAL", SCRIPT_WRITES, len(keys), *keys, *values), len(keys), changes, now)
    return True


def step_script_move(client: KvClient, now: int) -> bool:
    """EVAL reading a string (or absent) key, writing another and deleting the first: the value read is the reply."""
    source = client.pick(now, (STRING, None))
    dest = client.pick(now)
    if source is None or dest is None or dest == source:
        return False
    value = client.value()
    reply = _string(client, source, now)
    client.queue(("EVAL", SCRIPT_MOVE, 2, source, dest, value), reply, {dest: Item(STRING, value), source: None}, now)
    return True


SCRIPTS = KvType(
    "scripts",
    b"script",  # no key has this TYPE: the keys scripts write are read as strings and hashes
    read=lambda key: ("GET", key),
    decode=lambda reply: reply,
    steps=((1.2, step_script_writes), (0.8, step_script_move)),
    required=("EVAL",),
)


# -- transactions: not a type either; MULTI, 2-5 writes drawn from the steps above, EXEC. The queued commands answer
# QUEUED and change nothing; EXEC answers their replies and leaves the state after all of them, so the check's
# "state after a prefix of the commands" sees a transaction all or none (its type is never read)

TRANSACTION_STEPS = (
    step_set,
    step_append,
    step_incr,
    step_mset,
    step_hset,
    step_hdel,
    step_hincrby,
    step_del,
    step_rename,
    step_copy,
    step_expire,
    step_script_writes,
)


def step_transaction(client: KvClient, now: int) -> bool:
    """MULTI, the commands of 2-5 steps over the client's keys (of any type), EXEC."""
    before, mark = client.state, len(client.queued)
    size = client.rng.randint(2, 5)
    for _ in range(size * 3):  # a step that finds no key for it queues nothing
        if len(client.queued) - mark >= size:
            break
        client.rng.choice(TRANSACTION_STEPS)(client, now)
    ops = client.queued[mark:]
    if len(ops) < 2:
        return bool(ops)  # a lone command stays one
    client.queued[mark:] = [
        Op(("MULTI",), b"OK", before),
        *(Op(op.command, b"QUEUED", before) for op in ops),
        Op(("EXEC",), [op.reply for op in ops], client.state),
    ]
    return True


TRANSACTIONS = KvType(
    "transactions",
    b"transaction",  # no key has this TYPE: the keys transactions write are read as strings and hashes
    read=lambda key: ("GET", key),
    decode=lambda reply: reply,
    steps=((1.5, step_transaction),),
    required=("EXEC",),
)
