"""The pytest plugin as an outside project meets it: respq installed (not imported from this checkout) into a fresh
virtualenv, and the sample project's own suite run there with the fixtures the entry point provides."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = Path(__file__).resolve().parent / "sample_project"
# What pip builds respq from: a copy, so that the build leaves nothing in the checkout.
SOURCES = ("respq", "pyproject.toml", "setup.py", "README.md")
INSTALL_TIMEOUT = 300
RUN_TIMEOUT = 300


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with respq installed from a copy of this checkout. The test dependencies already installed
    here (pytest, redis-py, trio...) are shared through a path file rather than downloaded, so this works offline;
    pip installs respq alone (--no-deps), building it with the setuptools found here (--no-build-isolation)."""
    root = tmp_path_factory.mktemp("venv")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        else:
            shutil.copy2(path, source / name)
    env_dir = root / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=RUN_TIMEOUT)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=RUN_TIMEOUT,
    ).stdout.strip()  # fmt: skip
    # Plain directory lines: these directories' own .pth files (an editable respq among them) are not processed,
    # so the respq imported in the virtualenv is the one installed there.
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    Path(purelib, "_shared_test_dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(shared)))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", str(source)],
        check=True, timeout=INSTALL_TIMEOUT, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    return env_dir


def _pytest(venv: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(project)  # the application's own package, as an editable install of it would
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-v", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "sample_project"
    shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_sample_project_suite_runs_on_respq(venv: Path, project: Path) -> None:
    result = _pytest(venv, project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    # The respq imported there is the installed one, not this checkout.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import respq, respq.testing; print(respq.__file__)"],
        cwd=project, capture_output=True, text=True, timeout=RUN_TIMEOUT, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert str(venv) in where.stdout


def test_plugin_is_disabled_with_p_no_respq(venv: Path, project: Path) -> None:
    result = _pytest(venv, project, "-p", "no:respq")
    assert result.returncode != 0
    assert "fixture 'respq_client' not found" in result.stdout


def test_memory_storage_option_reaches_the_server(venv: Path, project: Path) -> None:
    """--respq-storage memory asks the server for the memory-only mode: the server's answer decides (until that
    mode exists, its refusal of the directive shows in the failure)."""
    result = _pytest(venv, project, "--respq-storage", "memory", "-k", "url_fixture")
    output = result.stdout + result.stderr
    assert "--storage memory" in output or result.returncode == 0, output
