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

from streamwatch.core.drift import PSI_EMPTY_BIN, hellinger, js_distance, psi

__all__ = ["DEFAULT_THRESHOLDS", "batch_statistic", "batch_wasserstein", "calibrate", "cramers_v"]

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
        values = batch_statistic(name, counts, samples)
        values = values[~np.isnan(values)]
        observed = float(np.quantile(values, quantile)) if values.size else 0.0
        thresholds[name] = max(observed, DEFAULT_THRESHOLDS[name])
    if support is not None and scale > 0:
        values = batch_wasserstein(counts, samples, np.asarray(support, dtype=float)) / scale
        thresholds["wasserstein"] = max(float(np.quantile(values, quantile)), DEFAULT_THRESHOLDS["wasserstein"])
    return thresholds


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
    p = np.cumsum(reference / reference.sum())[:-1]
    q = np.cumsum(samples / samples.sum(axis=1, keepdims=True), axis=1)[:, :-1]
    areas: np.ndarray = np.abs(q - p) @ np.diff(support)
    return areas
