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
from scipy.stats import wasserstein_distance

from .drift import hellinger, js_distance, psi

__all__ = ["DEFAULT_THRESHOLDS", "calibrate", "cramers_v"]

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


def calibrate(
    reference_counts: np.ndarray,
    window_size: int,
    *,
    statistics: tuple[str, ...] = ("psi", "js", "hellinger", "ks", "chi2"),
    quantile: float = 0.99,
    draws: int = 1000,
    seed: int = 0,
    support: np.ndarray | None = None,
    scale: float = 1.0,
) -> dict[str, float]:
    """Thresholds for windows of ``window_size`` values, so that windows drawn from the reference rarely cross.

    Windows are drawn from the reference's own binned distribution
    (multinomial), with a fixed ``seed`` so the same reference always gives the
    same thresholds. Each threshold is the ``quantile`` of the statistic over
    ``draws`` windows, and at least its default. With ``support`` (one value
    per bin) and ``scale``, the normalised Wasserstein distance is calibrated too.

    >>> support = np.arange(4.0)
    >>> calibrate(np.array([400, 300, 200, 100]), 40, support=support)["wasserstein"] > 0.1
    True

    >>> reference = np.array([400, 300, 200, 100])
    >>> small, large = calibrate(reference, 50), calibrate(reference, 50_000)
    >>> small["psi"] > large["psi"] == 0.2
    True
    """
    counts = np.asarray(reference_counts, dtype=np.int64)
    if counts.sum() == 0 or window_size < 1:
        raise ValueError("calibration needs a non-empty reference and a window of at least one value")
    rng = np.random.default_rng(seed)
    samples = rng.multinomial(window_size, counts / counts.sum(), size=draws)
    thresholds = {}
    for name in statistics:
        values = np.array([_STATISTICS[name](counts, sample) for sample in samples])
        values = values[~np.isnan(values)]
        observed = float(np.quantile(values, quantile)) if values.size else 0.0
        thresholds[name] = max(observed, DEFAULT_THRESHOLDS[name])
    if support is not None and scale > 0:
        values = np.array([wasserstein_distance(support, support, counts, sample) / scale for sample in samples])
        thresholds["wasserstein"] = max(float(np.quantile(values, quantile)), DEFAULT_THRESHOLDS["wasserstein"])
    return thresholds
