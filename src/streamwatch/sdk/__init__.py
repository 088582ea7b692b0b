"""The SDK: what an inference service imports to publish prediction, feature and label events.

:class:`~streamwatch.sdk.producer.Producer` encodes without pydantic on the hot
path and never blocks or raises into the service;
:mod:`~streamwatch.sdk.ratelimit` keeps its warnings to a trickle.

May import: :mod:`streamwatch.adapters.kafka`, :mod:`streamwatch.config`, :mod:`streamwatch.contract`,
:mod:`streamwatch.clock`, :mod:`streamwatch.errors`. Importing it loads neither numpy nor librdkafka.
"""
