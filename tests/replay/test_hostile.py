"""Hostile producers through `streamwatch replay`'s pipeline (the worker's, from the same settings).

The failing baselines (issue 13): 2,000 invented model names made 4,011 alerts; 2,000 predictions
sharing one request id took ~60 s; one event 9 hours ahead left 5,994 of 6,000 events late;
500k invented feature names grew a window's state without bound.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from streamwatch.alerts.engine import Alerting
from streamwatch.clock import now_ms
from streamwatch.config.settings import Settings, load_settings
from streamwatch.contract.encode import Encoder
from streamwatch.pipeline.aggregates import UNKNOWN_FEATURE_NAMES
from streamwatch.pipeline.from_settings import pipeline_from_settings
from streamwatch.replay.run import ReplayBatch, ReplaySummary, replay
from tests.replay.test_run import START, reference, write_jsonl

ENCODER = Encoder(clock_ms=now_ms)


class Recorder:
    def __init__(self) -> None:
        self.batches: list[ReplayBatch] = []

    def start(self, profiles: Any) -> None:
        pass

    def write(self, batch: ReplayBatch) -> None:
        self.batches.append(batch)

    def close(self) -> None:
        pass


def settings(**worker: Any) -> Settings:
    return load_settings(
        models=[{"name": "credit", "references": {"3": "credit-3.json"}}],
        worker={"max_age_ms": 3650 * 86_400_000, **worker},
    )


def run(tmp_path: Path, raws: list[bytes], config: Settings, alerting: bool = False) -> tuple[ReplaySummary, Recorder]:
    profiles = {("credit", "3"): reference()}
    pipe = pipeline_from_settings(config, profiles)
    rules = None
    if alerting:
        rules = Alerting([], {}, config.alerting, profiles, config.models, pipe.window_ms)
    recorder = Recorder()
    summary = replay([write_jsonl(tmp_path / "events.jsonl", raws)], profiles, pipe, [recorder], 500, alerting=rules)
    return summary, recorder


def prediction(model: str, version: str, request_id: str, at: int, **extra: Any) -> bytes:
    features = {"income": 0.1, "age": 0.2, "city": "alpha", **extra.pop("features", {})}
    return ENCODER.prediction(
        model, version, request_id, 20.0, features, 1, 0.6, "production", "ok", None, None, None, at, None, **extra
    )


def steady(n: int, every_ms: int = 1_000) -> list[bytes]:
    return [prediction("credit", "3", f"r{i}", START + i * every_ms) for i in range(n)]


def test_invented_model_names_are_dead_letters_counted_not_state_or_alerts(tmp_path: Path) -> None:
    invented = [
        ENCODER.prediction(
            f"m{i}", "1", f"x{i}", 20.0, {}, 1, 0.5, "production", "error", "boom", None, None, START, None
        )
        for i in range(2_000)
    ]
    summary, recorder = run(
        tmp_path, steady(600) + invented + [prediction("credit", "4", "v4", START + 1)], settings(), True
    )
    assert summary.screened["unknown_model"] == 2_001  # the 2,000 names and credit's version without a reference
    assert summary.models == {("credit", "3")}
    clean, _ = run(tmp_path, steady(600), settings(), True)
    assert summary.alerts == clean.alerts  # only credit's own (baseline: 4,011 alerts)
    letters = [d for b in recorder.batches for d in b.dead_letters]
    assert len(letters) == 2_001 and "is not monitored (see worker.unknown_models)" in letters[0].reason
    accepting, _ = run(tmp_path, steady(60) + invented[:10], settings(unknown_models="accept"))
    assert accepting.screened["unknown_model"] == 0 and len(accepting.models) == 11


def test_a_request_id_reused_by_thousands_is_capped_counted_and_quick(tmp_path: Path) -> None:
    reused = [prediction("credit", "3", "same", START + i) for i in range(2_000)]
    started = time.perf_counter()
    summary, _ = run(tmp_path, reused, settings())
    elapsed = time.perf_counter() - started
    assert summary.screened["request_id_reused"] == 2_000 - 16
    assert elapsed < 20  # baseline: ~60 s (each reuse copied every earlier one); now linear, ~1 s


def test_one_event_nine_hours_ahead_leaves_the_other_events_on_time(tmp_path: Path) -> None:
    raws = steady(6_000, every_ms=200)  # 20 minutes
    raws.insert(6, prediction("credit", "3", "local-time", START + 6 * 200 + 9 * 3_600_000))
    summary, _ = run(tmp_path, raws, settings())
    assert summary.late_events == 0  # baseline: 5,994
    assert summary.screened["future_leap"] == 1
    assert summary.metric_rows > 0


def test_invented_feature_names_are_capped_counted_and_reported(tmp_path: Path) -> None:
    raws = [
        prediction("credit", "3", f"r{i}", START + i * 100, features={f"junk{i:06d}": 1.0, f"more{i:06d}": 2.0})
        for i in range(3_000)
    ]
    profiles = {("credit", "3"): reference()}
    pipe = pipeline_from_settings(settings(), profiles)
    pipe.process(raws)
    for aggregates in pipe.stage.open_windows().values():
        assert len(aggregates.unknown_features) <= UNKNOWN_FEATURE_NAMES + 1  # and the others, together
    _, recorder = run(tmp_path, raws, settings())
    rows = [
        r for b in recorder.batches for r in b.rows if r.metric == "unknown_feature_values" and r.window == "tumbling"
    ]
    assert sum(r.value for r in rows) == 6_000  # every value counted, whatever its name
