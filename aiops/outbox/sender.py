"""The one HTTP POST that takes a message to its receiver, and what came of it.

Where it goes is resolved before, from the settings at send time
(:func:`aiops.outbox.channels.target`); every error this module returns is
scrubbed of that target's secrets. :func:`send` opens no database transaction
(a slow receiver must never hold SQLite's write lock) and never raises for
network trouble: that is an :class:`Answer` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import requests

from aiops.outbox.channels import Target

USER_AGENT = "aiops-notifier"
ERROR_CHARS = 1000  # how much of a response body is kept as last_error
DETAIL_CHARS = 200  # how much of it goes into an incident's timeline
READ_BYTES = 4 * ERROR_CHARS  # never read more of a response than this


@dataclass(frozen=True)
class Answer:
    """One attempt's result: a status and body, or no status and why (network error)."""

    status: int | None
    body: str = ""
    error: str | None = None
    retry_after: str | None = None

    @property
    def summary(self) -> str:
        """A short line for a channel's last_error and the timeline."""
        if self.status is None:
            return self.error or "no answer"
        text = f"HTTP {self.status}"
        return f"{text}: {self.body[:DETAIL_CHARS]}" if self.body else text


def _network_error(exc: requests.RequestException, timeout: float) -> str:
    """Describe a failed request without its URL (requests puts the URL in its messages)."""
    if isinstance(exc, requests.Timeout):
        return f"timed out after {timeout:g} s ({type(exc).__name__})"
    seen, cause = set(), exc
    while cause is not None and id(cause) not in seen:  # find the OS-level reason
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return f"connection failed: {cause.strerror}"
        reason = getattr(cause, "reason", None)  # urllib3's MaxRetryError keeps it there
        nested = [a for a in (reason, *cause.args) if isinstance(a, BaseException)]
        cause = cause.__cause__ or cause.__context__ or (nested[0] if nested else None)
    return f"request failed ({type(exc).__name__})"


def _read_body(resp: requests.Response) -> str:
    """At most READ_BYTES of the body, as text (a receiver's error page can be huge)."""
    data = bytearray()
    try:
        for chunk in resp.iter_content(chunk_size=1024):
            data += chunk
            if len(data) >= READ_BYTES:
                break
    except requests.RequestException:
        pass  # the status already tells what happened
    return bytes(data[:READ_BYTES]).decode(resp.encoding or "utf-8", errors="replace").strip()


def send(to: Target, timeout: float, extra_headers: Mapping[str, str] | None = None) -> Answer:
    """POST the payload as JSON; never raises for network trouble (that is an Answer too)."""
    headers = {"User-Agent": USER_AGENT, **(extra_headers or {}), **to.headers}
    try:
        with requests.post(to.url, json=to.payload, headers=headers, timeout=timeout,
                           allow_redirects=False, stream=True) as resp:
            body = _read_body(resp)
            return Answer(resp.status_code, to.scrub(body), retry_after=resp.headers.get("Retry-After"))
    except requests.RequestException as exc:
        return Answer(None, error=to.scrub(_network_error(exc, timeout)))
