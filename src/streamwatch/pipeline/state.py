"""Checkpoints and partials as bytes, without copying reference profiles into them.

Window aggregates point at their reference profile, which is large and the
same for every window of a model version. :func:`dumps` writes each profile
as its ``(model, version, content hash)`` only, and :func:`loads` points the
aggregates back at the profile the worker loaded. A checkpoint made against a
profile that is no longer configured cannot be restored, and says so.

The bytes are pickles: they are read only from streamwatch's own tables,
written by streamwatch workers. Whoever can write those tables can already
change every result.

>>> from streamwatch.profiles.model import Lineage, build_profile
>>> import numpy as np
>>> lineage = Lineage(model="m", model_version="1", data_uri="x", rows=3, content_sha256="0" * 64,
...                   created_at="2026-01-01T00:00:00Z", streamwatch_version="0")
>>> profile = build_profile({"f": np.array([1.0, 2.0, 3.0])}, lineage=lineage)
>>> blob = dumps({"profile": profile, "n": 1})
>>> loads(blob, {("m", "1"): profile})["profile"] is profile
True
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from streamwatch.errors import StreamwatchError
from streamwatch.profiles.model import ReferenceProfile

__all__ = ["dumps", "loads"]


# The profiles a running loads() resolves references against; set only for its duration.
_LOADING: ContextVar[Mapping[tuple[str, str], ReferenceProfile]] = ContextVar("streamwatch_state_profiles")


def _profile(model: str, version: str, sha: str) -> ReferenceProfile:
    profile = _LOADING.get({}).get((model, version))
    if profile is None or profile.lineage.content_sha256 != sha:
        raise StreamwatchError(
            f"checkpoint refers to reference profile {model} {version} ({sha[:12]}), which is not loaded"
        )
    return profile


class _Pickler(pickle.Pickler):
    # reducer_override, unlike persistent_id, is skipped for plain ints, floats, strings, tuples,
    # lists and dicts: the bulk of a checkpoint (the label join's pending predictions).
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, ReferenceProfile):
            lineage = obj.lineage
            return _profile, (lineage.model, lineage.model_version, lineage.content_sha256)
        return NotImplemented


def dumps(state: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    return buffer.getvalue()


def loads(data: bytes, profiles: Mapping[tuple[str, str], ReferenceProfile]) -> Any:
    token = _LOADING.set(profiles)
    try:
        return pickle.loads(data)
    finally:
        _LOADING.reset(token)
