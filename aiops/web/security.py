"""Request guards and response headers for a service exposed beyond loopback.

Every request passes three checks, in order, before its view runs:

- **Host allow-list** (``AIOPS_TRUSTED_HOSTS``, loopback names by default, ``*``
  for any): a request for another host name is a 400. This stops DNS
  rebinding, where a page on ``evil.example`` re-points its name at this
  server and talks to it "same-origin" (its ``Host`` and ``Origin`` both name
  the attacker's domain, so the origin check alone cannot tell).
- **Body limit**: ``AIOPS_API_MAX_BODY_BYTES`` for the JSON API and the page
  forms, ``AIOPS_OTLP_MAX_BYTES`` for ``/v1/*`` (whose views also cap the
  decompressed size, :mod:`telemetry.ingest`), ``AIOPS_MAX_BODY_BYTES``
  elsewhere. A larger body is a 413 before anything reads it.
- **Protected reads** (``AIOPS_PROTECT_READS=1``): every route but
  ``/health``, ``/static``, ``/v1/*`` (it has the ingest token) and the demo
  shop's services needs the API token, in any form :mod:`telemetry.tokens`
  accepts, HTTP Basic with the token as the password included (so a browser
  can log in).

Every response gets the security headers (:data:`HEADERS`): a CSP that allows
no inline script and no framing, ``nosniff``, and a same-origin referrer.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import BadRequest, Unauthorized

from aiops.settings import Settings, current_settings, settings_of
from telemetry import tokens

CSP = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "style-src-attr 'unsafe-inline'",  # waterfall bars: numbers only (see aiops.web.pages)
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
))
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
OPEN_PATHS = ("/health", "/static/")  # never behind AIOPS_PROTECT_READS
API_PREFIXES = ("/aiops/", "/simulate/", "/incidents/", "/api/")


# -- pure helpers -------------------------------------------------------------------


def host_name(host: str) -> str:
    """The name in a ``Host`` header: ``[::1]:80`` -> ``::1``, ``Example.com.:80`` -> ``example.com``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = name
    return host.rstrip(".")


def host_allowed(host: str, trusted: tuple[str, ...]) -> bool:
    """Whether a ``Host`` header (``name[:port]``) names a trusted host (``*`` trusts all).

    A trusted name starting with a dot also trusts its subdomains (``.example.com``).
    """
    if "*" in trusted:
        return True
    name = host_name(host)
    if not name:
        return False
    for entry in trusted:
        entry = entry.strip().lower().strip("[]")
        if entry.startswith("."):
            if name == entry[1:] or name.endswith(entry):
                return True
        elif name == entry:
            return True
    return False


def body_limit(path: str, settings: Settings) -> int:
    """The largest request body ``path`` accepts (on the wire: ``/v1/*`` also caps it decompressed)."""
    if path.startswith("/v1/"):
        return settings.otlp_max_bytes + 64 * 1024  # gzip may grow incompressible data a little
    if path.startswith(API_PREFIXES):
        return settings.api_max_body_bytes
    return settings.max_body_bytes


# -- the Flask edge -----------------------------------------------------------------


def _open_to_all() -> bool:
    """Routes ``AIOPS_PROTECT_READS`` leaves alone: liveness, assets, ingest (own token), the demo shop."""
    path = request.path
    return path.startswith(OPEN_PATHS) or path.startswith("/v1/") or request.blueprint == "shop"


def _guard() -> None:
    settings = current_settings()
    if not host_allowed(request.host, tuple(settings.trusted_hosts)):
        raise BadRequest("this host name is not served here (see AIOPS_TRUSTED_HOSTS)")
    request.max_content_length = body_limit(request.path, settings)
    if settings.protect_reads and not _open_to_all():
        if not tokens.presented(request.headers, settings.api_token or "", basic=True):
            raise Unauthorized(
                "this server protects reads: send 'Authorization: Bearer <AIOPS_API_TOKEN>'",
                www_authenticate=WWWAuthenticate("basic", {"realm": "AIOps"}),
            )


def _headers(response):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    if settings_of(app).protect_reads and not settings_of(app).api_token:
        raise ValueError("AIOPS_PROTECT_READS=1 needs AIOPS_API_TOKEN: reads are protected by that token")
    app.before_request(_guard)
    app.after_request(_headers)
