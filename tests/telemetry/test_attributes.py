"""The spans' attributes column: bounded, scalars only, the columns' keys left out, the resource's
kept ahead of a span's thousand attributes."""

from __future__ import annotations

import json

from telemetry.attributes import MAX_KEYS, MAX_RESOURCE_KEYS, MAX_VALUE_CHARS, decode, encode, kept, merged


def test_bounds_and_what_is_left_out():
    pairs = [
        ("http.request.method", "GET"),
        ("exception.type", "X"),
        ("service.name", "s"),
        ("telemetry.sdk.name", "opentelemetry"),
        ("long", "v" * 1000),
        ("k" * 200, "dropped"),
        ("list", None),
        ("nan", float("nan")),
        ("nul\x00key", "a\x00b"),
        ("ok", 3),
        ("flag", False),
    ]
    out = kept(pairs)
    assert out == {"long": "v" * MAX_VALUE_CHARS, "nan": "nan", "nulkey": "ab", "ok": 3, "flag": False}
    assert len(kept((f"k{i}", i) for i in range(1000))) == MAX_KEYS


def test_the_resource_comes_first_and_a_span_key_wins_a_clash():
    resource = kept([(f"r{i}", i) for i in range(40)] + [("k8s.pod.name", "pod-a")], MAX_RESOURCE_KEYS)
    assert len(resource) == MAX_RESOURCE_KEYS  # the pod is the 41st: a resource keeps its first 16
    resource = kept([("k8s.pod.name", "pod-a"), ("host.name", "h1")], MAX_RESOURCE_KEYS)
    out = merged(resource, [(f"s{i}", i) for i in range(1000)] + [("host.name", "from-span")])
    assert len(out) == MAX_KEYS and out["k8s.pod.name"] == "pod-a" and out["host.name"] == "from-span"


def test_encode_is_compact_json_and_none_when_empty():
    assert encode({}) is None and encode(None) is None
    assert encode({"a": "ü", "b": 1}) == '{"a":"ü","b":1}'
    assert decode(encode({"a": 1})) == {"a": 1}
    assert decode(None) == {} and decode("[1]") == {} and decode("{bad") == {}
    # a lone surrogate (possible from OTLP/JSON escapes) never reaches the database as such
    assert encode(kept([("x\ud800", "\ud800")])).encode("utf-8") == b'{"x?":"?"}'
    assert json.loads(encode(kept([("x", 1.5)]))) == {"x": 1.5}


def test_span_text_is_the_merged_encoding_with_the_resource_encoded_once():
    from telemetry.attributes import Resource, span_text

    cases = [
        ({}, []),
        ({}, [("a", 1)]),
        ({"k8s.pod.name": "p"}, []),
        ({"k8s.pod.name": "p"}, [("a", "x")]),
        ({"host.name": "h", "k": 1}, [("host.name", "span wins"), ("b", True)]),
        ({f"r{i}": i for i in range(MAX_RESOURCE_KEYS)}, [(f"s{i}", i) for i in range(100)]),
    ]
    for resource, pairs in cases:
        assert span_text(Resource(resource), pairs) == encode(merged(resource, pairs)), (resource, pairs)
