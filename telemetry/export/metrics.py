"""The export's figures on ``GET /metrics``, counted in the shared multiprocess directory like the
rest of :mod:`telemetry.selfmetrics`, so a scrape sums every process's exporter.

The sender thread reports its cumulative :class:`~telemetry.export.policy.Figures` after each step;
counters move by the difference since the last report, gauges are set (summed over live processes;
the breaker's state and the last times are the maximum over them). :func:`installation` reads
them back for ``GET /telemetry/health``, so whichever gunicorn worker answers, it speaks for all.
"""

from __future__ import annotations

from dataclasses import replace

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
        self.failures = Gauge("aiops_export_consecutive_failures", "Failed exports in a row (the most of "
                              "any live process)", registry=None, multiprocess_mode="livemax")
        self.last_drop = Gauge("aiops_export_last_drop_timestamp_seconds", "When export spans were last "
                               "dropped", registry=None, multiprocess_mode="max")
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
        if figures.last_drop is not None:
            m.last_drop.set(figures.last_drop)
        m.failures.set(figures.consecutive_failures)


def installation(local: policy.Figures) -> policy.Figures:
    """The figures of every process of the installation (``local`` is the answering one's): totals
    summed, the breaker and the failures the worst live process's, the times the latest. The last
    error's text is only the answering process's. Never raises: on a read failure, ``local``."""
    try:
        values = _read()
    except Exception:  # noqa: BLE001 - the health answer must not fail on the metrics files
        return local

    def value(name: str, labels: tuple = ()) -> float:
        return values.get((name, labels), 0.0)

    def latest(name: str, own: float | None) -> float | None:
        best = max(value(name), own or 0.0)
        return best or None

    level = max(int(value("aiops_export_breaker_state")), policy.BREAKER_LEVEL[local.breaker_state])
    return replace(
        local,
        queued=max(int(value("aiops_export_queued_spans")), local.queued),
        exported=max(int(value("aiops_export_spans_total", (("outcome", "exported"),))), local.exported),
        dropped=max(int(value("aiops_export_spans_total", (("outcome", "dropped"),))), local.dropped),
        retried=max(int(value("aiops_export_retries_total")), local.retried),
        fallback_bytes=max(int(value("aiops_export_fallback_bytes")), local.fallback_bytes),
        breaker_state={v: k for k, v in policy.BREAKER_LEVEL.items()}[level],
        breaker_trips=max(int(value("aiops_export_breaker_trips_total")), local.breaker_trips),
        consecutive_failures=max(int(value("aiops_export_consecutive_failures")), local.consecutive_failures),
        last_success=latest("aiops_export_last_success_timestamp_seconds", local.last_success),
        last_failure=latest("aiops_export_last_failure_timestamp_seconds", local.last_failure),
        last_drop=latest("aiops_export_last_drop_timestamp_seconds", local.last_drop),
    )


def _read() -> dict[tuple[str, tuple], float]:
    """Every ``aiops_export_*`` sample in the shared directory, as a scrape would sum them."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from telemetry import selfmetrics

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=selfmetrics.metrics().path)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in registry.collect()
            if family.name.startswith("aiops_export_") for s in family.samples}
