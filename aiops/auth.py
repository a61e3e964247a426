"""Bearer-token guard for mutating ``/aiops/*`` and ``/simulate/*`` calls."""

from __future__ import annotations

import hmac
from functools import wraps

from flask import abort, current_app, request


def require_token(view):
    """Reject the call with 401 unless ``AIOPS_API_TOKEN`` is unset or presented."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        token = current_app.config.get("AIOPS_API_TOKEN")
        if token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                abort(401, description="this call needs 'Authorization: Bearer <AIOPS_API_TOKEN>'")
        return view(*args, **kwargs)

    return wrapper
