"""When a drift statistic means drift: defaults from established practice, or calibrated on the reference.

Defaults (``DEFAULT_THRESHOLDS``), each "drift when the statistic is at or over":

========================  =========  ==========================================================
statistic                 threshold  source
========================  =========  ==========================================================
``psi``                   0.2        the credit-scoring rule of thumb: < 0.1 stable, > 0.2 shift
``js``                    0.1        Evidently's default for Jensen-Shannon distance
``wasserstein``           0.1        Evidently's default (normalised by the reference std)
``hellinger``             0.1        Evidently's default
``ks``                    0.1        a KS distance of 0.1; see below on p-values
``chi2``                  0.1        Cramér's V of 0.1 ("small" effect, Cohen)
``unseen``                0.05       5% of values in categories the reference never had
========================  =========  ==========================================================

Test p-values (KS, chi-square) are reported but not used as defaults: over a
window of thousands of events they call the tiniest shift significant. The
defaults are effect sizes, which do not grow with the window.

Fixed thresholds still misfire on small windows, where sampling noise alone
moves a statistic. :func:`calibrate` therefore estimates, for a window of a
given size, how far each statistic strays when the window really is drawn
from the reference, and puts the threshold above that (the 99th percentile of
``draws`` resampled windows, and never below the default). A stationary stream
then raises drift in about 1% of windows per statistic at most.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import gamma, norm

from streamwatch.core.binning import COARSE_BINS, PSI_BINS, coarse_starts, coarsen
from streamwatch.core.drift import PSI_EMPTY_BIN, hellinger, js_distance, psi

__all__ = [
    "CALIBRATION_DRAWS",
    "DEFAULT_THRESHOLDS",
    "batch_statistic",
    "batch_wasserstein",
    "calibrate",
    "cramers_v",
    "tail_quantile",
]

#: Windows resampled per calibration: enough for the 99.75% quantile empirically, and for the tail
#: fits beyond it; a few tens of milliseconds per feature and window size.
CALIBRATION_DRAWS = 4000
#: The coarse bins of the statistics computed on them for numeric features (see ``core.binning``).
_COARSE = {"psi": PSI_BINS, "js": COARSE_BINS, "hellinger": COARSE_BINS}

DEFAULT_THRESHOLDS: Mapping[str, float] = {
    "psi": 0.2,
    "js": 0.1,
    "wasserstein": 0.1,
    "hellinger": 0.1,
    "ks": 0.1,
    "chi2": 0.1,
    "unseen": 0.05,
}


def cramers_v(reference: np.ndarray, current: np.ndarray) -> float:
    """Cramér's V of the 2 x k table of reference and window counts: an effect size in [0, 1].

    >>> same = cramers_v(np.array([50, 50]), np.array([50, 50]))
    >>> opposite = cramers_v(np.array([9, 0]), np.array([0, 9]))
    >>> round(same, 6), round(opposite, 6)
    (0.0, 1.0)
    """
    table = np.vstack([reference, current]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    total = table.sum()
    if table.shape[1] < 2 or 0 in table.sum(axis=1):
        return float("nan")
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (total * (min(table.shape) - 1))))


def _ks_from_counts(reference: np.ndarray, current: np.ndarray) -> float:
    return float(np.abs(np.cumsum(reference) / reference.sum() - np.cumsum(current) / current.sum()).max())


_STATISTICS: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "psi": psi,
    "js": js_distance,
    "hellinger": hellinger,
    "ks": _ks_from_counts,
    "chi2": cramers_v,
}


#: The statistics each kind of feature reports (``core.drift_report``), so the only ones worth calibrating.
_NUMERIC_STATISTICS = frozenset({"psi", "js", "hellinger", "ks"})
_CATEGORICAL_STATISTICS = frozenset({"psi", "js", "chi2"})


def calibrate(
    reference_counts: np.ndarray,
    window_size: int,
    *,
    statistics: tuple[str, ...] = ("psi", "js", "hellinger", "ks", "chi2"),
    alpha: float = 0.01,
    draws: int = CALIBRATION_DRAWS,
    seed: int = 0,
    support: np.ndarray | None = None,
    scale: float = 1.0,
) -> dict[str, float]:
    """Thresholds for windows of ``window_size`` values, which a window drawn like the reference crosses
    with probability ``alpha``.

    **The null.** The reference is itself a sample, so a stationary window and
    the reference are two samples of one distribution. Windows are drawn from
    the reference's binned distribution (multinomial, fixed ``seed``: the same
    reference always gives the same thresholds) at the two-sample effective size
    ``n * N / (n + N)`` (``N`` the reference's count), which gives each statistic
    the spread it has between two samples of sizes ``n`` and ``N``.

    **The tail.** The threshold is the statistic's ``1 - alpha`` quantile over
    ``draws`` windows when ``alpha * draws >= 10``. A false-alert budget asks
    for smaller ``alpha`` (1e-4 is common, see :mod:`streamwatch.core.budget`);
    the quantile is then extrapolated from the sampled tail, taking the larger of
    two fits (a gamma fit of the statistic's square, by moments, which is exact
    for chi-square-like statistics, and a log-normal line through the 95% and
    ``1 - 10 / draws`` quantiles, which follows the heavier tail of Wasserstein
    on heavy-tailed amounts). Tests hold both against 100,000 draws.

    **Bins.** With ``support`` (one value per fine bin: a numeric feature), PSI
    is computed on the reference's deciles and Jensen-Shannon and Hellinger on
    its vingtiles, as :func:`~streamwatch.core.drift_report.evaluate_drift` does,
    and the normalised Wasserstein distance (divided by ``scale``) is calibrated too.

    Each threshold is at least its default (an effect too small to matter is
    no drift, however significant).

    >>> support = np.arange(4.0)
    >>> calibrate(np.array([400, 300, 200, 100]), 40, support=support)["wasserstein"] > 0.1
    True

    >>> reference = np.array([400, 300, 200, 100])
    >>> small, large = calibrate(reference, 50), calibrate(reference, 50_000)
    >>> small["psi"] > large["psi"] == 0.2
    True
    >>> calibrate(reference, 50, alpha=1e-4)["psi"] > small["psi"]
    True
    """
    counts = np.asarray(reference_counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0 or window_size < 1:
        raise ValueError("calibration needs a non-empty reference and a window of at least one value")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    effective = max(1, round(window_size * total / (window_size + total)))
    rng = np.random.default_rng(seed)
    samples = rng.multinomial(effective, counts / counts.sum(), size=draws)
    numeric = support is not None
    thresholds = {}
    # The samples' CDFs on the fine bins, shared by KS and Wasserstein (the same floats either computes).
    cdfs = np.cumsum(samples / samples.sum(axis=1, keepdims=True), axis=1) if numeric else None
    for name in statistics:
        if name not in (_NUMERIC_STATISTICS if numeric else _CATEGORICAL_STATISTICS):
            continue  # a statistic that kind of feature does not report (its threshold would go unread)
        if numeric and name in _COARSE:
            starts = coarse_starts(counts, _COARSE[name])
            values = batch_statistic(name, coarsen(counts, starts), coarsen(samples, starts))
        elif name == "ks" and cdfs is not None:
            values = np.abs(np.cumsum(counts / counts.sum()) - cdfs).max(axis=1)
        else:
            values = batch_statistic(name, counts, samples)
        thresholds[name] = max(tail_quantile(values, alpha, squared=name != "psi"), DEFAULT_THRESHOLDS[name])
    if support is not None and scale > 0:
        values = _wasserstein_from_cdfs(counts, cdfs, np.asarray(support, dtype=float)) / scale
        thresholds["wasserstein"] = max(tail_quantile(values, alpha), DEFAULT_THRESHOLDS["wasserstein"])
    return thresholds


def tail_quantile(values: np.ndarray, alpha: float, *, squared: bool = True) -> float:
    """The ``1 - alpha`` quantile of a non-negative statistic, from a sample of it.

    Empirical when the sample holds at least 10 values beyond it; otherwise the
    larger of a gamma fit by moments (of the squares when ``squared``: distances
    whose squares are chi-square-like) and a log-normal line through the sample's
    95% and ``1 - 10 / size`` quantiles.

    >>> sample = np.random.default_rng(0).chisquare(5, 4000)
    >>> from scipy.stats import chi2
    >>> bool(abs(tail_quantile(sample, 1e-5, squared=False) / chi2.ppf(1 - 1e-5, 5) - 1) < 0.1)
    True
    """
    values = values[~np.isnan(values)]
    if values.size == 0:
        return 0.0
    if alpha * values.size >= 10:
        return float(np.quantile(values, 1 - alpha))
    fits = []
    moments = values**2 if squared else values
    mean, variance = float(moments.mean()), float(moments.var())
    if mean > 0 and variance > 0:
        fitted = float(gamma.ppf(1 - alpha, mean * mean / variance, scale=variance / mean))
        fits.append(np.sqrt(fitted) if squared else fitted)
    top = 1 - 10 / values.size
    low, high = np.quantile(values, [0.95, top])
    if low > 0 and high > low:
        z_low, z_high, z = norm.ppf([0.95, top, 1 - alpha])
        fits.append(float(high * np.exp((np.log(high) - np.log(low)) / (z_high - z_low) * (z - z_high))))
    return max(fits, default=float(values.max()))


def batch_statistic(name: str, reference: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """One statistic of ``reference`` against each row of ``samples`` at once (calibration draws a thousand).

    Equal to calling the statistic row by row (a test holds it to that), without the Python loop.

    >>> reference, samples = np.array([5, 3, 2]), np.array([[5, 3, 2], [2, 3, 5]])
    >>> [round(v, 6) for v in batch_statistic("psi", reference, samples)] == [0.0, round(psi(reference, [2, 3, 5]), 6)]
    True
    """
    p = reference / reference.sum()
    q = samples / samples.sum(axis=1, keepdims=True)
    if name == "psi":
        pp, qq = np.where(p == 0, PSI_EMPTY_BIN, p), np.where(q == 0, PSI_EMPTY_BIN, q)
        psis: np.ndarray = np.sum((qq - pp) * np.log(qq / pp), axis=1)
        return psis
    if name == "js":
        return np.asarray(jensenshannon(np.broadcast_to(p, q.shape), q, axis=1), dtype=float)
    if name == "hellinger":
        distances: np.ndarray = np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=1) / 2)
        return distances
    if name == "ks":
        gaps: np.ndarray = np.abs(np.cumsum(p) - np.cumsum(q, axis=1)).max(axis=1)
        return gaps
    if name == "chi2":
        return _batch_cramers_v(reference.astype(float), samples.astype(float))
    raise ValueError(f"unknown statistic {name!r}")


def _batch_cramers_v(reference: np.ndarray, samples: np.ndarray) -> np.ndarray:
    columns = reference + samples
    totals = columns.sum(axis=1, keepdims=True)
    used = columns > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_ref = reference.sum() * columns / totals
        expected_cur = samples.sum(axis=1, keepdims=True) * columns / totals
        terms = (reference - expected_ref) ** 2 / expected_ref + (samples - expected_cur) ** 2 / expected_cur
    chi2 = np.where(used, terms, 0.0).sum(axis=1)
    enough = used.sum(axis=1) >= 2
    return np.where(enough, np.sqrt(chi2 / totals[:, 0]), np.nan)


def batch_wasserstein(reference: np.ndarray, samples: np.ndarray, support: np.ndarray) -> np.ndarray:
    """First Wasserstein distance between ``reference`` and each row of ``samples``, all on one sorted support:
    the area between the two CDFs (what scipy's ``wasserstein_distance`` computes for shared support points)."""
    return _wasserstein_from_cdfs(reference, np.cumsum(samples / samples.sum(axis=1, keepdims=True), axis=1), support)


def _wasserstein_from_cdfs(reference: np.ndarray, cdfs: np.ndarray | None, support: np.ndarray) -> np.ndarray:
    assert cdfs is not None  # (a numeric feature's, which calibrate computes)
    p = np.cumsum(reference / reference.sum())[:-1]
    areas: np.ndarray = np.abs(cdfs[:, :-1] - p) @ np.diff(support)
    return areas
