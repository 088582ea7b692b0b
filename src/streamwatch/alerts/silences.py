"""Silences, as Alertmanager has them: matchers on an alert's labels, muting its notifications for a while.

A silence does not stop an alert from being judged, stored and published: it
only keeps matching alerts out of notifications while it is active. Matchers
are ``name=value``, ``name!=value``, ``name=~regex`` and ``name!~regex``
(regexes match the whole value, as in Alertmanager; a missing label is the
empty string). An alert's labels are ``rule``, ``kind``, ``severity``,
``model``, ``model_version``, ``variant``, ``feature``, each segment name, and
the rule's own labels.

Silences travel as JSON on the silences topic, keyed by id: a later record of
the same id (an expiry) replaces the earlier one.

>>> s = new_silence(["model=credit", 'feature=~"inc.*"'], 3_600_000, now_ms=0, created_by="ana", comment="known")
>>> s.matches({"model": "credit", "feature": "income"}), s.matches({"model": "credit", "feature": "age"})
(True, False)
>>> s.active(1_000), s.expired_at(2_000).active(2_000)
(True, False)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Matcher", "Silence", "SilenceSet", "new_silence"]

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label."""

    name: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex``; the value may be quoted.

        >>> Matcher.parse('region!~"eu-.*"')
        Matcher(name='region', op='!~', value='eu-.*')
        >>> Matcher.parse("oops")
        Traceback (most recent call last):
        ...
        ValueError: 'oops': a matcher is label=value, label!=value, label=~regex or label!~regex
        """
        match = _MATCHER.match(text)
        if match is None:
            raise ValueError(f"{text!r}: a matcher is label=value, label!=value, label=~regex or label!~regex")
        name, op, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{text!r}: not a regular expression ({exc})") from None
        return cls(name, op, value)  # type: ignore[arg-type]  # op is what _MATCHER matched: one of the four

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` meet this condition; a missing label is the empty string, as in Alertmanager.

        >>> Matcher.parse("feature=~inc").matches({"feature": "income"})  # the regex must match the whole value
        False
        >>> Matcher.parse("feature!=income").matches({})
        True
        """
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        """The text form a silence stores: quoted only where parsing it back would otherwise change the value.

        >>> str(Matcher.parse("model=credit")), str(Matcher.parse('comment=" padded "'))
        ('model=credit', 'comment=" padded "')
        """
        value = self.value
        quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'"
        if value != value.strip() or quoted:
            value = f'"{value}"'  # parse() strips exactly one outer pair, so no escaping is needed
        return f"{self.name}{self.op}{value}"


class Silence(BaseModel):
    """A silence: matchers, a time range, who and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    silence_id: str = Field(min_length=1, max_length=64)
    matchers: list[str] = Field(min_length=1, description="Every matcher must match the alert's labels.")
    starts_at_ms: int = Field(ge=0)
    ends_at_ms: int = Field(ge=0)
    created_by: str = Field("", max_length=256)
    comment: str = Field("", max_length=4096)
    created_at_ms: int = Field(0, ge=0)

    @field_validator("matchers")
    @classmethod
    def _matchers_parse(cls, matchers: list[str]) -> list[str]:
        return [str(Matcher.parse(m)) for m in matchers]

    @model_validator(mode="after")
    def _ends_after_start(self) -> Silence:
        if self.ends_at_ms <= self.starts_at_ms:
            raise ValueError("ends_at_ms: must be after starts_at_ms")
        return self

    def active(self, now_ms: int) -> bool:
        """Whether ``now_ms`` is in ``[starts_at_ms, ends_at_ms)``."""
        return self.starts_at_ms <= now_ms < self.ends_at_ms

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher matches ``labels`` (whether or not the silence is active)."""
        return all(Matcher.parse(m).matches(labels) for m in self.matchers)

    def expired_at(self, now_ms: int) -> Silence:
        """This silence, ending at ``now_ms`` (at the latest), so it is not active from then on.

        One that has not started yet is moved to end just before: a range must
        not be empty, and it must not come alive later.

        >>> s = new_silence(["model=credit"], 60_000, now_ms=10_000)
        >>> e = s.expired_at(10_000)
        >>> (e.starts_at_ms, e.ends_at_ms), e.active(10_000)
        ((9999, 10000), False)
        """
        end = max(1, min(self.ends_at_ms, now_ms))
        return self.model_copy(update={"starts_at_ms": min(self.starts_at_ms, end - 1), "ends_at_ms": end})


def new_silence(
    matchers: Iterable[str],
    duration_ms: int,
    now_ms: int,
    created_by: str = "",
    comment: str = "",
    silence_id: str | None = None,
) -> Silence:
    """A silence from now for ``duration_ms``; ``ValueError`` names a bad matcher."""
    texts = [str(Matcher.parse(m)) for m in matchers]
    if not texts:
        raise ValueError("a silence needs at least one matcher")
    identity = "\n".join([*texts, str(now_ms), created_by, comment])
    return Silence(
        silence_id=silence_id or hashlib.sha256(identity.encode()).hexdigest()[:16],
        matchers=texts,
        starts_at_ms=now_ms,
        ends_at_ms=now_ms + duration_ms,
        created_by=created_by,
        comment=comment,
        created_at_ms=now_ms,
    )


class SilenceSet:
    """The silences a topic's records describe, the latest record of each id winning."""

    def __init__(self) -> None:
        self._by_id: dict[str, Silence] = {}

    def add(self, silence: Silence) -> None:
        """Take in a record of the topic: it replaces any earlier one of the same id (an expiry, say).

        >>> silences = SilenceSet()
        >>> s = new_silence(["model=credit"], 60_000, now_ms=0, silence_id="s1")
        >>> silences.add(s)
        >>> silences.add(s.expired_at(1_000))
        >>> [(x.silence_id, x.ends_at_ms) for x in silences.list(2_000, include_expired=True)]
        [('s1', 1000)]
        """
        self._by_id[silence.silence_id] = silence

    def silenced(self, labels: Mapping[str, str], now_ms: int) -> Silence | None:
        """The first active silence that matches ``labels``, if any."""
        for silence in self._by_id.values():
            if silence.active(now_ms) and silence.matches(labels):
                return silence
        return None

    def list(self, now_ms: int, include_expired: bool = False) -> list[Silence]:
        """Silences not yet over (or all), by end time."""
        kept = [s for s in self._by_id.values() if include_expired or s.ends_at_ms > now_ms]
        return sorted(kept, key=lambda s: (s.ends_at_ms, s.silence_id))
