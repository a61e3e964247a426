"""Silence matchers, as Alertmanager has them: ``{"name", "value", "regex": false}``.

Pure logic: plain data in and out. A matcher names one of an incident's labels (:data:`NAMES`:
its root cause's ``service`` and ``endpoint``, its ``kind``, its ``severity``: see
:func:`labels_of`) and matches it exactly, or with a regular expression that must match the whole
value (anchored, like Alertmanager's). A silence matches an incident when all its matchers do.

A regex comes from outside and runs in the worker on every cycle, so it is checked before it is
stored (:func:`check`): bounded in length, compiled once, and refused when its shape can take
exponential time on Python's backtracking engine: repetition inside unbounded repetition
(``(a+)+``, ``(a?)*``), an alternation repeated without bound (``(a|ab)*``), a backreference, or more than
:data:`MAX_UNBOUNDED` unbounded repeats in all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiops.kinds import IncidentKind, Severity
from aiops.silences.errors import InvalidSilence

NAMES = ("service", "endpoint", "kind", "severity")
MAX_MATCHERS = 8
MAX_VALUE = 512  # characters: an endpoint's column width
MAX_REGEX = 256  # characters of a regex value
MAX_UNBOUNDED = 3  # unbounded repeats (*, +, {n,}) in one regex
# Exact values these labels can take: an exact matcher with another value could never match.
VOCABULARY = {"severity": tuple(Severity), "kind": (*IncidentKind, "unknown")}


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
    shape that can take exponential time (see the module's docstring)."""
    if len(pattern) > MAX_REGEX:
        raise InvalidSilence(field, f"a regex must be at most {MAX_REGEX} characters")
    try:
        compiled_ = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise InvalidSilence(field, f"is not a valid regex: {str(exc)[:120]}") from None
    problem = _unsafe(pattern)
    if problem:
        raise InvalidSilence(field, f"regex refused: {problem}")
    return compiled_


@functools.lru_cache(maxsize=1024)
def compiled(pattern: str) -> re.Pattern:
    """A stored regex, compiled once per process."""
    return re.compile(pattern)


def _unsafe(pattern: str) -> str | None:
    from re import _constants as c
    from re import _parser

    unbounded = [0]

    def walk(items, inside_unbounded: bool) -> str | None:
        for op, av in items:
            if op in (c.GROUPREF, c.GROUPREF_EXISTS):
                return "backreferences are not supported"
            if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
                _, hi, sub = av
                if inside_unbounded:
                    return "repetition nested inside unbounded repetition"
                endless = hi == c.MAXREPEAT
                unbounded[0] += endless
                found = walk(sub, inside_unbounded or endless)
            elif op == c.BRANCH:
                if inside_unbounded:
                    return "an alternation repeated without bound"
                found = next((f for branch in av[1] if (f := walk(branch, False))), None)
            else:
                found = next((f for sub in _subpatterns(av, _parser.SubPattern)
                              if (f := walk(sub, inside_unbounded))), None)
            if found:
                return found
        return None

    found = walk(_parser.parse(pattern), False)
    if found:
        return found
    if unbounded[0] > MAX_UNBOUNDED:
        return f"more than {MAX_UNBOUNDED} unbounded repeats (*, +, {{n,}})"
    return None


def _subpatterns(av, kind) -> Iterable:
    if isinstance(av, kind):
        yield av
    elif isinstance(av, tuple | list):
        for part in av:
            yield from _subpatterns(part, kind)
