"""Structured logs: one JSON object per line, with the fields a log call passes as ``extra``.

The worker's reports log the model, version, variant and window they concern
(``extra={"model": ..., "window_start": ...}``); with ``--log-format json``
those become fields a log pipeline can index, beside time, level, logger and
message.

>>> import logging
>>> record = logging.LogRecord("streamwatch.worker", logging.INFO, __file__, 1, "reported %s", ("psi",), None)
>>> record.model = "credit"
>>> line = JsonFormatter().format(record)
>>> '"message":"reported psi"' in line and '"model":"credit"' in line
True
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

__all__ = ["JsonFormatter", "configure"]

# What every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str, json: bool) -> None:
    """Log to stderr at ``level``, as JSON lines or as plain text."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if json else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
