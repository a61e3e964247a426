"""The token check behind every protected route. Pure: a request's headers and the token in, yes or no out.

One function, :func:`presented`, serves the API's state changes and the demo's
fault injection (:func:`aiops.web.auth.require_token`), the protected reads
(:mod:`aiops.web.security`) and OTLP ingest (:mod:`telemetry.ingest`). A
request presents the token in one of these forms (docs/security.md, "Tokens",
says the same for users):

- ``Authorization: Bearer <token>``, the scheme in any case (``bearer``,
  ``BEARER``: RFC 7235 makes auth schemes case-insensitive);
- ``X-AIOps-Token: <token>``, for clients that cannot set ``Authorization``;
- ``Authorization: Basic <base64 of user:token>`` (any user), how a browser
  logs in: only where the caller passes ``basic=True`` (reads). A browser adds
  these credentials by itself to every request to this host, one that another
  site's page makes it send included, so no state change takes them.

Whitespace around the token is ignored (HTTP strips it from header values
anyway), the comparison takes the same time however much of the token is
right, and an empty token matches nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

TOKEN_HEADER = "X-AIOps-Token"


def secret_equal(given: str, expected: str) -> bool:
    """Constant-time comparison of two strings (any characters)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def presented(headers: Mapping[str, str], token: str, *, basic: bool = False) -> bool:
    """Whether a request's ``headers`` (looked up case-insensitively, as Werkzeug's are) carry
    ``token`` in an accepted form; ``basic``: HTTP Basic counts too."""
    if not token:
        return False
    scheme, _, credentials = headers.get("Authorization", "").strip().partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme == "bearer" and secret_equal(credentials, token):
        return True
    if scheme == "basic" and basic and secret_equal(_basic_password(credentials), token):
        return True
    other = headers.get(TOKEN_HEADER)
    return other is not None and secret_equal(other.strip(), token)


def _basic_password(credentials: str) -> str:
    """The password of HTTP Basic credentials (``base64(user:password)``); "" when they are not any."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""
    return decoded.partition(":")[2]
