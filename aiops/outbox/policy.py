"""When to retry a message and when to stop sending to a channel: pure decisions.

No Flask, no database, no network: an answer's status, the attempt count and
the time in, a verdict out. Failures are retried with jittered exponential
backoff (a receiver's ``Retry-After`` wins when it asks for longer); a circuit
breaker per channel stops hammering a receiver that is down. The store keeps
the breaker's state in the shared ``notification_channels`` row, so every
process sees the same breaker.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

Outcome = Literal["delivered", "retry", "permanent"]
BreakerState = Literal["closed", "open", "half-open"]

RETRY_AFTER_MAX = 3600.0  # a receiver asking for more than an hour is not taken at its word
_DELTA_SECONDS = re.compile(r"\d+(\.\d+)?")


def classify(status_code: int | None) -> Outcome:
    """What an answer means: 2xx delivered; 429, 5xx and no answer at all (None) are worth
    retrying; any other status (4xx, and 3xx since redirects are not followed) will not get
    better by resending the same request, so it is permanent."""
    if status_code is None:
        return "retry"
    if 200 <= status_code < 300:
        return "delivered"
    if status_code == 429 or status_code >= 500:
        return "retry"
    return "permanent"


def backoff(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 = the first): "equal jitter".

    The step doubles per attempt up to ``cap``; the wait is half the step plus a random
    share of the other half. The random half spreads the retries of rows (and processes)
    that failed together; the fixed half keeps a flapping receiver from being hit again
    at once, which full jitter (anywhere in [0, step]) allows. Always within [0, cap].
    """
    exponent = min(max(attempt, 1) - 1, 64)  # 2.0 ** 1100 would overflow
    step = max(0.0, min(cap, base * 2.0**exponent))
    return step / 2 + rand() * step / 2


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks us to wait (delta-seconds or an HTTP-date).

    None when absent or unreadable (negative numbers included), so the caller falls back
    to its own backoff; a date in the past means 0; capped at an hour.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # "-0000": UTC, origin unknown
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


def next_attempt(attempts: int, max_attempts: int, now: float, wait: float,
                 asked: float | None) -> float | None:
    """When to try again after ``attempts`` failed attempts, or None to give up.

    ``wait`` is our backoff, ``asked`` the receiver's Retry-After: the later one wins.
    """
    if attempts >= max_attempts:
        return None
    return now + max(wait, asked or 0.0)


def breaker_state(open_until: float | None, now: float) -> BreakerState:
    """Closed (no open_until), open (until it passes), then half-open (one probe may go)."""
    if open_until is None:
        return "closed"
    return "open" if open_until > now else "half-open"


def breaker_after(
    failures: int, open_until: float | None, outcome: Outcome, *, probe: bool,
    threshold: int, cooldown: float, now: float,
) -> tuple[int, float | None]:
    """The breaker after one attempt: (consecutive_failures, open_until).

    A success closes it. A retryable failure counts; reaching ``threshold`` (or failing
    the half-open probe) opens it for ``cooldown``. A permanent 4xx is the request's
    fault, not the receiver's: it does not count, and a probe answered with one shows the
    receiver is up again, so the breaker closes.
    """
    if outcome == "delivered":
        return 0, None
    if outcome == "permanent":
        return failures, (None if probe else open_until)
    failures += 1
    if probe or failures >= threshold:
        return failures, now + cooldown
    return failures, open_until
