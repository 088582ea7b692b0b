"""The metric catalogue: every metric name a :class:`~streamwatch.core.records.MetricRow` can carry, documented.

Each :class:`MetricDoc` says what the metric measures, the formula the code computes (with its conventions:
bins, epsilon, logarithm base, intervals), its unit, how to read it and when it misleads, and which of the
default alert rules (``streamwatch.alerts.defaults``) read it. A row's ``metric`` is one of these names
exactly; the rest of the row says *of what*: ``feature`` (a feature, ``__score__``, ``__prediction__``, an
embedding or its projection ``<name>#pc1``, or a class of a multiclass model), ``segment`` (a slice, or
``(name, "*")`` for a figure about a whole segment), ``window`` (``tumbling``, a rolling span such as ``1h``, or
``performance`` for the performance view) and ``variant``. So one name covers, say, the PSI of every feature,
in every kind of window.

Every name is listed concretely: the parametrised ones form finite sets (the burn-rate windows of
:data:`~streamwatch.core.slo.BURN_RATE_WINDOWS_MINUTES`, the three latency percentiles, the estimated metrics
of :data:`~streamwatch.core.estimation.ESTIMATED_METRICS`), and per-class or per-projection figures put the
class or projection in ``feature``, not in the name.

``rules`` names the default rules that read the metric: those whose condition names it (``when.metric``), and
those that judge findings carrying it (``feature-drift`` on the statistic that decides drift, ``data-quality`` on
the quality rates, ``slo-burn-page`` and ``slo-burn-ticket`` on the burn rates of their long and short windows,
``change-detected`` on the error rate its river detector watches).

>>> lookup("psi").unit
'dimensionless, >= 0'
>>> lookup("burn_rate_1h").rules
('slo-burn-page',)
>>> lookup("wasserstein").rules
('feature-drift',)
>>> [m.name for m in METRICS if m.family == "Canary and shadow"]
['agreement_rate', 'latency_p95_ratio', 'paired', 'score_abs_diff', 'score_shift']
>>> lookup("jensen_shannon")
Traceback (most recent call last):
...
KeyError: "no metric 'jensen_shannon' in the catalogue (did you mean 'js'?)"
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from streamwatch.core.binning import COARSE_BINS, DEFAULT_BINS, DEFAULT_UNIFORM_BINS, PSI_BINS
from streamwatch.core.divergence import MIN_LATENCY_PAIRS, MIN_PAIRS
from streamwatch.core.drift import PSI_EMPTY_BIN
from streamwatch.core.estimation import ESTIMATED_METRICS, MIN_CALIBRATION_LABELS
from streamwatch.core.fairness import FOUR_FIFTHS
from streamwatch.core.slo import BURN_RATE_ALERTS, BURN_RATE_WINDOWS_MINUTES, MIN_BURN_EVENTS
from streamwatch.core.slo_history import _label as _burn_window_label
from streamwatch.core.thresholds import DEFAULT_THRESHOLDS

__all__ = ["FAMILIES", "METRICS", "MetricDoc", "lookup"]


@dataclass(frozen=True, slots=True)
class MetricDoc:
    """One metric name as rows carry it, and what it means."""

    name: str
    family: str
    definition: str
    formula: str
    unit: str
    reading: str
    rules: tuple[str, ...]


#: The families, in the order the documentation lists them (``METRICS`` is sorted by family name, then name).
FAMILIES: tuple[str, ...] = (
    "Drift",
    "Data quality",
    "Multivariate and embeddings",
    "Volume",
    "Latency and errors",
    "SLO",
    "Canary and shadow",
    "Label join",
    "Performance",
    "Estimated performance",
    "Fairness",
)

_RATE = "fraction 0-1"
_PER_FEATURE = (
    "One row per feature (and per drift 'feature': __score__, __prediction__, and each embedding projection "
    "<name>#pcK), with the threshold in force as the row's threshold."
)
_SMALL = (
    "Not judged on fewer than 30 values in the window (reported anyway). With windows.drift_calibration 'auto' "
    "(the settings' default) the threshold is calibrated on the reference for the window's size (rounded down to "
    "a power of two, at least 32) at the false-alert budget's rate, never below the default; with 'off' (and a "
    "bare Pipeline) it is the default."
)
_WILSON = "Wilson score interval (scipy's arithmetic) as lower/upper"
_VIEW = (
    "Intervals are 95% in tumbling windows; over the performance view (window='performance') at the confidence "
    "the false-alert budget sets for the fairness rules."
)
_SLICE_RATE = (
    "Per slice (segment = the slice) with at least min_samples (30) labelled predictions; for a multiclass model "
    "one class against the rest, the class in feature."
)


def _doc(
    name: str, family: str, definition: str, formula: str, unit: str, reading: str, rules: tuple[str, ...] = ()
) -> MetricDoc:
    return MetricDoc(name, family, definition, formula, unit, reading, rules)


def _burn_rules(minutes: int) -> tuple[str, ...]:
    """The default SLO rules whose burn-rate conditions read the trailing window of ``minutes`` (long or short)."""
    rule = {"page": "slo-burn-page", "ticket": "slo-burn-ticket"}
    used = {rule[c.severity] for c in BURN_RATE_ALERTS if minutes in (c.long_minutes, c.short_minutes)}
    return tuple(sorted(used))


def _burn_rates() -> list[MetricDoc]:
    docs = []
    for minutes in BURN_RATE_WINDOWS_MINUTES:
        roles = [
            f"{'long' if c.long_minutes == minutes else 'short'} window of the {c.severity} condition at {c.factor}x"
            for c in BURN_RATE_ALERTS
            if minutes in (c.long_minutes, c.short_minutes)
        ]
        docs.append(
            _doc(
                f"burn_rate_{_burn_window_label(minutes)}",
                "SLO",
                f"How fast the requests of the trailing {minutes} minutes spend the SLO's error budget; reported at "
                "each window close when the span is at least one window and saw traffic.",
                "(bad / total) / (1 - target) over the windows starting in the trailing span; a request is good "
                "when its status is 'ok' and, if the SLO sets latency_ms, its latency is <= latency_ms (a missing "
                "latency is bad)",
                "dimensionless ratio, >= 0 (1 = spending the budget exactly over the SLO period)",
                "1 spends the budget exactly over the period (30 days by default); the SRE workbook's alerts page "
                "at 14.4x (1h and 5m) or 6x (6h and 30m) and ticket at 3x (1d and 2h) or 1x (3d and 6h). "
                f"This window is the {'; the '.join(roles) if roles else 'one no default condition reads'}. "
                "A burn rate on little traffic misleads (one error among a canary's 10 requests is 100x at "
                f"0.999), so a condition also needs {MIN_BURN_EVENTS} requests in its long window, "
                "slo.min_bad_events (5) bad ones in both windows, a Poisson test at 1e-3 and history covering its "
                "short window. The finding names its long window in minutes (burn_rate_60m), not as this row does.",
                _burn_rules(minutes),
            )
        )
    return docs


def _estimated() -> list[MetricDoc]:
    what = {
        "accuracy": ("accuracy", "(E[TP] + E[TN]) / n", "var = sum p(1-p) over all predictions / n^2"),
        "precision": ("precision", "E[TP] / n_predicted_positive", "var = sum_{pred +} p(1-p) / n1^2"),
        "recall": (
            "recall",
            "E[TP] / (E[TP] + E[FN])",
            "delta method: (E[FN]^2 var_TP + E[TP]^2 var_FN) / (E[TP] + E[FN])^4",
        ),
        "f1": ("F1", "2 E[TP] / (n1 + E[TP] + E[FN])", "delta method on TP and FN"),
        "roc_auc": (
            "ROC AUC",
            "the expected positive mass n_b * p_b and negative mass n_b * (1 - p_b) per score bin b, "
            "AUC = sum_b pos_b * (neg below b + neg_b / 2) / (P * N)",
            "Hanley and McNeil's variance at the expected class counts",
        ),
    }
    docs = []
    for metric in ESTIMATED_METRICS:
        label, formula, bounds = what[metric]
        docs.append(
            _doc(
                f"estimated_{metric}",
                "Estimated performance",
                f"The binary classifier's {label} estimated from the window's predictions alone, before any label "
                "(CBPE, as NannyML computes it), overall and per slice with at least min_samples predictions.",
                f"{formula}, where a prediction of the positive class in score bin b adds p_b to E[TP] and 1 - p_b "
                "to E[FP], one of the negative class p_b to E[FN] and 1 - p_b to E[TN]; p_b is the bin's positive "
                "rate on the reference, made non-decreasing by weighted isotonic regression (the reference's "
                f"score bins, ~1% of it each). Bounds (lower/upper): value +- z * sqrt(var), {bounds}, clipped to "
                "[0, 1]; z = max(3, the budget's one-sided quantile).",
                _RATE,
                "Read beside the reference's own estimate (the row's threshold), not beside 1. Holds under covariate "
                "shift while the score stays calibrated and P(y | x) holds; blind to concept drift (compare "
                f"estimate_error once labels come). Needs a reference with {MIN_CALIBRATION_LABELS} labels of each "
                "class and a score; none for multiclass or regression models. Over the performance view each "
                "(metric, slice) takes the shortest span of 1, 2, 4... windows whose upper bound is 0.05 under "
                "the reference's estimate, or the longest.",
                ("estimated-performance-drop",) if metric == "roc_auc" else (),
            )
        )
    return docs


_ENTRIES: list[MetricDoc] = [
    # -- Drift ---------------------------------------------------------------------------------------------
    _doc(
        "psi",
        "Drift",
        "Population stability index of a feature's window against its reference. " + _PER_FEATURE,
        f"sum_i (q_i - p_i) * ln(q_i / p_i) over bins, p the reference's shares and q the window's, an empty bin "
        f"counting as a share of {PSI_EMPTY_BIN:g} (Evidently's epsilon, shares not renormalised); numeric "
        f"features on the reference's {PSI_BINS} deciles (a mode holding more than a tenth keeps a bin of its "
        "own), categorical ones on one bin per reference category plus one for unseen values",
        "dimensionless, >= 0",
        "< 0.1 no significant shift, 0.1-0.25 moderate, > 0.25 major: the credit-scoring rule of thumb, which "
        "holds here because numeric bins are the reference's deciles as that practice computes them. Default "
        f"threshold {DEFAULT_THRESHOLDS['psi']}; " + _SMALL + " Windows under ~128 values read high (the epsilon of "
        "empty bins). Reported, not deciding: feature-drift decides on wasserstein or js.",
    ),
    _doc(
        "js",
        "Drift",
        "Jensen-Shannon distance between a feature's window and its reference; decides drift for categorical "
        "features. " + _PER_FEATURE,
        "sqrt(JSD), JSD = (KL(p || m) + KL(q || m)) / 2 with m = (p + q) / 2, natural logarithm (scipy's "
        f"jensenshannon); numeric features on the reference's {COARSE_BINS} vingtiles, categorical ones on one bin "
        "per reference category plus one for unseen values",
        "dimensionless, 0 to sqrt(ln 2) ~ 0.833 (the distance, natural log; not the divergence, not bits)",
        f"Default threshold {DEFAULT_THRESHOLDS['js']} (Evidently's for the distance); drift at or over it, for "
        "two windows running. " + _SMALL + " Being the distance, it is the square root of the divergence other "
        "tools may report, and in nats: its maximum is 0.833, not 1.",
        ("feature-drift",),
    ),
    _doc(
        "wasserstein",
        "Drift",
        "First Wasserstein (earth mover's) distance between a numeric feature's window and its reference, "
        "normalised by the reference's standard deviation; decides drift for numeric features. " + _PER_FEATURE,
        "scipy's wasserstein_distance of the two binned samples placed on the reference's support (each inner bin "
        f"at its left edge, the outer bins halfway between the outer edge and the extreme value seen), fine bins "
        f"({DEFAULT_BINS} reference quantiles plus {DEFAULT_UNIFORM_BINS} equal-width edges), divided by the "
        "reference std; NaN when that std is 0",
        "reference standard deviations, >= 0",
        f"Default threshold {DEFAULT_THRESHOLDS['wasserstein']} (Evidently's for the normalised form); drift at or "
        "over it, for two windows running. " + _SMALL + " A window's values beyond the reference's range count "
        "as if at its outer bins (winsorised), so a shift stops growing the distance once the whole window is "
        "past the range; out_of_range_rate counts those values.",
        ("feature-drift",),
    ),
    _doc(
        "ks",
        "Drift",
        "Two-sample Kolmogorov-Smirnov statistic between a numeric feature's window and its reference. " + _PER_FEATURE,
        "max over bin edges of |F_ref(x) - F_win(x)|, the empirical CDFs from the fine bins (exact when values lie "
        "on edges; otherwise short of the exact statistic by at most the larger share of one bin, ~1%)",
        "dimensionless, 0-1",
        f"An effect size: default threshold {DEFAULT_THRESHOLDS['ks']}, calibrated like the others. Reported, not "
        "deciding. Prefer it to ks_pvalue, which calls any shift significant on large windows.",
    ),
    _doc(
        "ks_pvalue",
        "Drift",
        "p-value of the two-sample KS test of a numeric feature's window against its reference. " + _PER_FEATURE,
        "kstwo.sf(ks, round(n * m / (n + m))): scipy's asymptotic two-sample p-value (ks_2samp(method='asymp')), "
        "n and m the reference's and the window's value counts; NaN when the effective size is under 1",
        "probability 0-1",
        "Small means the samples differ, not that the difference matters: over thousands of events the tiniest "
        "shift is significant, so no threshold is set and no rule reads it. The reference and window are binned, "
        "so ties make it approximate.",
    ),
    _doc(
        "hellinger",
        "Drift",
        "Hellinger distance between a numeric feature's window and its reference. " + _PER_FEATURE,
        f"sqrt(sum_i (sqrt(p_i) - sqrt(q_i))^2 / 2) over the reference's {COARSE_BINS} vingtiles",
        "dimensionless, 0-1",
        f"Default threshold {DEFAULT_THRESHOLDS['hellinger']} (Evidently's), calibrated for the window's size. "
        "Reported, not deciding. Numeric features only.",
    ),
    _doc(
        "chi2",
        "Drift",
        "Chi-square statistic of homogeneity between a categorical feature's window and its reference counts. "
        + _PER_FEATURE,
        "sum over the 2 x k table (reference and window counts per category, the unseen column last, columns "
        "empty on both sides left out) of (observed - expected)^2 / expected, no continuity correction "
        "(scipy's chi2_contingency(correction=False)); NaN with fewer than two columns or an empty side",
        "dimensionless, >= 0 (grows with the counts)",
        "Grows with the window and the reference size, so it is no effect size; read cramers_v instead, which "
        "carries the threshold (a threshold set or calibrated under the key 'chi2' is a Cramér's V). The row has "
        "no threshold.",
    ),
    _doc(
        "chi2_pvalue",
        "Drift",
        "p-value of the chi-square test of a categorical feature's window against its reference. " + _PER_FEATURE,
        "chi2_contingency(table, correction=False).pvalue on the table of chi2, (k - 1) degrees of freedom for k "
        "non-empty columns",
        "probability 0-1",
        "Small means the category mix differs, not that it matters: on large windows any shift is significant. "
        "No threshold, no rule.",
    ),
    _doc(
        "cramers_v",
        "Drift",
        "Cramér's V of a categorical feature's window against its reference: the chi-square statistic as an "
        "effect size. " + _PER_FEATURE,
        "sqrt(chi2 / (N * (min(2, k) - 1))) on the 2 x k table of chi2, N its total count (so sqrt(chi2 / N) "
        "for k >= 2)",
        "dimensionless, 0-1",
        f"0.1 is a 'small' effect (Cohen), the default threshold ({DEFAULT_THRESHOLDS['chi2']}); the row carries "
        "the threshold in force, calibrated or set under the key 'chi2'. Reported, not deciding.",
    ),
    _doc(
        "unseen",
        "Drift",
        "Share of a categorical feature's non-missing window values in categories the reference never had "
        "(or that its category cap left out). " + _PER_FEATURE,
        "unseen / (values counted, missing excluded)",
        _RATE,
        f"Default threshold {DEFAULT_THRESHOLDS['unseen']} (not calibrated). Reported, not deciding. Differs from "
        "unseen_rate, whose denominator also counts missing and mistyped values and whose limit is the "
        "reference's own share plus 5 points.",
    ),
    _doc(
        "drifted_share",
        "Drift",
        "Share of the judged drift features (those with at least 30 values in the window, score, prediction and "
        "embedding projections included) whose deciding statistic is at or over its threshold.",
        "drifted features / judged features; NaN when none is judged",
        _RATE,
        "Threshold 0.5, Evidently's dataset-drift rule: the model sees another population, retrain. One row per "
        "window (no feature); in rolling views too.",
        ("drifted-share",),
    ),
    # -- Data quality --------------------------------------------------------------------------------------
    _doc(
        "missing_rate",
        "Data quality",
        "Share of a feature's values in the window that are missing (null, NaN).",
        "missing / (present + missing + type-mismatched values)",
        _RATE,
        "Threshold: the reference's own missing share plus 5 points. A finding (data-quality, two windows running) "
        "needs at least 30 values, the rate over its limit and a one-sided binomial test at the budget's rate "
        "against the reference's share: two missing among thirty cross the limit by chance.",
        ("data-quality",),
    ),
    _doc(
        "type_mismatch_rate",
        "Data quality",
        "Share of a feature's values of the wrong kind: a string where the reference had numbers, a non-string "
        "where it had categories. Those values are kept out of the distribution.",
        "mismatched / (present + missing + type-mismatched values)",
        _RATE,
        "Limit 0.01; a finding as for missing_rate (binomial test against a reference rate of 0).",
        ("data-quality",),
    ),
    _doc(
        "out_of_range_rate",
        "Data quality",
        "Share of a numeric feature's values outside the reference's [min, max].",
        "values < reference min or > reference max / (present + missing + type-mismatched values)",
        _RATE,
        "Limit 0.05; a finding as for missing_rate, tested against 2 / (N + 1) (the share of a continuous "
        "feature's values beyond the range of N reference values). Wasserstein winsorises these values, so "
        "this is where a tail past the reference shows.",
        ("data-quality",),
    ),
    _doc(
        "unseen_rate",
        "Data quality",
        "Share of a categorical feature's values in categories the reference never had.",
        "unseen / (present + missing + type-mismatched values)",
        _RATE,
        "Limit: the reference's own share of values outside its kept categories plus 5 points; a finding as for "
        "missing_rate. Compare the drift row 'unseen', whose denominator excludes missing values.",
        ("data-quality",),
    ),
    _doc(
        "unknown_feature_values",
        "Data quality",
        "Values the window's events sent under feature names the reference does not know (an embedding the "
        "reference lacks counts as embeddings.<name>). A row, not a finding.",
        "sum over unknown names of the events carrying each (past 20 names, the names beyond the first 20 in sort "
        "order are counted under one anonymous name, so the sum is kept); reported only when > 0",
        "values (count)",
        "Extra fields are common and harmless; a renamed feature shows here and as missing under its old name.",
    ),
    _doc(
        "embedding_wrong_length",
        "Data quality",
        "Vectors of an embedding (feature: its name) whose length differs from the reference's, refused.",
        "count of such vectors in the window; reported only when > 0",
        "vectors (count)",
        "Any is a producer bug: the rule fires on > 0 at once.",
        ("embedding-wrong-length",),
    ),
    # -- Multivariate and embeddings -----------------------------------------------------------------------
    _doc(
        "multivariate_drift",
        "Multivariate and embeddings",
        "The window's mean PCA reconstruction error (NannyML's data reconstruction drift): how far events lie from "
        "the reference's principal plane, which moves when features stop moving together. Overall and per slice "
        "with at least min_samples events.",
        "mean over events of ||x - x W^T W||, x the event standardised as on the reference (numeric: mean-imputed, "
        "then (v - mean) / std; categorical: one-hot on the 10 most frequent categories, standardised), W the "
        "components explaining 65% of the reference's variance; summed in fixed point",
        "standardised units (Euclidean distance), >= 0",
        "Only a rise alerts: the threshold is the mean error a window of its size (rounded down to a power of "
        "two) resampled from the reference's held-out errors exceeds at the budget's drift rate (split evenly "
        "over slices). Says that the joint structure moved, not which feature drove it.",
        ("multivariate-drift",),
    ),
    _doc(
        "multivariate_imputed",
        "Multivariate and embeddings",
        "Numeric values imputed (missing or infinite, set to the reference mean) to compute multivariate_drift.",
        "count over the window's events of missing numeric values among the model's numeric columns",
        "values (count)",
        "Many imputations pull events towards the reference mean and so lower multivariate_drift: read the two "
        "together.",
    ),
    _doc(
        "embedding_euclidean",
        "Multivariate and embeddings",
        "Euclidean distance between the window's mean vector of an embedding (feature: its name) and the "
        "reference's mean vector.",
        "||m - mu||, m from fixed-point sums of the window's vectors of the reference's length",
        "the embedding's own units, >= 0",
        "Over its threshold means a cluster of inputs moved: the distance a stationary window of its size "
        "(rounded down to a power of two) exceeds at the budget's drift rate, simulated from N(0, (1/n + 1/N) "
        "Sigma) in the reference's eigenbasis. A spread that widens around the same mean moves no mean: watch "
        "the projections' drift (feature <name>#pcK) for that.",
        ("embedding-drift",),
    ),
    _doc(
        "embedding_cosine",
        "Multivariate and embeddings",
        "Cosine distance between the window's mean vector of an embedding (feature: its name) and the reference's "
        "mean vector.",
        "1 - cos(m, mu), computed as ||m/|m| - mu/|mu|||^2 / 2; 1.0 when either norm is 0",
        "dimensionless, 0-2",
        "Threshold simulated as for embedding_euclidean (1.0, never crossed, when the reference mean is 0). Blind "
        "to moves along the mean's direction; no default rule reads it.",
    ),
    # -- Volume, latency and errors ------------------------------------------------------------------------
    _doc(
        "requests",
        "Volume",
        "Prediction events (ok and error) of the model version and variant in the window.",
        "count of prediction events",
        "events (count)",
        "No rule; a sudden drop or rise is context for every other row (a window of few requests has wide "
        "intervals and calibrated thresholds far from the defaults).",
    ),
    _doc(
        "error_rate",
        "Latency and errors",
        "Share of the window's predictions whose status is 'error'.",
        "errors / requests",
        _RATE,
        "River's detector (Page-Hinkley by default) watches this series over windows of at least "
        f"{MIN_BURN_EVENTS} requests and fires a 'change' finding. Unlike the SLO's bad requests, slow successes "
        "do not count here.",
        ("change-detected",),
    ),
    *(
        _doc(
            f"latency_p{q}",
            "Latency and errors",
            f"The {q}th percentile of the window's prediction latencies (ok and error requests alike).",
            "numpy's inverted_cdf quantile (the order statistic of rank max(ceil(n * q - 1), 0)) from a DDSketch of "
            "relative accuracy 0.005: within 0.5% of the exact value, clamped to [min, max]",
            "ms",
            "Percentiles of windows do not average: a rolling view's percentile is of its merged sketch."
            + (" A tail percentile of a small window is one of a handful of requests." if q != 50 else ""),
        )
        for q in (50, 95, 99)
    ),
    # -- SLO -----------------------------------------------------------------------------------------------
    *_burn_rates(),
    _doc(
        "error_budget_consumed",
        "SLO",
        "Share of the SLO period's error budget spent by the requests of the period held so far (trailing "
        "period_minutes, 30 days by default).",
        "bad / ((1 - target) * total) over the period's windows; bad as for the burn rates",
        "fraction of the budget, >= 0 (> 1 once the SLO is missed)",
        "It is the period's burn rate: the budget is a share of the traffic counted so far, so it is not "
        "'spent so far of a fixed amount'. Early in a stream it stands for little history.",
    ),
    _doc(
        "error_budget_remaining",
        "SLO",
        "Share of the SLO period's error budget left.",
        "1 - error_budget_consumed",
        "fraction of the budget, <= 1 (negative once the SLO is missed)",
        "As error_budget_consumed.",
    ),
    # -- Canary and shadow ---------------------------------------------------------------------------------
    _doc(
        "paired",
        "Canary and shadow",
        "Challenger (canary or shadow) predictions paired with the production prediction of the same request, "
        "in the window of the production prediction's time. Rows are the challenger's version and variant, "
        "segment production_version=<the version compared with>.",
        "count of (production, challenger) pairs",
        "pairs (count)",
        f"The other divergence rows need {MIN_PAIRS} pairs ({MIN_LATENCY_PAIRS} for the latency ratio) and are "
        "not reported below; pairs evicted from the twin join before meeting are not counted.",
    ),
    _doc(
        "agreement_rate",
        "Canary and shadow",
        "Share of paired requests where the challenger predicted the same as production.",
        f"pairs with equal predictions (Python ==) / pairs; not reported under {MIN_PAIRS} pairs",
        _RATE,
        "The default rule fires under 0.9 for two windows. Equal means equal values: 1 and 1.0 agree, '1' and 1 "
        "do not.",
        ("divergence-agreement",),
    ),
    _doc(
        "score_shift",
        "Canary and shadow",
        "Mean signed difference of the challenger's score from production's over paired requests both scored.",
        f"mean of (challenger score - production score), fixed point; not reported under {MIN_PAIRS} scored pairs",
        "score units, -1 to 1",
        "A systematic bias of the challenger's scores; differences of opposite signs cancel (see score_abs_diff).",
    ),
    _doc(
        "score_abs_diff",
        "Canary and shadow",
        "Mean absolute difference between the challenger's and production's scores over paired requests both scored.",
        f"mean of |challenger score - production score|, fixed point; not reported under {MIN_PAIRS} scored pairs",
        "score units, 0-1",
        "The default rule fires over 0.1 for two windows.",
        ("divergence-score",),
    ),
    _doc(
        "latency_p95_ratio",
        "Canary and shadow",
        "The challenger's p95 latency over production's, on the same paired requests.",
        "p95(challenger latencies) / p95(production latencies), each from a DDSketch (0.5% relative accuracy); "
        f"not reported under {MIN_LATENCY_PAIRS} pairs or when production's p95 is 0",
        "dimensionless ratio, > 0 (1 = as fast)",
        "The default rule fires over 1.5 for two windows; the p95 of 200 requests is within ~10% of the true one, "
        "so two equal services rarely read 1.5 apart by chance.",
        ("divergence-latency",),
    ),
    # -- Label join ----------------------------------------------------------------------------------------
    _doc(
        "labelled",
        "Label join",
        "Predictions of the prediction window whose label has arrived (joined on model and request id within the "
        "label horizon); for a multiclass model overall and per slice with at least min_samples.",
        "count of labelled predictions (a regression counts pairs whose prediction and label are both numbers)",
        "predictions (count)",
        "Performance rows are re-reported as late labels arrive (the last row of a window is current), so this "
        "grows over time for a given window. Every rate of the window rests on this many labels.",
    ),
    # -- Performance ---------------------------------------------------------------------------------------
    _doc(
        "accuracy",
        "Performance",
        "Share of the labelled predictions that were right. Overall (binary or multiclass); with a segment, one "
        "slice's (binary: among the per-slice fairness rates; multiclass: from the slice's confusion matrix, no "
        "feature); with a segment and a class as feature, a multiclass slice's one-versus-rest accuracy.",
        "(TP + TN) / n, or the diagonal over the total of a multiclass confusion matrix; " + _WILSON,
        _RATE,
        "Judged over the performance view: accuracy-drop fires when the whole interval is under the configured "
        "baseline minus 0.05, three views running (no baseline, no alert). " + _VIEW,
        ("accuracy-drop",),
    ),
    _doc(
        "precision",
        "Performance",
        "Share of predicted positives that are positive. Overall for a binary classifier (no interval); with a "
        "segment, one slice's, with its Wilson interval. " + _SLICE_RATE,
        "TP / (TP + FP); NaN (not 0) when nothing was predicted positive",
        _RATE,
        "Undefined rather than 0 for a slice with no positive prediction, unlike scikit-learn's zero_division.",
    ),
    _doc(
        "recall",
        "Performance",
        "Share of actual positives predicted positive (the overall TPR) of a binary classifier.",
        "TP / (TP + FN); NaN when there is no actual positive",
        _RATE,
        "Overall only; per slice the same rate is the row tpr.",
    ),
    _doc(
        "f1",
        "Performance",
        "Harmonic mean of the overall precision and recall of a binary classifier.",
        "2 * precision * recall / (precision + recall); NaN when both are 0 or either is undefined",
        _RATE,
        "Overall only; ignores true negatives.",
    ),
    _doc(
        "positive_rate",
        "Performance",
        "Share of the labelled predictions that predict the positive class (the overall selection rate).",
        "(TP + FP) / n over labelled predictions",
        _RATE,
        "Over labelled predictions only: when labels come for some predictions sooner than others it is not "
        "the share over all traffic (see the drift of __prediction__ for that).",
    ),
    _doc(
        "roc_auc",
        "Performance",
        "ROC AUC of a binary classifier's scores on its labelled predictions.",
        "P(score+ > score-) + P(score+ == score-) / 2 from score histograms per class on a grid of 0.01 (scores "
        "rounded to the nearest cell; pairs sharing a cell count half); Hanley and McNeil's (1982) normal "
        "interval as lower/upper",
        _RATE,
        "0.5 is chance. Exact when scores have at most two decimals, otherwise within half the share of pairs "
        "sharing a cell. auc-drop fires when the whole interval is under the configured baseline minus 0.05 over "
        "the performance view, three views running. " + _VIEW,
        ("auc-drop",),
    ),
    _doc(
        "log_loss",
        "Performance",
        "Mean binary cross-entropy of the scores of labelled predictions.",
        "mean of -ln(p) for positives and -ln(1 - p) for negatives, p clipped to [eps, 1 - eps] (machine epsilon, "
        "as scikit-learn), summed in fixed point (1e-9)",
        "nats per prediction, >= 0",
        "ln 2 ~ 0.693 is a constant score of 0.5; penalises confident mistakes without bound (up to ~36 at eps).",
    ),
    _doc(
        "mae",
        "Performance",
        "Mean absolute error of a regression's labelled predictions.",
        "mean |prediction - label|, summed in fixed point (units of 1e-9 of the label)",
        "the label's unit, >= 0",
        "Pairs whose prediction or label is not a number (or a boolean) are left out.",
    ),
    _doc(
        "rmse",
        "Performance",
        "Root mean squared error of a regression's labelled predictions.",
        "sqrt(mean (prediction - label)^2), from fixed-point squares (units of 1e-9)",
        "the label's unit, >= 0",
        "Weighs large errors more than mae; rmse >> mae means a few large errors.",
    ),
    _doc(
        "bias",
        "Performance",
        "Mean signed error of a regression's labelled predictions.",
        "mean (prediction - label), fixed point",
        "the label's unit, any sign",
        "Positive: the model over-predicts. Errors of opposite signs cancel: read with mae.",
    ),
    _doc(
        "macro_f1",
        "Performance",
        "Unweighted mean of the per-class F1 of a multiclass model, overall and per slice with at least min_samples.",
        "mean over classes present (as a label or a prediction) of 2 TP_c / (true_c + predicted_c); scikit-learn's "
        "f1_score(average='macro')",
        _RATE,
        "Every class weighs the same, so a rare class's errors weigh as much as a frequent one's.",
    ),
    _doc(
        "micro_f1",
        "Performance",
        "Micro-averaged F1 of a multiclass model, overall and per slice with at least min_samples.",
        "2 * correct / (2 * n), which equals accuracy for single-label predictions",
        _RATE,
        "Always equal to the multiclass accuracy.",
    ),
    _doc(
        "class_precision",
        "Performance",
        "A multiclass model's precision for one class (feature: the class), overall and per slice.",
        "TP_c / predicted_c; NaN (not scikit-learn's 0) when the class was never predicted",
        _RATE,
        "Only classes present in the population; classes beyond the 50 kept count as __other__.",
    ),
    _doc(
        "class_recall",
        "Performance",
        "A multiclass model's recall for one class (feature: the class), overall and per slice.",
        "TP_c / true_c; NaN when the class never was the label",
        _RATE,
        "As class_precision.",
    ),
    _doc(
        "class_f1",
        "Performance",
        "A multiclass model's F1 for one class (feature: the class), overall and per slice.",
        "2 TP_c / (true_c + predicted_c)",
        _RATE,
        "Defined (0) even when precision or recall is undefined.",
    ),
    _doc(
        "class_support",
        "Performance",
        "Labelled predictions whose label is the class (feature: the class), overall and per slice.",
        "true_c, the row sum of the confusion matrix",
        "predictions (count)",
        "The weight behind the class's figures.",
    ),
    _doc(
        "confusion",
        "Performance",
        "One non-zero cell of a multiclass confusion matrix, overall and per slice; feature is "
        'json.dumps([actual, predicted]) (e.g. ["cat", "dog"]).',
        "count of labelled predictions with that label and that prediction",
        "predictions (count)",
        "Zero cells are not reported.",
    ),
    # -- Fairness ------------------------------------------------------------------------------------------
    _doc(
        "selection_rate",
        "Fairness",
        "A slice's share of labelled predictions predicted positive. " + _SLICE_RATE,
        "(TP + FP) / n of the slice; " + _WILSON,
        _RATE,
        "selection-rate-gap judges the gap to the best (highest) slice of the same segment over the performance "
        "view: 0.05 or more with intervals apart, two views running. " + _VIEW,
        ("selection-rate-gap",),
    ),
    _doc(
        "tpr",
        "Fairness",
        "A slice's true positive rate (recall). " + _SLICE_RATE,
        "TP / (TP + FN) of the slice; " + _WILSON + "; NaN without actual positives",
        _RATE,
        "No default rule (the FNR rule watches its complement). " + _VIEW,
    ),
    _doc(
        "fpr",
        "Fairness",
        "A slice's false positive rate. " + _SLICE_RATE,
        "FP / (FP + TN) of the slice; " + _WILSON + "; NaN without actual negatives",
        _RATE,
        "slice-fpr-gap judges the gap to the best (lowest) slice of the segment over the performance view: 0.05 "
        "or more with intervals apart, two views running. " + _VIEW,
        ("slice-fpr-gap",),
    ),
    _doc(
        "fnr",
        "Fairness",
        "A slice's false negative rate. " + _SLICE_RATE,
        "FN / (TP + FN) of the slice; " + _WILSON + "; NaN without actual positives",
        _RATE,
        "slice-fnr-gap judges the gap to the best (lowest) slice of the segment over the performance view: 0.05 "
        "or more with intervals apart, two views running. " + _VIEW,
        ("slice-fnr-gap",),
    ),
    _doc(
        "demographic_parity_difference",
        "Fairness",
        "Spread of the selection rate across the slices of a segment (segment: (name, '*')); fairlearn's "
        "demographic_parity_difference, method='between_groups'.",
        "max - min of the slices' selection rates, over slices with at least min_samples labelled predictions; "
        "NaN when none",
        _RATE,
        "0 is parity. No interval and no rule: a gap between small slices is noise; the parity rules judge "
        "the per-slice rates with their intervals instead.",
    ),
    _doc(
        "demographic_parity_ratio",
        "Fairness",
        "Smallest ratio of selection rates across the slices of a segment (segment: (name, '*')); fairlearn's "
        "demographic_parity_ratio, method='between_groups'.",
        "min / max of the slices' selection rates (slices with at least min_samples); NaN when none",
        _RATE,
        f"1 is parity; under {FOUR_FIFTHS} breaks the four-fifths rule. A 'fairness' finding (this metric) is "
        "raised only when the ratio is significantly under 4/5 (one-sided test on the log ratio); no default "
        "rule consumes those findings.",
    ),
    _doc(
        "equalized_odds_difference",
        "Fairness",
        "Larger of the TPR and FPR spreads across the slices of a segment (segment: (name, '*')); fairlearn's "
        "equalized_odds_difference, agg='worst_case'.",
        "max(max - min of TPR, max - min of FPR) over slices with at least min_samples; one of them when the "
        "other is NaN",
        _RATE,
        "0 is parity. No interval, no rule (see fpr and fnr).",
    ),
    _doc(
        "equal_opportunity_difference",
        "Fairness",
        "Spread of the true positive rate across the slices of a segment (segment: (name, '*')).",
        "max - min of the slices' TPR, over slices with at least min_samples; NaN when none",
        _RATE,
        "0 is parity. No interval, no rule.",
    ),
    # -- Estimated performance -----------------------------------------------------------------------------
    *_estimated(),
    _doc(
        "estimate_error",
        "Estimated performance",
        "How far the realized accuracy of labelled predictions is from what the estimate (CBPE) expected of "
        "exactly those predictions, overall and per slice with at least min_samples.",
        "|correct / n - E[correct] / n|, E[correct] = sum over (predicted class, score bin) of p_b for predicted "
        "positives and 1 - p_b for predicted negatives; threshold = z * sqrt(sum p(1-p) + calibration variance) / "
        "n, the calibration variance sum_b (predicted positives_b - predicted negatives_b)^2 p_b (1 - p_b) / N_b "
        "(N_b the reference's scores in bin b); lower/upper = expected +- threshold",
        "fraction 0-1 (accuracy points)",
        "Over its threshold: the estimate's assumption broke for these predictions (concept drift, or scores no "
        "longer calibrated for a slice). estimate-diverged judges it over the performance view, three views "
        "running. Binary classifiers with a calibrated score only.",
        ("estimate-diverged",),
    ),
]

#: Every metric, sorted by family, then name.
METRICS: tuple[MetricDoc, ...] = tuple(sorted(_ENTRIES, key=lambda doc: (doc.family, doc.name)))

_BY_NAME: dict[str, MetricDoc] = {doc.name: doc for doc in METRICS}

#: Names that are not a row's but are easily taken for one, and the row's name: other tools' names of the
#: statistics, and the names SLO findings give their long window (``burn_rate_60m``, a row's ``burn_rate_1h``).
_HINTS: dict[str, str] = {
    "jensen_shannon": "js",
    "jensenshannon": "js",
    "chi_square": "chi2",
    "cramer_v": "cramers_v",
    "kolmogorov_smirnov": "ks",
    **{
        f"burn_rate_{minutes}m": f"burn_rate_{_burn_window_label(minutes)}"
        for minutes in BURN_RATE_WINDOWS_MINUTES
        if f"{minutes}m" != _burn_window_label(minutes)
    },
}


def lookup(name: str) -> MetricDoc:
    """The documentation of a metric row's ``metric``; a :class:`KeyError` naming it when there is none.

    >>> lookup("latency_p99").unit
    'ms'
    >>> lookup("estimated_roc_auc").family
    'Estimated performance'
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        close = _HINTS.get(name) or next(iter(difflib.get_close_matches(name, _BY_NAME, n=1)), None)
        hint = f" (did you mean {close!r}?)" if close else ""
        raise KeyError(f"no metric {name!r} in the catalogue{hint}") from None
