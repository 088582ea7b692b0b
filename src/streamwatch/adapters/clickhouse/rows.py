"""Row mapping: what streamwatch writes to ClickHouse as insert columns, and reads back as its own types.

Writes are columnar (one list per column, times as epoch milliseconds); a
``Columns`` is ``(column names, columns)`` for one insert. Reads turn result
rows back into :class:`~streamwatch.core.records.MetricRow`,
:class:`~streamwatch.core.records.Finding` and the records below.

A raw event's feature object goes as JSON text to the ephemeral column
``features_json``, which ClickHouse splits into the stored ``feature_map``
(name -> the value as a JSON literal) on insert: orjson encodes it in ~1 µs,
less than any columnar layout built here in Python and serialised by
clickhouse-connect costs (``bench/storage.py``; ``schemas/clickhouse/0003_*.sql``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from streamwatch.core.records import Finding, MetricRow
from streamwatch.profiles.model import ReferenceProfile

__all__ = [
    "Checkpoint",
    "Columns",
    "DeadLetterRecord",
    "RawFeatures",
    "Source",
    "checkpoint_columns",
    "checkpoint_from_row",
    "dead_letter_columns",
    "dead_letter_from_row",
    "feature_event_columns",
    "finding_columns",
    "finding_from_row",
    "label_columns",
    "metric_columns",
    "metric_from_row",
    "partial_columns",
    "partial_from_row",
    "prediction_columns",
    "profile_columns",
    "raw_features_from_row",
    "worker_metric_columns",
]

#: One insert: the column names, and one list of values per column.
Columns = tuple[list[str], list[list[Any]]]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a raw event or dead letter came from (a replayed file: its path, partition 0, line number)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    source: Source
    reason: str
    raw: bytes
    received_ms: int


@dataclass(frozen=True, slots=True)
class RawFeatures:
    """A stored raw event's feature object (prediction or feature event), rebuilt from its columns."""

    event_id: str
    request_id: str
    timestamp_ms: int
    model: str
    model_version: str
    features: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    version: int
    watermark: int
    offsets: dict[str, int]
    state: bytes


def _segment_key(segment: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{name}={value}" for name, value in segment)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode()


def _json_column(values: list[Any]) -> list[str]:
    """:func:`_json` of each value, in C for the plain values decoded events hold (one step per batch)."""
    try:
        return list(map(bytes.decode, map(orjson.dumps, values)))
    except TypeError:  # something orjson does not take as it is (a numpy value): one at a time
        return [_json(value) for value in values]


def _nullable_json(values: list[Any]) -> list[str | None]:
    """:func:`_json_column`, with ``None`` kept as NULL."""
    if None not in values:
        return [*_json_column(values)]
    return [None if value is None else _json(value) for value in values]


def _source_columns(sources: Sequence[Source]) -> list[list[Any]]:
    return [[s.topic for s in sources], [s.partition for s in sources], [s.offset for s in sources]]


def prediction_columns(events: Sequence[Any], sources: Sequence[Source]) -> Columns:
    """A batch of decoded prediction events and where each came from. Table ``predictions``."""
    return (
        [
            "event_id",
            "request_id",
            "timestamp",
            "model",
            "model_version",
            "variant",
            "latency_ms",
            "status",
            "error",
            "prediction",
            "score",
            "features_json",
            "segments",
            "metadata",
            "embeddings",
            "topic",
            "partition",
            "offset",
        ],
        [
            [e.event_id for e in events],
            [e.request_id for e in events],
            [e.timestamp for e in events],
            [e.model for e in events],
            [e.model_version for e in events],
            [e.variant for e in events],
            [e.latency_ms for e in events],
            [e.status for e in events],
            [e.error for e in events],
            _nullable_json([e.prediction for e in events]),
            [e.score for e in events],
            _json_column([e.features for e in events]),
            [e.segments for e in events],
            [e.metadata for e in events],
            [e.embeddings for e in events],
            *_source_columns(sources),
        ],
    )


def feature_event_columns(events: Sequence[Any], sources: Sequence[Source]) -> Columns:
    """A batch of decoded feature events and where each came from. Table ``feature_events``."""
    return (
        [
            "event_id",
            "request_id",
            "timestamp",
            "model",
            "model_version",
            "features_json",
            "topic",
            "partition",
            "offset",
        ],
        [
            [e.event_id for e in events],
            [e.request_id or "" for e in events],
            [e.timestamp for e in events],
            [e.model for e in events],
            [e.model_version or "" for e in events],
            _json_column([e.features for e in events]),
            *_source_columns(sources),
        ],
    )


def label_columns(events: Sequence[Any], sources: Sequence[Source]) -> Columns:
    """A batch of decoded label events and where each came from. Table ``labels``."""
    return (
        ["event_id", "request_id", "timestamp", "model", "label", "topic", "partition", "offset"],
        [
            [e.event_id for e in events],
            [e.request_id for e in events],
            [e.timestamp for e in events],
            [e.model for e in events],
            _json_column([e.label for e in events]),
            *_source_columns(sources),
        ],
    )


def dead_letter_columns(records: Sequence[DeadLetterRecord]) -> Columns:
    """Dead letters with their reason and raw bytes. Table ``dead_letters``."""
    return (
        ["topic", "partition", "offset", "reason", "raw", "received_at"],
        [
            [r.source.topic for r in records],
            [r.source.partition for r in records],
            [r.source.offset for r in records],
            [r.reason for r in records],
            [bytes(r.raw) for r in records],
            [r.received_ms for r in records],
        ],
    )


def metric_columns(rows: Sequence[MetricRow], version: int) -> Columns:
    """Metric rows, under the writer's ``version`` (the latest version of a row wins). Table ``metrics``."""
    return (
        [
            "model",
            "model_version",
            "variant",
            "window",
            "window_start",
            "window_end",
            "metric",
            "feature",
            "segment",
            "segment_key",
            "value",
            "threshold",
            "lower",
            "upper",
            "reference",
            "version",
        ],
        [
            [r.model for r in rows],
            [r.model_version for r in rows],
            [r.variant for r in rows],
            [r.window for r in rows],
            [r.window_start_ms for r in rows],
            [r.window_end_ms for r in rows],
            [r.metric for r in rows],
            [r.feature or "" for r in rows],
            [dict(r.segment) for r in rows],
            [_segment_key(r.segment) for r in rows],
            [float(r.value) for r in rows],
            [r.threshold for r in rows],
            [r.lower for r in rows],
            [r.upper for r in rows],
            [r.reference or "" for r in rows],
            [version] * len(rows),
        ],
    )


def finding_columns(findings: Sequence[Finding], version: int) -> Columns:
    """Findings, under the writer's ``version``. Table ``findings``."""
    return (
        [
            "kind",
            "severity_hint",
            "model",
            "model_version",
            "variant",
            "window_start",
            "window_end",
            "metric",
            "value",
            "threshold",
            "feature",
            "segment",
            "segment_key",
            "evidence",
            "reference",
            "version",
        ],
        [
            [f.kind for f in findings],
            [f.severity_hint for f in findings],
            [f.model for f in findings],
            [f.model_version for f in findings],
            [f.variant for f in findings],
            [f.window_start_ms for f in findings],
            [f.window_end_ms for f in findings],
            [f.metric for f in findings],
            [float(f.value) for f in findings],
            [f.threshold for f in findings],
            [f.feature or "" for f in findings],
            [dict(f.segment) for f in findings],
            [_segment_key(f.segment) for f in findings],
            [_json(f.evidence) for f in findings],
            [f.reference or "" for f in findings],
            [version] * len(findings),
        ],
    )


def profile_columns(profile: ReferenceProfile) -> Columns:
    """A reference profile, stored whole as JSON beside its lineage. Table ``profiles``."""
    lineage = profile.lineage
    return (
        [
            "model",
            "model_version",
            "content_sha256",
            "created_at",
            "data_uri",
            "rows",
            "model_uri",
            "git_sha",
            "profile",
        ],
        [
            [lineage.model],
            [lineage.model_version],
            [lineage.content_sha256],
            [int(lineage.created_at.timestamp() * 1000)],
            [lineage.data_uri],
            [lineage.rows],
            [lineage.model_artifact_uri or ""],
            [lineage.git_sha or ""],
            [profile.model_dump_json()],
        ],
    )


def worker_metric_columns(worker: str, at_ms: int, samples: Sequence[tuple[str, dict[str, str], float]]) -> Columns:
    """A worker's metric samples at one moment. Table ``worker_metrics``."""
    return (
        ["worker", "at", "name", "labels", "value"],
        [
            [worker] * len(samples),
            [at_ms] * len(samples),
            [s[0] for s in samples],
            [s[1] for s in samples],
            [s[2] for s in samples],
        ],
    )


def partial_columns(group: str, rows: Sequence[tuple[int, int, str, Any, int, bytes]]) -> Columns:
    """Partials as (partition, version, kind, key, window start, bytes). Table ``partials``."""
    return (
        ["worker_group", "partition", "version", "kind", "key", "window_start", "aggregate"],
        [
            [group] * len(rows),
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [_json(list(r[3])) for r in rows],
            [r[4] for r in rows],
            [r[5] for r in rows],
        ],
    )


def checkpoint_columns(
    name: str, partition: int, version: int, watermark: int, offsets: dict[str, int], state: bytes
) -> Columns:
    """One partition's checkpoint. Table ``checkpoints``."""
    return (
        ["name", "partition", "version", "watermark", "offsets", "state"],
        [[name], [partition], [version], [watermark], [dict(offsets)], [state]],
    )


def dead_letter_from_row(row: Sequence[Any]) -> DeadLetterRecord:
    topic, partition, offset, reason, raw, at = row
    return DeadLetterRecord(Source(topic, int(partition), int(offset)), reason, raw, int(at))


def raw_features_from_row(row: Sequence[Any]) -> RawFeatures:
    event_id, request_id, at, model, version, features = row
    return RawFeatures(event_id, request_id, int(at), model, version, orjson.loads(features))


def metric_from_row(row: Sequence[Any]) -> MetricRow:
    m, v, var, s, e, metric, value, feature, segment, threshold, window, reference, lower, upper = row
    return MetricRow(
        m,
        v,
        var,
        int(s),
        int(e),
        metric,
        value,
        feature or None,
        tuple(sorted(segment.items())),
        threshold,
        window,
        reference or None,
        lower,
        upper,
    )


def finding_from_row(row: Sequence[Any]) -> Finding:
    kind, sev, m, v, var, s, e, metric, value, threshold, feature, segment, evidence, reference = row
    return Finding(
        kind,
        sev,
        m,
        v,
        var,
        int(s),
        int(e),
        metric,
        value,
        threshold,
        feature or None,
        tuple(sorted(segment.items())),
        orjson.loads(evidence),
        reference or None,
    )


def partial_from_row(row: Sequence[Any]) -> tuple[str, tuple[Any, ...], int, int, bytes]:
    kind, key, start, version, blob = row
    return kind, tuple(orjson.loads(key)), int(start), int(version), blob


def checkpoint_from_row(row: Sequence[Any]) -> Checkpoint:
    version, watermark, offsets, state = row
    return Checkpoint(int(version), int(watermark), {t: int(o) for t, o in offsets.items()}, state)
