"""How much a service's logs vary when nothing is wrong, learned per service. Pure logic.

A log change is news only against the service's *own* normal variability. Some
services log steadily: a handful of WARN lines a window, the same templates
every window. Others swing: their volume doubles and halves with batch jobs and
retries, and they print templates never seen before (a new customer id in a
message Drain cannot mask, a rare branch) every other window. A fixed Poisson
test calls the second kind's every swing a change, and on a day of network
faults those swings open incidents that come before, or outrank, the traces'
answer (measured on a held-out TrainTicket day: logs halved AC@1).

Per service we keep, over its windows, an EWMA mean and variance of three
counts: its ERROR/WARN lines brought to its usual traffic (``warn``: a service
whose warnings follow its requests does not swing), its templates never seen in
a normal window (``new``), and whether its logs alone would have raised an
incident (``raised``: 1 or 0, once it is judged). From them:

- the *dispersion* of the warnings beyond Poisson, as a negative binomial has
  it: var = mean + phi * mean^2; a surge is judged with that variance, so a
  service whose warnings swing normally needs a much bigger change;
- the *churn*: how many new templates a window of the service usually shows
  (mean + 2 sd); that many of a window's new templates are its usual churn and
  are no signal (the strongest of the rest still are);
- *noisy*: a service whose logs alone would have raised in more than
  ``noisy_raised`` of its windows, or that shows a new template in half its
  windows or more; *quiet*: watched for a few windows (``quiet_after``, its
  signals judged but not raised meanwhile) and not noisy. Only a quiet
  service's logs count in root-cause analysis (:mod:`aiops.logs.clues`): they
  add to what the traces (or metrics) already blame; a noisy one's say nothing;
- *swinging*: a service whose ERROR/WARN lines (at its usual traffic) swing far
  beyond Poisson (dispersion ``noisy_dispersion``, by at least ``noisy_excess``
  lines: retry warnings in bursts). A burst of lines there is its usual, so its
  logs never raise alone, however quiet its templates; they still corroborate
  (a fault's own errors, learned while the traces relearn after a silence, make
  its service swing: that must not silence its logs). The volume of all lines is
  not asked, only that of warnings: on the TrainTicket dev day, lines per request
  swing by a dispersion of 0.3 to 1 in every busy service (each endpoint logs its
  own amount) while most services write no warning in normal operation.

The moments are learned from every window the service was watched in, also
windows it was suspected in (else a service that swings would never learn that
it swings), but a suspect window's deviation is capped at ``CAP`` standard
deviations: a real fault's first window is judged against the calm, and its
later windows teach the spread only a little.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

COUNTS = ("warn", "new", "raised")
CAP = 3.0  # standard deviations a suspect window's count may move the spread by


@dataclass(frozen=True)
class NoiseRules:
    # Share of its windows in which a service's logs alone would have raised (an EWMA: one such window
    # keeps a service noisy for about seven windows after it) above which it is noisy.
    noisy_raised: float = 0.05
    noisy_churn: float = 0.5  # new templates per window, on average, above which a service is noisy
    # Dispersion of its ERROR/WARN lines a window (var = mean + phi mean^2, at its usual traffic) above
    # which a service's warnings swing (its warnings' sd near 0.7 of their mean or more), when they spread by
    # ``noisy_excess`` lines beyond Poisson (a warning or two in one window is not a swing).
    noisy_dispersion: float = 0.5
    noisy_excess: float = 1.0
    quiet_after: int = 6  # windows watched before a service is known to be quiet (until then it may swing)


def observe(mean: dict, var: dict, key, x: float, a: float, capped: bool = False) -> None:
    """Fold count ``x`` into the EWMA ``mean``/``var`` of ``key`` at weight ``a`` (1: the first
    window); ``capped``: a suspect window, whose deviation counts at most ``CAP`` sd."""
    if key not in mean:
        mean[key], var[key] = float(x), 0.0
        return
    m, v = mean[key], var[key]
    d = x - m
    if capped:
        limit = CAP * math.sqrt(v + m + 1.0)
        d = max(-limit, min(limit, d))
    mean[key] = m + a * d
    var[key] = (1 - a) * (v + a * d * d)


def per_usual_traffic(usual: float, now: int) -> float:
    """The factor that brings a window's line counts to the service's usual traffic (its SERVER spans;
    1 for a service without traces), within 1/4..4: twice the requests log twice the lines, and a
    service whose logs follow its traffic is not noisy."""
    if usual <= 0 or now <= 0:
        return 1.0
    return max(0.25, min(4.0, usual / now))


def dispersion(mean: float, var: float) -> float:
    """phi of var = mean + phi * mean^2 (0 for a count no more spread than Poisson)."""
    return max(0.0, (var - mean) / (mean * mean)) if mean > 0 else 0.0


def tail_z(observed: float, expected: float, phi: float) -> float:
    """How far ``observed`` is above ``expected`` in standard deviations of a negative binomial of
    dispersion ``phi`` (Poisson at phi 0, +1 so that an empty baseline is not infinitely sure)."""
    return (observed - expected) / math.sqrt(expected + 1.0 + phi * expected * expected)


def moments(mean: Mapping, var: Mapping, service: str, count: str) -> tuple[float, float]:
    key = (service, count)
    return mean.get(key, 0.0), var.get(key, 0.0)


def churn(mean: Mapping, var: Mapping, service: str) -> int:
    """New templates a window of ``service`` usually shows (mean + 2 sd, rounded): its churn."""
    m, v = moments(mean, var, service, "new")
    return int(m + 2.0 * math.sqrt(v) + 0.5)


def noisy(mean: Mapping, var: Mapping, service: str, rules: NoiseRules = NoiseRules()) -> bool:
    """Do ``service``'s logs swing in normal operation: would they have raised alone, or do they show
    new templates most windows?"""
    if moments(mean, var, service, "raised")[0] >= rules.noisy_raised:
        return True
    return moments(mean, var, service, "new")[0] >= rules.noisy_churn


def swinging(mean: Mapping, var: Mapping, service: str, rules: NoiseRules = NoiseRules()) -> bool:
    """Do ``service``'s warnings come in bursts (far beyond Poisson)? Then its logs never raise alone."""
    m, v = moments(mean, var, service, "warn")
    return v - m >= rules.noisy_excess and dispersion(m, v) >= rules.noisy_dispersion


def quiet(mean: Mapping, var: Mapping, windows: int, service: str, rules: NoiseRules = NoiseRules()) -> bool:
    """Is ``service`` known to log steadily: watched for ``quiet_after`` windows and not noisy? Only
    a quiet service's logs may raise an incident alone."""
    return windows >= rules.quiet_after and not noisy(mean, var, service, rules)
