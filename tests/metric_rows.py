"""Metric rows written for a dashboard panel or a report, and panel results read back: what their tests share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from streamwatch.core.records import MetricRow

T0 = 1_790_000_000_000  # a window start, in ms
MINUTE = 60_000


def row(metric: str, value: float, minute: int = 0, **fields: Any) -> MetricRow:
    """A tumbling window's row of model ``m``, version 1.0 in production unless ``fields`` say otherwise."""
    start = T0 + minute * MINUTE
    base: dict[str, Any] = {"model": "m", "model_version": "1.0", "variant": "production"}
    return MetricRow(**(base | fields), window_start_ms=start, window_end_ms=start + MINUTE, metric=metric, value=value)


def at(minute: int) -> datetime:
    """The window start as the client returns a DateTime64 of UTC: a naive datetime."""
    return datetime.fromtimestamp((T0 + minute * MINUTE) / 1000, tz=UTC).replace(tzinfo=None)


def points(rows: list[tuple[Any, ...]]) -> set[tuple[int, str, float]]:
    """(minute, series, value rounded) of a time series panel's rows."""
    return {(int((t.replace(tzinfo=UTC).timestamp() * 1000 - T0) // MINUTE), s, round(v, 6)) for t, s, v in rows}
