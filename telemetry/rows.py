"""Pure helpers shared by the recorders: ids, route naming, exception fields."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from telemetry.columns import KIND_CLIENT, MAX_EXC_TYPE, MAX_TEXT
from telemetry.otlp.mapping import clean

UNMATCHED = "<unmatched>"


@dataclass(frozen=True)
class ServiceNames:
    """Which service a recorded route belongs to.

    The app hands over its own routes (``apart``: a path ending in ``/`` is a
    prefix, other paths are exact; ``"/"`` is the root alone) and the service
    they are stored under (``apart_service``), so its dashboard polling itself
    never raises an incident; every other route is the recorded service's
    (``own``). Recording knows no route of any consumer.
    """

    own: str
    apart_service: str = ""
    apart: tuple[str, ...] = ()

    def __post_init__(self):
        # Per request: one set lookup and one C-level startswith, not a loop.
        prefixes = tuple(p for p in self.apart if p != "/" and p.endswith("/"))
        object.__setattr__(self, "_exact", frozenset(self.apart))
        object.__setattr__(self, "_prefixes", prefixes)

    def for_route(self, route: str | None) -> str:
        if route is None:
            return self.own
        if route in self._exact or (self._prefixes and route.startswith(self._prefixes)):
            return self.apart_service
        return self.own


def endpoint_for_route(route: str | None) -> str:
    """``/checkout`` -> ``checkout``: the contract's endpoint names."""
    if route is None:
        return UNMATCHED
    return route.lstrip("/") or "/"


def exception_fields(exc: BaseException) -> tuple[str, str, str]:
    """(type, message, stack) as the OpenTelemetry SDK's ``record_exception`` writes them, made
    storable as OTLP ingest makes them (NUL dropped, lone surrogates replaced, cut to the columns):
    an exception message with a NUL in it would otherwise fail its whole buffered batch."""
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    cls = type(exc)
    module = cls.__module__
    name = f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__
    return (clean(name, MAX_EXC_TYPE) or "", clean(str(exc), MAX_TEXT) or "",
            clean(stack, MAX_TEXT) or "")


def is_error(status_code: int | None, has_exception: bool) -> bool:
    return has_exception or (status_code is not None and status_code >= 500)


def span_key(span) -> tuple[str, str]:
    """The (service, endpoint) a span speaks for. A CLIENT span that names the
    service it calls (``peer``) speaks for that callee: (peer, called operation),
    so a callee that never reported (it hung) can still be blamed."""
    if span.kind == KIND_CLIENT and span.peer:
        return (span.peer, span.endpoint)
    return (span.service, span.endpoint)
