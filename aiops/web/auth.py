"""Guards for state-changing requests: bearer token, same-origin check, CSRF token.

Every mutating ``/aiops/*`` and ``/simulate/*`` view carries ``require_token``:
it refuses a request a browser sent from another site (``Origin`` names
another host) and, when ``AIOPS_API_TOKEN`` is set, one without the token
(:mod:`telemetry.tokens` says in which forms).
Non-browser clients (curl, requests, the SDKs) send no ``Origin`` and are
unaffected. Without the origin check, any web page a user visits could make
the user's browser post an HTML form to ``/aiops/incidents/<id>/resolve``
(an empty form body is a valid call) whenever no token is configured.

The HTML forms on the incident page are guarded by a double-submit cookie
(``csrf_token``, ``set_csrf_cookie``, ``check_csrf``): a random token in a
``SameSite=Strict`` cookie and in a hidden field, which must match. Another
site can make the browser send the cookie neither (SameSite) nor know it to
put into the field, and no server-side secret is involved, so every worker
and instance accepts every other one's tokens.
"""

from __future__ import annotations

import re
import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import abort, g, make_response, render_template, request

from aiops.settings import current_settings
from telemetry.tokens import presented, secret_equal

CSRF_COOKIE = "aiops_csrf"
CSRF_FIELD = "csrf"
_CSRF_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_DEFAULT_PORTS = {"http": 80, "https": 443}


# -- same origin ----------------------------------------------------------------------


def origin_matches(origin: str, host: str) -> bool:
    """Whether an ``Origin`` header names the host and port that ``host`` (the ``Host`` header) does.

    The scheme is not compared: behind a TLS-terminating proxy the app sees
    http while the browser says https. A ``Host`` without a port means the
    default port of the scheme the browser used, which is the Origin's.
    ``null`` (sandboxed frames, ``file:`` pages) and anything that is not a
    bare ``http(s)://host[:port]`` never match.
    """
    try:
        o = urlsplit(origin.strip())
        h = urlsplit("//" + host)
        default = _DEFAULT_PORTS.get(o.scheme.lower())
        if default is None or not o.hostname or not h.hostname or o.path or o.query or o.username:
            return False
        return o.hostname == h.hostname and (o.port or default) == (h.port or default)
    except ValueError:  # a port that is not a number, or out of range
        return False


def same_origin() -> None:
    """403 when the request carries an ``Origin`` header for another host (a cross-site browser request)."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_matches(origin, request.host):
        abort(403, description="cross-site request refused")


# -- API token ------------------------------------------------------------------------


def require_token(view):
    """Reject cross-site browser requests (403), then the call with 401 unless
    ``AIOPS_API_TOKEN`` is unset or presented (:func:`telemetry.tokens.presented`: a bearer token
    or ``X-AIOps-Token``; never a browser's Basic login, which it would send for another site)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        same_origin()
        token = current_settings().api_token
        if token and not presented(request.headers, token):
            abort(401, description="this call needs 'Authorization: Bearer <AIOPS_API_TOKEN>'")
        return view(*args, **kwargs)

    return wrapper


# -- CSRF double-submit cookie for the HTML forms --------------------------------------


def csrf_token() -> str:
    """This browser's CSRF token: the one its cookie already holds, else a new one.

    Reusing the cookie's token keeps forms in other open tabs valid.
    """
    if "aiops_csrf" not in g:
        current = request.cookies.get(CSRF_COOKIE, "")
        g.aiops_csrf = current if _CSRF_SHAPE.fullmatch(current) else secrets.token_urlsafe(32)
    return g.aiops_csrf


def set_csrf_cookie(response, token: str):
    """Store ``token`` in the CSRF cookie (a session cookie, never readable by scripts)."""
    response.set_cookie(CSRF_COOKIE, token, path="/", httponly=True, samesite="Strict",
                        secure=request.is_secure)
    return response


def form_page(template: str, notices: dict[str, str], **context):
    """A page with forms: rendered with this browser's CSRF token (and whether the API token must
    be typed in, and the notice of what the last post did), never cached, the cookie set."""
    token = csrf_token()
    html = render_template(template, csrf_token=token, token_required=bool(current_settings().api_token),
                           notice=notices.get(request.args.get("done", "")), **context)
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"  # the page carries this browser's CSRF token
    return set_csrf_cookie(response, token)


def check_form() -> None:
    """A page's form post: 403 unless same-origin with a matching CSRF field (:func:`check_csrf`),
    then 401 unless ``AIOPS_API_TOKEN`` is unset or typed into the form's ``token`` field."""
    check_csrf()
    token = current_settings().api_token
    if token and not secret_equal(request.form.get("token", ""), token):
        abort(401, description="the API token is missing or wrong (the server has AIOPS_API_TOKEN set)")


def check_csrf() -> None:
    """403 unless the request is same-origin and its form field matches its cookie."""
    same_origin()
    cookie = request.cookies.get(CSRF_COOKIE, "")
    field = request.form.get(CSRF_FIELD, "")
    if not cookie or not field or not secret_equal(field, cookie):
        abort(403, description="the form's security token is missing or stale: reload the page and try again")
