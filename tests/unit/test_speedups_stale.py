"""A C module built for older sources (some names missing) is reported for the start-up warning, not skipped
silently; a current one is not."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys, types
if {stale}:
    fake = types.ModuleType("respq._speedups")
    fake.crc64 = lambda data, crc=0: 0  # the first name imports; the next one is missing, as after a C change
    sys.modules["respq._speedups"] = fake
import respq.speedups as s
print("STALE" if s.STALE else "CURRENT", s.STALE or "")
"""


def _probe(stale: bool) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(stale=stale)], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_a_stale_module_is_reported() -> None:
    out = _probe(True)
    assert out.startswith("STALE") and "rebuild it" in out and "decode_fields" in out, out


def test_a_current_or_absent_module_is_not() -> None:
    assert _probe(False).startswith("CURRENT")
