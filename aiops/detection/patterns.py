"""Failure patterns told apart by *what* fails, read from the evidence spans carry. Pure logic.

A failing span says what went wrong in its exception type and message (OTLP ``exception``
events or attributes, the status message, the lean recorder's exception fields), and a
log line may say the same. Three patterns are recognised from that text, true of any
system (nothing here knows a service, an endpoint or a message of one application):

- ``exhaustion``: memory, connection pools, file descriptors, disk (``MemoryError``,
  SQLAlchemy's ``QueuePool limit ... timed out``, ``Too many open files``/``EMFILE``,
  ``No space left on device``/``ENOSPC``);
- ``invalid_response``: an answer that could not be parsed: JSON decoding, serialization
  and schema errors (``JSONDecodeError``, ``Expecting value``, ``ValidationError``);
- ``dependency``: a call to a peer that failed before any answer: connection refused,
  DNS errors, unreachable hosts. A timeout is not one: it has its own kind.

A fourth source of ``dependency`` is structural: a CLIENT span to a peer that failed
(5xx, or an error) with no SERVER span under it, an external dependency seen only
through its callers (:func:`failed_calls`). The failing SERVER span that made such a
call fails *because of* it.

Text is bounded before it is matched (hostile input: a message may be megabytes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from telemetry.columns import KIND_CLIENT, KIND_SERVER

DEPENDENCY = "dependency"
EXHAUSTION = "exhaustion"
INVALID_RESPONSE = "invalid_response"
PATTERNS = (EXHAUSTION, INVALID_RESPONSE, DEPENDENCY)  # the order they are tried in

MAX_TEXT = 2000  # of a type and message, matched: the words that name a failure come first
MAX_HOPS = 16  # from a CLIENT span up to the SERVER span that made the call

_EXHAUSTION = re.compile(
    r"MemoryError|OutOfMemory|out of memory|cannot allocate memory|\bENOMEM\b|\[Errno 12\]"
    r"|too many open files|\bE[MN]FILE\b|\[Errno 2[34]\]"
    r"|no space left on device|\bENOSPC\b|\[Errno 28\]|disk (?:is )?full|\bEDQUOT\b|quota exceeded"
    r"|QueuePool limit|pool (?:is )?(?:exhausted|full)|Pool ?Timeout|PoolExhausted"
    r"|connection pool (?:is )?(?:exhausted|full)|timed out waiting for (?:a |an )?(?:free |idle )?connection"
    r"|connection is not available, request timed out|too many (?:connections|clients)"
    r"|remaining connection slots are reserved",
    re.IGNORECASE,
)
_INVALID = re.compile(
    r"JSONDecodeError|JsonParseException|JsonMappingException|MismatchedInputException|JsonSyntaxException"
    r"|\b(?:De)?[Ss]eriali[sz]ationError|\bUnmarshal\w*Error|cannot unmarshal|failed to (?:de)?seriali[sz]e"
    r"|failed to (?:parse|decode) (?:the )?(?:json|response|body|payload)"
    r"|Expecting value|Expecting property name|Unterminated string|Extra data: line|Unexpected token"
    r"|unexpected end of JSON|invalid JSON|not valid JSON|malformed (?:json|response|body|payload)"
    r"|\bValidationError\b|\bSchemaError\b|schema validation|is not valid under any of the given schemas",
    re.IGNORECASE,
)
_DEPENDENCY = re.compile(
    r"ConnectionRefused|Connection refused|\bECONNREFUSED\b|\[Errno 111\]|\[Errno 61\]"
    r"|NameResolutionError|gaierror|Name or service not known|nodename nor servname"
    r"|Temporary failure in name resolution|No address associated with hostname|Failed to resolve"
    r"|getaddrinfo|UnknownHostException|could not resolve host|no such host|\bNXDOMAIN\b|\[Errno -[235]\]"
    r"|\bConnectException\b|No route to host|\bEHOSTUNREACH\b|Network is unreachable|\bENETUNREACH\b",
    re.IGNORECASE,
)
# A call that gave up waiting is a timeout (its own kind), whatever else its message says.
_TIMEOUT = re.compile(r"time[sd]? ?out|timeout", re.IGNORECASE)


def of_text(*parts: str | None) -> str | None:
    """The pattern an exception type, message or log line names, or None."""
    text = " ".join(p[:MAX_TEXT] for p in parts if p)
    if not text:
        return None
    if _EXHAUSTION.search(text):
        return EXHAUSTION
    if _INVALID.search(text):
        return INVALID_RESPONSE
    if _DEPENDENCY.search(text) and not _TIMEOUT.search(text):
        return DEPENDENCY
    return None


def of_span(span) -> str | None:
    """The pattern a span's own exception names."""
    return of_text(span.exception_type, span.exception_message)


def _failed(span) -> bool:
    return bool(span.error) or (span.status_code or 0) >= 500


def failed_calls(spans: Iterable) -> dict[str, str]:
    """SERVER span id -> the pattern of a failed call it made to a peer.

    A CLIENT span that failed names the pattern its exception names; one that
    failed with a 5xx (or no word for it) but has no SERVER span under it in the
    window called a peer nothing here records: an uninstrumented dependency that
    failed (``dependency``). A call that timed out is left to the timeout rules.
    """
    spans = list(spans)
    by_id = {s.span_id: s for s in spans}
    answered = {s.parent_span_id for s in spans if s.kind == KIND_SERVER and s.parent_span_id}
    found: dict[str, str] = {}
    for span in spans:
        if span.kind != KIND_CLIENT or not span.peer or not _failed(span):
            continue
        pattern = of_span(span)
        if pattern is None and span.span_id not in answered and not _TIMEOUT.search(
                f"{span.exception_type or ''} {span.exception_message or ''}"[:MAX_TEXT]) \
                and span.status_code != 504:
            pattern = DEPENDENCY
        if pattern is None:
            continue
        owner = _server_of(span, by_id)
        if owner is not None:
            found.setdefault(owner.span_id, pattern)
    return found


def _server_of(span, by_id: dict):
    """The nearest SERVER ancestor of ``span`` in the window, or None."""
    current = span
    for _ in range(MAX_HOPS):
        parent = by_id.get(current.parent_span_id) if current.parent_span_id else None
        if parent is None:
            return None
        if parent.kind == KIND_SERVER:
            return parent
        current = parent
    return None


def of_failure(span, calls: dict[str, str]) -> str | None:
    """The pattern of one failed SERVER span: its own exception's, else its failed calls'."""
    return of_span(span) or calls.get(span.span_id)


def dominant(counts: dict[str, int], failures: int) -> str | None:
    """The pattern at least half of ``failures`` show, or None."""
    if not counts or failures <= 0:
        return None
    pattern, n = max(counts.items(), key=lambda kv: (kv[1], -PATTERNS.index(kv[0])))
    return pattern if 2 * n >= failures else None


_RESOURCES = (
    ("connection pool", re.compile(
        r"pool|too many (?:connections|clients)|connection slots"
        r"|waiting for (?:a |an )?(?:free |idle )?connection|connection is not available", re.IGNORECASE)),
    ("file descriptors", re.compile(r"open files|\bE[MN]FILE\b|\[Errno 2[34]\]", re.IGNORECASE)),
    ("disk", re.compile(r"no space left|\bENOSPC\b|\[Errno 28\]|disk|quota|\bEDQUOT\b", re.IGNORECASE)),
    ("memory", re.compile(r"memory|\bENOMEM\b|\[Errno 12\]", re.IGNORECASE)),
)


def resource(*parts: str | None) -> str | None:
    """Which resource an exhaustion names: ``connection pool``, ``file descriptors``, ``disk`` or
    ``memory`` (None: the text does not say)."""
    text = " ".join(p[:MAX_TEXT] for p in parts if p)
    for name, pattern in _RESOURCES:
        if pattern.search(text):
            return name
    return None
