r"""Silences, as Alertmanager has them: matchers on an alert's labels, muting its notifications for a while.

A silence does not stop an alert from being judged, stored and published: it
only keeps matching alerts out of notifications while it is active. Matchers
are ``name=value``, ``name!=value``, ``name=~regex`` and ``name!~regex``
(regexes match the whole value, as in Alertmanager; a missing label is the
empty string). An alert's labels are ``rule``, ``kind``, ``severity``,
``model``, ``model_version``, ``variant``, ``feature``, each segment name, and
the rule's own labels.

Silences travel as JSON on the silences topic, keyed by id: a later record of
the same id (an expiry) replaces the earlier one.

The text form of a matcher (what ``streamwatch silence add`` takes and what a
stored silence holds) is Alertmanager's, read so that older text still means
what it meant:

* ``name op "value"``: a double-quoted value is unescaped as Alertmanager does
  (``\"`` is ``"``, ``\\`` is ``\``, ``\n`` is a newline; any other backslash is
  kept as it is, so ``"\d+"`` is the regex ``\d+``). Text that starts with
  ``"`` but is not such a quoted string (``model="credit``, an inner unescaped
  ``"``) is read as older streamwatch did: one outer pair of quotes dropped if
  there is one, the rest taken literally.
* ``name op 'value'``: one outer pair of single quotes is dropped; nothing is
  unescaped (as before).
* ``name op value``, unquoted: the value is everything after the operator, with
  whitespace at either end dropped, taken literally: no escapes (as before;
  Alertmanager would unescape here too). The first operator wins: ``a==b`` is
  ``a`` equal to ``=b``, and ``a=~b`` is always the regex ``b``.

A matcher is written unquoted only when that reads back the same both here and
in Alertmanager (a non-empty value of printable, non-space characters, not
starting with a quote, ``~``, ``=`` or ``!``, with no ``"``, ``\\`` or ``\n`` in
it); otherwise double-quoted and escaped. So ``parse(str(m)) == m`` for any
matcher whose name is a label name.

Regexes run on values the producer controls, so they run on RE2 (google-re2):
matching takes time linear in the value's length, whatever the pattern. A
pattern is Python ``re`` syntax with Python's meaning (``\d``, ``\w``, ``\s`` are
Unicode, ``{,n}`` is ``{0,n}``, ``[[:a]]`` is no POSIX class), matched against
the whole value; what would need backtracking (backreferences, lookarounds,
possessive quantifiers, atomic groups) and ``\W`` or ``\S`` inside ``[...]`` are
refused when the matcher is parsed, in one line. One difference is left:
``\b`` and ``\B`` are ASCII word boundaries, as in Alertmanager's (Go's) regexes.

>>> s = new_silence(["model=credit", 'feature=~"inc.*"'], 3_600_000, now_ms=0, created_by="ana", comment="known")
>>> s.matches({"model": "credit", "feature": "income"}), s.matches({"model": "credit", "feature": "age"})
(True, False)
>>> s.active(1_000), s.expired_at(2_000).active(2_000)
(True, False)
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import re2  # type: ignore[import-untyped]  # google-re2 ships no type hints
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Matcher", "Silence", "SilenceSet", "new_silence"]

_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is a ValueError naming it, not a line on stderr


# Python's meaning of \d \D \w \W \s \S on text, in RE2's Unicode classes (RE2's own are ASCII):
# the form outside a [...] class and the form inside one (None: not expressible there).
_UNICODE_CLASSES: dict[str, tuple[str, str | None]] = {
    "d": (r"\p{Nd}", r"\p{Nd}"),
    "D": (r"\P{Nd}", r"\P{Nd}"),
    "w": (r"[\p{L}\p{N}_]", r"\p{L}\p{N}_"),
    "W": (r"[^\p{L}\p{N}_]", None),
    "s": (r"[\t-\r\x1c-\x1f\x85\p{Z}]", r"\t-\r\x1c-\x1f\x85\p{Z}"),
    "S": (r"[^\t-\r\x1c-\x1f\x85\p{Z}]", None),
}
_SURROGATE = re.compile("[\ud800-\udfff]")
_OPEN_REPEAT = re.compile(r"\{,(\d*)\}")  # Python's {,n} is {0,n}; RE2 reads it as literal text


def _to_re2(pattern: str) -> str:
    """A pattern Python's ``re`` compiles, written so that RE2 gives it Python's meaning."""
    out: list[str] = []
    i, n = 0, len(pattern)
    first = -1  # in a [...] class: the index of its first member (a "]" there is literal); else -1
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            i += 2
            if e in _UNICODE_CLASSES:
                form = _UNICODE_CLASSES[e][first >= 0]
                if form is None:
                    raise ValueError(f"\\{e} inside [...] is not supported")
                out.append(form)
            elif e == "Z":
                out.append(r"\z")
            elif e == "b" and first >= 0:
                out.append(r"\x{8}")  # a backspace in a Python class
            elif e in "uU":
                width = 4 if e == "u" else 8
                out.append(f"\\x{{{pattern[i : i + width]}}}")
                i += width
            elif e == "N":
                end = pattern.index("}", i)
                out.append(f"\\x{{{ord(unicodedata.lookup(pattern[i + 1 : end])):x}}}")
                i = end + 1
            elif e.isascii() and e.isalnum():
                out.append(c + e)
            else:
                out.append(f"\\x{{{ord(e):x}}}")  # an escaped symbol, space or non-ASCII character: itself
            continue
        i += 1
        if first >= 0:
            if c == "]" and i - 1 > first:
                first = -1
            elif c == "[":
                c = r"\["  # literal in a Python class; RE2 would read [:alpha:] as a POSIX class
        elif c == "[":
            first = i + 1 if pattern.startswith("^", i) else i
        elif c == "{" and (repeat := _OPEN_REPEAT.match(pattern, i - 1)):
            c = f"{{0,{repeat.group(1)}}}"
            i = repeat.end()
        out.append(c)
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> Any:
    """``pattern`` compiled by RE2 (linear-time matching); ``ValueError`` says why it is refused."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a regular expression ({exc})") from None
    try:
        return re2.compile(_to_re2(pattern), _RE2_OPTIONS)
    except ValueError as exc:
        raise ValueError(f"not a regular expression silences can run ({exc})") from None
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        reason = " ".join(reason.split())
        raise ValueError(
            f"not a regular expression silences can run ({reason}; no backreferences, lookarounds "
            "or possessive quantifiers: matching must stay linear-time)"
        ) from None


def _unquote(raw: str) -> str | None:
    """The value of an Alertmanager double-quoted string (``raw`` starts with ``"``), or ``None`` if it is not one."""
    out: list[str] = []
    chars = iter(enumerate(raw[1:], start=1))
    for i, c in chars:
        if c == "\\":
            if i == len(raw) - 1:
                return None  # the closing quote is missing
            _, after = next(chars)
            out.append("\n" if after == "n" else after if after in '"\\' else "\\" + after)
        elif c == '"':
            return "".join(out) if i == len(raw) - 1 else None
        else:
            out.append(c)
    return None


def _plain(value: str) -> bool:
    """Whether ``value`` reads back the same unquoted, here and in Alertmanager."""
    return (
        value != ""
        and value[0] not in "\"'~=!"
        and all(c.isprintable() and not c.isspace() and c != '"' for c in value)
        and "\\\\" not in value
        and "\\n" not in value
    )


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
        name, op = match.groups()
        if _SURROGATE.search(text):
            raise ValueError(f"{text!r}: not valid UTF-8 (a lone surrogate)")
        value = text[match.end() :].strip()
        if value.startswith('"') and (unquoted := _unquote(value)) is not None:
            value = unquoted
        elif len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]  # older text: one outer pair of quotes, nothing escaped
        if op in ("=~", "!~"):
            try:
                _regex(value)
            except ValueError as exc:
                raise ValueError(f"{text!r}: {exc}") from None
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
        regex = _regex(self.value)
        try:
            found = regex.fullmatch(actual) is not None
        except UnicodeEncodeError:  # a lone surrogate (JSON may carry "\ud800"): RE2 reads UTF-8 only
            found = regex.fullmatch(_SURROGATE.sub("\ufffd", actual)) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        r"""The text form a silence stores: Alertmanager's, quoted wherever the value is not plain.

        >>> str(Matcher.parse("model=credit")), str(Matcher.parse('comment=" padded "'))
        ('model=credit', 'comment=" padded "')
        >>> print(Matcher("model", "=", "~"), Matcher("q", "!=", 'say "hi"\n'), Matcher("f", "=~", r"\d+"))
        model="~" q!="say \"hi\"\n" f=~\d+
        """
        value = self.value
        if not _plain(value):
            escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            value = f'"{escaped}"'
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
