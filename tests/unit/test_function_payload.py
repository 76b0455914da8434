"""FUNCTION DUMP's payload pieces (respq/scripting/rdb.py): CRC-64, LZF both ways, RDB strings, payload errors.
Byte-identity with redis-server's dumps is checked by compat-tests/cases/functions.redis and
tests/server/test_functions.py; these pin the pieces on their own."""

from __future__ import annotations

import random

import pytest

from respq.scripting import rdb


def test_crc64_is_redis_jones_crc() -> None:
    assert rdb.crc64(b"123456789") == 0xE9C6D914C4B8D9CA  # the check value in Redis's crc64.c test
    assert rdb.crc64(b"") == 0


@pytest.mark.parametrize("seed", range(40))
def test_lzf_round_trip(seed: int) -> None:
    rnd = random.Random(seed)
    alphabet = bytes(rnd.sample(range(256), rnd.randint(1, 40)))
    data = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(3, 5000)))
    if seed % 3 == 0:
        data = data[:50] * rnd.randint(2, 40)  # long matches, past MAX_REF
    packed = rdb.lzf_compress(data, len(data) + 64)
    assert packed is not None
    assert rdb.lzf_decompress(packed, len(data)) == data


def test_lzf_gives_up_without_room_and_rdb_strings_fall_back_to_raw() -> None:
    noise = random.Random(1).randbytes(300)
    assert rdb.lzf_compress(noise, len(noise) - 4) is None
    assert rdb.rdb_string(noise) == b"\x41\x2c" + noise  # a 14-bit length, then the bytes
    text = b"#!lua name=x\n" + b"-- aaaa" * 40
    encoded = rdb.rdb_string(text)
    assert encoded[0] == 0xC3 and len(encoded) < len(text)  # LZF: (RDB_ENCVAL << 6) | RDB_ENC_LZF


def test_payload_round_trip_and_errors() -> None:
    codes = [b"#!lua name=a\n" + b"x" * 100, b"#!lua name=b\nshort"]
    payload = rdb.function_payload(codes)
    assert rdb.read_function_payload(payload) == codes
    assert payload[-10:-8] == b"\x0a\x00"  # RDB version 10
    damaged = payload[:-1] + bytes([payload[-1] ^ 1])
    for bad, message in ((damaged, rdb.BAD_PAYLOAD), (b"short", rdb.BAD_PAYLOAD)):
        with pytest.raises(rdb.PayloadError) as caught:
            rdb.read_function_payload(bad)
        assert caught.value.message == message
