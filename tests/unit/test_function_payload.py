"""FUNCTION DUMP's payload (respq/scripting/rdb.py): round trip and errors (its pieces: tests/unit/test_rdb.py).
Byte-identity with redis-server's dumps is checked by compat-tests/cases/functions.redis and
tests/server/test_functions.py; these pin the pieces on their own."""

from __future__ import annotations

import pytest

from respq.scripting import rdb


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
