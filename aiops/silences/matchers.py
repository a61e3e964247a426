"""Silence matchers, as Alertmanager has them: ``{"name", "value", "regex": false}``.

Pure logic: plain data in and out. A matcher names one of an incident's labels (:data:`NAMES`:
its root cause's ``service`` and ``endpoint``, its ``kind``, its ``severity``: see
:func:`labels_of`) and matches it exactly, or with a regular expression that must match the whole
value (anchored, like Alertmanager's). A silence matches an incident when all its matchers do.

A regex comes from outside and runs in the worker on every cycle, so it is checked before it is
stored (:func:`check`): bounded in length, compiled once, and refused when its shape can take
exponential time on Python's backtracking engine (:mod:`telemetry.regexes`): repetition inside
unbounded repetition (``(a+)+``, ``(a?)*``), an alternation repeated without bound (``(a|ab)*``), a
backreference, or more than :data:`MAX_UNBOUNDED` unbounded repeats in all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiops.kinds import IncidentKind, RuleKind, Severity
from aiops.silences.errors import InvalidSilence
from telemetry import regexes

NAMES = ("service", "endpoint", "kind", "severity")
MAX_MATCHERS = 8
MAX_VALUE = 512  # characters: an endpoint's column width
MAX_REGEX = 256  # characters of a regex value
MAX_UNBOUNDED = regexes.MAX_UNBOUNDED  # unbounded repeats (*, +, {n,}) in one regex
# Exact values these labels can take: an exact matcher with another value could never match. A
# trace-query rule's alert has its anomaly type as its kind (aiops.outbox.alerts).
VOCABULARY = {"severity": tuple(Severity),
              "kind": (*IncidentKind, "unknown", *(k for k in RuleKind if k not in set(IncidentKind)))}


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    regex: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "regex": self.regex}

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name) or ""
        if self.regex:
            return compiled(self.value).fullmatch(actual) is not None
        return actual == self.value


def parse(raw: object, field: str = "matchers") -> list[Matcher]:
    """A silence's matchers from a request body: a non-empty list of ``{"name", "value", "regex"}``.
    :class:`InvalidSilence` names the field (``matchers[1].value``) that is wrong."""
    if not isinstance(raw, list) or not raw:
        raise InvalidSilence(field, "must be a non-empty list of {\"name\", \"value\", \"regex\"}")
    if len(raw) > MAX_MATCHERS:
        raise InvalidSilence(field, f"at most {MAX_MATCHERS} matchers")
    return [_one(item, f"{field}[{i}]") for i, item in enumerate(raw)]


def _one(item: object, field: str) -> Matcher:
    if not isinstance(item, dict):
        raise InvalidSilence(field, 'must be an object {"name", "value", "regex"}')
    unknown = sorted(str(k) for k in set(item) - {"name", "value", "regex"})
    if unknown:
        raise InvalidSilence(f"{field}.{unknown[0][:40]}", "is not a matcher field (name, value, regex)")
    name, value, regex = item.get("name"), item.get("value"), item.get("regex", False)
    if name not in NAMES:
        raise InvalidSilence(f"{field}.name", f"must be one of {', '.join(NAMES)}")
    if not isinstance(regex, bool):
        raise InvalidSilence(f"{field}.regex", "must be true or false")
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidSilence(f"{field}.value", "must be a string without NUL")
    if regex:
        check(value, f"{field}.value")
    elif len(value) > MAX_VALUE:
        raise InvalidSilence(f"{field}.value", f"must be at most {MAX_VALUE} characters")
    elif name in VOCABULARY and value not in VOCABULARY[name]:
        raise InvalidSilence(f"{field}.value", f"{name} must be one of {', '.join(VOCABULARY[name])}")
    return Matcher(name, value, regex)


def from_stored(raw: Iterable[Mapping]) -> list[Matcher]:
    """Matchers as the store holds them (already checked when they were created)."""
    return [Matcher(m["name"], m["value"], bool(m.get("regex"))) for m in raw]


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches (a silence with no matchers matches nothing)."""
    matchers = list(matchers)
    return bool(matchers) and all(m.matches(labels) for m in matchers)


def labels_of(incident: Mapping) -> dict[str, str]:
    """The labels a matcher sees, from the incident JSON (``with_report`` attached, for ``kind``):
    the root cause's service and endpoint (empty: the whole service), its kind and severity."""
    root = incident.get("root_cause") or {}
    report = incident.get("report") or {}
    return {
        "service": root.get("service") or "",
        "endpoint": root.get("endpoint") or "",
        "kind": report.get("kind") or "",
        "severity": incident.get("severity") or "",
    }


# -- regexes ------------------------------------------------------------------------


def check(pattern: str, field: str) -> re.Pattern:
    """The compiled regex, or :class:`InvalidSilence` naming ``field``: too long, invalid, or a
    shape that can take exponential time (:mod:`telemetry.regexes`)."""
    if len(pattern) > MAX_REGEX:
        raise InvalidSilence(field, f"a regex must be at most {MAX_REGEX} characters")
    try:
        return regexes.checked(pattern)
    except ValueError as exc:
        message = str(exc)
        raise InvalidSilence(field, message if message.startswith("regex") else f"is {message}") from None


def compiled(pattern: str) -> re.Pattern:
    """A stored regex, compiled once per process."""
    return regexes.compiled(pattern)
