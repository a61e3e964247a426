"""What changed, the pure ranking: values seen only among the bad spans first, then by the gap between
the shares; low support, under-represented values and id-like keys left out."""

from __future__ import annotations

from types import SimpleNamespace

from aiops.detection.changes import MAX_FACTORS, compare, slow_above, span_factors, text


def obs(bad: bool, **attrs) -> tuple[bool, list]:
    return bad, [("attribute", k, v) for k, v in attrs.items()]


def test_a_value_seen_only_among_the_bad_comes_first_then_the_biggest_gap():
    rows = (
        [obs(True, pod="a", zone="z1") for _ in range(8)]
        + [obs(True, pod="b", zone="z2") for _ in range(2)]
        + [obs(False, pod="b", zone="z1") for _ in range(60)]
        + [obs(False, pod="c", zone="z2") for _ in range(30)]
    )
    found = compare(rows)
    assert (found.bad, found.good) == (10, 90)
    top = found.factors[0]
    assert (top.field, top.value, top.only_bad, top.bad_share, top.good_share) == ("pod", "a", True, 0.8, 0.0)
    # zone z1: 80% of the bad, 67% of the good (over-represented); pod b and zone z2 are under-represented
    assert [(f.field, f.value) for f in found.factors] == [("pod", "a"), ("zone", "z1")]


def test_a_value_on_few_of_the_bad_spans_only_does_not_lead():
    """The 500s of the usual few errors are only among the bad (an error is bad by definition), yet
    the pod that most slow spans ran on explains more."""
    rows = [obs(True, pod="a") for _ in range(14)] + [
        (True, [("span", "status_code", "500"), ("attribute", "pod", "b")]) for _ in range(3)
    ]
    rows += [obs(False, pod="a") for _ in range(20)] + [obs(False, pod="b") for _ in range(60)]
    found = compare(rows)
    assert [(f.field, f.value, f.only_bad) for f in found.factors] == [
        ("pod", "a", False),
        ("status_code", "500", True),
    ]


def test_low_support_and_id_like_keys_are_left_out():
    rows = [obs(True, request_id=f"r{i}", pod="a") for i in range(10)]
    rows += [obs(False, request_id=f"g{i}", pod="b") for i in range(90)]
    rows.append(obs(True, rare="x"))  # one bad span: no support
    found = compare(rows)
    assert [(f.field, f.value) for f in found.factors] == [("pod", "a")]


def test_the_list_is_capped_and_an_empty_sample_has_nothing():
    rows = [obs(True, **{f"k{i}": "v" for i in range(40)}) for _ in range(5)] + [obs(False) for _ in range(5)]
    assert len(compare(rows).factors) == MAX_FACTORS
    empty = compare([])
    assert (empty.bad, empty.good, empty.factors, empty.where) == (0, 0, [], [])


def test_where_every_bad_span_ran_is_named_even_when_every_span_ran_there():
    rows = [obs(True, **{"k8s.pod.name": "p1", "host.name": "h1", "tier": "x"}) for _ in range(3)]
    rows += [obs(False, **{"k8s.pod.name": "p1", "host.name": "h2"}) for _ in range(7)]
    found = compare(rows)
    assert [(f.field, f.value, f.good_share) for f in found.where] == [
        ("k8s.pod.name", "p1", 1.0),
        ("host.name", "h1", 0.0),
    ]
    assert ("k8s.pod.name", "p1") not in [(f.field, f.value) for f in found.factors]


def test_slow_above_is_the_samples_90th_percentile():
    assert slow_above([]) is None
    assert slow_above([float(i) for i in range(1, 11)]) == 9.0  # the 10th span alone is slower
    assert slow_above([5.0] * 20) == 5.0  # all alike: none is slower


def test_a_span_carries_its_columns_caller_peers_and_attributes():
    span = SimpleNamespace(endpoint="GET /pay", status_code=503, exception_type="TimeoutError")
    factors = span_factors(
        span,
        "shop",
        "gateway",
        [("payment", True), ("", False)],
        {"k8s.pod.name": "shop-1", "retry": True, "n": 3},
    )
    assert factors == [
        ("span", "endpoint", "GET /pay"),
        ("span", "status_code", "503"),
        ("span", "exception_type", "TimeoutError"),
        ("span", "caller", "gateway"),
        ("span", "peer", "payment"),
        ("attribute", "k8s.pod.name", "shop-1"),
        ("attribute", "retry", "true"),
        ("attribute", "n", "3"),
    ]
    # a parent in the same service is no caller
    assert ("span", "caller", "shop") not in span_factors(span, "shop", "shop", [], {})
    assert text(False) == "false" and text(1.5) == "1.5"
