"""streamwatch: event-driven monitoring for machine-learning models in production.

Inference services publish events with :class:`Producer`; the contract they
follow is in :mod:`streamwatch.events` and ``schemas/``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ConfigError, ContractError, StreamwatchError
from .events import AlertEvent, FeatureEvent, LabelEvent, PredictionEvent, RetrainEvent, parse_event
from .ids import new_request_id, request_id_from_headers
from .producer import Producer, ProducerStats
from .settings import Settings, load_settings

__all__ = [
    "AlertEvent",
    "ConfigError",
    "ContractError",
    "FeatureEvent",
    "LabelEvent",
    "PredictionEvent",
    "Producer",
    "ProducerStats",
    "RetrainEvent",
    "Settings",
    "StreamwatchError",
    "__version__",
    "load_settings",
    "new_request_id",
    "parse_event",
    "request_id_from_headers",
]
