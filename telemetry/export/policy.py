"""The export's resilience as pure logic: backoff, circuit breaker, the bounded buffer's accounting,
the health verdict and secret scrubbing. No I/O, no threads, no clock of its own: every decision
takes ``now`` (or a random draw) as an argument, so the tests drive it with a fake clock.

:mod:`telemetry.export.sender` owns the thread, the official exporter and the fallback file, and
asks these objects what to do.
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
BREAKER_LEVEL = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}  # the gauge's value on /metrics
JITTER = 0.25


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``initial`` x 2^(failures-1), at most ``maximum``, then +-``jitter``."""

    initial: float = 1.0
    maximum: float = 16.0
    jitter: float = JITTER

    def delay(self, failures: int, draw: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1, 2, 3...)."""
        base = min(self.initial * 2 ** max(failures - 1, 0), self.maximum)
        return base * draw(1 - self.jitter, 1 + self.jitter)


class Breaker:
    """A circuit breaker: ``threshold`` consecutive failures open it for ``open_for`` seconds; then
    it is half-open and lets one trial through, whose success closes it and whose failure opens it
    again for another ``open_for``."""

    def __init__(self, threshold: int = 5, open_for: float = 60.0):
        self.threshold, self.open_for = threshold, open_for
        self.failures = 0  # consecutive
        self.trips = 0
        self.opened_at: float | None = None
        self._state = CLOSED

    def state(self, now: float) -> str:
        if self._state == OPEN and self.opened_at is not None and now >= self.opened_at + self.open_for:
            self._state = HALF_OPEN
        return self._state

    def allows(self, now: float) -> bool:
        return self.state(now) != OPEN

    def reopens_at(self) -> float | None:
        return self.opened_at + self.open_for if self._state == OPEN and self.opened_at is not None else None

    def success(self) -> None:
        self.failures, self._state, self.opened_at = 0, CLOSED, None

    def failure(self, now: float) -> bool:
        """Count a failure; True when it opened the breaker (a trip)."""
        self.failures += 1
        if self.state(now) == HALF_OPEN or (self._state == CLOSED and self.failures >= self.threshold):
            self._state, self.opened_at = OPEN, now
            self.trips += 1
            return True
        return False


class Pending:
    """The bounded in-memory buffer: batches of span rows in arrival order, at most ``max_spans``
    spans and none older than ``max_age`` seconds. What does not fit is handed back (oldest first)
    for the fallback file; nothing here is ever dropped silently.

    The batch being sent (:meth:`peek` to :meth:`done` or :meth:`release`) is never handed back:
    spans arriving meanwhile push out the batches behind it, so it is neither lost nor sent twice
    (it may then reach the receiver after those, the one case where order is not kept)."""

    def __init__(self, max_spans: int = 10_000, max_age: float = 300.0, batch_size: int = 512):
        self.max_spans, self.max_age, self.batch_size = max_spans, max_age, batch_size
        self._batches: deque[tuple[float, list[tuple]]] = deque()
        self.spans = 0
        self._held = False  # the first batch is being sent

    def __len__(self) -> int:
        return len(self._batches)

    def add(self, rows: Sequence[tuple], now: float) -> list[list[tuple]]:
        """Queue ``rows`` (in batches of ``batch_size``); returns the oldest batches pushed out."""
        for start in range(0, len(rows), self.batch_size):
            chunk = list(rows[start:start + self.batch_size])
            self._batches.append((now, chunk))
            self.spans += len(chunk)
        out = []
        keep = 1 if self._held else 0
        while self.spans > self.max_spans and len(self._batches) > keep:
            out.append(self._pop(keep))
        return out

    def expired(self, now: float) -> list[list[tuple]]:
        """The batches older than ``max_age``, taken out (oldest first)."""
        out = []
        keep = 1 if self._held else 0
        while len(self._batches) > keep and now - self._batches[keep][0] > self.max_age:
            out.append(self._pop(keep))
        return out

    def take_all(self) -> list[list[tuple]]:
        out = []
        while len(self._batches) > (1 if self._held else 0):
            out.append(self._pop(1 if self._held else 0))
        return out

    def peek(self) -> list[tuple] | None:
        """The first batch, now held for sending (until :meth:`done` or :meth:`release`). Batches
        queued behind it join it while the sum fits ``batch_size``: the span writer hands over a
        small batch per flush, and a backlog of them goes out in few requests, not one each (it
        keeps the first one's time, so its spans age no later than they would have)."""
        if not self._batches:
            return None
        since, first = self._batches[0]
        while len(self._batches) > 1 and len(first) + len(self._batches[1][1]) <= self.batch_size:
            first = first + self._batches[1][1]
            del self._batches[1]
        self._batches[0] = (since, first)
        self._held = True
        return first

    def done(self) -> list[tuple]:
        """The held batch was exported: remove it."""
        self._held = False
        return self._pop(0)

    def release(self) -> None:
        """The held batch was not exported: it stays first, and may be handed back again."""
        self._held = False

    def _pop(self, index: int) -> list[tuple]:
        if index == 0:
            _, batch = self._batches.popleft()
        else:
            _, batch = self._batches[index]
            del self._batches[index]
        self.spans -= len(batch)
        return batch


def joined(batches: Iterable[list[tuple]], size: int) -> list[list[tuple]]:
    """Consecutive batches joined, in order, while the sum fits ``size`` (the fallback file gets a
    line per joined batch, and replays it in one request)."""
    out: list[list[tuple]] = []
    for batch in batches:
        if out and len(out[-1]) + len(batch) <= size:
            out[-1] = out[-1] + batch
        else:
            out.append(batch)
    return out


@dataclass(frozen=True)
class Figures:
    """One process's export state, as ``GET /telemetry/health`` and ``/metrics`` show it."""

    queued: int = 0
    exported: int = 0
    retried: int = 0
    dropped: int = 0
    fallback_bytes: int = 0
    breaker_state: str = CLOSED
    breaker_trips: int = 0
    consecutive_failures: int = 0
    last_success: float | None = None
    last_failure: float | None = None
    last_drop: float | None = None
    last_error: str | None = None
    capacity: int = 10_000


def verdict(figures: Figures) -> tuple[str, list[str]]:
    """``healthy``, ``degraded`` or ``failing``, and the issues that say why.

    Failing: the breaker is open or half-open (nothing gets through). Degraded: the last exports
    failed, spans wait in the fallback file, the buffer is nearly full, or spans were dropped since
    the last success.
    """
    issues = []
    if figures.breaker_state != CLOSED:
        issues.append(f"circuit breaker {figures.breaker_state.replace('_', '-')} after "
                      f"{figures.consecutive_failures} consecutive failed exports")
    elif figures.consecutive_failures:
        issues.append(f"{figures.consecutive_failures} consecutive failed exports (retrying with backoff)")
    if figures.fallback_bytes:
        issues.append(f"{figures.fallback_bytes} bytes of spans in the fallback file, replayed once the "
                      "endpoint answers")
    if figures.queued >= 0.8 * figures.capacity:
        issues.append(f"export buffer {figures.queued}/{figures.capacity} spans")
    if figures.dropped and figures.last_drop is not None and (
            figures.last_success is None or figures.last_drop >= figures.last_success):
        issues.append(f"{figures.dropped} spans dropped (refused by the endpoint, or the fallback file "
                      "full or not writable)")
    if figures.breaker_state != CLOSED:
        return "failing", issues
    return ("degraded" if issues else "healthy"), issues


_URL_SECRETS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)
_QUERY = re.compile(r"(https?://[^\s?#'\"]+)\?[^\s#'\"]*", re.I)
_AUTH = re.compile(r"\b(bearer|basic)\s+[^\s,'\"]+", re.I)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """An error message safe to show: URL credentials and queries, ``Bearer``/``Basic`` credentials
    and every configured header value replaced by ``***``."""
    for secret in sorted((s for s in secrets if s and len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_SECRETS.sub(r"\g<scheme>***@", text)
    text = _QUERY.sub(r"\1?***", text)
    return _AUTH.sub(lambda m: f"{m.group(1)} ***", text)[:500]
