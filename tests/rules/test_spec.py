"""A rule body checked field by field (pure): presets, defaults, and a bad query named by position."""

from __future__ import annotations

import pytest

from aiops.rules.spec import DEFAULT_WINDOW_S, PRESETS, check
from aiops.slos.spec import SpecError

BODY = {"name": "slow checkout", "query": '{ name = "checkout" && duration > 500ms }', "window_s": 120,
        "aggregation": "count", "threshold": 3, "webhook_url": "https://hooks.example.com/T0/B0/secret"}


def test_a_whole_body():
    spec = check(BODY)
    assert spec.as_dict() == {**BODY, "kind": "query", "window_s": 120.0, "threshold": 3.0,
                              "severity": "high"}


@pytest.mark.parametrize("kind", list(PRESETS))
def test_a_built_in_kind_fills_in_what_is_left_out(kind):
    spec = check({"name": "x", "kind": kind})
    preset = PRESETS[kind]
    assert (spec.query, spec.aggregation, spec.threshold) == (
        preset.query, preset.aggregation, preset.threshold)
    assert spec.window_s == DEFAULT_WINDOW_S and spec.webhook_url is None


def test_a_query_rule_alerts_on_any_match_unless_told_otherwise():
    spec = check({"name": "x", "query": '{ name = "checkout" }'})
    assert (spec.kind, spec.aggregation, spec.threshold) == ("query", "count", 0.0)
    for field in ("aggregation", "threshold"):  # left out is a default; null is wrong
        with pytest.raises(SpecError, match=field):
            check({"name": "x", "query": "{}", field: None})


def test_a_built_in_kind_takes_its_own_query_and_threshold():
    spec = check({"name": "x", "kind": "high_latency", "query": "{ duration > 250ms }", "threshold": 2})
    assert (spec.query, spec.aggregation, spec.threshold) == ("{ duration > 250ms }", "count", 2.0)


def test_a_bad_query_names_its_line_and_column():
    with pytest.raises(SpecError) as caught:
        check({**BODY, "query": "{ duration > }"})
    assert caught.value.field == "query"
    assert "line 1, column 14" in str(caught.value)
    with pytest.raises(SpecError, match=r"^query: .*line 2, column"):
        check({**BODY, "query": '{ name = "a" }\n&& { nosuchthing ~~ 1 }'})


@pytest.mark.parametrize("change, field", [
    ({"colour": "red"}, "colour"),
    ({"name": ""}, "name"),
    ({"name": "a\x00b"}, "name"),
    ({"name": "x" * 256}, "name"),
    ({"query": None}, "query"),
    ({"query": "   "}, "query"),
    ({"query": "{ status = error }\x00"}, "query"),
    ({"kind": "everything"}, "kind"),
    ({"aggregation": "p99"}, "aggregation"),
    ({"aggregation": None}, "aggregation"),
    ({"window_s": 0}, "window_s"),
    ({"window_s": 86_401}, "window_s"),
    ({"window_s": "60"}, "window_s"),
    ({"threshold": None}, "threshold"),
    ({"threshold": -1}, "threshold"),
    ({"threshold": float("nan")}, "threshold"),
    ({"threshold": True}, "threshold"),
    ({"aggregation": "rate", "threshold": 1}, "threshold"),
    ({"severity": "urgent"}, "severity"),
    ({"webhook_url": "ftp://example.com/x"}, "webhook_url"),
    ({"webhook_url": "file:///etc/passwd"}, "webhook_url"),
    ({"webhook_url": "https://"}, "webhook_url"),
    ({"webhook_url": "https://example.com:99999/x"}, "webhook_url"),
    ({"webhook_url": "http://[::1/x"}, "webhook_url"),
    ({"webhook_url": 5}, "webhook_url"),
])
def test_a_wrong_field_is_named(change, field):
    with pytest.raises(SpecError) as caught:
        check({**BODY, **change})
    assert caught.value.field == field


def test_not_an_object():
    with pytest.raises(SpecError) as caught:
        check(["name"])
    assert caught.value.field == "body"


def test_a_query_may_span_lines():
    assert check({**BODY, "query": '{ name = "a" }\n&& { status = error }'}).query.count("\n") == 1
