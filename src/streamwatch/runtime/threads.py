"""One BLAS thread per process, for the processes that run pipelines (workers, replays).

numpy hands matrix products to OpenBLAS, which splits even small ones across every core. A worker's
products are small (a batch of 500 events projected on 8 components, or reconstructed by a PCA) and the
worker scales out by process, one per partition or more: threads spun for them cost more than they
save and take cores from the other workers. Measured in ``bench/multivariate.py``: projecting a batch of
384-number embeddings took 8.6 µs an event with 2 BLAS threads on a 2-core machine, 0.5 µs with one.
"""

from __future__ import annotations

__all__ = ["single_blas_thread"]


def single_blas_thread() -> None:
    """Limit BLAS (OpenBLAS, MKL, BLIS) to one thread in this process, through threadpoolctl."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # (ships no type hints)

    threadpool_limits(limits=1, user_api="blas")
