"""The architecture holds: packages that say what they are, import-linter contracts that bite, tests that mirror.

The contracts themselves live in pyproject.toml (``[tool.importlinter]``) and
``make test`` runs ``lint-imports``; these tests check that the contracts
cover the packages, that a planted violation of each kind is caught, and what
an import graph cannot see (a clock read through ``datetime.now()``).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "src" / "streamwatch"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
SUBPACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def test_the_top_level_keeps_only_the_entry_points_and_the_shared_basics() -> None:
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 6, modules
    assert {"__init__.py", "__main__.py", "errors.py"} <= set(modules)


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_each_package_says_what_it_is_and_what_it_may_import(name: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
    assert doc and "May import" in doc, f"streamwatch.{name}.__init__ needs a docstring saying what it may import"


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_the_tests_mirror_the_packages(name: str) -> None:
    assert list((ROOT / "tests" / name).glob("test_*.py")), f"tests/{name}/ has no tests"


def test_every_package_has_a_place_in_the_layers() -> None:
    layers = next(c for c in CONFIG["contracts"] if c["type"] == "layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    top_modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert placed == set(SUBPACKAGES) | top_modules


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout


PLANTED = {
    # an upward import: the core reaching into the alerting
    "core/join.py": (
        "from streamwatch.alerts import engine",
        "streamwatch.core is not allowed to import streamwatch.alerts",
    ),
    # a pure package reading the clock
    "pipeline/stage.py": ("import time", "streamwatch.pipeline is not allowed to import time"),
    # an I/O library outside its adapter
    "alerts/engine.py": ("import httpx", "streamwatch.alerts.engine"),
    # two packages of one layer that must stay independent
    "report/html.py": ("from streamwatch.dashboards import catalog", "streamwatch.report"),
}


def test_the_contracts_catch_each_kind_of_violation(tmp_path: Path) -> None:
    shutil.copytree(PACKAGE, tmp_path / "src" / "streamwatch", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for module, (line, _) in PLANTED.items():
        path = tmp_path / "src" / "streamwatch" / module
        path.write_text(path.read_text() + f"\n{line}  # planted by the test\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    for module, (_, message) in PLANTED.items():
        assert message in result.stdout, f"the planted violation in {module} was not reported:\n{result.stdout[-3000:]}"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


PURE = [
    p
    for name in ("core", "contract", "pipeline", "alerts", "profiles", "report", "dashboards")
    for p in sorted((PACKAGE / name).glob("*.py"))
] + [PACKAGE / "times.py", PACKAGE / "notify" / "payloads.py", PACKAGE / "demo" / "scenario.py"]
CLOCK_READS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "perf_counter", "process_time"}


def _owner(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _calls(source: str) -> set[str]:
    # `datetime.now()`, `date.today()`, `time.time()`; not a builder's `.time("now-6h", "now")`.
    return {
        node.func.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and _owner(node.func.value) in {"datetime", "date", "time"}
    }


@pytest.mark.parametrize("path", PURE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_modules_read_no_clock(path: Path) -> None:
    # import-linter forbids the `time` module; `datetime.now()` needs no import of it.
    assert not _calls(path.read_text()) & CLOCK_READS, f"{path.name} reads a clock: time comes from events"


def test_the_clock_check_sees_clock_reads() -> None:
    assert _calls("import datetime\nstamp = datetime.datetime.now()\n") & CLOCK_READS
    assert _calls("from datetime import date\nday = date.today()\n") & CLOCK_READS
    assert not _calls("panel = builder.time('now-6h', 'now')\n") & CLOCK_READS


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_the_core_reads_no_file_and_no_randomness(path: Path) -> None:
    assert not _imports(path) & {"os", "random", "pathlib", "io", "shutil", "tempfile"}


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_pickle_and_no_reference_implementations_in_the_product(path: Path) -> None:
    # State is plain, versioned data (pipeline.state); fairlearn, scikit-learn and pandas check the
    # core's figures in the tests, and the product never needs them.
    assert not _imports(path) & {"pickle", "fairlearn", "sklearn", "pandas", "evidently"}


def test_the_import_check_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import pickle\nfrom sklearn.metrics import roc_auc_score\n")
    assert _imports(sample) == {"pickle", "sklearn"}
    assert {"confluent_kafka"} <= _imports(PACKAGE / "adapters" / "kafka.py")
