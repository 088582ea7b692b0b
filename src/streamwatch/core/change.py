"""Online change detection with river's detectors, on per-window series.

river's detectors (ADWIN, Page-Hinkley, KSWIN) are used as they are, not
re-written. They are sequential, not mergeable, so streamwatch feeds them
one value per closed window, computed from the merged aggregates of that
window (a drift statistic, an error rate once labels arrive, a latency
percentile). That keeps detections independent of how many partitions or
workers computed the windows.

>>> detector = ChangeDetector("page_hinkley")
>>> for minute in range(60):
...     detector.update(minute * 60_000, 0.05 if minute < 30 else 0.6)
>>> detector.detections[0] >= 30 * 60_000
True
"""

from __future__ import annotations

import math
from typing import Any

from river import drift

__all__ = ["DEFAULT_PARAMS", "DETECTORS", "ChangeDetector"]

DETECTORS: dict[str, type] = {"adwin": drift.ADWIN, "page_hinkley": drift.PageHinkley, "kswin": drift.KSWIN}
#: river's defaults suit a raw, high-rate stream; here a detector sees one value
#: per window, usually a rate or distance in [0, 1]. ADWIN checks for a change
#: after every value instead of every 32nd, Page-Hinkley's threshold fits that
#: scale (its default of 50 would need ~150 windows of a +0.3 shift) and it warms
#: up on 10 windows, not 30 (half an hour of minute windows in which it could not
#: fire, then fired on the first window it could, on the whole history at once),
#: and KSWIN gets a fixed seed so the same series always gives the same detections.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "adwin": {"clock": 1},
    "page_hinkley": {"threshold": 1.0, "min_instances": 10},
    "kswin": {"seed": 0},
}


class ChangeDetector:
    """A river detector over a series of per-window values; remembers the windows where it fired.

    Parameters
    ----------
    detector
        ``"page_hinkley"`` (default), ``"adwin"`` or ``"kswin"``. On one value per
        window Page-Hinkley reacts within a few windows; ADWIN's bound needs
        ~40 windows after even a large shift before it fires, since it was made
        for high-rate streams.
    params
        Passed to the river detector, over ``DEFAULT_PARAMS``.
    """

    def __init__(self, detector: str = "page_hinkley", **params: Any) -> None:
        if detector not in DETECTORS:
            raise ValueError(f"unknown detector {detector!r}; expected one of {', '.join(sorted(DETECTORS))}")
        self.detector = detector
        self.params = {**DEFAULT_PARAMS[detector], **params}
        self._river = DETECTORS[detector](**self.params)
        self._detections: list[int] = []
        self._fired = False

    def update(self, window_start_ms: int, value: float) -> None:
        """Feed one window's value; a NaN (an empty window) is skipped."""
        self._fired = False
        if value is None or math.isnan(value):
            return
        self._river.update(value)
        if self._river.drift_detected:
            self._fired = True
            self._detections.append(window_start_ms)

    @property
    def drift_detected(self) -> bool:
        """Whether the last value fed made the detector fire."""
        return self._fired

    @property
    def detections(self) -> list[int]:
        """Start times of the windows where the detector fired, oldest first."""
        return list(self._detections)
