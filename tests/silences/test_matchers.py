"""Silence matchers, pure: parsing with errors that name the field, exact and regex matching, and
the regex shapes refused because they can backtrack for ever."""

from __future__ import annotations

import pytest

from aiops.silences import InvalidSilence
from aiops.silences import matchers as m

LABELS = {"service": "shop", "endpoint": "payment", "kind": "latency", "severity": "high"}


def field_of(raw) -> str:
    with pytest.raises(InvalidSilence) as err:
        m.parse(raw)
    return err.value.field


def test_exact_and_regex_matchers_match_the_whole_label():
    assert m.Matcher("service", "shop").matches(LABELS)
    assert not m.Matcher("service", "sho").matches(LABELS)
    assert m.Matcher("endpoint", "pay.*", regex=True).matches(LABELS)
    assert not m.Matcher("endpoint", "pay", regex=True).matches(LABELS)  # anchored, as Alertmanager's
    assert m.Matcher("endpoint", "checkout|payment", regex=True).matches(LABELS)
    assert m.Matcher("severity", "high|critical", regex=True).matches(LABELS)
    # A whole-service incident has no endpoint: an empty label, matched by "" or ".*".
    whole = {**LABELS, "endpoint": ""}
    assert m.Matcher("endpoint", "").matches(whole) and m.Matcher("endpoint", ".*", regex=True).matches(whole)


def test_a_silence_matches_when_all_its_matchers_do():
    both = m.parse([{"name": "service", "value": "shop"}, {"name": "kind", "value": "latency"}])
    assert m.matches_all(both, LABELS)
    assert not m.matches_all(both, {**LABELS, "kind": "errors"})
    assert not m.matches_all([], LABELS)  # no matchers: matches nothing


def test_parse_and_store():
    [one] = m.parse([{"name": "endpoint", "value": "pay.*", "regex": True}])
    assert one == m.Matcher("endpoint", "pay.*", True)
    assert m.parse([{"name": "endpoint", "value": "pay"}]) == [m.Matcher("endpoint", "pay", False)]
    assert one.to_dict() == {"name": "endpoint", "value": "pay.*", "regex": True}
    assert m.from_stored([one.to_dict()]) == [one]


@pytest.mark.parametrize(("raw", "field"), [
    (None, "matchers"),
    ([], "matchers"),
    ({"name": "service"}, "matchers"),
    ([{"name": "service", "value": "shop"}] * (m.MAX_MATCHERS + 1), "matchers"),
    (["service=shop"], "matchers[0]"),
    ([{"name": "host", "value": "a"}], "matchers[0].name"),
    ([{"name": "service", "value": "a"}, {"name": "service"}], "matchers[1].value"),
    ([{"name": "service", "value": 3}], "matchers[0].value"),
    ([{"name": "service", "value": "a\x00b"}], "matchers[0].value"),
    ([{"name": "service", "value": "x" * (m.MAX_VALUE + 1)}], "matchers[0].value"),
    ([{"name": "service", "value": "a", "regex": "yes"}], "matchers[0].regex"),
    ([{"name": "service", "value": "a", "isRegex": True}], "matchers[0].isRegex"),
    ([{"name": "service", "value": "a", "colour": "red"}], "matchers[0].colour"),
    ([{"name": "severity", "value": "urgent"}], "matchers[0].value"),  # never matches: refused
    ([{"name": "kind", "value": "slowness"}], "matchers[0].value"),
])
def test_bad_matchers_name_their_field(raw, field):
    assert field_of(raw) == field


@pytest.mark.parametrize("pattern", ["(", "a{2,1}", "[z-a]", "(?P<x>a)(?P=y)", "*a"])
def test_an_invalid_regex_is_refused_with_the_reason(pattern):
    with pytest.raises(InvalidSilence, match="not a valid regex") as err:
        m.parse([{"name": "endpoint", "value": pattern, "regex": True}])
    assert err.value.field == "matchers[0].value"


@pytest.mark.parametrize("pattern", [
    "(a+)+b", "(a*)*", "(a?)+", "(x+x+)+y", "((ab)*c)*", "(a|aa)+", "(ab|a)*c", "(a)\\1", ".*.*.*.*x",
    "(?:a{1,3})+",
])
def test_regexes_that_can_backtrack_for_ever_are_refused(pattern):
    with pytest.raises(InvalidSilence, match="regex refused") as err:
        m.check(pattern, "matchers[0].value")
    assert err.value.field == "matchers[0].value"


@pytest.mark.parametrize("pattern", ["pay.*", "checkout|payment", "(checkout|payment)", "api/v[0-9]+/.*",
                                     "[a-z]+-[0-9]{1,4}", ".*a.*b.*", "(ab){1,3}", "a{2,}", "(a|b)*c"])
def test_ordinary_regexes_are_taken(pattern):
    assert m.check(pattern, "value").pattern == pattern


def test_regex_length_is_bounded():
    m.check("a" * m.MAX_REGEX, "v")
    with pytest.raises(InvalidSilence, match=f"at most {m.MAX_REGEX}"):
        m.check("a" * (m.MAX_REGEX + 1), "v")


def test_labels_of_an_incident_json():
    incident = {"severity": "critical", "root_cause": {"service": "shop", "endpoint": None},
                "report": {"kind": "errors"}}
    assert m.labels_of(incident) == {"service": "shop", "endpoint": "", "kind": "errors",
                                     "severity": "critical"}
