"""Every command, option keyword and error text respq has must be exercised by a differential case.

Commands and options come from respq's command table; errors from the module-level bytes constants of
respq/errors.py and of every value type's errors.py. A case covers an error when Redis answers it while the cases
run (checked here by running every case against two Redis servers, which also proves the cases themselves are
deterministic).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from compat_runner import Block, error_replies, load_cases, make_pair, run_block

CASES_DIR = Path(__file__).parent / "cases"

# Errors no differential case can produce, each with the reason. Keep this short.
ERRORS_WITHOUT_CASE: dict[str, str] = {
    "LOADING": "Redis answers it only while loading a dataset from disk at startup; not reproducible on demand",
    "LCS_TOO_LONG": "LCS of a string of 4 GiB or more: past what a test can hold",
    "LCS_NO_MEMORY": "LCS whose table the allocator refuses: depends on the machine's memory, not reproducible",
}


def load_command_table() -> dict[Any, Any]:
    """respq's COMMANDS with every command module that imports today registered."""
    table = pytest.importorskip("respq.commands.table", reason="respq's command table does not exist yet")
    try:
        importlib.import_module("respq.commands.modules").load_all()
    except (ImportError, AttributeError):
        # Some command modules are still being written: register the ones that import.
        import respq.commands as package

        for module in pkgutil.iter_modules(package.__path__):
            try:
                importlib.import_module(f"respq.commands.{module.name}")
            except ImportError:
                pass
    return table.COMMANDS


def _name(command: Any) -> str:
    return str(command.name).replace("|", " ").lower()


def required_pairs(commands: Iterable[Any]) -> Iterator[tuple[str, str | None]]:
    """(command, None) for each command and subcommand, and (command, OPTION) for each option keyword."""
    for command in commands:
        subcommands = list(getattr(command, "subcommands", {}).values())
        if not subcommands or getattr(command, "handler", True) is not None:
            yield _name(command), None
        for option in getattr(command, "options", ()):
            yield _name(command), option.upper()
        yield from required_pairs(subcommands)


def case_commands(blocks: list[Block]) -> list[tuple[set[str], set[str]]]:
    """For each command line in the cases: its names ("name", "name sub") and its upper-cased arguments."""
    lines = []
    for block in blocks:
        for args in block.commands():
            words = [a.decode("latin-1") for a in args]
            names = {words[0].lower()}
            if len(words) > 1:
                names.add(f"{words[0]} {words[1]}".lower())
            lines.append((names, {w.upper() for w in words[1:]}))
    return lines


def uncovered_pairs(commands: Iterable[Any], blocks: list[Block]) -> list[str]:
    lines = case_commands(blocks)
    missing = []
    for name, option in required_pairs(commands):
        covered = any(name in names and (option is None or option in words) for names, words in lines)
        if not covered:
            missing.append(name if option is None else f"{name} {option}")
    return missing


def error_constants(module: ModuleType) -> dict[str, bytes]:
    return {name: value for name, value in vars(module).items() if name.isupper() and isinstance(value, bytes)}


def _as_pattern(text: bytes) -> re.Pattern[bytes]:
    # Constants with printf-style holes (%s, %d) match any text there.
    return re.compile(b".*".join(re.escape(part) for part in re.split(rb"%[sdu]", text)), re.DOTALL)


def uncovered_errors(constants: dict[str, bytes], seen: set[bytes]) -> list[str]:
    return [
        f"{name} = {text!r}"
        for name, text in sorted(constants.items())
        if name not in ERRORS_WITHOUT_CASE and not any(_as_pattern(text).fullmatch(error) for error in seen)
    ]


# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle_errors(request: pytest.FixtureRequest) -> set[bytes]:
    """Every error Redis answers while the cases run, each case against two Redis servers (RESP2)."""
    root = request.config.pluginmanager.get_plugin(str(request.config.rootpath / "conftest.py"))
    seen: set[bytes] = set()
    shared = None
    try:
        for block in load_cases(CASES_DIR):
            servers = [root.start_redis(*block.server_args), root.start_redis(*block.server_args)] \
                if block.isolated else None
            if servers is None and shared is None:
                shared = [root.start_redis(), root.start_redis()]
            processes = servers or shared
            assert processes is not None
            pair = make_pair(processes[0].port, processes[1].port, "Redis (second)", block.server_args,
                             subject_is_redis=True)
            try:
                pair.reset()
                seen |= error_replies(run_block(pair, block, block.protocols[0]).replies_seen)
            finally:
                pair.close()
                for process in servers or ():
                    process.stop()
    finally:
        for process in shared or ():
            process.stop()
    return seen


def test_every_command_and_option_has_a_case() -> None:
    commands = load_command_table().values()
    missing = uncovered_pairs(commands, load_cases(CASES_DIR))
    assert not missing, "commands / options without a differential case in compat-tests/cases:\n  " + "\n  ".join(
        missing
    )


def error_modules() -> list[ModuleType]:
    """respq/errors.py and every value type's errors.py: where respq's error texts are defined."""
    import respq.errors
    import respq.types

    types_dir = Path(respq.types.__file__).parent
    names = sorted(path.parent.name for path in types_dir.glob("*/errors.py"))
    return [respq.errors, *(importlib.import_module(f"respq.types.{name}.errors") for name in names)]


def test_every_error_text_has_a_case(oracle_errors: set[bytes]) -> None:
    missing = [
        f"{module.__name__}.{line}"
        for module in error_modules()
        for line in uncovered_errors(error_constants(module), oracle_errors)
    ]
    assert not missing, "error texts no case makes Redis answer:\n  " + "\n  ".join(missing)


def test_every_value_type_has_its_errors_scanned() -> None:
    import respq.types

    scanned = {module.__name__ for module in error_modules()}
    assert {"respq.errors", "respq.types.lists.errors", "respq.types.streams.errors"} <= scanned
    for vtype in respq.types.REGISTRY:
        package = type(vtype).__module__.rpartition(".")[0]  # the type's package (hash: respq.types.hashes)
        assert package.startswith("respq.types."), f"{vtype.name}'s type is defined outside its package"
        if importlib.util.find_spec(f"{package}.errors") is not None:
            assert f"{package}.errors" in scanned


def test_exempt_errors_still_exist() -> None:
    defined = {name for module in error_modules() for name in error_constants(module)}
    stale = set(ERRORS_WITHOUT_CASE) - defined
    assert not stale, f"ERRORS_WITHOUT_CASE names constants no errors.py has any more: {sorted(stale)}"


# The checks must bite: fabricated commands and errors nobody wrote a case for are reported.


class _FakeCommand:
    def __init__(self, name: str, options: tuple[str, ...] = (), subcommands: dict | None = None) -> None:
        self.name, self.options, self.subcommands, self.handler = name, options, subcommands or {}, object()


def test_coverage_check_reports_an_uncovered_command() -> None:
    blocks = load_cases(CASES_DIR)
    ping = _FakeCommand("ping")
    fabricatedcmd = _FakeCommand("fabricatedcmd", options=("WIDGET",))
    client = _FakeCommand("client", subcommands={b"fabricatedsub": _FakeCommand("client|fabricatedsub", ("LOUD",))})
    client.handler = None
    assert uncovered_pairs([ping, fabricatedcmd, client], blocks) == [
        "fabricatedcmd", "fabricatedcmd WIDGET", "client fabricatedsub", "client fabricatedsub LOUD",
    ]


def test_coverage_check_reports_an_option_without_a_case() -> None:
    expire = _FakeCommand("expire", options=("NX", "NOSUCHOPTION"))
    assert uncovered_pairs([expire], load_cases(CASES_DIR)) == ["expire NOSUCHOPTION"]


def test_error_check_reports_an_uncovered_error() -> None:
    constants = {"SYNTAX": b"ERR syntax error", "MADE_UP": b"ERR nobody answers this", "FMT": b"ERR bad '%s' here"}
    seen = {b"ERR syntax error", b"ERR bad 'x y' here"}
    assert uncovered_errors(constants, seen) == ["MADE_UP = b'ERR nobody answers this'"]
