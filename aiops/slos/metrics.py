"""``aiops_slo_burn_rate{slo,window}`` and ``aiops_slo_budget_remaining{slo}`` on ``GET /metrics``:
a Prometheus collector that reads the SLO rows at scrape time, so every web worker and instance
shows the same figures (those of the last detection cycle, which evaluates them)."""

from __future__ import annotations


def slo_gauges() -> list:
    """The two gauge families, from the store (the caller's app context)."""
    from prometheus_client.core import GaugeMetricFamily
    from sqlalchemy import select

    from aiops.store.declared import Slo
    from telemetry.db import db

    burn = GaugeMetricFamily("aiops_slo_burn_rate", "Error-budget burn rate of each SLO over each "
                             "alert window (1 spends the budget over the SLO period)",
                             labels=["slo", "window"])
    budget = GaugeMetricFamily("aiops_slo_budget_remaining", "Share of each SLO's error budget left "
                               "for its period (below 0: overspent)", labels=["slo"])
    # A failing read is left out of the scrape, logged and counted (telemetry.selfmetrics.add_collector).
    rows = db.session.execute(select(Slo.name, Slo.burn_rates, Slo.budget_remaining)).all()
    db.session.rollback()
    for name, rates, remaining in rows:
        for window, rate in (rates or {}).items():
            burn.add_metric([name, window], float(rate))
        if remaining is not None:
            budget.add_metric([name], float(remaining))
    # Like any labelled family, they appear with their first sample (the first SLO).
    return [family for family in (burn, budget) if family.samples]
