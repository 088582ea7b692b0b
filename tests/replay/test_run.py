"""Replaying event files through the real pipeline, into the JSON Lines export and other sinks."""

from __future__ import annotations

import gzip
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from streamwatch.cli.main import app
from streamwatch.clock import now_ms
from streamwatch.config.settings import load_settings
from streamwatch.contract.encode import Encoder
from streamwatch.contract.limits import MAX_EVENT_BYTES
from streamwatch.errors import ConfigError, StreamwatchError
from streamwatch.pipeline.from_settings import configured_profiles, load_profiles, pipeline_from_settings
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.profiles.model import Lineage, build_profile
from streamwatch.replay.export import EXPORT_FILES, ExportSink
from streamwatch.replay.run import ClickHouseSink, ReplayBatch, replay

START = 1_795_000_020_000 - 1_795_000_020_000 % 60_000
LEVELS = ["alpha", "beta", "gamma"]
METRIC_KEY = (
    "model",
    "model_version",
    "variant",
    "window_start",
    "window_end",
    "window",
    "metric",
    "feature",
    "segment",
)


def reference(model: str = "credit", version: str = "3", rows: int = 3000):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    lineage = Lineage(
        model=model,
        model_version=version,
        data_uri="synthetic",
        rows=rows,
        content_sha256="0" * 64,
        created_at="2026-11-23T00:00:00Z",
        streamwatch_version="test",
    )
    columns = {
        "income": rng.normal(size=rows),
        "age": rng.normal(size=rows),
        "city": rng.choice(np.array(LEVELS, dtype=object), rows),
        "score": rng.random(rows),
        "y": rng.integers(0, 2, rows),
        "gender": rng.choice(np.array(["F", "M"], dtype=object), rows),
    }
    return build_profile(columns, lineage=lineage, score_column="score", label_column="y", segments=["gender"])


def make_events(n: int = 1800, *, labels: bool = True, seed: int = 1) -> list[bytes]:
    """Predictions every 100 ms (3 one-minute windows) with labels for half, arrival order shuffled locally."""
    rng = np.random.default_rng(seed)
    encoder = Encoder(clock_ms=now_ms)
    arrivals: list[tuple[int, bytes]] = []
    for i in range(n):
        at = START + i * 100
        error = i % 40 == 0
        features = {"income": float(rng.normal()), "age": float(rng.normal()), "city": LEVELS[i % 3]}
        raw = encoder.prediction(
            "credit",
            "3",
            f"r{i}",
            float(rng.lognormal(3, 0.5)),
            features,
            None if error else i % 2,
            None if error else float(rng.random()),
            "production",
            "error" if error else "ok",
            "timeout" if error else None,
            {"gender": "FM"[i % 2]},
            None,
            at,
        )
        arrivals.append((at, raw))
        if labels and i % 2 == 0:
            arrives = at + 30_000 if i % 4 else at - 2_000  # every other label before its prediction
            label = encoder.label(model="credit", request_id=f"r{i}", label=int(rng.random() < 0.4), timestamp=arrives)
            arrivals.append((arrives, label))
    arrivals.sort(key=lambda pair: pair[0])
    ordered = [raw for _, raw in arrivals]
    shuffler = random.Random(seed)
    out: list[bytes] = []
    for start in range(0, len(ordered), 20):  # a label may now come before its prediction
        block = ordered[start : start + 20]
        shuffler.shuffle(block)
        out += block
    return out


def write_jsonl(path: Path, raws: list[bytes]) -> Path:
    path.write_bytes(b"".join(raw + b"\n" for raw in raws))
    return path


def pipeline() -> Pipeline:
    return Pipeline({("credit", "3"): reference()}, min_samples=10)


class Recorder:
    """A sink that keeps everything it is given."""

    def __init__(self) -> None:
        self.profiles: Any = None
        self.batches: list[ReplayBatch] = []

    def start(self, profiles: Any) -> None:
        self.profiles = profiles

    def write(self, batch: ReplayBatch) -> None:
        self.batches.append(batch)

    def rows(self) -> list[dict]:
        return [row.export() for batch in self.batches for row in batch.rows]


def read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def current(metrics: list[dict]) -> dict[bytes, dict]:
    """The last line per window, metric and segment: what the export format says is current."""
    return {orjson.dumps([row[k] for k in METRIC_KEY]): row for row in metrics}


def export_run(tmp_path: Path, files: list[Path], batch_size: int, name: str) -> Path:
    with ExportSink(tmp_path / name) as sink:
        replay(files, {}, pipeline(), [sink], batch_size=batch_size)
    return tmp_path / name


def test_without_labels_the_export_does_not_depend_on_batch_size(tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "events.jsonl", make_events(labels=False))
    outputs = [export_run(tmp_path, [events], size, f"out{size}") for size in (1, 7, 1000)]
    for name in ("metrics.jsonl", "findings.jsonl"):
        first = (outputs[0] / name).read_bytes()
        assert all((out / name).read_bytes() == first for out in outputs[1:])
    assert len(read(outputs[0] / "metrics.jsonl")) > 100


def test_with_labels_batch_size_changes_only_superseded_performance_rows(tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "events.jsonl", make_events())
    outputs = [export_run(tmp_path, [events], size, f"out{size}") for size in (1, 7, 1000)]
    views = [current(read(out / "metrics.jsonl")) for out in outputs]
    assert views[0] == views[1] == views[2]
    assert any(row["metric"] == "accuracy" for row in views[0].values())


def test_replay_emits_what_the_pipeline_emits_on_the_same_lines(tmp_path: Path) -> None:
    raws = make_events()
    events = write_jsonl(tmp_path / "events.jsonl", raws)
    recorder = Recorder()
    profiles = {("credit", "3"): reference()}
    summary = replay([events], profiles, pipeline(), [recorder], batch_size=250)

    direct, rows, findings = pipeline(), [], []
    for start in range(0, len(raws), 250):
        out = direct.process(raws[start : start + 250])
        rows += out.rows
        findings += out.findings
    final = direct.flush()
    assert recorder.rows() == [row.export() for row in rows + final.rows]
    assert [f for b in recorder.batches for f in b.findings] == findings + final.findings
    assert recorder.profiles is profiles
    assert summary.events == len(raws) and summary.dead_letters == 0 and summary.late_events == 0
    # Every error (i % 40 == 0, even i) has a label but no prediction to join it to.
    assert summary.labels_received == 900 and summary.labels_matched == 900 - 45
    assert summary.metric_rows == len(rows) + len(final.rows)
    assert summary.findings == {k: sum(f.kind == k for f in findings + final.findings) for k in summary.findings}
    assert summary.models == {("credit", "3")} and summary.files == [str(events)]


def test_bad_lines_are_dead_letters_naming_file_and_line(tmp_path: Path) -> None:
    good = make_events(200, labels=False)
    long_line = b'{"type": "label", "model": "' + b"x" * (MAX_EVENT_BYTES + 10) + b'"}'
    first = tmp_path / "first.jsonl"
    first.write_bytes(
        good[0]
        + b"\n"
        + b"not json\n"  # line 2
        + b"\n   \n"  # lines 3 and 4: blank, skipped
        + good[1]
        + b"\r\n"  # line 5: CRLF is fine
        + b'{"type": "label", "model": "credit"}\n'  # line 6: breaks the contract
        + b'{"type": "label", "model": "\xff\xfe"}\n'  # line 7: not UTF-8
        + long_line
        + b"\n"  # line 8: far too long
        + b"\n".join(good[2:100])  # lines 9-106, the last without a line break
    )
    second = tmp_path / "second.jsonl.gz"
    with gzip.open(second, "wb") as file:
        file.write(b"\n".join([good[100], b"[1, 2]", *good[101:]]) + b"\n")  # line 2 is bad

    with ExportSink(tmp_path / "out") as sink:
        summary = replay([first, second], {}, pipeline(), [sink], batch_size=7)
    dead = read(tmp_path / "out" / "deadletters.jsonl")
    assert [(d["source"], d["line"]) for d in dead] == [
        (str(first), 2),
        (str(first), 6),
        (str(first), 7),
        (str(first), 8),
        (str(second), 2),
    ]
    assert dead[0]["raw"] == "not json" and dead[4]["raw"] == "[1, 2]"
    assert dead[1]["raw"] == '{"type": "label", "model": "credit"}' and "required field is missing" in dead[1]["reason"]
    assert (
        dead[2]["raw"] is None
        and dead[2]["raw_base64"]
        and dead[2]["reason"].startswith("event: not valid JSON (invalid unicode")
    )
    assert dead[3]["reason"] == f"event: {len(long_line)} bytes exceeds the {MAX_EVENT_BYTES}-byte limit"
    assert len(dead[3]["raw"]) == MAX_EVENT_BYTES  # cut short
    assert summary.events == 200 + 5 and summary.dead_letters == 5
    metrics = read(tmp_path / "out" / "metrics.jsonl")
    requests = sum(row["value"] for row in metrics if row["metric"] == "requests" and row["window"] == "tumbling")
    assert requests == 200  # every good line counted, whatever came around it


def test_the_export_has_all_files_and_documented_metric_fields(tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "events.jsonl", make_events(600))
    out = export_run(tmp_path, [events], 1000, "out")
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPORT_FILES.values())
    assert (out / "alerts.jsonl").read_bytes() == (out / "retrain.jsonl").read_bytes() == b""
    metrics = read(out / "metrics.jsonl")
    assert metrics and all(set(METRIC_KEY) | {"value"} <= set(row) for row in metrics)
    assert {row["window"] for row in metrics} >= {"tumbling", "1h"}
    assert all(row["window_start"].endswith("Z") for row in metrics)


def test_progress_counts_every_byte_plain_or_gzipped(tmp_path: Path) -> None:
    raws = make_events(3000, labels=False)  # more than 1024 lines: progress comes in several steps
    plain = write_jsonl(tmp_path / "events.jsonl", raws)
    packed = tmp_path / "events.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    steps: list[int] = []
    summary = replay([plain, packed], {}, pipeline(), [], progress=steps.append)
    assert sum(steps) == summary.bytes_read == plain.stat().st_size + packed.stat().st_size
    assert len(steps) > 2 and summary.events == 6000


def test_a_file_without_line_breaks_is_not_read_into_memory(tmp_path: Path) -> None:
    events = tmp_path / "array.json"
    events.write_bytes(b"[" + b'{"a": 1}, ' * 2_000_000 + b"{}]")  # 20 MB on one line
    tracemalloc.start()
    summary = replay([events], {}, Pipeline(), [Recorder()])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert summary.events == 1 and summary.dead_letters == 1
    assert peak < 2_000_000


def test_a_missing_events_file_is_named_before_anything_runs(tmp_path: Path) -> None:
    recorder = Recorder()
    with pytest.raises(StreamwatchError, match=r"nope\.jsonl: cannot be read \(no such file\)"):
        replay([write_jsonl(tmp_path / "ok.jsonl", []), tmp_path / "nope.jsonl"], {}, pipeline(), [recorder])
    assert recorder.profiles is None


def test_load_profiles_keys_by_lineage_and_names_the_bad_file(tmp_path: Path) -> None:
    good = tmp_path / "ref.json"
    good.write_text(reference().model_dump_json())
    other = tmp_path / "other.json"
    other.write_text(reference("fraud", "7").model_dump_json())
    assert set(load_profiles([good, other])) == {("credit", "3"), ("fraud", "7")}

    (tmp_path / "broken.json").write_text('{"lineage": ')
    (tmp_path / "invalid.json").write_text('{"features": {}}')
    for name, words in [
        ("missing.json", "missing.json: cannot be read (No such file or directory)"),
        ("broken.json", "broken.json: not valid JSON"),
        ("invalid.json", "invalid.json: not a valid reference profile: lineage: required field is missing"),
    ]:
        with pytest.raises(ConfigError) as raised:
            load_profiles([good, tmp_path / name])
        assert words in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(ConfigError, match="already given by"):
        load_profiles([good, good])


CONFIG = """
models:
  - name: credit
    references: {"3": profiles/ref.json}
    segments: [gender, [gender, region]]
    features: {income: {thresholds: {psi: 0.3}}, age: {monitor: true}}
    slo: {latency_ms: 250, target: 0.99, period: 7d}
  - name: price
    task: regression
"""


def test_the_config_sets_profiles_slices_slos_tasks_and_thresholds(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "ref.json").write_text(reference().model_dump_json())
    (tmp_path / "streamwatch.yaml").write_text(CONFIG)
    settings = load_settings(tmp_path / "streamwatch.yaml")
    profiles = configured_profiles(settings)  # relative to the config file, wherever the CLI runs
    assert list(profiles) == [("credit", "3")]
    built = pipeline_from_settings(settings, profiles)
    assert built.profiles == profiles
    assert built.slices == {"credit": [["gender"], ["gender", "region"]]}
    slo = built.slos["credit"]
    assert (slo.target, slo.latency_ms, slo.period_minutes) == (0.99, 250, 7 * 24 * 60)
    assert built.tasks == {"credit": "binary_classification", "price": "regression"}
    assert built.thresholds == {"credit": {"income": {"psi": 0.3}}}

    short = load_settings(models=[{"name": "m", "slo": {"period": "30s"}}])
    with pytest.raises(ConfigError, match=r"models\['m'\]\.slo\.period: must be at least 1m"):
        pipeline_from_settings(short, {})

    (tmp_path / "profiles" / "ref.json").write_text(reference("credit", "4").model_dump_json())
    with pytest.raises(ConfigError, match="profile of model credit version 4, but models\\['credit'\\]"):
        configured_profiles(settings)


class RecordingStore:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, args))


def test_the_clickhouse_sink_versions_each_write_above_the_last() -> None:
    store = RecordingStore()
    sink = ClickHouseSink(store, clock_ns=lambda: 5)  # a clock that stands still
    profile = reference()
    sink.start({("credit", "3"): profile})
    events = make_events(600)
    monitor = Pipeline({("credit", "3"): profile})
    monitor.process(events)
    rows = monitor.flush().rows
    for _ in range(2):
        sink.write(ReplayBatch(rows, [], []))
    assert store.calls[0] == ("insert_profile", (profile,))
    versions = [args[1] for name, args in store.calls if name == "insert_metrics"]
    assert versions == [5, 6]


def test_the_clickhouse_sink_stores_the_current_rows_and_the_dead_letters(tmp_path: Path, store: Any) -> None:
    events = write_jsonl(tmp_path / "events.jsonl", [*make_events(600), b"not json"])
    with ExportSink(tmp_path / "out") as export:
        replay([events], {}, pipeline(), [export, ClickHouseSink(store)])
    exported = current(read(tmp_path / "out" / "metrics.jsonl"))  # the latest line per window, metric, segment
    stored = current([row.export() for row in store.metrics()])
    assert stored == exported  # values compare as numbers: 600 == 600.0
    [letter] = store.dead_letters()
    lines = events.read_bytes().splitlines()
    assert (letter.raw, letter.source.topic, letter.source.offset) == (b"not json", str(events), len(lines))


def test_cli_replays_into_the_export_and_summarises(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "ref.json").write_text(reference().model_dump_json())
    (tmp_path / "streamwatch.yaml").write_text(CONFIG)
    events = write_jsonl(tmp_path / "events.jsonl", [*make_events(600), b"{broken"])
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["replay", str(events), "--config", str(tmp_path / "streamwatch.yaml"), "--no-store", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "not stored (--no-store)" in result.stdout and f"export written to {out}" in result.stdout
    assert len(read(out / "deadletters.jsonl")) == 1
    table = {cells[0]: cells[1] for line in result.stdout.splitlines() if len(cells := line.split("│")[1:-1]) == 2}
    table = {name.strip(): value.strip() for name, value in table.items()}
    assert table["events"] == "901" and table["dead letters"] == "1" and table["labels matched"] == "285 of 300"
    assert table["metric rows"] == str(len(read(out / "metrics.jsonl"))) and table["model versions"] == "credit 3"


def test_cli_shows_progress_on_stderr_for_large_inputs(tmp_path: Path) -> None:
    small = write_jsonl(tmp_path / "small.jsonl", make_events(10, labels=False))
    large = write_jsonl(tmp_path / "large.jsonl", make_events(3000, labels=False))
    assert small.stat().st_size < 1_000_000 < large.stat().st_size
    for path, shown in ((small, False), (large, True)):
        result = CliRunner().invoke(app, ["replay", str(path), "--no-store"])
        assert result.exit_code == 0, result.output
        assert ("replaying" in result.stderr) is shown and "replaying" not in result.stdout


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamwatch", "replay", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("missing.jsonl", "--no-store"), "missing.jsonl: cannot be read (no such file)"),
        (("events.jsonl", "--no-store", "--reference", "nope.json"), "reference nope.json: cannot be read"),
        (("events.jsonl", "--no-store", "--reference", "events.jsonl"), "reference events.jsonl: not valid JSON"),
        (("events.jsonl", "--no-store", "--config", "bad.yaml"), "invalid setting models[0].name"),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    write_jsonl(tmp_path / "events.jsonl", make_events(10, labels=False))
    (tmp_path / "bad.yaml").write_text("models:\n  - task: regression\n")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"streamwatch: error: {result.stderr.strip()[20:]}"]
    assert words in result.stderr and "Traceback" not in result.stderr
