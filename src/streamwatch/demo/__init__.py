"""The demo: a credit-risk scenario with three injected incidents, run end to end on a bare machine.

:mod:`~streamwatch.demo.scenario` (pure) generates the traffic,
:mod:`~streamwatch.demo.run` runs broker, SDK, worker, ClickHouse and receivers,
:mod:`~streamwatch.demo.view` draws the live view and summary.

May import: every package but :mod:`streamwatch.cli`.
"""
