"""Regexes that come from outside (silence matchers, TraceQL ``=~``), checked before they run.

Pure (the standard library only). Python's ``re`` backtracks, so a pattern from a request can
take exponential time on a short input; :func:`unsafe` refuses the shapes that do: repetition
inside unbounded repetition (``(a+)+``, ``(a?)*``), an alternation repeated without bound
(``(a|ab)*``), a backreference, or more than :data:`MAX_UNBOUNDED` unbounded repeats in all.
Callers bound the pattern's length themselves and word the error for their own field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

MAX_UNBOUNDED = 3  # unbounded repeats (*, +, {n,}) in one regex


def checked(pattern: str) -> re.Pattern:
    """The compiled pattern, or ``ValueError`` saying why not: invalid, or an unsafe shape."""
    try:
        compiled_ = compiled(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"not a valid regex: {str(exc)[:120]}") from None
    problem = unsafe(pattern)
    if problem:
        raise ValueError(f"regex refused: {problem}")
    return compiled_


@functools.lru_cache(maxsize=1024)
def compiled(pattern: str) -> re.Pattern:
    """A regex compiled once per process."""
    return re.compile(pattern)


def unsafe(pattern: str) -> str | None:
    """Why ``pattern`` (a valid regex) could take exponential time, or None."""
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
