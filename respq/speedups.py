"""The optional C accelerator (respq/_speedups.c, built by setup.py when a compiler is there).

``RESPQ_PURE_PYTHON=1`` turns it off, to compare or to rule it out; the replies are the same either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable

parse_multibulk: Callable[[bytes, int, int, list[list[bytes]]], int] | None
try:
    from respq._speedups import parse_multibulk
except ImportError:
    parse_multibulk = None
if os.environ.get("RESPQ_PURE_PYTHON") == "1":
    parse_multibulk = None

REQUEST_PARSER = "c" if parse_multibulk is not None else "python"
