"""streamwatch: event-driven monitoring for machine-learning models in production.

Inference services publish events with :class:`Producer`; the contract they
follow is in :mod:`streamwatch.contract.events` and ``schemas/``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from streamwatch.config.settings import Settings, load_settings
from streamwatch.contract.events import AlertEvent, FeatureEvent, LabelEvent, PredictionEvent, RetrainEvent, parse_event
from streamwatch.contract.ids import new_request_id, request_id_from_headers
from streamwatch.errors import ConfigError, ContractError, StreamwatchError
from streamwatch.sdk.producer import Producer, ProducerStats

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
