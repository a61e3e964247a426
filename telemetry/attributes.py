"""A span's attributes as the ``spans.attributes`` column keeps them: one compact JSON object of the
span's own attributes and its resource's, bounded. Pure (no SQLAlchemy, no Flask).

Why one JSON text column, not a key/value table: a span is written once and read by a handful of
pages (what changed, a trace, the export), so a single column costs ingest one ``json.dumps`` and
the row a few hundred bytes, where a side table would double the rows written per span. Both
stores filter on it as it is (SQLite ``json_extract``, PostgreSQL ``::json ->>``; see
:func:`telemetry.span_attrs.attribute_filter`).

What is kept, and the bounds (each value below is the only place it is set):

- the resource's attributes, then the span's: a span's own key wins a clash (the span is the more
  specific; OTel's conventions keep the two apart anyway). The resource's come *first* and at most
  :data:`MAX_RESOURCE_KEYS` of them, so a span with a thousand attributes cannot push out the
  ``k8s.pod.name`` or ``host.name`` "what changed" compares;
- at most :data:`MAX_KEYS` keys in all, in the order they came; a key over :data:`MAX_KEY_CHARS`
  characters is dropped (a cut key would be another key), a string value is cut to
  :data:`MAX_VALUE_CHARS`;
- scalars only: strings, booleans, integers, floats (NaN and infinities as strings, which JSON
  cannot hold); arrays and maps are dropped (ingest decodes only scalars);
- not the keys already stored as columns (:data:`COLUMN_KEYS`: HTTP method and status,
  ``exception.*``, ``peer.service``, the resource's ``service.name``), nor the SDK's own description
  (``telemetry.sdk.*``), so rows do not grow for nothing;
- nothing at all: NULL, not ``{}``.
"""

from __future__ import annotations

import json
import json.encoder
import math
from collections.abc import Iterable

MAX_KEYS = 32
MAX_RESOURCE_KEYS = 16
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 256

COLUMN_KEYS = frozenset(
    {
        "service.name",
        "http.request.method",
        "http.method",
        "http.response.status_code",
        "http.status_code",
        "exception.type",
        "exception.message",
        "exception.stacktrace",
        "exception.escaped",
        "peer.service",  # a CLIENT span's ``peer``
    }
)
_SKIPPED_PREFIXES = ("telemetry.sdk.", "telemetry.auto.")
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
# The C encoder made once (``JSONEncoder.encode`` makes one per call: a third of the cost of encoding
# a span's few keys, on ingest's hot path); the plain encoder where CPython has no C accelerator.
_C_ENCODER = (
    json.encoder.c_make_encoder(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    if json.encoder.c_make_encoder is not None
    else None
)


def _text(value: str) -> str:
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():  # lone surrogates cannot be stored as UTF-8
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def kept(pairs: Iterable[tuple[str, object]], limit: int = MAX_KEYS, into: dict | None = None) -> dict:
    """The ``(key, value)`` pairs the column keeps (the module's rules), added to ``into`` until it
    holds ``limit`` keys; a key already in ``into`` is replaced (it does not count twice).

    On ingest's hot path (every attribute of every span): one loop, no call per pair but for the
    rare string that needs repair.
    """
    out = {} if into is None else into
    for key, value in pairs:
        if key in COLUMN_KEYS or value is None or (len(out) >= limit and key not in out):
            continue
        if not key or len(key) > MAX_KEY_CHARS or key.startswith(_SKIPPED_PREFIXES):
            continue
        if not key.isascii() or "\x00" in key:
            key = _text(key)
        kind = type(value)
        if kind is str:
            if not value.isascii() or "\x00" in value:
                value = _text(value)
            out[key] = value[:MAX_VALUE_CHARS]
        elif kind is int or kind is bool:
            out[key] = value
        elif kind is float:
            out[key] = value if math.isfinite(value) else str(value)
    return out


def merged(resource: dict, span_pairs: Iterable[tuple[str, object]]) -> dict:
    """A span's kept attributes: ``resource`` (already :func:`kept`, at most
    :data:`MAX_RESOURCE_KEYS`) and then its own, which win a clash."""
    return kept(span_pairs, MAX_KEYS, dict(resource))


class Resource:
    """A resource's kept attributes (at most :data:`MAX_RESOURCE_KEYS`) with their JSON made once, so
    each of its spans encodes only its own attributes: :func:`span_text`."""

    __slots__ = ("values", "inner")

    def __init__(self, values: dict):
        self.values = values
        self.inner = encode(values)[1:-1] if values else ""  # the members, without the braces


def span_text(resource: Resource, span_pairs: Iterable[tuple[str, object]]) -> str | None:
    """The column's text for a span of ``resource``: the same as ``encode(merged(resource.values,
    span_pairs))``, with the resource's part encoded once (ingest's hot path)."""
    if not resource.values:
        return encode(kept(span_pairs))
    pairs = span_pairs if isinstance(span_pairs, list) else list(span_pairs)
    own = kept(pairs, MAX_KEYS - len(resource.values))
    if not own:
        return "{" + resource.inner + "}"
    if not own.keys().isdisjoint(resource.values):  # a span key replaces the resource's (rare)
        return encode(merged(resource.values, pairs))
    return "{" + resource.inner + "," + encode(own)[1:]


def encode(attributes: dict | None) -> str | None:
    """The column's text: compact JSON, or None for no attribute."""
    if not attributes:
        return None
    return "".join(_C_ENCODER(attributes, 0)) if _C_ENCODER is not None else _ENCODER.encode(attributes)


def decode(text: str | None) -> dict:
    """The column's text as a dict ({} for NULL, or for a text that is not a JSON object)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
