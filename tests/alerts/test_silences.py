"""Silences: matchers as Alertmanager has them, active windows, the set folded from the topic, the wire form."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from streamwatch.alerts.silences import Matcher, Silence, SilenceSet, new_silence

# Python's re warns that [[ may mean a nested set one day; generated regexes have it, and it stays literal here.
pytestmark = pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")

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
values = st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]), max_size=12)
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


OPS = ("=", "!=", "=~", "!~")
label_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
# Any text (quotes, backslashes, spaces, newlines, controls, the empty string) but lone surrogates: not UTF-8.
any_values = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)


def _runs(pattern: str) -> bool:
    try:
        Matcher("x", "=~", pattern).matches({})
    except ValueError:
        return False
    return True


# Regexes as users write them, escaped text, and text from regex and quoting characters that happens to be one.
any_regexes = st.one_of(
    regexes,
    any_values.map(re.escape),
    st.text(alphabet="ab.*+?|()[]{}^$-\\\"'~=!, \n\tn", max_size=16).filter(_runs),
)


@st.composite
def matchers(draw: st.DrawFn) -> Matcher:
    op = draw(st.sampled_from(OPS))
    value = draw(any_regexes if op in ("=~", "!~") else any_values)
    return Matcher(draw(label_names), op, value)


@given(matchers())
@example(Matcher("model", "=", "~"))  # was stored as `model=~`, which read back as the regex '' (found by hypothesis)
@example(Matcher("model", "=", "~credit"))
@example(Matcher("model", "!=", "=~x"))
@example(Matcher("q", "=", ""))
@example(Matcher("q", "=", " "))
@example(Matcher("q", "=", '"'))
@example(Matcher("q", "=", '"x"'))  # older text wrote this `q=""x""`
@example(Matcher("q", "=", "'x'"))
@example(Matcher("q", "=", "\\"))
@example(Matcher("q", "=", 'a\\"b'))
@example(Matcher("q", "!=", "line\nnext\\n"))
@example(Matcher("q", "=", "a,b=c!d~e{f}"))
@example(Matcher("q", "=", "\x00\r\t\u2028\xa0"))
@example(Matcher("f", "=~", r"\d+\\n"))
@example(Matcher("f", "!~", '"(a|b)"'))
def test_any_matcher_survives_its_stored_text_form(matcher: Matcher) -> None:
    text = str(matcher)
    assert Matcher.parse(text) == matcher
    assert "\n" not in text  # one line, as the CLI prints it
    assert Matcher.parse(f"  {text}\t") == matcher  # whitespace around a matcher is not part of it


@given(st.lists(matchers(), min_size=1, max_size=4), any_values, st.integers(0, 2**40), st.integers(1, 2**20))
@example([Matcher("model", "=", "~")], "", 0, 1)
@example([Matcher("model", "=", "~"), Matcher("team", "!=", 'a "quoted"\n\\ value')], "why\n", 5, 10)
def test_a_silence_survives_its_json_wire_form(
    matcher_list: list[Matcher], comment: str, start: int, duration: int
) -> None:
    s = new_silence([str(m) for m in matcher_list], duration, start, "ana", comment)
    back = Silence.model_validate_json(s.model_dump_json())
    assert back == s
    assert [Matcher.parse(m) for m in back.matchers] == matcher_list
    assert Silence.model_validate_json(back.model_dump_json()) == back  # reading it again changes nothing


def test_a_value_that_looked_like_a_regex_operator_stays_an_equality_after_a_restart() -> None:
    s = new_silence([str(Matcher("model", "=", "~"))], 60_000, 0, "ana", "")
    assert s.matchers == ['model="~"']
    restarted = Silence.model_validate_json(s.model_dump_json())
    assert restarted.matches({"model": "~"}) and not restarted.matches({"model": "credit"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Unquoted: literal, trimmed, no escapes (as streamwatch always read it).
        ("model=credit", Matcher("model", "=", "credit")),
        ("feature=~inc.*", Matcher("feature", "=~", "inc.*")),
        (r"version=~\d+\.\d+", Matcher("version", "=~", r"\d+\.\d+")),
        (r"path=a\nb", Matcher("path", "=", r"a\nb")),
        ("model=~", Matcher("model", "=~", "")),
        # Double-quoted: Alertmanager's escapes; any other backslash is kept.
        (r'q="a\"b"', Matcher("q", "=", 'a"b')),
        (r'q="a\\b"', Matcher("q", "=", "a\\b")),
        (r'q="one\ntwo"', Matcher("q", "=", "one\ntwo")),
        (r'version=~"\d+"', Matcher("version", "=~", r"\d+")),
        ('model="~"', Matcher("model", "=", "~")),
        ('q=""', Matcher("q", "=", "")),
        # Not a quoted string: read as older streamwatch wrote and read it.
        ('q=""x""', Matcher("q", "=", '"x"')),
        ('model="credit', Matcher("model", "=", '"credit')),
        ('q="', Matcher("q", "=", '"')),
        ("q='a b'", Matcher("q", "=", "a b")),
    ],
)
def test_the_text_form_rule(text: str, expected: Matcher) -> None:
    assert Matcher.parse(text) == expected


@pytest.mark.parametrize(
    ("matcher", "text"),
    [
        (Matcher("model", "=", "credit"), "model=credit"),
        (Matcher("feature", "=~", r"inc.*|\d+"), r"feature=~inc.*|\d+"),
        (Matcher("model", "=", "~"), 'model="~"'),
        (Matcher("q", "=", ""), 'q=""'),
        (Matcher("q", "!=", 'say "hi"\n'), r'q!="say \"hi\"\n"'),
        (Matcher("q", "=", "a\\\\b"), r'q="a\\\\b"'),  # unquoted, Alertmanager would read one backslash
    ],
)
def test_the_text_form_is_quoted_only_where_needed(matcher: Matcher, text: str) -> None:
    assert str(matcher) == text


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("(a+)+$", "a" * 30 + "b"),
        ("(a|aa)*", "a" * 40 + "b"),
        ("(a*)*b", "a" * 10_000),
        ("(.*a){12}", "a" * 5_000 + "b"),
        ("(x+x+)+y", "x" * 5_000),
    ],
)
def test_a_catastrophic_pattern_runs_in_linear_time(pattern: str, value: str) -> None:
    matcher = Matcher.parse(f"model=~{pattern}")
    started = time.perf_counter()
    assert not matcher.matches({"model": value})
    assert Matcher.parse(f"model!~{pattern}").matches({"model": value})
    assert time.perf_counter() - started < 0.5  # Python's re takes hours on the first


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)a", "(?!b)a", "(?<=a)b", "a++", "(?>a)"])
def test_a_pattern_needing_backtracking_is_refused_in_one_line(pattern: str) -> None:
    with pytest.raises(ValueError) as raised:
        Matcher.parse(f"model=~{pattern}")
    message = str(raised.value)
    assert message.startswith(f"{'model=~' + pattern!r}: not a regular expression silences can run (")
    assert "linear-time" in message and "\n" not in message


@given(label_names, any_values, label_sets)
@example("model", "~", {"model": "credit"})
def test_a_matcher_matches_the_same_after_its_text_form_is_read_back(
    name: str, value: str, labels: dict[str, str]
) -> None:
    for op in OPS:
        matcher = Matcher(name, op, value if op in ("=", "!=") else re.escape(value))
        assert Matcher.parse(str(matcher)).matches(labels) is matcher.matches(labels)


regex_atoms = st.sampled_from(
    [
        *["a", "b", "é", "٣", "_", " ", ".", "*", "+", "?", "|", "(", ")", "(?:", "[", "[^", "]", "^", "$", "-", ":"],
        *["{,2}", "{1,}", "{2}", r"\d", r"\D", r"\w", r"\W", r"\s", r"\S", r"\Z", r"\ ", "\\é", r"\.", r"\u00e9"],
        *[r"\n", "[[:alpha:]]", "(?i)", "(?s)", r"[\b]", r"\b", r"\N{DIGIT TWO}"],
    ]
)
regex_subjects = st.text(alphabet="abAB é٣2²_ \n\t\xa0\u2028\x1c\x08.:[]-", max_size=8)


@given(st.lists(regex_atoms, max_size=8).map("".join), regex_subjects)
@example(r"\d+", "٣2")
@example(r"[\w-]+", "modèle-²")
@example(r"\S+\s", "a\xa0")
@example("x{,2}", "x")
@example("[[:alpha:]]", ":]")
@example("é|\\é", "é")
def test_regexes_mean_what_python_re_says(pattern: str, value: str) -> None:
    try:
        matcher = Matcher("x", "=~", pattern)
        found = matcher.matches({"x": value})
    except ValueError:
        return  # not Python syntax, or refused as needing backtracking: parse() says so
    if r"\b" in pattern.replace(r"[\b]", ""):
        return  # the one difference left: RE2's word boundary is ASCII
    assert found is (re.fullmatch(pattern, value) is not None)


def test_a_lone_surrogate_is_refused_in_a_matcher_and_matched_as_any_other_character_in_a_label() -> None:
    with pytest.raises(ValueError, match=re.escape("not valid UTF-8 (a lone surrogate)")):
        Matcher.parse("model=\udcff")  # what argv holds for the byte 0xff
    labels = {"model": "a\ud800b"}  # json.loads('"a\\ud800b"') is this
    assert [Matcher.parse(t).matches(labels) for t in ("model=~a.b", "model=~a[^x]b", "model!~a.b", "model=~ab")] == [
        True,
        True,
        False,
        False,
    ]
