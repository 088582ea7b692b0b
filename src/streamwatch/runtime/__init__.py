"""The worker: the consume-stage-write loop, the report runner, their wiring and the Faust app that hosts them.

:mod:`~streamwatch.runtime.loop` consumes batches and writes partials,
:mod:`~streamwatch.runtime.report_runner` merges and reports closed windows and
runs the alerting, :mod:`~streamwatch.runtime.wiring` builds them from the
settings, :mod:`~streamwatch.runtime.faust_app` is the Faust frame, and
:mod:`~streamwatch.runtime.logs` formats JSON logs.

May import: every package but :mod:`streamwatch.demo` and :mod:`streamwatch.cli`.
"""
