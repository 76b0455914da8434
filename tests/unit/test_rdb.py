"""Redis's RDB serialization pieces (respq/rdb): CRC-64, LZF both ways, strings with their integer and LZF forms,
listpacks and intsets with Redis's encodings. Byte-identity with redis-server's dumps is checked by
compat-tests/cases/dump.redis and tests/server/test_dump.py; these pin the pieces on their own."""

from __future__ import annotations

import random

import pytest

from conftest import require_speedups
from respq import rdb


def test_crc64_is_redis_jones_crc() -> None:
    for crc64 in (rdb.crc64, rdb.py_crc64):
        assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA  # the check value in Redis's crc64.c test
        assert crc64(b"") == 0


@pytest.mark.parametrize("seed", range(40))
def test_lzf_round_trip(seed: int) -> None:
    rnd = random.Random(seed)
    alphabet = bytes(rnd.sample(range(256), rnd.randint(1, 40)))
    data = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(3, 5000)))
    if seed % 3 == 0:
        data = data[:50] * rnd.randint(2, 40)  # long matches, past MAX_REF
    packed = rdb.py_lzf_compress(data, len(data) + 64)
    assert packed is not None
    assert rdb.lzf_decompress(packed, len(data)) == data


def test_lzf_gives_up_without_room_and_rdb_strings_fall_back_to_raw() -> None:
    noise = random.Random(1).randbytes(300)
    assert rdb.lzf_compress(noise, len(noise) - 4) is None
    assert rdb.string(noise) == b"\x41\x2c" + noise  # a 14-bit length, then the bytes
    text = b"#!lua name=x\n" + b"-- aaaa" * 40
    encoded = rdb.string(text)
    assert encoded[0] == 0xC3 and len(encoded) < len(text)  # LZF: (RDB_ENCVAL << 6) | RDB_ENC_LZF


def test_strings_take_the_integer_form_only_when_exact_and_32_bit() -> None:
    assert rdb.string(b"7") == b"\xc0\x07"
    assert rdb.string(b"-300") == b"\xc1\xd4\xfe"
    assert rdb.string(b"2147483647") == b"\xc2\xff\xff\xff\x7f"
    for text in (b"2147483648", b"007", b"-0", b"+1", b"1 "):
        assert rdb.string(text) == bytes((len(text),)) + text
    for text in (b"7", b"-300", b"2147483647", b"x" * 100):
        assert rdb.Reader(rdb.string(text)).string() == text


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (b"0", b"\x00\x01"),
        (b"127", b"\x7f\x01"),
        (b"128", b"\xc0\x80\x02"),
        (b"-1", b"\xdf\xff\x02"),
        (b"4096", b"\xf1\x00\x10\x03"),
        (b"-8388608", b"\xf2\x00\x00\x80\x04"),
        (b"9223372036854775807", b"\xf4\xff\xff\xff\xff\xff\xff\xff\x7f\x09"),
        (b"ab", b"\x82ab\x03"),
        (b"x" * 64, b"\xe0\x40" + b"x" * 64 + b"\x42"),
        (b"x" * 200, b"\xe0\xc8" + b"x" * 200 + b"\x01\xca"),
    ],
)
def test_listpack_entries_use_redis_encodings(value: bytes, encoded: bytes) -> None:
    assert rdb.lp_entry(value) == encoded
    blob = rdb.listpack([value])
    assert [rdb.as_bytes(item) for item in rdb.listpack_items(blob)] == [value]


def test_listpack_and_intset_round_trip_and_refuse_damage() -> None:
    rnd = random.Random(3)
    values = [rnd.choice([b"%d" % rnd.randint(-(1 << 40), 1 << 40), rnd.randbytes(rnd.randint(0, 5000))])
              for _ in range(200)]
    blob = rdb.listpack(values)
    assert [rdb.as_bytes(item) for item in rdb.listpack_items(blob)] == values
    with pytest.raises(rdb.FormatError):
        rdb.listpack_items(blob[:-1])
    numbers = sorted({rnd.randint(-(1 << 20), 1 << 20) for _ in range(100)})
    packed = rdb.intset(numbers)
    assert packed[:4] == b"\x04\x00\x00\x00"  # 32-bit wide: the widest value needs it
    assert rdb.intset_items(packed) == numbers
    with pytest.raises(rdb.FormatError):
        rdb.intset_items(packed[:-1])


@pytest.mark.parametrize("seed", range(30))
def test_c_twins_match_the_python_definitions(seed: int) -> None:
    speedups = require_speedups()
    rnd = random.Random(seed)
    alphabet = bytes(rnd.sample(range(256), rnd.randint(1, 60)))
    data = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 20000)))
    if seed % 3 == 0:
        data = data[:70] * rnd.randint(2, 300)
    for room in (len(data) + 64, len(data) - 4, len(data) // 2, 1):
        assert speedups.lzf_compress(data, room) == rdb.py_lzf_compress(data, room)
    assert speedups.crc64(data) == rdb.py_crc64(data)
    assert speedups.crc64(data[5:], rdb.py_crc64(data[:5])) == rdb.py_crc64(data)
