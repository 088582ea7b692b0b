"""Hard limits of the event contract.

They exist so that one misbehaving producer cannot blow up a worker's memory
or a ClickHouse column: every later stage may rely on them. Changing a limit
changes the contract, so it is a schema change (see ``SCHEMA_VERSION``).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_EMBEDDINGS",
    "MAX_EMBEDDING_DIMS",
    "MAX_EVENT_BYTES",
    "MAX_FEATURES",
    "MAX_ID_LENGTH",
    "MAX_INTEGER",
    "MAX_KEY_LENGTH",
    "MAX_MAP_ENTRIES",
    "MAX_NAME_LENGTH",
    "MAX_STRING_LENGTH",
    "MAX_TIMESTAMP_MS",
    "MIN_INTEGER",
    "MIN_TIMESTAMP_MS",
    "SCHEMA_VERSION",
    "SCHEMA_VERSIONS",
]

#: Version of the wire contract. A field is never added, removed or
#: re-typed without bumping it, because workers reject unknown fields.
#: Version 2 added ``embeddings`` to prediction events. Producers write the
#: lowest version that describes an event (1 unless it carries embeddings), so
#: a producer upgraded before the workers keeps being read.
SCHEMA_VERSION: Final = 2

#: Versions workers read.
SCHEMA_VERSIONS: Final = (1, 2)

#: Largest serialised event, in bytes (UTF-8 JSON). Well under Kafka's 1 MiB
#: default ``message.max.bytes`` so a batch of events always fits.
MAX_EVENT_BYTES = 64 * 1024

#: Most embeddings in one prediction event, and most numbers in one. A 4,096-number
#: embedding takes ~45 KB at float32 precision (what the SDK sends), inside the event limit.
MAX_EMBEDDINGS = 8
MAX_EMBEDDING_DIMS = 4096

#: Most features in one event.
MAX_FEATURES = 1000

#: Most entries in ``segments`` or ``metadata``.
MAX_MAP_ENTRIES = 32

#: Longest feature, segment or metadata name.
MAX_KEY_LENGTH = 128

#: Longest string value (a categorical feature, a segment value, a label).
MAX_STRING_LENGTH = 1024

#: Longest ``event_id`` or ``request_id``.
MAX_ID_LENGTH = 128

#: Longest ``model`` or ``model_version``.
MAX_NAME_LENGTH = 128

#: Event times must fall in [1970-01-01, 9999-12-31], in epoch milliseconds.
MIN_TIMESTAMP_MS = 0
MAX_TIMESTAMP_MS = 253_402_300_799_999

#: Integers must fit in 64 bits, signed or unsigned, as JSON parsers and
#: ClickHouse columns expect.
MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**64 - 1
