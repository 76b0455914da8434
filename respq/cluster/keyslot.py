"""The hash slot of a key, as Redis Cluster computes it: CRC16 (XMODEM) of the key, or of its hash tag, mod 16384."""

from __future__ import annotations

from binascii import crc_hqx  # CRC-CCITT with a zero start value: the XMODEM variant Redis uses, computed in C

from respq import speedups

SLOTS = 16384


def py_key_slot(key: bytes) -> int:
    """Only the part between the first ``{`` and the next ``}`` is hashed when that part is not empty."""
    if b"{" in key:
        start = key.find(b"{")
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc_hqx(key, 0) & 0x3FFF


# The C twin (respq/_speedups.c) is one call for the routing check every keyed command passes in cluster mode.
key_slot = speedups.key_slot or py_key_slot
