"""The HTML report: built from ClickHouse loaded by the demo scenario, self-contained, drawn by headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from streamwatch.adapters.clickhouse import Store
from streamwatch.alerts.engine import Alerting
from streamwatch.config.settings import load_settings
from streamwatch.demo.scenario import MODEL, DemoScenario
from streamwatch.pipeline.from_settings import pipeline_from_settings
from streamwatch.replay.run import ClickHouseSink, replay
from streamwatch.report.html import render_report, report_data

SCENARIO = DemoScenario(minutes=15, per_minute=300)


def load_demo(store: Store, tmp_path: Path) -> None:
    """The demo scenario replayed into ``store``, alerts included: what a demo run leaves in ClickHouse."""
    profiles = SCENARIO.reference_profiles(rows=5_000)
    settings = load_settings(
        models=[{"name": MODEL, "segments": ["gender", "region"], "slo": {"latency_ms": 300, "target": 0.99}}],
        windows={"rolling_windows": 0},
        # As the demo configures it: a drifted feature asks for a retrain.
        rules=[
            {"name": "feature-drift", "kind": "drift", "when": {"finding": "drift"}, "for": 2, "actions": ["retrain"]}
        ],
    )
    pipeline = pipeline_from_settings(settings, profiles)
    alerting = Alerting(settings.rules, {}, settings.alerting, profiles, settings.models, pipeline.window_ms)
    events = tmp_path / "demo.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in SCENARIO.events()) + b"\n")
    replay([events], profiles, pipeline, [ClickHouseSink(store)], alerting=alerting)


@pytest.fixture
def html(store: Store, tmp_path: Path) -> str:
    load_demo(store, tmp_path)
    end = SCENARIO.start_ms + SCENARIO.minutes * 60_000
    return render_report(report_data(store, MODEL, SCENARIO.start_ms, end))


def test_the_report_has_every_section_with_charts_and_needs_nothing_external(html: str) -> None:
    for heading in ("Reference lineage", "Alerts", "Drift per feature", "Fairness per slice", "Latency and SLO"):
        assert f"<h2>{heading}</h2>" in html
    assert html.count("<svg") >= 10 and "polyline" in html and "drift heatmap" in html
    assert "s3://ml-data/credit-risk/train-3.1.0.parquet" in html and "four fifths" in html
    assert "slice-fpr-gap" in html and "slo-burn" in html and "feature-drift" in html
    # the demo's embedding (its applications' free text) moves with debt_ratio from minute 5: its section tables it
    embedding = html.split("<h2>Embedding drift: purpose</h2>", 1)[1].split("<h2>", 1)[0]
    assert "purpose: Euclidean distance of the mean" in embedding and "2026-11-18 11:11 UTC" in embedding
    lowered = html.lower()
    assert "<script" not in lowered and "http://" not in lowered.replace('xmlns="http://www.w3.org/2000/svg"', "")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (make test installs it)")
def test_headless_chromium_draws_the_report(html: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(html)
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    run = subprocess.run(
        ["chromium", *flags, "--window-size=1000,2400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.stat().st_size > 50_000  # a page of charts, not a blank one
    dom = subprocess.run(
        ["chromium", *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    assert dom.count("<svg") == html.count("<svg") and "streamwatch report: credit-risk" in dom


def test_replay_then_report_from_the_command_line(tmp_path: Path) -> None:
    from tests.cli.test_main import run

    scenario = DemoScenario(minutes=8, per_minute=150)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in scenario.events()) + b"\n")
    profiles = run(
        "traffic", "--minutes", "8", "--per-minute", "150", "--profiles-out", str(tmp_path / "p"), "--profiles-only"
    )
    assert profiles.returncode == 0, profiles.stderr
    config = tmp_path / "streamwatch.yaml"
    config.write_text(
        f"clickhouse: {{dsn: 'chdb://{tmp_path / 'ch'}'}}\nmodels: [{{name: {MODEL}, segments: [gender]}}]\n"
    )
    references = [a for p in sorted((tmp_path / "p").iterdir()) for a in ("--reference", str(p))]
    replayed = run("replay", str(events), *references, "-c", str(config))
    assert replayed.returncode == 0, replayed.stderr
    since = "2026-11-18T00:00:00Z"  # the scenario's event time (its default start)
    page = tmp_path / "report.html"
    made = run("report", "--model", MODEL, "--since", since, "--out", str(page), "-c", str(config))
    assert made.returncode == 0 and made.stdout.startswith(f"wrote {page}"), made.stderr
    assert "<h2>Drift per feature</h2>" in page.read_text()
    missing = run("report", "--model", "nope", "--since", since, "--out", str(page), "-c", str(config))
    assert missing.returncode == 2 and "--model 'nope': no results since" in missing.stderr
    bad = run("report", "--model", MODEL, "--since", "yesterday", "-c", str(config))
    assert bad.returncode == 2 and "--since 'yesterday'" in bad.stderr
