"""The Redis allocation arithmetic behind MEMORY USAGE (the differential cases compare whole figures)."""

from __future__ import annotations

from respq.types import memory

# jemalloc 5's size classes up to 4 KiB, as Debian's redis-server uses them.
SIZE_CLASSES = [8, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024,
                1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096]


def test_requests_round_up_to_jemalloc_size_classes() -> None:
    for size in range(1, 4097):
        assert memory.malloc_size(size) == min(c for c in SIZE_CLASSES if c >= size), size
    assert memory.malloc_size(4097) == 5120 and memory.malloc_size(1 << 20) == 1 << 20


def test_sds_headers_grow_with_the_length() -> None:
    assert [memory.sds_size(n) for n in (1, 6, 7, 30, 31, 44, 45, 255, 256)] == [8, 8, 16, 32, 48, 48, 64, 320, 320]


def test_listpack_stores_canonical_int64_decimals_as_integers() -> None:
    assert [memory.listpack_int(v) for v in (b"0", b"-1", b"127", b"-9223372036854775808")] == [
        0, -1, 127, -(1 << 63),
    ]
    for text in (b"", b"01", b"-0", b"+1", b" 1", b"1.0", b"9223372036854775808", b"1" * 21, b"-"):
        assert memory.listpack_int(text) is None, text


def test_listpack_entry_sizes() -> None:
    assert memory.listpack_entry(b"127") == 2 and memory.listpack_entry(b"128") == 3
    assert memory.listpack_entry(b"-4096") == 3 and memory.listpack_entry(b"-4097") == 4
    assert memory.listpack_entry(b"2147483648") == 10
    assert memory.listpack_entry(b"a" * 63) == 65 and memory.listpack_entry(b"a" * 64) == 67
    assert memory.listpack_entry(b"a" * 61) == 63 and memory.listpack_entry(b"a" * 126) == 130  # back length 2 past 127
    assert memory.listpack_entry(b"a" * 4096) == 4096 + 5 + 2
    assert memory.key_usage(b"k") == 8 + 24
