"""Trace-query rules: a TraceQL query (:mod:`telemetry.traceql`), a lookback window, an aggregation
and a threshold, evaluated by the worker every ``AIOPS_RULES_INTERVAL``; the alerts they raise go
through the outbox to the rule's webhook and are listed by ``GET /aiops/alerts``.

- :mod:`~aiops.rules.spec`: a rule body checked field by field, the built-in kinds as presets (pure);
- :mod:`~aiops.rules.aggregate`: count, rate, p95, the verdict, an alert's identity and fields (pure);
- :mod:`~aiops.rules.service`: CRUD, the ``AIOPS_RULES_FILE`` config, the alerts' JSON;
- :mod:`~aiops.rules.evaluation`: claiming due rules, reading their matches, recording alerts
  (deduplicated) and queueing them; the worker job;
- :mod:`~aiops.rules.metrics`: ``trace_anomalies_total{type}``, read from the store at scrape time.

It may import ``aiops.outbox`` and everything below it, and telemetry; never the jobs or the web
edge, which call it.
"""
