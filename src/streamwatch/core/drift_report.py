"""Drift of one window against a reference profile: metric rows, findings and a summary."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from streamwatch.core.binning import COARSE_BINS, PSI_BINS, coarse_starts, coarsen
from streamwatch.core.categories import CategoryCounts
from streamwatch.core.drift import chi_square, hellinger, js_distance, ks, psi, unseen_share, wasserstein
from streamwatch.core.histogram import NumericHistogram
from streamwatch.core.records import Finding, MetricRow, WindowKey
from streamwatch.core.thresholds import DEFAULT_THRESHOLDS, cramers_v

__all__ = ["DriftSummary", "WindowKey", "evaluate_drift"]

#: The statistic that decides whether a feature drifted, by kind. The others are reported too.
DECIDING = {"numeric": "wasserstein", "categorical": "js"}


@dataclass(frozen=True, slots=True)
class DriftSummary:
    rows: list[MetricRow]
    findings: list[Finding]
    drifted: list[str]
    share_drifted: float


def _numeric_stats(reference: NumericHistogram, current: NumericHistogram, scale: float) -> dict[str, float]:
    """KS and Wasserstein on the fine bins, where they are exact; PSI on the reference's deciles, and
    Jensen-Shannon and Hellinger on its vingtiles, as their conventions and rules of thumb assume."""
    statistic, pvalue = ks(reference, current)
    fine_reference, fine_current = reference.counts, current.counts
    by_psi, by_coarse = coarse_starts(fine_reference, PSI_BINS), coarse_starts(fine_reference, COARSE_BINS)
    coarse_reference, coarse_current = coarsen(fine_reference, by_coarse), coarsen(fine_current, by_coarse)
    return {
        "psi": psi(coarsen(fine_reference, by_psi), coarsen(fine_current, by_psi)),
        "ks": statistic,
        "ks_pvalue": pvalue,
        "js": js_distance(coarse_reference, coarse_current),
        "wasserstein": wasserstein(reference, current, scale=scale) if scale > 0 else float("nan"),
        "hellinger": hellinger(coarse_reference, coarse_current),
    }


def _categorical_stats(reference: CategoryCounts, current: CategoryCounts) -> dict[str, float]:
    statistic, pvalue = chi_square(reference, current)
    return {
        "chi2": statistic,
        "chi2_pvalue": pvalue,
        "cramers_v": cramers_v(reference.counts, current.counts),
        "js": js_distance(reference.counts, current.counts),
        "psi": psi(reference.counts, current.counts),
        "unseen": unseen_share(current),
    }


def evaluate_drift(
    key: WindowKey,
    references: Mapping[str, NumericHistogram | CategoryCounts],
    windows: Mapping[str, NumericHistogram | CategoryCounts],
    *,
    scales: Mapping[str, float] | None = None,
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
    reference_id: str | None = None,
    min_count: int = 30,
) -> DriftSummary:
    """Every drift statistic of every feature in ``windows``, judged against ``references``.

    ``scales`` gives each numeric feature's reference standard deviation (for
    the normalised Wasserstein distance); ``thresholds`` overrides defaults per
    feature and statistic (e.g. from :func:`~streamwatch.core.thresholds.calibrate`
    or the config). A feature with fewer than ``min_count`` values in the
    window is reported but not judged.
    """
    rows: list[MetricRow] = []
    findings: list[Finding] = []
    drifted: list[str] = []
    judged = 0
    for feature in sorted(windows):
        reference, current = references.get(feature), windows[feature]
        if reference is None:
            continue
        # A feature's reference is of its window's kind (both come from one profile); the casts say so, unchecked.
        if isinstance(current, NumericHistogram):
            scale = (scales or {}).get(feature, 1.0)
            kind, stats = "numeric", _numeric_stats(cast(NumericHistogram, reference), current, scale)
        else:
            kind, stats = "categorical", _categorical_stats(cast(CategoryCounts, reference), current)
        given = {**DEFAULT_THRESHOLDS, **(thresholds or {}).get(feature, {})}
        # The "chi2" threshold is a Cramér's V (core.thresholds: the chi-square's effect size, calibrated or set under
        # that name): the cramers_v row carries it, and the chi-square statistic itself, on another scale, none. The
        # chi2 row once carried it, and read 3.85 against 0.1 on stationary traffic.
        limits = {name: limit for name, limit in given.items() if name != "chi2"} | {"cramers_v": given["chi2"]}
        for metric, value in stats.items():
            rows.append(key.row(metric, value, feature=feature, threshold=limits.get(metric), reference=reference_id))
        if current.n < min_count:
            continue
        judged += 1
        decider = DECIDING[kind]
        value, limit = stats[decider], limits[decider]
        if not math.isnan(value) and value >= limit:
            drifted.append(feature)
            findings.append(
                key.finding(
                    "drift",
                    "warning",
                    decider,
                    value,
                    limit,
                    feature=feature,
                    reference=reference_id,
                    evidence={k: (None if math.isnan(v) else round(v, 6)) for k, v in stats.items()} | {"n": current.n},
                )
            )
    share = len(drifted) / judged if judged else float("nan")
    rows.append(key.row("drifted_share", share, threshold=0.5, reference=reference_id))
    return DriftSummary(rows, findings, drifted, share)
