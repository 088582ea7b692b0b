"""Replay: event files through the same pipeline and alerting as a worker, and the export of what came out.

:mod:`~streamwatch.replay.run` reads JSON-lines files in event-time order;
:mod:`~streamwatch.replay.export` writes metrics, findings and alerts as JSON lines;
:mod:`~streamwatch.replay.batch` is what they share.

May import: :mod:`streamwatch.pipeline`, :mod:`streamwatch.alerts`, :mod:`streamwatch.profiles`,
:mod:`streamwatch.config`, :mod:`streamwatch.contract`, :mod:`streamwatch.core`, :mod:`streamwatch.errors`.
"""
