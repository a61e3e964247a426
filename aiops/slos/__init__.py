"""Service level objectives with multiwindow, multi-burn-rate alerts (Google SRE workbook, ch. 5).

Pure logic: ``rules`` (burn rates, the page/ticket rules, budget, daily history) and ``spec``
(validating an SLO body). ``queries`` aggregates the span store in SQL (counts per window and per
day, never span rows); ``service`` owns the transactions: CRUD, the ``AIOPS_SLO_FILE`` config,
evaluation in the detection cycle and the alerts it hands to the incident lifecycle; ``metrics``
is the ``/metrics`` collector. It may import ``aiops.incidents`` and everything below it, and
telemetry; never the outbox, the jobs or the web edge.
"""
