"""The settings of the Tempo pull source (:mod:`telemetry.tempo_source`), declared like every other
setting and inherited by :class:`~aiops.settings.fields.Settings` (apart only so each module reads whole)."""

from __future__ import annotations

from dataclasses import dataclass

from aiops.settings import parse
from aiops.settings.declare import TEMPO, setting


@dataclass(frozen=True)
class TempoSettings:
    tempo_url: str | None = setting(
        None, "AIOPS_TEMPO_URL", "base URL of a Tempo query API (`http://tempo:3200`, or another instance of "
        "this product) the worker polls for recent traces, stored as `POST /v1/traces` stores them; unset, "
        "nothing is pulled", TEMPO, parse.http_url)
    tempo_headers: dict = setting(
        {}, "AIOPS_TEMPO_HEADERS", "headers sent with every call, `name=value,name2=value2` "
        "(`X-Scope-OrgID=team` for a multi-tenant Tempo, `authorization=Bearer%20...`); a user and password "
        "may be in the URL instead",
        TEMPO, parse.headers, shown="none")
    tempo_interval: float = setting(
        30.0, "AIOPS_TEMPO_INTERVAL", "seconds between polls", TEMPO, parse.positive)
    tempo_lookback: float = setting(
        60.0, "AIOPS_TEMPO_LOOKBACK", "seconds back from now each poll searches (never less than the "
        "interval)", TEMPO, parse.positive)
    tempo_timeout: float = setting(
        0.1, "AIOPS_TEMPO_TIMEOUT", "seconds one call to the Tempo API may take, from connect to last byte",
        TEMPO, parse.positive)
    tempo_limit: int = setting(
        100, "AIOPS_TEMPO_LIMIT", "traces one search asks for (`limit`), and fetched per poll at most "
        "(this product's own API answers up to 500)", TEMPO, parse.count)
