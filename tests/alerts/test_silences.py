"""Silences: matchers as Alertmanager has them, active windows, the set folded from the topic, the wire form."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from streamwatch.alerts.silences import Matcher, Silence, SilenceSet, new_silence

LABELS = {
    "rule": "psi",
    "kind": "drift",
    "severity": "warning",
    "model": "credit",
    "model_version": "3",
    "variant": "production",
    "feature": "income",
    "region": "eu-west",
    "team": "risk",
}


def silence(*matchers: str, start: int = 1_000, end: int = 2_000, silence_id: str = "s1") -> Silence:
    return Silence(
        silence_id=silence_id,
        matchers=list(matchers),
        starts_at_ms=start,
        ends_at_ms=end,
        created_by="ana",
        comment="known incident",
        created_at_ms=start,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model=credit", Matcher("model", "=", "credit")),
        ("model != credit", Matcher("model", "!=", "credit")),
        ('feature=~"inc.*"', Matcher("feature", "=~", "inc.*")),
        ("feature=~'inc.*'", Matcher("feature", "=~", "inc.*")),
        ("region!~eu-.*", Matcher("region", "!~", "eu-.*")),
        ('comment=" two words "', Matcher("comment", "=", " two words ")),
        ("feature=", Matcher("feature", "=", "")),
        ("a==b", Matcher("a", "=", "=b")),  # the first operator splits; the rest is the value
    ],
)
def test_matchers_parse_with_or_without_quotes(text: str, expected: Matcher) -> None:
    assert Matcher.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("oops", "a matcher is label=value"),
        ("=credit", "a matcher is label=value"),
        ("1model=credit", "a matcher is label=value"),
        ("model credit", "a matcher is label=value"),
        ("", "a matcher is label=value"),
        ("feature=~inc(", "not a regular expression"),
        ('feature!~"[a-"', "not a regular expression"),
    ],
)
def test_a_bad_matcher_is_a_one_line_value_error_naming_it(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as raised:
        Matcher.parse(text)
    message = str(raised.value)
    assert message.startswith(f"{text!r}: ") and reason in message and "\n" not in message


def test_a_silence_refuses_a_bad_matcher_and_needs_at_least_one() -> None:
    with pytest.raises(ValueError, match=re.escape("'feature=~inc(': not a regular expression")):
        new_silence(["model=credit", "feature=~inc("], 60_000, 0, "ana", "")
    with pytest.raises(ValueError, match="at least one matcher"):
        new_silence([], 60_000, 0, "ana", "")
    with pytest.raises(ValidationError, match="oops"):
        silence("oops")
    with pytest.raises(ValidationError, match="matchers"):
        silence()


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("model=credit", True),
        ("model=fraud", False),
        ("model!=fraud", True),
        ("model!=credit", False),
        ("region=~eu-.*", True),
        ("region=~us-.*", False),
        ("region!~us-.*", True),
        ("region!~eu-.*", False),
    ],
)
def test_the_four_operators(text: str, matched: bool) -> None:
    assert Matcher.parse(text).matches(LABELS) is matched


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("feature=~inc", False),  # a prefix is not enough: the regex is anchored at both ends
        ("feature=~come", False),
        ("feature=~inc.*", True),
        ("feature=~income|age", True),
        ("feature=~in|income", True),  # anchored around the whole alternation, as Alertmanager's ^(?:…)$
        ("feature=~age|inc", False),
        ("feature!~inc", True),
        ("missing=~.*", True),  # a missing label is the empty string
        ("missing=~.+", False),
        ("missing=", True),
        ('missing=""', True),
        ("missing!=x", True),
    ],
)
def test_regexes_match_the_whole_value_and_a_missing_label_is_empty(text: str, matched: bool) -> None:
    assert Matcher.parse(text).matches(LABELS) is matched


def test_a_silence_matches_only_when_all_its_matchers_do() -> None:
    s = silence("model=credit", "feature=~inc.*", "team!=payments")
    assert s.matches(LABELS)
    assert not s.matches(LABELS | {"team": "payments"})
    assert not s.matches({k: v for k, v in LABELS.items() if k != "feature"})


def test_a_silence_is_active_from_its_start_up_to_but_not_at_its_end() -> None:
    s = silence("model=credit", start=1_000, end=2_000)
    assert [s.active(t) for t in (999, 1_000, 1_999, 2_000)] == [False, True, True, False]
    with pytest.raises(ValidationError, match="ends_at_ms: must be after starts_at_ms"):
        silence("model=credit", start=2_000, end=2_000)


def test_expiring_ends_a_silence_now_and_never_lengthens_it() -> None:
    s = silence("model=credit", start=1_000, end=2_000)
    assert (s.expired_at(1_500).ends_at_ms, s.expired_at(1_500).active(1_499), s.expired_at(1_500).active(1_500)) == (
        1_500,
        True,
        False,
    )
    assert s.expired_at(5_000) == s  # already over: unchanged
    # Expired at its very start, or before it: over at once, and never active from then on.
    for now in (1_000, 500):
        expired = s.expired_at(now)
        assert expired.ends_at_ms == now and not any(expired.active(t) for t in (now, 1_000, 1_500, 10_000))
    assert s.expired_at(1_500).silence_id == s.silence_id and s.ends_at_ms == 2_000  # a copy; the original stays


def test_new_silence_starts_now_and_has_a_stable_id_unless_given_one() -> None:
    s = new_silence(['feature=~"inc.*"', "model=credit"], 3_600_000, 10_000, "ana", "deploying")
    assert (s.starts_at_ms, s.ends_at_ms, s.created_at_ms, s.created_by, s.comment) == (
        10_000,
        3_610_000,
        10_000,
        "ana",
        "deploying",
    )
    assert s.matchers == ["feature=~inc.*", "model=credit"]  # the text form, quotes dropped where not needed
    again = new_silence(['feature=~"inc.*"', "model=credit"], 3_600_000, 10_000, "ana", "deploying")
    assert again.silence_id == s.silence_id
    assert new_silence(["model=credit"], 3_600_000, 10_001, "ana", "deploying").silence_id != s.silence_id
    assert new_silence(["model=credit"], 1, 0, "ana", "", silence_id="mine").silence_id == "mine"
    with pytest.raises(ValidationError, match="ends_at_ms"):
        new_silence(["model=credit"], 0, 10_000, "ana", "")


def test_the_set_keeps_the_latest_record_of_each_id() -> None:
    silences = SilenceSet()
    first = silence("model=credit", start=1_000, end=5_000, silence_id="a")
    silences.add(first)
    assert silences.silenced(LABELS, 2_000) == first
    silences.add(first.expired_at(3_000))  # `streamwatch silence expire` publishes the same id again
    assert silences.silenced(LABELS, 2_999) is not None and silences.silenced(LABELS, 3_000) is None
    assert [s.ends_at_ms for s in silences.list(4_000, include_expired=True)] == [3_000]


def test_the_set_returns_the_first_active_silence_that_matches() -> None:
    silences = SilenceSet()
    for s in [
        silence("model=fraud", silence_id="other-model", end=9_000),
        silence("model=credit", silence_id="pending", start=5_000, end=9_000),
        silence("model=credit", silence_id="over", start=0, end=1_500),
        silence("feature=~inc.*", silence_id="income", end=8_000),
        silence("model=credit", silence_id="credit", end=7_000),
    ]:
        silences.add(s)
    assert silences.silenced(LABELS, 1_000).silence_id == "over"  # type: ignore[union-attr]
    assert silences.silenced(LABELS, 1_500).silence_id == "income"  # type: ignore[union-attr]
    assert silences.silenced(LABELS | {"model": "churn"}, 1_500).silence_id == "income"  # type: ignore[union-attr]
    assert silences.silenced(LABELS | {"model": "churn", "feature": "age"}, 1_500) is None
    assert silences.silenced(LABELS, 9_000) is None


def test_listing_is_by_end_time_and_leaves_out_what_is_over() -> None:
    silences = SilenceSet()
    for name, start, end in [("late", 0, 9_000), ("over", 0, 1_000), ("pending", 5_000, 6_000), ("soon", 0, 3_000)]:
        silences.add(silence("model=credit", start=start, end=end, silence_id=name))
    assert [s.silence_id for s in silences.list(1_000)] == ["soon", "pending", "late"]
    assert [s.silence_id for s in silences.list(1_000, include_expired=True)] == ["over", "soon", "pending", "late"]


def test_json_round_trip_is_the_wire_form() -> None:
    s = new_silence(["model=credit", 'comment=" padded "', "region!~eu-.*"], 60_000, 10_000, "ana", "why")
    raw = s.model_dump_json()
    assert Silence.model_validate_json(raw) == s
    assert Silence.model_validate_json(s.expired_at(20_000).model_dump_json()) == s.expired_at(20_000)
    assert Silence.model_validate_json(raw).matches({"model": "credit", "comment": " padded ", "region": "us"})
    with pytest.raises(ValidationError, match="extra"):
        Silence.model_validate_json(raw[:-1] + ',"unexpected":1}')
    with pytest.raises(ValidationError, match="frozen"):
        s.ends_at_ms = 0  # type: ignore[misc]


names = st.sampled_from(["model", "feature", "region", "missing"])
values = st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=12)
regexes = st.one_of(
    st.sampled_from(["", ".*", ".+", "inc.*", "a|b", "[a-c]+", "x?", "(eu|us)-.*", r"\d+", "in|income"]),
    values.map(re.escape),
)
label_sets = st.dictionaries(names, st.one_of(values, st.sampled_from(["income", "a", "b", "abc", "eu-1", "12"])))


@given(names, values, label_sets)
def test_not_equal_is_the_negation_of_equal(name: str, value: str, labels: dict[str, str]) -> None:
    assert Matcher(name, "!=", value).matches(labels) is not Matcher(name, "=", value).matches(labels)


@given(names, regexes, label_sets)
def test_not_regex_is_the_negation_of_regex(name: str, pattern: str, labels: dict[str, str]) -> None:
    assert Matcher(name, "!~", pattern).matches(labels) is not Matcher(name, "=~", pattern).matches(labels)


@given(names, values, label_sets, st.booleans())
def test_an_escaped_regex_matches_exactly_what_equality_does(
    name: str, value: str, labels: dict[str, str], present: bool
) -> None:
    if present:
        labels[name] = value
    assert Matcher(name, "=~", re.escape(value)).matches(labels) is Matcher(name, "=", value).matches(labels)


@given(names, st.sampled_from(["=", "!=", "=~", "!~"]), values)
def test_the_stored_text_form_parses_back_to_the_same_matcher(name: str, op: str, value: str) -> None:
    if op in ("=~", "!~"):
        value = re.escape(value)
    matcher = Matcher(name, op, value)  # type: ignore[arg-type]
    assert Matcher.parse(str(matcher)) == matcher
