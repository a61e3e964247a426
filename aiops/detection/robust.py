"""Robust baselines of log durations, and the evidence gate that judges a window against them.

Pure logic. Why log durations: latency is multiplicative (a 3 ms call and a
300 ms call jitter by a similar *factor*), so one spread fits every series.
Why robust statistics: a window's median and MAD ignore the odd 700 ms
outlier that a mean would chase. Why a learned tail rate: some series are
heavy-tailed by nature (a pooled connection opened now and then), so the gate
asks whether a window has *more* strongly slow values than the series
usually has, not merely whether it has any.

One :class:`LogBaseline` per series: an endpoint's self time, an edge's
network gap, an edge's call duration. A window is judged value by value
(z = spreads above the typical log value), and a :class:`Shift` collects the
strongly slow ones. It is significant when (see :class:`Rules`):

- the strong values are at least ``min_strong``, at as many distinct moments
  (a garbage-collection pause slows every request in flight at once: one
  piece of evidence, however many spans), and their capped z add up to
  ``min_evidence`` (two calls 100x slower count),
- their median excess over typical is at least ``min_excess_ms``,
- and so many moments *this* slow are unlikely under the series' own tail
  (Poisson tail below ``max_p``): three slow calls out of three are news,
  three out of three thousand are not.

The tail is learned at two levels, the share of values at ``z`` or more and
at ``2 z`` or more; beyond ``z`` rarity falls off as the power law those two
fix (between ``1`` and ``max_power``): a clean series' far tail is very thin,
a series whose outliers are all huge keeps a fat one. So two calls 100x slower
on a clean series pass the gate where two calls 2x slower do not: the gate
weighs the size of a shift, not only the count. The test is run at the k-th
largest z for a few k and corrected for trying them. ``max_p`` is small
because hundreds of series are tested every cycle.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

MAX_Z = 10.0  # one extreme value must not outvote many moderate ones


@dataclass(frozen=True)
class Rules:
    z: float = 3.0  # a value is strongly slow at this many spreads above typical
    min_spread: float = 0.35  # floor of the spread (log units): x1.4 is never "strongly" slow
    # Baseline samples before values are judged. Few, because a quiet edge must be judged before
    # a fault teaches it (an unready baseline learns every window); a young series pays for it in
    # its tail rate (:meth:`LogBaseline.rarity`).
    min_samples: int = 4
    min_strong: int = 2  # strongly slow values a shift needs, at as many distinct moments
    moment_s: float = 1.0  # values starting within one such second may share one cause (a pause)
    min_evidence: float = 12.0  # and the sum of their capped z
    min_excess_ms: float = 20.0  # and their median excess over typical (jitter is not a fault)
    max_p: float = 1e-6  # chance of that many values that slow under the series' own tail
    mid_z: float = 1.645  # a value past the series' normal p95 (the spread test)
    mid_share: float = 0.15  # share of moments assumed past it normally (3x 5 %: tails are fatter)
    min_tail: float = 0.005  # floor of a series' tail rate at z: no series is perfectly clean
    max_power: float = 4.0  # steepest fall of rarity beyond z: P(Z >= x) = tail * (z / x) ** power
    warmup_windows: int = 10  # windows averaged equally before the EWMA takes over
    mature_samples: int = 32  # from then on a series' own tail (and an edge's own level) is trusted alone


@dataclass(frozen=True)
class LogBaseline:
    """Typical log(1 + ms) of a series, its robust spread, and its usual shares of values at
    ``z`` (``tail``) and ``2 z`` (``far``) spreads or more above typical."""

    center: float
    var: float
    tail: float = 0.0
    far: float = 0.0
    samples: int = 0
    windows: int = 0

    @property
    def typical_ms(self) -> float:
        return math.expm1(self.center)

    def spread(self, rules: Rules) -> float:
        return max(math.sqrt(self.var), rules.min_spread)

    def z(self, value_ms: float, rules: Rules) -> float:
        return (math.log1p(max(value_ms, 0.0)) - self.center) / self.spread(rules)

    def ready(self, rules: Rules) -> bool:
        return self.samples >= rules.min_samples

    def rarity(self, rules: Rules) -> tuple[float, float]:
        """(share at ``z`` or more, power of the fall beyond): ``P(Z >= x) = share * (z / x) ** power``.

        A young series (fewer than ``mature_samples``), seen ``n`` times, may have a tail as fat as
        ``1 / (n + 1)`` for all its values show (the rule of succession): so it needs more, or much
        later, values to convince. An older one is judged by its learned tail alone, as before the
        young were judged at all (one far call a window on a quiet edge is evidence that adds up)."""
        young = self.samples < rules.mature_samples
        tail = max(self.tail, rules.min_tail, 1.0 / (self.samples + 1) if young else 0.0)
        far = min(tail, max(self.far, tail / 2 ** rules.max_power))
        return tail, max(1.0, math.log2(tail / far))


def _shares(logs: list[float], center: float, spread: float, rules: Rules) -> tuple[float, float]:
    near, far = center + rules.z * spread, center + 2 * rules.z * spread
    return sum(1 for x in logs if x >= near) / len(logs), sum(1 for x in logs if x >= far) / len(logs)


def _median(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def learn(current: LogBaseline | None, values_ms: list[float], alpha: float,
          rules: Rules, weight: float | None = None) -> LogBaseline | None:
    """Fold one normal window into the baseline: its median, MAD and share of strong values.

    The first ``warmup_windows`` windows are averaged with equal weight per
    value, so a short normal period teaches as much as it can; then the EWMA
    (``alpha``, scaled down for windows with few values) follows slow drift.
    ``weight`` overrides both (relearning after a silence).
    """
    if not values_ms:
        return current
    logs = [math.log1p(max(v, 0.0)) for v in values_ms]
    center = _median(logs)
    mad_var = (1.4826 * _median([abs(x - center) for x in logs])) ** 2
    n = len(logs)
    if current is None or current.windows == 0:  # the first window seeds it all, its own yardstick
        tail, far = _shares(logs, center, max(math.sqrt(mad_var), rules.min_spread), rules)
        return LogBaseline(center, mad_var, tail, far, n, 1)
    tail, far = _shares(logs, current.center, current.spread(rules), rules)
    if weight is not None:
        a = weight
    elif current.windows < rules.warmup_windows:
        a = n / (current.samples + n)
    else:
        a = alpha * min(1.0, n / 20)
    # Between-window drift counts as spread too, so a wandering series gets a wide band.
    delta = center - current.center
    return LogBaseline(
        center=current.center + a * delta,
        var=(1 - a) * (current.var + a * delta * delta) + a * mad_var,
        tail=(1 - a) * current.tail + a * tail,
        far=(1 - a) * current.far + a * far,
        samples=current.samples + n,
        windows=current.windows + 1,
    )


def reseed(current: LogBaseline | None, values_ms: list[float], rules: Rules) -> LogBaseline:
    """Re-centre a series on this window after a long silence, when the old level may describe a
    system that no longer exists. Its spread and tails are kept where wider: one window is too
    short to see a series' rare slow values (its garbage collector's pauses, say), and they are a
    property of the service, not of the hour. The sample count is kept so it is judged at once."""
    fresh = learn(None, values_ms, 0.0, rules)
    if current is None:
        return fresh
    return replace(fresh, var=max(fresh.var, current.var), tail=max(fresh.tail, current.tail),
                   far=max(fresh.far, current.far), samples=fresh.samples + current.samples)


def learnable(values_ms: list[float], current: LogBaseline | None, rules: Rules) -> bool:
    """May this window teach the baseline? Not if its median is well above typical, even
    when too few values were strongly slow for a verdict: a fault must never become normal."""
    if not values_ms:
        return False
    if current is None or not current.ready(rules):
        return True
    return current.z(_median(values_ms), rules) < rules.z / 2


def poisson_tail(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam): the chance of k strong values by the series' usual tail."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    term = math.exp(-lam)
    below = 0.0
    for i in range(k):
        below += term
        term *= lam / (i + 1)
    if below < 0.999:
        return max(0.0, 1.0 - below)
    # Far in the tail: sum the upper terms directly (1 - below loses every digit).
    total, term = 0.0, math.exp(k * math.log(lam) - lam - math.lgamma(k + 1))
    for i in range(k, k + 200):
        total += term
        term *= lam / (i + 1)
        if term < total * 1e-12:
            break
    return total


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the chance of k failures in n requests at the usual rate."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * math.log(p) + (n - i) * math.log1p(-p) for i in range(k, n + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(x - top) for x in logs))


MAX_SURPRISE = 100.0


def surprise(p: float) -> float:
    """How unlikely evidence is under the normal baseline, in decimal digits (-log10 p, capped): one
    scale on which every rule's evidence is ranked (a p of 1e-6, the gate, is 6)."""
    return MAX_SURPRISE if p <= 0 else min(MAX_SURPRISE, max(0.0, -math.log10(p)))


@dataclass
class Shift:
    """One series' verdict for a window (or an entry's, over the series of its spans)."""

    key: tuple
    judged: int = 0
    expected: float = 0.0  # strong values the tail rates predict
    power: float = 0.0  # sum of the judged values' tail powers (the mean is used)
    strong: list = field(default_factory=list)  # (span, value_ms, typical_ms, z)
    above: int = 0  # judged values above their typical: about half of them when nothing moved
    beyond: list = field(default_factory=list)  # values past the series' normal p95 (as ``strong``)
    instants: set = field(default_factory=set)  # the moments with judged values
    widened: bool = False  # ``strong`` holds the values past the p95 (:meth:`settle`)

    @property
    def moved(self) -> bool:
        """Most values sit above typical, more than chance allows (a sign test at z 2.33, about
        p 0.01): the series slowed as a whole, even if few values are strongly slow."""
        return self.judged > 0 and self.above - self.judged / 2 > 2.33 * math.sqrt(self.judged / 4)

    @property
    def score(self) -> float:
        """Sum of the strong values' capped z: how many calls were how much slower."""
        return sum(z for *_, z in self.strong)

    @property
    def observed_ms(self) -> float:
        return _median([v for _, v, _, _ in self.strong])

    @property
    def baseline_ms(self) -> float:
        return _median([t for _, _, t, _ in self.strong])

    @property
    def excess_ms(self) -> float:
        return _median([v - t for _, v, t, _ in self.strong])

    @property
    def onset(self) -> float | None:
        """Start of the earliest strongly slow span: when the shift began in this window."""
        return min((s.start_time for s, *_ in self.strong), default=None)

    def moments(self, rules: Rules) -> list[float]:
        """The strongest z of each moment (``moment_s`` of start time) with strong values.

        Values slowed by one event at one instant (a garbage-collection pause
        stalls every request in flight) are one piece of evidence, not many;
        a fault shows at many moments.
        """
        best: dict[int, float] = {}
        for span, _, _, z in self.strong:
            moment = int(span.start_time // rules.moment_s)
            best[moment] = max(z, best.get(moment, 0.0))
        return sorted(best.values(), reverse=True)

    def p_value(self, rules: Rules) -> float:
        """Chance of this many moments this slow under the tails (min over k, corrected)."""
        zs = self.moments(rules)
        ks = sorted({min(len(zs), max(rules.min_strong, math.ceil(1.5 ** j)))
                     for j in range(64) if 1.5 ** j < 2 * len(zs)})
        power = self.power / self.judged if self.judged else 1.0
        best = 1.0
        for k in ks:
            lam = self.expected * (rules.z / zs[k - 1]) ** power
            best = min(best, poisson_tail(k, lam))
        return min(1.0, best * len(ks))

    def significant(self, rules: Rules) -> bool:
        return self.late(rules) or self.spread_p(rules) <= rules.max_p

    def late(self, rules: Rules) -> bool:
        """Enough strongly slow values, unlikely enough under the series' own tail."""
        return (
            not self.widened
            and len(self.strong) >= rules.min_strong
            and self.score >= rules.min_evidence
            and self.excess_ms >= rules.min_excess_ms
            and len(self.moments(rules)) >= rules.min_strong
            and self.p_value(rules) <= rules.max_p
        )

    def spread_p(self, rules: Rules) -> float:
        """Chance that this many moments sit past the normal p95 (a binomial test at
        ``Rules.mid_share``): the whole distribution moved, even where no value is strongly slow
        against a wide band. Counted in moments (one pause is one), needs most of them past it
        and their median excess over typical at least ``min_excess_ms``; 1.0 when it does not."""
        past = {int(s.start_time // rules.moment_s) for s, *_ in self.beyond}
        n = len(self.instants)
        if len(past) < rules.min_strong or 2 * len(past) <= n:
            return 1.0
        if _median([v - t for _, v, t, _ in self.beyond]) < rules.min_excess_ms:
            return 1.0
        return binomial_tail(len(past), n, rules.mid_share)

    def strength(self, rules: Rules) -> float:
        """The evidence as :func:`surprise` (decimal digits), by whichever test is the stronger."""
        p = min(self.p_value(rules) if self.late(rules) else 1.0, self.spread_p(rules))
        return surprise(p)

    def settle(self, rules: Rules) -> Shift:
        """A shift of the whole distribution, with too few strongly slow values for :meth:`late`,
        shows by its values past the p95: they become the evidence (spans, score, onset)."""
        if not self.late(rules) and self.spread_p(rules) <= rules.max_p:
            self.strong, self.widened = list(self.beyond), True
        return self

    def merge(self, earlier: Shift) -> Shift:
        """This window's verdict with an earlier window's evidence added (a quiet series
        shows one slow call per window: its evidence adds up over a few)."""
        self.judged += earlier.judged
        self.above += earlier.above
        self.expected += earlier.expected
        self.power += earlier.power
        self.strong = earlier.strong + self.strong
        self.beyond = earlier.beyond + self.beyond
        self.instants |= earlier.instants
        return self

    def spans(self) -> list:
        return [s for s, *_ in self.strong]


def _added(total: float, step: float, times: int) -> float:
    """``total`` with ``step`` added ``times`` times, one addition after the other: what a running
    ``+=`` per value gives, to the last bit (``times * step`` may round otherwise)."""
    for _ in range(times):
        total += step
    return total


def judge_all(items: Iterable[tuple], baselines: Mapping, rules: Rules) -> tuple[dict, dict]:
    """Judge ``(baseline key, verdict key, span, value_ms)`` items: (verdicts, values per baseline key).

    The two keys differ where many series add up to one verdict (the
    operations of one service entry); values are kept for learning. This runs
    over every span of every cycle, so the items are first grouped by both
    keys: each series' cut-off is computed once, and a group's counts are
    added at once (in the order a value-by-value loop adds them, so every
    sum is the same to the last bit); only values past the series' normal
    p95 are looked at one by one.
    """
    pending: dict = defaultdict(dict)  # baseline key -> verdict key -> ([span], [value]), in item order
    for base_key, verdict_key, span, value in items:
        groups = pending[base_key]
        group = groups.get(verdict_key)
        if group is None:
            group = groups[verdict_key] = ([], [])
        group[0].append(span)
        group[1].append(value)
    verdicts: dict = {}
    moment = rules.moment_s
    for base_key, groups in pending.items():
        base = baselines.get(base_key)
        if base is None or not base.ready(rules):
            continue
        center, spread, typical = base.center, base.spread(rules), base.typical_ms
        cutoff = math.expm1(center + rules.z * spread)
        mid = math.expm1(center + rules.mid_z * spread)
        tail, power = base.rarity(rules)
        for verdict_key, (spans, values) in groups.items():
            verdict = verdicts.get(verdict_key)
            if verdict is None:
                verdict = verdicts[verdict_key] = Shift(verdict_key)
            verdict.judged += len(values)
            verdict.expected = _added(verdict.expected, tail, len(values))
            verdict.power = _added(verdict.power, power, len(values))
            verdict.above += sum(1 for value in values if value > typical)
            verdict.instants.update([int(span.start_time // moment) for span in spans])
            for span, value in zip(spans, values, strict=True):
                if value >= mid:
                    z = min((math.log1p(value) - center) / spread, MAX_Z)
                    verdict.beyond.append((span, value, typical, z))
                    if value >= cutoff:
                        verdict.strong.append((span, value, typical, z))
    # Per baseline key, its values (grouped by verdict: learning sorts and counts them).
    values = {key: [v for _, vs in groups.values() for v in vs] for key, groups in pending.items()}
    return verdicts, values
