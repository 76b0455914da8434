"""Every block of every cases/*.redis file, over RESP2 and RESP3, against Redis and respq."""

from __future__ import annotations

from pathlib import Path

import pytest
from compat_runner import Block, load_cases, run_block

CASES_DIR = Path(__file__).parent / "cases"
BLOCKS = load_cases(CASES_DIR)


@pytest.mark.parametrize(
    ("block", "protocol"),
    [pytest.param(block, protocol, id=f"{block.case_id}-resp{protocol}")
     for block in BLOCKS for protocol in block.protocols],
)
def test_case(block: Block, protocol: int, storage: str, request: pytest.FixtureRequest) -> None:
    # ``storage``: the subject's storage directive (compat-tests/conftest.py), each case once per mode
    if block.isolated:
        pair = request.getfixturevalue("isolated_pair")(*block.server_args)
    else:
        pair = request.getfixturevalue("compat_pair")
    run_block(pair, block, protocol)
