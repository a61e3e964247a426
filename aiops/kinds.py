"""The product's fixed vocabularies, defined once: severities, incident kinds, anomaly types, channels,
trace-query rule kinds.

They are ``StrEnum`` so a member is its own JSON and database value
(``Severity.HIGH == "high"``): stored rows and API payloads keep their strings.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """How bad an incident is, least to most (the declaration order is the ranking)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    @classmethod
    def at(cls, rank: int) -> Severity:
        """The severity ``rank`` steps above low, clamped to the scale."""
        members = list(cls)
        return members[max(0, min(rank, len(members) - 1))]


class AnomalyType(StrEnum):
    """What one detection rule saw on one endpoint in one window."""

    LATENCY = "latency"
    ERROR = "error"
    TIMEOUT = "timeout"
    # Told apart by time (aiops.detection.degradation, aiops.detection.traffic)
    DEGRADATION = "degradation"
    TRAFFIC_DROP = "traffic_drop"


class IncidentKind(StrEnum):
    """What an incident is about; each kind may have its own remediation hook."""

    LATENCY = "latency"
    ERRORS = "errors"
    TIMEOUT = "timeout"
    CASCADING = "cascading"
    SLO = "slo"
    # Told apart by time: a slow creep past the long-term baseline; an endpoint gone silent
    DEGRADATION = "degradation"
    TRAFFIC_DROP = "traffic_drop"
    # Patterns told apart by what fails (aiops.detection.patterns; repeated timeouts: aiops.incidents.reports)
    DEPENDENCY = "dependency"
    EXHAUSTION = "exhaustion"
    INVALID_RESPONSE = "invalid_response"
    TIMEOUTS = "timeouts"


class Channel(StrEnum):
    """Where the outbox sends: the three notification channels, and the remediation hooks."""

    WEBHOOK = "webhook"
    SLACK = "slack"
    PAGERDUTY = "pagerduty"
    REMEDIATION = "remediation"
    RULE = "rule"  # a trace-query rule's own webhook (its URL is the rule's, read when sent)

    @classmethod
    def notifications(cls) -> tuple[Channel, ...]:
        """The channels that tell people (remediation tells a machine)."""
        return (cls.WEBHOOK, cls.SLACK, cls.PAGERDUTY)


class RuleKind(StrEnum):
    """What a trace-query rule looks for (:mod:`aiops.rules`); its alerts' ``anomaly_type``."""

    QUERY = "query"  # any TraceQL query, aggregation and threshold
    HIGH_LATENCY = "high_latency"  # spans slower than the query says
    ERROR_STATUS = "error_status"  # traces with a failed span
    HIGH_ERROR_RATE = "high_error_rate"  # the share of traces that failed, over a threshold
