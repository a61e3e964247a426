"""What changed: which values are over-represented among an endpoint's bad spans. Pure logic (plain
data in and out, no Flask, no SQLAlchemy).

Each span is an observation: bad or good, and the (source, field, value) factors it carries: its
attributes and its resource's (``k8s.pod.name``, ``host.name``, ``service.version``, any key), and
from its columns and trace its status code, exception type, the peers its CLIENT children called
and the service that called it. A factor's ``bad_share`` is the share of bad spans that carry it,
its ``good_share`` the share of good ones.

**Bad** is an error, or a duration above the sample's own 90th percentile (:func:`slow_above`):
the comparison needs no learned baseline, so it works on a new endpoint, a replayed file or a range
long ago, and the slowest tenth of a healthy endpoint is still worth explaining (as HyperDX's
event deltas compare a selection with the rest).

**Ranking**, as HyperDX's event deltas and Coroot's comparisons put it: values seen *only* among
the bad spans first (by how many bad spans carry them), when they are on at least
:data:`ONLY_BAD_LEAD` of them; then by ``bad_share - good_share``. The floor is there because an
error is bad by definition: the ``status_code=500`` of an endpoint's usual 2 % of errors is always
"only among the bad", and would otherwise top a slowdown that one pod explains (``bench/pages.py``
saw exactly that at 1 M spans). Only
over-represented values are listed (``bad_share > good_share``), with some support: at least
:data:`MIN_BAD` bad spans and :data:`MIN_SHARE` of them. Keys whose values are nearly unique per
span (request ids, timestamps: more than half as many distinct values as spans carrying them, or
over :data:`MAX_VALUES`) are left out: every value of such a key is "seen only among the bad" and
explains nothing.

**Where**: a value every span carries is no factor (it is as common among the good), but where the
bad spans ran still matters when a service has one pod: :data:`WHERE_KEYS` values that *every* bad
span carries are given apart (``where``), so the answer names the pod and host even then.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SLOW_QUANTILE = 0.9
MIN_BAD = 2
MIN_SHARE = 0.1
ONLY_BAD_LEAD = 0.25  # share of the bad spans a value seen only among them needs to come first
MAX_VALUES = 100  # distinct values a key may have and still be compared
MAX_FACTORS = 20
WHERE_KEYS = (
    "k8s.pod.name",
    "k8s.node.name",
    "host.name",
    "container.id",
    "service.instance.id",
    "service.version",
    "k8s.deployment.name",
    "k8s.namespace.name",
    "cloud.availability_zone",
)

Factor = tuple[str, str, str]  # (source: "span" or "attribute", field, value)


@dataclass(frozen=True)
class Ranked:
    source: str
    field: str
    value: str
    bad_count: int
    good_count: int
    bad_share: float
    good_share: float
    only_bad: bool

    def to_dict(self) -> dict:
        return {
            "field": self.field,
            "value": self.value,
            "source": self.source,
            "bad_share": round(self.bad_share, 4),
            "good_share": round(self.good_share, 4),
            "bad_count": self.bad_count,
            "good_count": self.good_count,
            "only_bad": self.only_bad,
        }


@dataclass(frozen=True)
class Comparison:
    bad: int
    good: int
    factors: list[Ranked]
    where: list[Ranked]  # WHERE_KEYS values every bad span carries (the module's docstring)


def slow_above(durations: Sequence[float], quantile: float = SLOW_QUANTILE) -> float | None:
    """The duration above which a span of the sample is slow (its ``quantile``, nearest rank), or
    None for an empty sample."""
    if not durations:
        return None
    ordered = sorted(durations)
    return ordered[min(len(ordered) - 1, max(0, int(quantile * len(ordered) + 0.5) - 1))]


def text(value) -> str:
    """A value as a factor shows it (JSON's spelling of booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compare(observations: Iterable[tuple[bool, Iterable[Factor]]], limit: int = MAX_FACTORS) -> Comparison:
    """Rank the factors of ``(bad, factors)`` observations (the module's rules), best first."""
    counts: dict[Factor, list[int]] = defaultdict(lambda: [0, 0])
    bad = good = 0
    for is_bad, factors in observations:
        if is_bad:
            bad += 1
        else:
            good += 1
        for factor in set(factors):
            counts[factor][0 if is_bad else 1] += 1
    distinct: Counter = Counter()
    carried: Counter = Counter()
    for (source, field, _), (b, g) in counts.items():
        distinct[source, field] += 1
        carried[source, field] += b + g
    ranked, where = [], []
    for (source, field, value), (b, g) in counts.items():
        if source == "attribute" and field in WHERE_KEYS and b == bad > 0:
            where.append(Ranked(source, field, value, b, g, 1.0, g / good if good else 0.0, g == 0))
        key = (source, field)
        if distinct[key] > MAX_VALUES or (distinct[key] > 2 and distinct[key] * 2 > carried[key]):
            continue
        bad_share, good_share = b / bad if bad else 0.0, g / good if good else 0.0
        if b < MIN_BAD or bad_share < MIN_SHARE or bad_share <= good_share:
            continue
        ranked.append(Ranked(source, field, value, b, g, bad_share, good_share, g == 0))
    ranked.sort(
        key=lambda r: (
            not (r.only_bad and r.bad_share >= ONLY_BAD_LEAD),
            -(r.bad_share - r.good_share),  # for a value only among the bad: its bad_share
            -r.bad_count,
            r.field,
            r.value,
        )
    )
    where.sort(key=lambda r: (WHERE_KEYS.index(r.field), r.value))
    return Comparison(bad, good, ranked[:limit], where)


def span_factors(
    span, own_service: str, caller: str | None, peers: Iterable[tuple[str, bool]], attributes: dict
) -> list[Factor]:
    """The factors one span carries: its status code, exception type, endpoint (for a whole-service
    comparison, where it differs), the service that called it (another than its own), the peers
    its CLIENT children called, and every attribute."""
    out: list[Factor] = [("span", "endpoint", span.endpoint)] if getattr(span, "endpoint", None) else []
    if span.status_code is not None:
        out.append(("span", "status_code", str(span.status_code)))
    if span.exception_type:
        out.append(("span", "exception_type", span.exception_type))
    if caller and caller != own_service:
        out.append(("span", "caller", caller))
    for peer, _failed in peers:
        if peer:
            out.append(("span", "peer", peer))
    out += [("attribute", key, text(value)) for key, value in attributes.items()]
    return out
