"""The export's figures on ``GET /metrics``, counted in the shared multiprocess directory like the
rest of :mod:`telemetry.selfmetrics`, so a scrape sums every process's exporter.

The sender thread reports its cumulative :class:`~telemetry.export.policy.Figures` after each step;
counters move by the difference since the last report, gauges are set (summed over live processes;
the breaker's state and the last times are the maximum over them).
"""

from __future__ import annotations

from telemetry.export import policy
from telemetry.selfmetrics import never_raise, per_process

_COUNTED = ("exported", "retried", "dropped", "breaker_trips")


class _Metrics:
    def __init__(self):
        from prometheus_client import Counter, Gauge

        self.spans = Counter("aiops_export_spans", "Spans of the OTLP export by outcome: exported (the "
                             "endpoint accepted them), dropped (refused with 400/413, or the fallback "
                             "file full or unwritable)",
                             ["outcome"], registry=None)
        self.retried = Counter("aiops_export_retries", "Export attempts that repeated a failed one",
                               registry=None)
        self.trips = Counter("aiops_export_breaker_trips", "Times the export's circuit breaker opened",
                             registry=None)
        self.queued = Gauge("aiops_export_queued_spans", "Spans waiting in memory for export",
                            registry=None, multiprocess_mode="livesum")
        self.fallback = Gauge("aiops_export_fallback_bytes", "Bytes of spans waiting in fallback files",
                              registry=None, multiprocess_mode="livesum")
        self.breaker = Gauge("aiops_export_breaker_state", "The export's circuit breaker: 0 closed, "
                             "1 half-open, 2 open (the worst over the processes)", registry=None,
                             multiprocess_mode="livemax")
        self.last_success = Gauge("aiops_export_last_success_timestamp_seconds", "When an export last "
                                  "succeeded", registry=None, multiprocess_mode="max")
        self.last_failure = Gauge("aiops_export_last_failure_timestamp_seconds", "When an export last "
                                  "failed", registry=None, multiprocess_mode="max")
        for outcome in ("exported", "dropped"):  # zeros from the first scrape, so rate() works
            self.spans.labels(outcome)


metrics = per_process(_Metrics)


class Reporter:
    """Turns cumulative figures into counter increments (one reporter per exporter)."""

    def __init__(self):
        self._last = dict.fromkeys(_COUNTED, 0)

    @never_raise
    def report(self, figures: policy.Figures) -> None:
        m = metrics()
        delta = {name: getattr(figures, name) - self._last[name] for name in _COUNTED}
        self._last = {name: getattr(figures, name) for name in _COUNTED}
        for outcome in ("exported", "dropped"):
            if delta[outcome] > 0:
                m.spans.labels(outcome).inc(delta[outcome])
        if delta["retried"] > 0:
            m.retried.inc(delta["retried"])
        if delta["breaker_trips"] > 0:
            m.trips.inc(delta["breaker_trips"])
        m.queued.set(figures.queued)
        m.fallback.set(figures.fallback_bytes)
        m.breaker.set(policy.BREAKER_LEVEL[figures.breaker_state])
        if figures.last_success is not None:
            m.last_success.set(figures.last_success)
        if figures.last_failure is not None:
            m.last_failure.set(figures.last_failure)
