"""The layering rules, checked on the source: imports point down the layers, and no module touches another's
private names. Annotation-only imports (``if TYPE_CHECKING:``) count: a type-level cycle is still a cycle."""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "respq"

# Lowest first. A module may import modules of its own layer or lower ones, never higher ones.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # shared leaves: reply values, error texts, the sans-I/O protocol, configuration, glob, logging, the C module
    (
        "base",
        (
            "respq",
            "respq._speedups",
            "respq.speedups",
            "respq.errors",
            "respq.replies",
            "respq.glob",
            "respq.protocol",
            "respq.config",
            "respq.log",
            "respq.histogram",
            "respq.tls",  # TLS contexts from the tls-* directives (no sockets, no Trio)
            "respq.tls_socket",  # a TLS connection with a non-blocking socket's interface
        ),
    ),
    ("storage", ("respq.storage",)),  # knows nothing of RESP, Trio or any value type
    ("rdb", ("respq.rdb",)),  # Redis's RDB serialization pieces (DUMP, FUNCTION DUMP): bytes only, above storage
    ("types", ("respq.types",)),  # the value types' models (their commands are in the commands layer)
    (
        "keyspace",
        (
            "respq.keyspace",
            "respq.blocking",
            "respq.pubsub",
            "respq.stats",
            "respq.observe",
            "respq.client",
            "respq.cluster",  # the slot map and key slots (no RESP, no Trio)
            "respq.replication",  # the replication stream and backlog (no sockets: replicas are fed through callables)
        ),
    ),
    (
        "commands",
        (
            "respq.commands",
            "respq.info",
            "respq.types.*.commands",
            "respq.types.strings.bitcommands",
            "respq.scripting",  # EVAL and its Lua engine run commands through the command table
            "respq.acl",  # users' rules name commands and categories of the command table
        ),
    ),
    (
        "server",
        (
            "respq.connection",
            "respq.reactor",
            "respq.server",
            "respq.peers",  # cluster mode's links to the other nodes (PUBLISH)
            "respq.replica_link",  # the task following a master (REPLICAOF)
            "respq.cli",
            "respq.admin",
            "respq.cluster_admin",  # respq cluster create
            "respq.__main__",
            "respq.http",  # the HTTP listener: health, metrics (it reads what INFO reads)
            "respq.embedded",  # the server in-process: a front end as the command line is
            "respq.testing",  # the pytest plugin, which starts servers
        ),
    ),
]
# The package's public face: ``respq.open`` and its kin are imported from respq.embedded on first use (PEP 562
# ``__getattr__``), so that importing respq for anything else loads none of it.
LAZY_FACADE = {("respq", "respq.embedded")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    """The layer of the most specific pattern matching ``module`` (``respq.types.*.commands`` beats
    ``respq.types``)."""
    best, best_length = -1, -1
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            pattern_parts = pattern.split(".")
            parts = module.split(".")
            if len(parts) < len(pattern_parts):
                continue
            matches = all(p == "*" or p == m for p, m in zip(pattern_parts, parts, strict=False))
            if matches and len(pattern_parts) > best_length:
                best, best_length = index, len(pattern_parts)
    if best < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}")
    return best


@dataclass
class Import:
    module: str
    line: int
    annotation_only: bool


def imports_of(path: Path) -> list[Import]:
    found: list[Import] = []

    def visit(nodes: list[ast.stmt], annotation_only: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                visit(node.body, True)
                visit(node.orelse, annotation_only)
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("respq"):
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    is_module = (ROOT / (candidate.replace(".", "/") + ".py")).exists() or (
                        ROOT / candidate.replace(".", "/")
                    ).is_dir()
                    found.append(Import(candidate if is_module else node.module, node.lineno, annotation_only))
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.startswith("respq")]
                found.extend(Import(name, node.lineno, annotation_only) for name in names)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child], annotation_only)

    visit(ast.parse(path.read_text()).body, False)
    return found


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_import_points_down_the_layers() -> None:
    violations = []
    for path in sources():
        module = module_name(path)
        own = layer_of(module)
        for imported in imports_of(path):
            target = layer_of(imported.module)
            if target > own and (module, imported.module) not in LAZY_FACADE:
                kind = "annotation import" if imported.annotation_only else "import"
                violations.append(
                    f"{path.relative_to(ROOT)}:{imported.line}: {kind} of {imported.module} ({LAYERS[target][0]}) "
                    f"from the {LAYERS[own][0]} layer"
                )
    assert not violations, "\n".join(violations)


def private_names_defined(tree: ast.Module) -> set[str]:
    """Private names a module owns: its functions, classes, attributes it assigns, slots it declares."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id == "__slots__" and node.value is not None:
                    names |= {
                        elt.value
                        for elt in ast.walk(node.value)
                        if isinstance(elt, ast.Constant) and isinstance(elt.value, str)
                    }
    return {name for name in names if _is_private(name)}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


# Private names of the standard library that respq uses on purpose.
STANDARD_PRIVATE = {"_getframe", "_exit", "_current_frames"}


def test_no_module_touches_another_modules_private_names() -> None:
    violations = []
    for path in sources():
        tree = ast.parse(path.read_text())
        own = private_names_defined(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                if node.attr not in own and node.attr not in STANDARD_PRIVATE:
                    violations.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("respq"):
                violations += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: imports {node.module}.{alias.name}"
                    for alias in node.names
                    if _is_private(alias.name) and alias.name != "_speedups"
                ]
    assert not violations, "\n".join(violations)


def test_the_engine_the_keyspace_and_the_checker_name_no_value_type() -> None:
    """Types are plug-ins: the engine, the keyspace and ``respq check`` only know the registry."""
    from respq.types import REGISTRY

    generic = [PACKAGE / "storage" / "engine.py", PACKAGE / "keyspace.py", PACKAGE / "storage" / "check.py"]
    type_names = {vtype.name for vtype in REGISTRY}
    # "set" is also the engine's verb (set_expire) and plural (snapshot sets): a literal 'set' still counts.
    words = (type_names | {f"{name}s" for name in type_names}) - {"set", "sets"}
    violations = []
    for path in generic:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Name | ast.Attribute):
                name = node.id if isinstance(node, ast.Name) else node.attr
                if name in vars(builtins):
                    continue  # the builtin list, not the value type
                pieces = {piece.lower() for piece in _identifier_pieces(name)}
                if pieces & words:
                    violations.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
            elif isinstance(node, ast.Constant) and node.value in type_names:
                violations.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not violations, "\n".join(violations)


def _identifier_pieces(name: str) -> list[str]:
    """``create_list`` -> create, list; ``ListLog`` -> List, Log."""
    pieces: list[str] = []
    for part in name.split("_"):
        pieces += re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", part)
    return pieces


def test_a_type_declaring_cold_forms_or_settings_must_define_their_methods() -> None:
    """The registry refuses a type that declares an optional capability without the methods the engine calls."""
    import pytest

    from respq.storage.port import TypeRegistry
    from respq.types.strings.model import StringType

    class ColdString(StringType):
        name, code, ops, cold_kinds = "coldstring", 99, (), (99,)

    with pytest.raises(ValueError, match="declares cold kinds but does not define thaw"):
        TypeRegistry([ColdString()])

    class SetString(StringType):
        name, code, ops, default_settings = "setstring", 98, (), b""

    with pytest.raises(ValueError, match="declares settings but does not define parse_settings"):
        TypeRegistry([SetString()])
