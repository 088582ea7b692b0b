"""Each I/O library sits behind exactly one module, and the contract modules do no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "src" / "streamwatch"

# library -> the only module allowed to import it
OWNERS = {
    "confluent_kafka": "kafka.py",
    "subprocess": "localbroker.py",
    "socket": "localbroker.py",
    "clickhouse_connect": "clickhouse.py",
    "httpx": "http.py",
    "faust": "worker.py",
    "typer": "cli.py",
    "pyarrow": "datasets.py",
    "prometheus_client": "worker_metrics.py",
    "grafana_client": "grafana.py",
}
# Modules that must stay pure: no I/O, no threads, no clock. The whole core is, and so is the
# pipeline that drives it from raw bytes (its test entry point needs no broker).
PURE = {
    "limits.py",
    "errors.py",
    "events.py",
    "ids.py",
    "config.py",
    "decode.py",
    "pipeline.py",
    "partition_stage.py",
    "partial_merge.py",
    "reporter.py",
    "state_codec.py",
    "alert_rules.py",
    "alert_observations.py",
    "alert_events.py",
    "alert_routing.py",
    "default_rules.py",
    "rule_config.py",
    "durations.py",
    "notifications.py",
    "notification_payloads.py",
    "silences.py",
    "retrain_events.py",
    "demo_scenario.py",
    "dashboard_model.py",
    "dashboards.py",
    "report_charts.py",
    "window_aggregates.py",
    "window_report.py",
    "performance.py",
    "divergence.py",
    "slo_history.py",
    "profiles.py",
} | {f"core/{p.name}" for p in (Path(__file__).parent.parent / "src" / "streamwatch" / "core").glob("*.py")}
IMPURE = {
    "confluent_kafka",
    "subprocess",
    "socket",
    "clickhouse_connect",
    "httpx",
    "faust",
    "threading",
    "time",
    "requests",
    "urllib",
    "asyncio",
    "aiokafka",
    "chdb",
    "prometheus_client",
    "tenacity",
}


# Pure parts of impure packages: URL quoting does no I/O.
PURE_SUBMODULES = {"urllib.parse"}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found |= {name if name in PURE_SUBMODULES else name.split(".")[0] for name in names}
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_io_libraries_have_one_owner(path: Path) -> None:
    for library in imports(path):
        owner = OWNERS.get(library)
        assert owner is None or path.name == owner, f"{path.name} imports {library}; only {owner} may"


@pytest.mark.parametrize("name", sorted(PURE))
def test_contract_modules_are_pure(name: str) -> None:
    assert not imports(PACKAGE / name) & IMPURE


def test_the_core_is_covered() -> None:
    assert {"core/histogram.py", "core/drift.py"} <= PURE


def test_the_layering_test_sees_imports(tmp_path: Path) -> None:
    assert "confluent_kafka" in imports(PACKAGE / "kafka.py")
    sample = tmp_path / "sample.py"
    sample.write_text("from urllib.request import urlopen\nfrom urllib.parse import quote\n")
    assert imports(sample) == {"urllib", "urllib.parse"}
    assert "pydantic" in imports(PACKAGE / "events.py")


CORE = sorted((PACKAGE / "core").glob("*.py"))
CLOCK_READS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "perf_counter", "process_time"}


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_the_core_reads_no_clock_file_or_randomness(path: Path) -> None:
    assert not imports(path) & {"os", "random", "pathlib", "io", "shutil", "tempfile"}
    calls = {
        node.func.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & CLOCK_READS, f"{path.name} reads a clock: time comes from events"


def test_the_clock_check_sees_clock_reads(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import datetime\nstamp = datetime.datetime.now()\n")
    calls = {
        n.func.attr
        for n in ast.walk(ast.parse(sample.read_text()))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    assert calls & CLOCK_READS


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_reference_implementations_stay_in_the_tests(path: Path) -> None:
    # fairlearn, scikit-learn and pandas check the core's figures; the product never needs them.
    assert not imports(path) & {"fairlearn", "sklearn", "pandas", "evidently"}
