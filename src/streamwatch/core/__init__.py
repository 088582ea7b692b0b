"""The monitoring core: pure, I/O-free, incremental and mergeable.

Nothing here reads a clock, a file or a socket. Aggregates take batches
(numpy arrays) through ``update``, combine with ``merge``, and merging the
partials of any split of a stream gives exactly what the whole stream gives,
so results do not depend on how many partitions or workers computed them.
Statistics are computed from those aggregates, never from raw events.

Modules: ``histogram`` and ``categories`` (feature distributions on the
reference's bins), ``drift`` and ``thresholds`` (statistics and when they mean
drift), ``drift_report`` (a window against its reference), ``latency`` and
``slo`` (percentiles, error budgets, burn rates), ``confusion``, ``scores`` and
``fairness`` (performance and parity per slice), ``multiclass`` (a multiclass model's confusion
matrix), ``estimation`` (performance estimated before labels, CBPE), ``join`` (delayed labels),
``windows`` (event time), ``change`` (river's detectors), ``budget`` (the false-alert budget) and ``records`` (what
the core emits), plus ``performance``, ``divergence`` and ``slo_history``
(statistics over those aggregates).

May import: numpy, scipy, river and :mod:`streamwatch.times`. Pure: no I/O, no threads, no clock.
"""

from __future__ import annotations

from streamwatch.core.binning import bin_edges
from streamwatch.core.categories import CategoryCounts
from streamwatch.core.confusion import ConfusionCounts
from streamwatch.core.drift import chi_square, hellinger, js_distance, ks, psi, unseen_share, wasserstein
from streamwatch.core.histogram import NumericHistogram
from streamwatch.core.latency import LatencySketch
from streamwatch.core.scores import ScoreHistogram
from streamwatch.core.slo import SLO, SLICounts

__all__ = [
    "SLO",
    "CategoryCounts",
    "ConfusionCounts",
    "LatencySketch",
    "NumericHistogram",
    "SLICounts",
    "ScoreHistogram",
    "bin_edges",
    "chi_square",
    "hellinger",
    "js_distance",
    "ks",
    "psi",
    "unseen_share",
    "wasserstein",
]
