"""The HTML report: one self-contained page (inline SVG) of a run's lineage, alerts, drift, fairness and latency.

May import: :mod:`streamwatch.core`, :mod:`streamwatch.contract`, :mod:`streamwatch.errors`. Pure.
"""
