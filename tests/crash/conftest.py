"""Options of the crash campaign: how many cycles, which seed, and how long a long run may take.

``pytest tests/crash --long --cycles 1000 --seed 42 --size-mix large`` (the options exist when tests/crash is named
on the command line); ``RESPQ_CRASH_CYCLES``, ``RESPQ_CRASH_SEED``, ``RESPQ_CRASH_SECONDS`` and
``RESPQ_CRASH_SIZES`` work from anywhere.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import pytest

from tests.crash.model import SIZE_MIXES, SizeMix

CI_SECONDS = 60.0  # per test, on top of its own cycle count: a slow shared machine stops early instead of failing
LONG_SECONDS = 3 * 3600.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("crash campaign")
    group.addoption(
        "--cycles", type=int, default=None, help="crash cycles per campaign test (default: CI or --long size)"
    )
    group.addoption("--seed", type=int, default=None, help="replay a run: the seed printed by a failing campaign test")
    group.addoption("--crash-seconds", type=float, default=None, help="time budget per campaign test")
    group.addoption(
        "--size-mix",
        choices=sorted(SIZE_MIXES),
        default=None,
        help="message sizes of the campaigns: small (a few bytes) or large (some around the storage's blocks)",
    )


@dataclass(frozen=True)
class Campaign:
    cycles: int | None  # None: each test's own default for the mode
    seed: int
    long: bool
    seconds: float
    size_mix: str = "small"

    @property
    def sizes(self) -> SizeMix:
        return SIZE_MIXES[self.size_mix]

    def cycles_or(self, ci: int, long: int) -> int:
        if self.cycles is not None:
            return self.cycles
        return long if self.long else ci

    def rng(self, name: str) -> random.Random:
        """An independent stream per test, so one test's cycles do not shift another's."""
        return random.Random(f"{self.seed}:{name}")


def _option(config: pytest.Config, name: str, env: str, kind: type) -> object:
    try:
        value = config.getoption(name)
    except ValueError:  # tests/crash was not named on the command line, so its options were never added
        value = None
    if value is None and os.environ.get(env):
        value = kind(os.environ[env])
    return value


def _campaign(config: pytest.Config) -> Campaign:
    long = bool(config.getoption("--long"))
    cycles = _option(config, "--cycles", "RESPQ_CRASH_CYCLES", int)
    seed = _option(config, "--seed", "RESPQ_CRASH_SEED", int)
    seconds = _option(config, "--crash-seconds", "RESPQ_CRASH_SECONDS", float)
    size_mix = _option(config, "--size-mix", "RESPQ_CRASH_SIZES", str) or "small"
    if size_mix not in SIZE_MIXES:
        raise pytest.UsageError(f"RESPQ_CRASH_SIZES={size_mix}: one of {sorted(SIZE_MIXES)}")
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 32)
    if seconds is None:
        seconds = LONG_SECONDS if long or cycles else CI_SECONDS
    return Campaign(cycles, seed, long, seconds, size_mix)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def campaign(pytestconfig: pytest.Config) -> Campaign:
    settings = _campaign(pytestconfig)
    print(
        f"\ncrash campaign seed {settings.seed} (replay with --seed {settings.seed} or RESPQ_CRASH_SEED), "
        f"{settings.size_mix} messages"
    )
    return settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each campaign test stops starting cycles after its budget; its timeout leaves room to finish the last one."""
    settings = _campaign(config)
    for item in items:
        if "tests/crash/" in item.nodeid.replace(os.sep, "/") and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(settings.seconds + 300))
