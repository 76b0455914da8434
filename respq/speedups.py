"""The optional C accelerators (respq/_speedups.c, built by setup.py when a compiler is there).

Each is None when the module was not built or ``RESPQ_PURE_PYTHON=1`` turns it off (to compare, or to rule it out);
callers then use their Python twin, which defines the result. The replies and the bytes on disk are the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

parse_multibulk: Callable[[bytes, int, int, list[list[bytes]]], int] | None = None
frame: Callable[[int, Any], bytes] | None = None
frame_values: Callable[[int, Sequence[Any]], bytes] | None = None
encode_values: Callable[[Sequence[Any]], bytes] | None = None
encode_pairs: Callable[[bytes, dict[Any, Any]], bytes | None] | None = None
encode_bulks: Callable[[list[Any], bytes], bytes | None] | None = None
read_slots: Callable[[dict[bytes, Any], list[bytes], type, Any, Any], list[bytes | None] | None] | None = None
decode_values: Callable[..., list[bytes]] | None = None
encode_fields: Callable[[Sequence[Any]], bytes] | None = None
decode_fields: Callable[..., list[bytes]] | None = None
scan_records: Callable[[Any, int, int, int], tuple[list[bytes], int]] | None = None
scan_records_backward: Callable[[Any, int, int, int], tuple[list[bytes], int]] | None = None
crc64: Callable[[Any, int], int] | None = None
lzf_compress: Callable[[Any, int], bytes | None] | None = None
pread_many: Callable[[int, Sequence[int], Sequence[int]], list[bytes]] | None = None
ld_parse: Callable[[bytes], bytes | None] | None = None
ld_add: Callable[[bytes, bytes], bytes] | None = None
ld_is_finite: Callable[[bytes], bool] | None = None
ld_format: Callable[[bytes], bytes] | None = None
lcs: Callable[[bytes, bytes], tuple[int, bytes, list[tuple[int, int, int, int, int]]] | None] | None = None
popcount: Callable[[bytes, int, int], int] | None = None
first_bit: Callable[[bytes, int, int, int], int] | None = None
key_slot: Callable[[bytes], int] | None = None
lp_entry: Callable[[Sequence[Any], Sequence[Any] | None, int, int, int], int] | None = None
lp_place: Callable[[Any, Sequence[Any], Sequence[Any] | None, int, int, int, int], int] | None = None
lp_join_many: (
    Callable[[Any, Sequence[Any] | None, Sequence[Any], Sequence[int], int, int, int], tuple[int, int]] | None
) = None

STALE: str | None = None  # why some C paths are missing although the module was built, for a warning at start-up

if os.environ.get("RESPQ_PURE_PYTHON") != "1":
    try:
        from respq._speedups import crc64 as crc64
        from respq._speedups import decode_fields as decode_fields
        from respq._speedups import decode_values as decode_values
        from respq._speedups import encode_bulks as encode_bulks
        from respq._speedups import encode_fields as encode_fields
        from respq._speedups import encode_pairs as encode_pairs
        from respq._speedups import encode_values as encode_values
        from respq._speedups import first_bit as first_bit
        from respq._speedups import frame as frame
        from respq._speedups import frame_values as frame_values
        from respq._speedups import key_slot as key_slot
        from respq._speedups import lcs as lcs
        from respq._speedups import ld_add as ld_add
        from respq._speedups import ld_format as ld_format
        from respq._speedups import ld_is_finite as ld_is_finite
        from respq._speedups import ld_parse as ld_parse
        from respq._speedups import lp_entry as lp_entry
        from respq._speedups import lp_join_many as lp_join_many
        from respq._speedups import lp_place as lp_place
        from respq._speedups import lzf_compress as lzf_compress
        from respq._speedups import parse_multibulk as parse_multibulk
        from respq._speedups import popcount as popcount
        from respq._speedups import pread_many as pread_many
        from respq._speedups import read_slots as read_slots
        from respq._speedups import scan_records as scan_records
        from respq._speedups import scan_records_backward as scan_records_backward
    except ImportError as error:
        # Built for older sources (the C file changed since): the names imported so far are used, the rest take
        # their Python paths, and start-up says so rather than serving slower in silence.
        if getattr(error, "name", None) == "respq._speedups" and "cannot import name" in str(error):
            STALE = f"{error}: the C module is older than the sources; rebuild it (pip install -e .)"

REQUEST_PARSER = "c" if parse_multibulk is not None else "python"
