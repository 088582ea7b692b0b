"""The benchmarks run (in --quick mode); their figures are for the README, not for assertions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from ratios import RATIOS  # noqa: E402  # (bench/ is not a package)


def _ratio_found(script: str, output: str) -> bool:
    """bench/ratios.py finds this benchmark's ratio in its output (so ``make bench``'s table cannot go blank)."""
    pattern = next(pattern for name, _, pattern, _, _ in RATIOS if name == script)
    return re.search(pattern, output) is not None


def test_producer_bench_runs_and_prints_its_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "producer.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("bare produce()", "streamwatch log_prediction()", "ratio SDK / bare produce():", "dropped 0"):
        assert line in result.stdout
    assert _ratio_found("producer.py", result.stdout)


def test_core_bench_runs_and_prints_its_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "core.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("orjson.loads", "streamwatch pipeline", "ratio pipeline / orjson.loads:", "peak MiB"):
        assert line in result.stdout
    assert _ratio_found("core.py", result.stdout)


def test_worker_bench_runs_and_stores_every_prediction() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "worker.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("bare consume(1000)", "Kafka to ClickHouse", "Faust agent", "worker / bare consumer:", "queryable"):
        assert line in result.stdout
    assert "predictions stored: 3,360" in result.stdout  # 3,000 plus the delay probe's 300 and 60
    assert _ratio_found("worker.py", result.stdout)


def test_replay_bench_runs_and_prints_its_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "replay.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in (
        "bare pass: read + orjson.loads",
        "replay, chdb store + --out export",
        "replay --no-store, no export",
        "goal: replay >= 20% of the bare pass:",
        "15 minutes of credit 3",
    ):
        assert line in result.stdout
    assert _ratio_found("replay.py", result.stdout)


def test_replay_bench_profiles_where_the_time_goes() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "replay.py"), "--quick", "--profile"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("Top 30 by cumulative time", "where the profiled replay's", "decode (contract)", "chdb inserts"):
        assert line in result.stdout


def test_state_bench_runs_and_prices_a_checkpoint_at_full_rate() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "state.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("stage checkpoint", "SWS / pickle", "checkpoint at full rate", "caps full: extrap.", "of one core"):
        assert line in result.stdout


def test_alerts_bench_runs_and_every_webhook_verifies() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "alerts.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("closing event -> webhook received", "bare floor", "goal p99 <= 1000 ms"):
        assert line in result.stdout
    assert "every webhook signature verified: True" in result.stdout


def _false_alerts():  # type: ignore[no-untyped-def]
    """bench/false_alerts.py as a module (bench is no package)."""
    import importlib.util

    if "false_alerts" in sys.modules:  # loaded once: its pool pickles functions by module name
        return sys.modules["false_alerts"]
    spec = importlib.util.spec_from_file_location("false_alerts", BENCH / "false_alerts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["false_alerts"] = module
    spec.loader.exec_module(module)
    return module


def test_false_alerts_fills_windows_and_performance_as_the_pipeline_does() -> None:
    import numpy as np

    from streamwatch.clock import now_ms
    from streamwatch.contract.decode import decode_batch
    from streamwatch.contract.encode import Encoder
    from streamwatch.core.slo import SLO
    from streamwatch.pipeline.aggregates import WindowAggregates

    fa = _false_alerts()
    generator = fa.Generator(20)
    profile = fa.reference(generator, seed=3)
    slo = SLO(target=0.999, latency_ms=300.0)
    rng = np.random.default_rng(5)
    columns = generator.draw(rng, 600, shift={generator.drifting: 3.0})  # out-of-range values too
    columns["ok"][:7] = False
    columns["latency_ms"][7:12] = 450.0
    columns["score"] = np.where(columns["ok"], columns["score"], np.nan)
    encoder = Encoder(clock_ms=now_ms)
    raws = []
    for i in range(600):
        features: dict[str, object] = {}
        for feature in generator.features:
            value = columns[feature.name][i]
            if feature.kind == "category":
                features[feature.name] = value
            elif np.isnan(value):
                features[feature.name] = None
            elif feature.kind.startswith("poisson"):
                features[feature.name] = int(value)  # counts travel as integers
            else:
                features[feature.name] = float(value)
        ok = bool(columns["ok"][i])
        raws.append(
            encoder.prediction(
                fa.MODEL,
                fa.VERSION,
                f"r{i}",
                float(columns["latency_ms"][i]),
                features,
                int(columns["prediction"][i]) if ok else None,
                float(columns["score"][i]) if ok else None,
                "production",
                "ok" if ok else "error",
                None if ok else "timeout",
                {name: str(columns[name][i]) for name in fa.SEGMENTS},
                None,
                fa.START_MS + i,
                None,
                {fa.EMBEDDING: columns[fa.EMBEDDING][i].tolist()},  # a list: sent as it is, so the sums agree
            )
        )
    batch = decode_batch(raws)
    assert not batch.dead_letters
    slices = [["gender"], ["region"]]
    assert profile.calibration is not None  # the simulated model is calibrated: its performance is estimated
    expected = WindowAggregates(profile, slo, slices)
    expected.update(batch.predictions)
    filled = fa.fill_window(
        profile, slo, dict(columns, score=np.where(columns["ok"], columns["score"], np.nan)), slices
    )
    assert filled.features.keys() == expected.features.keys()
    for name, aggregate in expected.features.items():
        assert filled.features[name] == aggregate, name
    assert dict(filled.out_of_range) == dict(expected.out_of_range)
    assert sum(filled.out_of_range.values()) > 0
    assert dict(filled.type_mismatch) == dict(expected.type_mismatch) == {}
    assert filled.score == expected.score
    assert filled.prediction == expected.prediction and expected.prediction is not None
    assert filled.multivariate == expected.multivariate and expected.multivariate is not None
    assert filled.multivariate_slices == expected.multivariate_slices and expected.multivariate_slices is not None
    assert filled.embeddings == expected.embeddings and expected.embeddings[fa.EMBEDDING].n == 600
    assert filled.projections == expected.projections and len(expected.projections) == 8
    assert expected.multivariate.n == 600 and expected.multivariate.imputed > 0
    assert filled.estimate == expected.estimate and expected.estimate is not None and expected.estimate.n > 500
    assert (filled.sli.good, filled.sli.total) == (expected.sli.good, expected.sli.total)
    assert expected.sli.bad >= 12  # the 7 errors and 5 slow requests, at least
    assert (filled.requests, filled.errors) == (expected.requests, expected.errors)
    assert expected.errors >= 7
    assert filled.latency == expected.latency
    quantiles = [0.5, 0.95, 0.99, 1.0]
    assert filled.latency.quantiles(quantiles) == expected.latency.quantiles(quantiles)

    # Performance: the columns' shortcut equals update() on the join's (prediction record, label) pairs.
    labelled = fa.take(columns, np.flatnonzero(columns["ok"]))
    edges = np.asarray(profile.score.edges)
    expected_performance = fa.PerformanceAggregates(slices, "1", edges)
    expected_performance.update(fa.matches(labelled, "production"))
    filled_performance = fa.PerformanceAggregates(slices, "1", edges)
    half = len(labelled["label"]) // 2
    fa.fill_performance(filled_performance, fa.take(labelled, np.arange(half)))  # in two steps, as labels come
    fa.fill_performance(filled_performance, fa.take(labelled, np.arange(half, len(labelled["label"]))))
    assert filled_performance.confusion == expected_performance.confusion
    assert filled_performance.scores == expected_performance.scores
    assert filled_performance.log_loss == expected_performance.log_loss
    assert filled_performance.estimate == expected_performance.estimate
    assert filled_performance.estimate_correct == expected_performance.estimate_correct
    assert expected_performance.estimate_correct is not None and expected_performance.estimate_correct.n > 100
    assert str(filled_performance.metrics()) == str(expected_performance.metrics())  # NaN != NaN, but prints alike


def test_false_alerts_counts_a_stationary_run_and_detects_a_shift() -> None:
    fa = _false_alerts()
    incident = fa.Incident("mean +1 sd @ 570 rpm", "feature-drift", onset=30, shift_sigma=1.0)
    results = fa.simulate([(20, 10)], 120, [("mean +1 sd @ 570 rpm", 20, 570, incident, None)], after=10)
    (shape,) = results["shapes"]
    assert (shape["features"], shape["requests_per_minute"], shape["minutes"]) == (20, 10, 120)
    assert set(shape) >= {"firing_per_week", "firing_per_week_total", "findings_per_week"}
    assert abs(shape["firing_per_week_total"] - sum(shape["firing_per_week"].values())) < 0.1
    (found,) = results["incidents"]
    assert found["rule"] == "feature-drift" and found["onset_minute"] == 30
    delay = found["delay_windows"]["feature-drift"]
    assert delay is not None and 0 <= delay <= 3  # `for` is 2 windows: the second window after onset fires
    table = fa.markdown(results)
    assert "| feature-drift |" in table and "| mean +1 sd @ 570 rpm | feature-drift |" in table


def test_reports_bench_runs_and_prices_windows_slices_and_partitions() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "reports.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in (
        "the whole report (report_many, with the view)",
        "performance view (30 m), per report",
        "µs/series",
        "perf. partial ms",
        "decode+merge",
    ):
        assert line in result.stdout
