"""Bounds on what one OTLP request may cost to decode. Pure logic (no Flask).

Bytes alone do not bound the cost: an empty span is 2 bytes of protobuf, so
an 8 MB body (an 8 KB gzip) can carry 4 million spans, and decoding those
into messages takes hundreds of MB. So before the official decoder builds a
single message, :func:`scan_protobuf` walks the wire format of an
``ExportTraceServiceRequest``, ``ExportLogsServiceRequest`` or ``ExportMetricsServiceRequest`` (tags and
lengths only, nothing allocated; a :class:`Schema` says which fields hold
messages) and counts what decoding would create: records (spans or log
records), and every message inside them (attributes, events, links, bodies,
nested array and key-value values). Over ``max_records`` or ``max_items`` the
request is a 413 before it costs memory.
For OTLP/JSON, :func:`json_object_counter` counts objects as ``json.loads``
builds them and stops it at the limit.

:class:`InflightBudget` bounds the total a process decodes at once: each
request reserves its decompressed bytes (and its items' estimated size) as it
goes, and waits for nothing: over the budget it is refused with a retryable
503, so a burst of large requests costs at most the budget, not one body each.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from telemetry.otlp.errors import OtlpError, PayloadTooLarge

ITEM_BYTES = 200  # a decoded message's rough size in memory (upb message + Python wrapper share)
MAX_DEPTH = 100  # nesting the protobuf decoder accepts (its recursion limit)
# A protobuf body up to this size is decoded without the scan (:func:`unscanned_items`): at worst
# 128k items, about 26 MB reserved, so the default 256 MB budget still holds ten at once.
DIRECT_MAX = 256 * 1024
JSON_FACTOR = 8  # a JSON body's decoded objects (dicts, then messages) per byte of text, roughly

# Message kinds of the trace and logs requests (the request, kind 0, first), and which of their
# fields hold messages we count.
_REQ, _RS, _RES, _SS, _SCOPE, _SPAN, _EVENT, _LINK, _KV, _ANY, _ARR, _KVL, _LOG = range(13)
_COMMON: dict[int, dict[int, int]] = {
    _RES: {1: _KV},
    _SCOPE: {3: _KV},
    _KV: {2: _ANY},
    _ANY: {5: _ARR, 6: _KVL},
    _ARR: {1: _ANY},
    _KVL: {1: _KV},
}


@dataclass(frozen=True)
class Schema:
    """One request type's nesting: ``children[kind][field number] = kind``, the record kind, and
    what its limit is called."""

    name: str
    children: dict[int, dict[int, int]]
    record: int | frozenset[int]  # the record's kind (a metrics request has four kinds of point)
    records: str
    setting: str

    @property
    def record_kinds(self) -> frozenset[int]:
        return self.record if isinstance(self.record, frozenset) else frozenset({self.record})


TRACES = Schema("ExportTraceServiceRequest", {
    _REQ: {1: _RS},
    _RS: {1: _RES, 2: _SS},
    _SS: {1: _SCOPE, 2: _SPAN},
    _SPAN: {9: _KV, 11: _EVENT, 13: _LINK},
    _EVENT: {3: _KV},
    _LINK: {4: _KV},
    **_COMMON,
}, _SPAN, "spans", "AIOPS_OTLP_MAX_SPANS")

LOGS = Schema("ExportLogsServiceRequest", {
    _REQ: {1: _RS},  # resource_logs
    _RS: {1: _RES, 2: _SS},  # resource, scope_logs
    _SS: {1: _SCOPE, 2: _LOG},  # scope, log_records
    _LOG: {5: _ANY, 6: _KV},  # body, attributes
    **_COMMON,
}, _LOG, "log records", "AIOPS_OTLP_MAX_LOG_RECORDS")


# The metrics request's own kinds: metric, its five data kinds, their points and what points hold.
(_RM, _SM, _METRIC, _GAUGE, _SUM, _HIST, _EHIST, _SUMMARY, _NDP, _HDP, _EDP, _SDP, _EXEMPLAR, _BUCKETS,
 _QV) = range(13, 28)

METRICS = Schema("ExportMetricsServiceRequest", {
    _REQ: {1: _RM},  # resource_metrics
    _RM: {1: _RES, 2: _SM},  # resource, scope_metrics
    _SM: {1: _SCOPE, 2: _METRIC},  # scope, metrics
    _METRIC: {5: _GAUGE, 7: _SUM, 9: _HIST, 10: _EHIST, 11: _SUMMARY, 12: _KV},  # 12: metadata
    _GAUGE: {1: _NDP},
    _SUM: {1: _NDP},
    _HIST: {1: _HDP},
    _EHIST: {1: _EDP},
    _SUMMARY: {1: _SDP},
    _NDP: {7: _KV, 5: _EXEMPLAR},
    _HDP: {9: _KV, 8: _EXEMPLAR},  # bucket_counts and explicit_bounds are packed numbers
    _EDP: {1: _KV, 8: _BUCKETS, 9: _BUCKETS, 11: _EXEMPLAR},
    _SDP: {7: _KV, 6: _QV},
    _EXEMPLAR: {7: _KV},
    _BUCKETS: {},
    _QV: {},
    **_COMMON,
}, frozenset({_NDP, _HDP, _EDP, _SDP}), "metric data points", "AIOPS_OTLP_MAX_METRIC_POINTS")


@dataclass(frozen=True)
class Limits:
    """Per request: records (spans or log records), and decoded items in all (the per-record
    caps are :class:`telemetry.otlp.SpanChecks`' and its logs sibling's: they reject a record,
    not the request)."""

    max_records: int
    max_items: int


class _Truncated(Exception):
    pass


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]  # IndexError: truncated
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Truncated


_SCALAR_TAGS = frozenset({0x0A, 0x10, 0x18, 0x21, 0x3A})  # AnyValue string, bool, int, double, bytes


def _plain_any(buf, pos: int, end: int) -> bool:
    """Whether ``buf[pos:end]`` (an AnyValue) is empty or exactly one scalar field: nothing in it
    that the scan would count (a log record's string body, an attribute's value)."""
    if pos == end:
        return True
    tag = buf[pos]
    if tag not in _SCALAR_TAGS or pos + 1 >= end:
        return False
    if tag == 0x21:
        return pos + 9 == end
    if tag in (0x10, 0x18):
        pos += 1
        while pos < end and buf[pos] >= 0x80:
            pos += 1
        return pos + 1 == end
    size, at = buf[pos + 1], pos + 2
    if size >= 0x80:  # a string body is often longer than 127 bytes
        try:
            size, at = _varint(buf, pos + 1)
        except (_Truncated, IndexError):
            return False
    return at + size == end


def _plain_kv(buf, start: int, end: int) -> bool:
    """Whether ``buf[start:end]`` is the common attribute: ``key`` (field 1, a short string)
    then ``value`` (field 2), an AnyValue of exactly one scalar field. Lets the scan count an
    attribute without walking into it; anything else is walked field by field."""
    if end - start < 4 or buf[start] != 0x0A or buf[start + 1] >= 0x80:
        return False
    pos = start + 2 + buf[start + 1]
    if pos + 2 > end or buf[pos] != 0x12 or buf[pos + 1] >= 0x80 or pos + 2 + buf[pos + 1] != end:
        return False
    return _plain_any(buf, pos + 2, end)


def scan_protobuf(body: bytes, limits: Limits, schema: Schema = TRACES) -> int:
    """Count the messages decoding ``body`` (a ``schema`` request) would create; raise before
    building any.

    Raises :class:`PayloadTooLarge` over ``limits.max_records`` or
    ``limits.max_items``, :class:`OtlpError` for a wire format that is not
    well formed or nests deeper than the decoder would. Returns the count of
    items. The walk is depth first and keeps only the chain of open parents,
    so it allocates nothing that grows with the body. (Varints are read
    inline, one byte being the common case: this loop runs once per field.)
    """
    try:
        return _count(body, limits, schema)
    except (_Truncated, IndexError):
        raise OtlpError(f"body is not a valid {schema.name} (protobuf): "
                        "malformed, truncated or nested too deep") from None


def _count(buf, limits: Limits, schema: Schema) -> int:
    """:func:`scan_protobuf`'s walk; a malformed body raises :class:`_Truncated` or IndexError."""
    items, records, children = 0, 0, schema.children
    max_items, max_records, record_kinds = limits.max_items, limits.max_records, schema.record_kinds
    parents: list[tuple[int, int, int]] = []
    kind, pos, end = _REQ, 0, len(buf)
    wanted = children[kind]
    while True:
        while pos < end:
            key = buf[pos]
            pos += 1
            if key >= 0x80:
                key, pos = _varint(buf, pos - 1)
            wire = key & 7
            if wire == 2:
                length = buf[pos]
                pos += 1
                if length >= 0x80:
                    length, pos = _varint(buf, pos - 1)
                start = pos
                pos += length
                if pos > end:
                    raise _Truncated
                child = wanted.get(key >> 3)
                if child is None:
                    continue
                items += 1
                if items > max_items:
                    raise _too_many(max_items, "decoded items", "AIOPS_OTLP_MAX_ITEMS")
                if child in record_kinds:
                    records += 1
                    if records > max_records:
                        raise too_many_records(max_records, schema)
                if child == _KV and _plain_kv(buf, start, pos):
                    items += 1  # its AnyValue
                    continue
                if child == _ANY and _plain_any(buf, start, pos):
                    continue  # nothing inside to count (a log record's string body)
                if length and children[child]:
                    if len(parents) >= MAX_DEPTH:
                        raise _Truncated
                    parents.append((kind, pos, end))
                    kind, pos, end = child, start, pos
                    wanted = children[kind]
            elif wire == 0:
                while buf[pos] >= 0x80:
                    pos += 1
                pos += 1
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                raise _Truncated
        if pos != end:
            raise _Truncated
        if not parents:
            return items
        kind, pos, end = parents.pop()
        wanted = children[kind]


def unscanned_items(size: int, limits: Limits) -> int | None:
    """The most items a protobuf body of ``size`` bytes can decode to, when that bound alone keeps
    it within ``limits.max_items`` and within :data:`DIRECT_MAX` bytes; else None (scan it).

    Every message on the wire takes at least two bytes (its tag and its length), so such a body
    cannot hold more than ``size // 2 + 1`` of them: decoding it needs no scan to stay bounded.
    The upb decoder then walks the bytes once instead of twice (the scan cost about a quarter of a
    512-span batch's decode and mapping). Its records are counted on the decoded message."""
    bound = size // 2 + 1
    return bound if size <= DIRECT_MAX and bound <= limits.max_items else None


def too_many_records(limit: int, schema: Schema) -> PayloadTooLarge:
    """The 413 for a request over its record limit (the scan's, and a decoded message's count's)."""
    return _too_many(limit, schema.records, schema.setting)


def _too_many(limit: int, what: str, setting: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"more than {limit} {what} in one request ({setting}): send smaller batches")


def json_object_counter(limits: Limits):
    """An ``object_hook`` for ``json.loads`` that stops it past ``limits.max_items`` objects."""
    count = [0]
    max_items = limits.max_items

    def hook(obj: dict) -> dict:
        count[0] += 1
        if count[0] > max_items:
            raise _too_many(max_items, "decoded items", "AIOPS_OTLP_MAX_ITEMS")
        return obj

    hook.count = count  # type: ignore[attr-defined]
    return hook


class InflightBudget:
    """Bytes all requests of this process may hold for decoding at once (thread-safe)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, amount: int) -> bool:
        """Reserve ``amount`` bytes; False (nothing reserved) when that would pass the limit."""
        with self._lock:
            if self.used + amount > self.limit:
                return False
            self.used += amount
            return True

    def give(self, amount: int) -> None:
        with self._lock:
            self.used = max(0, self.used - amount)
