"""The silences in force, as the silences topic says: read whole at start, then followed.

``streamwatch silence add|expire`` publishes a :class:`~streamwatch.alerts.silences.Silence`
keyed by its id to a compacted topic; every worker folds the topic into a
:class:`~streamwatch.alerts.silences.SilenceSet`. The topic, not a worker, holds the
state, so silences survive restarts and reach whichever worker reports.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from streamwatch.alerts.silences import Silence, SilenceSet

__all__ = ["SilenceFeed", "fold_silences"]

_log = logging.getLogger("streamwatch.silences")


def fold_silences(messages: list[Any], into: SilenceSet | None = None) -> SilenceSet:
    """The silence set that messages of the silences topic describe (malformed ones are skipped)."""
    silences = into if into is not None else SilenceSet()
    for message in messages:
        if not message.value:
            continue  # a tombstone: the silence was deleted by compaction tooling
        try:
            silences.add(Silence.model_validate_json(message.value))
        except ValidationError as exc:
            _log.warning("skipped a malformed silence at offset %d: %s", message.offset, exc)
    return silences


class SilenceFeed:
    """Follows the silences topic through ``tail`` (a :class:`~streamwatch.adapters.kafka.TopicTail`)."""

    def __init__(self, tail: Any) -> None:
        self.tail = tail
        self.silences = fold_silences(tail.read_to_end())

    def refresh(self) -> None:
        """Take in what was published since the last call (without waiting)."""
        fold_silences(self.tail.poll(0.0), self.silences)

    def silenced(self, labels: dict[str, str], now_ms: int) -> Silence | None:
        return self.silences.silenced(labels, now_ms)

    def close(self) -> None:
        self.tail.close()
