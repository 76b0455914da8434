"""Values as large as the storage's blocks and buffers: their sizes, their bytes, and comparisons that stay readable.

Every window the storage reads through has a size: a value just under, at, just over or twice one of them is where
a window sized for the value's end rather than its start (the journal's backward read before 10381da) cuts it. The
sizes come from the storage by name, so a changed constant moves the tests with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from hypothesis import strategies as st

from respq.storage import framing, journal, segments
from respq.types.lists import model as listlog

# name -> bytes: every block or buffer a value is read through or copied by
BLOCKS = {
    "journal.SPARSE_GAP": journal.SPARSE_GAP,  # 4 KiB: settling reads values this far apart one by one
    "journal.READ_BLOCK": journal.READ_BLOCK,  # 64 KiB: reads of journal-resident values
    "segments.READ_AHEAD": segments.READ_AHEAD,  # 64 KiB: reads of segment records
    "segments.PENDING_LIMIT": segments.PENDING_LIMIT,  # 64 KiB: segment appends buffered until the pass ends
    "listlog.SHARED_SETTLE_BYTES": listlog.SHARED_SETTLE_BYTES,  # 64 KiB: runs settled into the shared file
    "framing.SCAN_BLOCK": framing.SCAN_BLOCK,  # 1 MiB: journal replay and `respq check` scan this much at a time
    "segments.SEGMENT_SIZE": segments.SEGMENT_SIZE,  # 4 MiB: segment files roll at this size
}
MAX_SIZE = 16 << 20  # the largest value the randomized tests draw


# Segment files, their read-ahead, their append buffer and the shared file count framed records, not values.
FRAMED = {segments.READ_AHEAD, segments.PENDING_LIMIT, listlog.SHARED_SETTLE_BYTES, segments.SEGMENT_SIZE}


def boundary_sizes(blocks: Sequence[int] = tuple(BLOCKS.values()), limit: int = MAX_SIZE) -> list[int]:
    """Each block size -1, 0, +1 and doubled, and for the blocks of framed records the value sizes whose record is
    one block exactly or a byte over."""
    sizes: set[int] = set()
    for block in blocks:
        sizes |= {block - 1, block, block + 1, 2 * block}
        if block in FRAMED:
            sizes |= {block - framing.OVERHEAD, block - framing.OVERHEAD + 1}
    return sorted(size for size in sizes if 0 <= size <= limit)


BOUNDARY_SIZES = boundary_sizes()


def value_sizes(limit: int = MAX_SIZE) -> st.SearchStrategy[int]:
    """Sizes from 0 to ``limit``, concentrated at the boundaries: exact ones, within two records' framing of one,
    and the rest spread evenly over the orders of magnitude."""
    blocks = sorted(set(BLOCKS.values()))
    near = st.builds(
        lambda block, delta: min(limit, max(0, block + delta)),
        st.sampled_from(blocks),
        st.integers(-2 * framing.OVERHEAD, 2 * framing.OVERHEAD),
    )
    # Uniform over the powers of two, then within one: as many values of a few KiB as of a few MiB.
    spread = st.integers(0, limit.bit_length()).flatmap(lambda bits: st.integers(0, min(limit, 1 << bits)))
    return st.one_of(st.sampled_from(boundary_sizes(limit=limit)), near, spread)


def make_value(tag: int, size: int) -> bytes:
    """``size`` deterministic bytes, different for every tag (any window cut out of one value is in no other)."""
    return hashlib.shake_128(b"respq value %d" % tag).digest(size)


def show(value: bytes | None, limit: int = 32) -> str:
    """A value for a message: its length and first bytes, never megabytes of repr."""
    if value is None:
        return "None"
    if len(value) <= limit:
        return repr(value)
    return f"<{len(value)} bytes {value[:limit]!r}...>"


def difference(got: bytes | None, expected: bytes | None) -> str:
    """What is wrong with ``got``, readably: lengths, the first differing offset, and whether it is a cut piece."""
    if got is None or expected is None:
        return f"got {show(got)}, expected {show(expected)}"
    if len(got) != len(expected):
        what = f"got {len(got)} bytes, expected {len(expected)}"
        if got and len(got) < len(expected):
            if expected.endswith(got):
                what += " (its last bytes only: the head was cut off)"
            elif expected.startswith(got):
                what += " (its first bytes only)"
        return what
    first = first_difference(got, expected)
    return f"{len(got)} bytes, first difference at offset {first}: {show(got[first:])} vs {show(expected[first:])}"


def first_difference(a: bytes, b: bytes) -> int:
    """The first offset where two values of one length differ (compared a page at a time, not byte by byte)."""
    step = 4096
    start = next(i for i in range(0, len(a), step) if a[i : i + step] != b[i : i + step])
    return next(i for i in range(start, start + step) if a[i] != b[i])


def check_value(got: bytes | None, expected: bytes | None, what: str) -> None:
    if got != expected:
        raise AssertionError(f"{what}: {difference(got, expected)}")


def check_values(got: Sequence[bytes | None], expected: Sequence[bytes | None], what: str) -> None:
    """Raises an AssertionError naming the first value that differs (never a diff of megabytes)."""
    got, expected = list(got), list(expected)
    if got == expected:
        return
    if len(got) != len(expected):
        raise AssertionError(
            f"{what}: {len(got)} values, expected {len(expected)}; sizes {[len(v or b'') for v in got][:20]} vs "
            f"{[len(v or b'') for v in expected][:20]}"
        )
    index = next(i for i in range(len(got)) if got[i] != expected[i])
    raise AssertionError(f"{what}: value {index} of {len(got)}: {difference(got[index], expected[index])}")
