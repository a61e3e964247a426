"""What pulling traces from a Tempo query API decides, without the network or the store. Pure logic.

:mod:`telemetry.tempo_source` polls ``GET /api/search`` for recent traces and fetches each with
``GET /api/traces/<id>``; this module holds what it decides from the answers, so each rule is
testable on its own:

- :func:`search_params`: the search of one poll (``q``, ``start``, ``end``, ``limit``, ``spss``);
- :func:`trace_id_of`: a trace id from a search answer, checked before it goes into a URL path (hex
  of at most 32 digits, as Tempo writes them, or the base64 of 16 bytes), as 32 lowercase hex digits;
- :func:`found_traces` and :func:`to_fetch`: the traces a search found, and those worth fetching (a
  trace whose summary is the same as when it was last stored whole is not fetched again);
- :func:`decode_trace`: a trace's body, Tempo's protobuf (its ``Trace`` has the resource spans as
  field 1, as OTLP's ``TracesData`` and ``ExportTraceServiceRequest`` do) or its JSON (``batches``,
  or ``{"trace": {"resourceSpans": ...}}`` from ``/api/v2``; ids base64 as Tempo writes them, or
  hex), decoded into the ``ExportTraceServiceRequest`` that ``POST /v1/traces`` stores, within the
  same limits (:mod:`telemetry.otlp_limits`).

Shapes checked against Tempo's HTTP API documentation, not against a running Tempo.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from telemetry import otlp, otlp_limits

# Every recent trace with a failed span first (they matter most to detection if the limit cuts),
# then every recent trace. Both in Tempo's TraceQL; a server that refuses them gets a search by time.
TRACEQL_QUERIES = ("{ status = error }", "{}")
_HEX = re.compile(r"[0-9a-fA-F]{1,32}")
_HEX_ID = {16: re.compile(r"[0-9a-fA-F]{32}"), 8: re.compile(r"[0-9a-fA-F]{16}")}
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{10,22}={0,2}")
PROTOBUF_TYPES = ("application/protobuf", "application/x-protobuf")
_SPAN_LISTS = ("scopeSpans", "scope_spans", "instrumentationLibrarySpans", "instrumentation_library_spans")
_ID_KEYS = {"traceId": 16, "trace_id": 16, "spanId": 8, "span_id": 8, "parentSpanId": 8, "parent_span_id": 8}


def search_params(now: float, lookback: float, limit: int, query: str | None) -> dict:
    """The parameters of one search: the last ``lookback`` seconds (whole epoch seconds, as Tempo
    takes them), ``limit`` traces, one span per span set (only the counts are read); ``query`` is a
    TraceQL query, or None for a search by time alone."""
    params = {"start": str(math.floor(now - lookback)), "end": str(math.ceil(now)), "limit": str(limit),
              "spss": "1"}
    if query is not None:
        params["q"] = query
    return params


def _base64_bytes(value: str) -> bytes | None:
    if not _BASE64.fullmatch(value):
        return None
    try:
        return base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4),
                                validate=True)
    except (binascii.Error, ValueError):
        return None


def trace_id_of(value) -> str | None:
    """A trace id from outside as 32 lowercase hex digits, or None when it is not one.

    Tempo writes them as hex and drops leading zeros (a 64-bit id is 16 digits), so 1 to 32 hex
    digits are padded; a 24-character base64 of 16 bytes (how protobuf's JSON writes bytes) is
    accepted too. The two cannot be confused: base64 of 16 bytes ends in ``==``. All zeros is no id.
    """
    if not isinstance(value, str):
        return None
    if _HEX.fullmatch(value):
        hex_id = value.lower().rjust(32, "0")
    else:
        raw = _base64_bytes(value)
        if raw is None or len(raw) != 16:
            return None
        hex_id = raw.hex()
    return hex_id if hex_id.strip("0") else None


def hex_id(value: str, size: int) -> str:
    """An OTLP/JSON id (``size`` bytes) as the hex OTLP/JSON wants: hex kept, base64 (Tempo's
    encoding) converted; anything else is returned as it is, and the span is rejected for it."""
    if _HEX_ID[size].fullmatch(value):
        return value
    raw = _base64_bytes(value)
    return raw.hex() if raw is not None and len(raw) == size else value


@dataclass(frozen=True)
class Found:
    """A trace a search answered: its id (32 hex digits) and its summary, which changes when the
    trace does (more spans, a later end)."""

    trace_id: str
    summary: tuple


def _matched(entry: dict) -> int | None:
    sets = entry.get("spanSets")
    if not isinstance(sets, list):
        sets = [entry["spanSet"]] if isinstance(entry.get("spanSet"), dict) else []
    counts = [s.get("matched") for s in sets if isinstance(s, dict)]
    ints = [c for c in counts if isinstance(c, int) and not isinstance(c, bool)]
    return max(ints) if ints else None


def _plain(value):
    """A summary field as given when it is a short string or a number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and len(value) <= 32):
        return value
    return None


def found_traces(doc, most: int) -> tuple[list[Found], int]:
    """The traces of a search answer (``{"traces": [...]}``), at most ``most``, and how many
    entries were refused (no valid ``traceID``). Raises :class:`otlp.OtlpError` when it is not a
    search answer at all."""
    # protobuf's JSON mapping leaves an empty list out: {"metrics": {...}} is an answer of no traces
    traces = doc.get("traces", []) if isinstance(doc, dict) else None
    if not isinstance(traces, list):
        raise otlp.OtlpError("the search answer has no 'traces' list")
    found, refused = [], 0
    for entry in traces[:most]:
        trace_id = trace_id_of(entry.get("traceID")) if isinstance(entry, dict) else None
        if trace_id is None:
            refused += 1
            continue
        summary = (_plain(entry.get("startTimeUnixNano")), _plain(entry.get("durationMs")), _matched(entry))
        found.append(Found(trace_id, summary))
    return found, refused + max(0, len(traces) - most)


class Seen:
    """Trace summaries as they were when the trace was last stored whole, the newest ``size``."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[str, tuple] = OrderedDict()

    def __contains__(self, found: Found) -> bool:
        return self._items.get(found.trace_id) == found.summary

    def __len__(self) -> int:
        return len(self._items)

    def add(self, found: Found) -> None:
        self._items[found.trace_id] = found.summary
        self._items.move_to_end(found.trace_id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def to_fetch(searches: Sequence[Sequence[Found]], seen: Seen, most: int) -> tuple[list[Found], int]:
    """The traces to fetch from one poll's searches, in order, once each, at most ``most``; and
    how many were skipped as unchanged since they were stored.

    A trace's summary is what every search said of it (the error search counts its failed spans,
    the search for all its spans, so a trace that grows by a span that did not fail changes too). A
    trace whose summaries have no field at all is always fetched: nothing says it did not change.
    """
    summaries: dict[str, list] = {}
    for found in (f for search in searches for f in search):
        summaries.setdefault(found.trace_id, []).append(found.summary)
    chosen, unchanged = [], 0
    for trace_id, said in summaries.items():
        found = Found(trace_id, tuple(said))
        if found in seen and any(v is not None for summary in said for v in summary):
            unchanged += 1
        elif len(chosen) < most:
            chosen.append(found)
    return chosen, unchanged


def _resource_spans(doc) -> list:
    """The resource spans of a trace answer, under any of the names Tempo has used."""
    if isinstance(doc, dict) and isinstance(doc.get("trace"), dict):
        doc = doc["trace"]  # /api/v2/traces
    if not isinstance(doc, dict):
        raise otlp.OtlpError("the trace answer is not a JSON object")
    if not doc:
        return []
    for key in ("batches", "resourceSpans", "resource_spans"):
        if key in doc:
            found = doc[key]
            if not isinstance(found, list):
                raise otlp.OtlpError(f"the trace answer's {key!r} is not a list")
            return found
    raise otlp.OtlpError("the trace answer has no 'batches' or 'resourceSpans'")


def _as_otlp_json(resource_spans: list, max_spans: int) -> dict:
    """OTLP/JSON from Tempo's: scope spans under their current name, ids in hex; more than
    ``max_spans`` spans is :class:`otlp.PayloadTooLarge`."""
    spans = 0
    for rs in resource_spans:
        if not isinstance(rs, dict):
            continue
        for old in _SPAN_LISTS[2:]:  # before Tempo 2.0 (OTLP < 0.15), instrumentation library spans
            if old in rs and "scopeSpans" not in rs:
                rs["scopeSpans"] = rs.pop(old)
        for ss in next((rs[k] for k in _SPAN_LISTS[:2] if isinstance(rs.get(k), list)), []):
            records = ss.get("spans") if isinstance(ss, dict) else None
            if not isinstance(records, list):
                continue
            spans += len(records)
            if spans > max_spans:
                raise otlp.PayloadTooLarge(f"more than {max_spans} spans in one trace (AIOPS_OTLP_MAX_SPANS)")
            for span in records:
                if isinstance(span, dict):
                    for key, size in _ID_KEYS.items():
                        if isinstance(span.get(key), str):
                            span[key] = hex_id(span[key], size)
    return {"resourceSpans": resource_spans}


def decode_trace(body: bytes, content_type: str, limits: otlp_limits.Limits):
    """A trace answer (protobuf or JSON, after :func:`otlp.read_body`) as an
    ``ExportTraceServiceRequest``. Raises :class:`otlp.OtlpError` (or its
    :class:`~otlp.PayloadTooLarge`) for what cannot be decoded or is over ``limits``."""
    mimetype = content_type.split(";", 1)[0].strip().lower()
    if mimetype in PROTOBUF_TYPES:
        otlp_limits.scan_protobuf(body, limits)  # raises over the limits, before decoding
        return otlp.parse_protobuf(body)
    if mimetype != "application/json":
        raise otlp.OtlpError(f"the trace answer is {mimetype or 'untyped'}, not JSON or protobuf")
    doc = otlp.load_json(body, object_hook=otlp_limits.json_object_counter(limits))
    return otlp.message_from_json(_as_otlp_json(_resource_spans(doc), limits.max_records))


def of_trace(rows: Sequence[tuple], trace_id: str) -> tuple[list[tuple], int]:
    """The span rows of ``trace_id`` (a fetch of one trace adds only that trace's spans), and how
    many others the answer held."""
    kept = [row for row in rows if row[0] == trace_id]
    return kept, len(rows) - len(kept)
