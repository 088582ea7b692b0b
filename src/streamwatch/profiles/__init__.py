"""Reference profiles: what the training data looked like, with its lineage.

A profile holds each feature's bins and counts, the score's and the label's,
and where the data came from; every metric and alert names it.

May import: :mod:`streamwatch.core`, :mod:`streamwatch.contract`, :mod:`streamwatch.errors`. Pure.
"""
