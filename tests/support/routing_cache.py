"""Werkzeug compiles two URL-builder functions per route (Python source through ``ast`` and
``compile``) each time an app is made: about 1 ms a route, 70 ms an app, and the suite makes an
app for most of its tests. The compiled function depends only on the rule's text, its converters
and its defaults, so tests reuse it across apps. Test-only: production makes its app once.
"""

from __future__ import annotations

from werkzeug.routing.rules import Rule

_ORIGINAL = Rule._compile_builder
_CACHE: dict[tuple, object] = {}


def _key(rule: Rule, append_unknown: bool) -> tuple | None:
    try:
        defaults = tuple(sorted((k, repr(v)) for k, v in (rule.defaults or {}).items()))
        converters = tuple(sorted((k, type(c).__qualname__) for k, c in rule._converters.items()))
        return (append_unknown, rule.rule, tuple(rule._trace), defaults, converters)
    except Exception:  # noqa: BLE001 - anything unexpected: compile as Werkzeug does
        return None


def _cached_compile_builder(self: Rule, append_unknown: bool = True):
    key = _key(self, append_unknown)
    if key is None:
        return _ORIGINAL(self, append_unknown)
    func = _CACHE.get(key)
    if func is None:
        func = _CACHE[key] = _ORIGINAL(self, append_unknown)
    return func


def install() -> None:
    """Reuse compiled URL builders across the session's apps."""
    Rule._compile_builder = _cached_compile_builder
