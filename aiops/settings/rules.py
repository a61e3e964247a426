"""The settings of the trace-query rules (:mod:`aiops.rules`), declared like every other setting and
inherited by :class:`~aiops.settings.fields.Settings` (kept apart only so each module reads whole)."""

from __future__ import annotations

from dataclasses import dataclass

from aiops.settings import parse
from aiops.settings.declare import RULES, setting


@dataclass(frozen=True)
class RuleSettings:
    rules_interval: float = setting(
        30.0, "AIOPS_RULES_INTERVAL", "seconds between evaluations of each trace-query rule (by the worker "
        "only; `AIOPS_SCHEDULER=0` stops them too)", RULES, parse.positive)
    rules_file: str | None = setting(
        None, "AIOPS_RULES_FILE", "JSON or TOML file of trace-query rules, upserted by name when a process "
        "first needs them ([format](../README.md#trace-query-rules))", RULES, parse.text)
