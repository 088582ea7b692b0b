"""The monitoring core: pure, I/O-free, incremental and mergeable.

Nothing here reads a clock, a file or a socket. Aggregates take batches
(numpy arrays) through ``update``, combine with ``merge``, and merging the
partials of any split of a stream gives exactly what the whole stream gives,
so results do not depend on how many partitions or workers computed them.
Drift statistics are computed from those aggregates, never from raw events.
"""

from __future__ import annotations

from .binning import bin_edges
from .categories import CategoryCounts
from .drift import chi_square, hellinger, js_distance, ks, psi, unseen_share, wasserstein
from .histogram import NumericHistogram

__all__ = [
    "CategoryCounts",
    "NumericHistogram",
    "bin_edges",
    "chi_square",
    "hellinger",
    "js_distance",
    "ks",
    "psi",
    "unseen_share",
    "wasserstein",
]
