"""Pure helpers shared by the recorders: ids, route naming, exception fields."""

from __future__ import annotations

import traceback

from telemetry.models import KIND_CLIENT

# Routes of the product itself. Their spans are stored under the service
# "aiops" so that the dashboard polling itself never raises an incident.
PRODUCT_SERVICE = "aiops"
_PRODUCT_PREFIXES = ("/aiops", "/simulate", "/v1/", "/static", "/incidents", "/metrics", "/openapi.json")
UNMATCHED = "<unmatched>"


def service_for_route(route: str | None, own_service: str) -> str:
    if route is not None and (route == "/" or route.startswith(_PRODUCT_PREFIXES)):
        return PRODUCT_SERVICE
    return own_service


def endpoint_for_route(route: str | None) -> str:
    """``/checkout`` -> ``checkout``: the contract's endpoint names."""
    if route is None:
        return UNMATCHED
    return route.lstrip("/") or "/"


def exception_fields(exc: BaseException) -> tuple[str, str, str]:
    """(type, message, stack) as the OpenTelemetry SDK's ``record_exception`` writes them."""
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    cls = type(exc)
    module = cls.__module__
    name = f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__
    return name, str(exc), stack


def is_error(status_code: int | None, has_exception: bool) -> bool:
    return has_exception or (status_code is not None and status_code >= 500)


def span_key(span) -> tuple[str, str]:
    """The (service, endpoint) a span speaks for. A CLIENT span that names the
    service it calls (``peer``) speaks for that callee: (peer, called operation),
    so a callee that never reported (it hung) can still be blamed."""
    if span.kind == KIND_CLIENT and span.peer:
        return (span.peer, span.endpoint)
    return (span.service, span.endpoint)
