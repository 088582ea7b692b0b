"""The export format: five JSON Lines files, one documented object per line."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import numpy as np
import orjson
import pytest

from streamwatch.core.records import Finding, MetricRow
from streamwatch.replay.export import EXPORT_FILES, ExportWriter, LineDeadLetter, export_finding


def lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_all_five_files_exist_even_when_empty(tmp_path: Path) -> None:
    with ExportWriter(tmp_path / "new" / "dir"):
        pass
    names = sorted(p.name for p in (tmp_path / "new" / "dir").iterdir())
    assert (
        names
        == sorted(EXPORT_FILES.values())
        == [
            "alerts.jsonl",
            "deadletters.jsonl",
            "findings.jsonl",
            "metrics.jsonl",
            "retrain.jsonl",
        ]
    )
    assert all((tmp_path / "new" / "dir" / name).read_bytes() == b"" for name in names)


def test_metric_lines_are_exactly_the_rows_export(tmp_path: Path) -> None:
    rows = [
        MetricRow("credit", "3", "production", 0, 60_000, "psi", 0.01, feature="age", threshold=0.2),
        MetricRow("credit", "3", "canary", 60_000, 120_000, "accuracy", math.nan, segment=(("gender", "F"),)),
    ]
    with ExportWriter(tmp_path) as writer:
        assert writer.write_metrics(rows[:1]) == 1
        assert writer.write_metrics(rows[1:]) == 1  # appended, batch by batch
    written = lines(tmp_path / "metrics.jsonl")
    assert written == [row.export() for row in rows]
    assert written[1]["value"] is None and written[1]["segment"] == {"gender": "F"}
    assert written[0]["window_start"] == "1970-01-01T00:00:00.000Z"


def test_findings_have_the_documented_fields(tmp_path: Path) -> None:
    finding = Finding(
        "drift",
        "warning",
        "credit",
        "3",
        "production",
        1_763_900_000_000,
        1_763_900_060_000,
        "psi",
        math.inf,
        0.2,
        feature="age",
        segment=(("region", "north"),),
        evidence={"psi": np.float64(0.31), "bins": np.array([1, 2]), "ids": {"r2", "r1"}, "nan": math.nan},
        reference="abc",
    )
    with ExportWriter(tmp_path) as writer:
        writer.write_findings([finding, Finding("slo", "critical", "m", "1", "production", 0, 1, "x", 1.0, None)])
    first, second = lines(tmp_path / "findings.jsonl")
    assert first == {
        "kind": "drift",
        "severity_hint": "warning",
        "model": "credit",
        "model_version": "3",
        "variant": "production",
        "window_start": "2025-11-23T12:13:20.000Z",
        "window_end": "2025-11-23T12:14:20.000Z",
        "metric": "psi",
        "feature": "age",
        "segment": {"region": "north"},
        "value": None,
        "threshold": 0.2,
        "evidence": {"psi": 0.31, "bins": [1, 2], "ids": ["r1", "r2"], "nan": None},
        "reference": "abc",
    }
    assert second["segment"] is None and second["threshold"] is None and second["feature"] is None
    assert set(first) == set(export_finding(finding))


def test_dead_letters_keep_the_line_or_its_base64(tmp_path: Path) -> None:
    bad = b'{"model": "\xff\xfe"}'
    with ExportWriter(tmp_path) as writer:
        writer.write_dead_letters(
            [LineDeadLetter("a.jsonl", 3, "not JSON", b"{nope"), LineDeadLetter("b", 9, "r", bad)]
        )
    text, binary = lines(tmp_path / "deadletters.jsonl")
    assert text == {"source": "a.jsonl", "line": 3, "reason": "not JSON", "raw": "{nope"}
    assert binary["raw"] is None and base64.b64decode(binary["raw_base64"]) == bad
    assert (binary["source"], binary["line"]) == ("b", 9)


def test_alerts_and_retrain_events_are_written_as_given(tmp_path: Path) -> None:
    alert = {"type": "alert", "rule": "drift", "labels": {"team": "ml"}}
    with ExportWriter(tmp_path) as writer:
        writer.write_alerts([alert])
        writer.write_retrain([{"type": "retrain"}, {"type": "retrain", "n": 2}])
    assert lines(tmp_path / "alerts.jsonl") == [alert]
    assert lines(tmp_path / "retrain.jsonl") == [{"type": "retrain"}, {"type": "retrain", "n": 2}]


def test_opening_again_replaces_the_files(tmp_path: Path) -> None:
    row = MetricRow("m", "1", "production", 0, 1, "volume", 1.0)
    for _ in range(2):
        with ExportWriter(tmp_path) as writer:
            writer.write_metrics([row])
    assert len(lines(tmp_path / "metrics.jsonl")) == 1


def test_writing_needs_an_open_writer(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        ExportWriter(tmp_path).write_alerts([{}])
