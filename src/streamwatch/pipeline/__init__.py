"""The pipeline: raw bytes to window aggregates, findings and metric rows, runnable with no broker.

:mod:`~streamwatch.pipeline.stage` turns one partition's batch into partials,
:mod:`~streamwatch.pipeline.merge` merges partials from any number of partitions,
:mod:`~streamwatch.pipeline.aggregates` holds a window's mergeable state,
:mod:`~streamwatch.pipeline.reporter` and :mod:`~streamwatch.pipeline.window_report`
turn closed windows into findings and rows, :mod:`~streamwatch.pipeline.pipeline`
strings them together, :mod:`~streamwatch.pipeline.state` is the checkpoint format and
:mod:`~streamwatch.pipeline.from_settings` builds a pipeline from the settings.

May import: :mod:`streamwatch.core`, :mod:`streamwatch.profiles`, :mod:`streamwatch.config`,
:mod:`streamwatch.contract`, :mod:`streamwatch.errors`. Pure: no I/O, no threads, no clock.
"""
