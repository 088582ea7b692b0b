"""The benchmarks run (in --quick mode); their figures are for the README, not for assertions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "bench"


def test_producer_bench_runs_and_prints_its_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "producer.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("bare produce()", "streamwatch log_prediction()", "ratio SDK / bare produce():", "dropped 0"):
        assert line in result.stdout


def test_core_bench_runs_and_prints_its_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "core.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("orjson.loads", "streamwatch pipeline", "ratio pipeline / orjson.loads:", "peak MiB"):
        assert line in result.stdout


def test_worker_bench_runs_and_stores_every_prediction() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "worker.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("bare consume(1000)", "Kafka to ClickHouse", "Faust agent", "worker / bare consumer:", "queryable"):
        assert line in result.stdout
    assert "predictions stored: 3,360" in result.stdout  # 3,000 plus the delay probe's 300 and 60


def test_alerts_bench_runs_and_every_webhook_verifies() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "alerts.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("closing event -> webhook received", "bare floor", "goal p99 <= 1000 ms"):
        assert line in result.stdout
    assert "every webhook signature verified: True" in result.stdout
