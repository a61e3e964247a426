"""Logs judged against each service's own variability (aiops.logs.noise, signals, clues): a service
whose logs swing in normal operation raises nothing from its swings, a quiet one still speaks, and a
log-only candidate never outranks the traces' answer."""

from __future__ import annotations

import random

import pytest

from aiops.logs import clues as logrca
from aiops.logs import noise
from aiops.logs import signals as ls
from aiops.logs.mining import TemplateMiner

RULES = ls.LogRules()
WORDS = "cache shard lease token batch cursor segment pool queue buffer ledger quota snapshot bucket".split()


def test_the_spread_of_a_count_is_learned_and_a_suspect_window_moves_it_little():
    mean, var = {}, {}
    for x in (10, 10, 10, 10):
        noise.observe(mean, var, "k", x, 0.2)
    assert mean["k"] == pytest.approx(10.0) and var["k"] == pytest.approx(0.0)
    noise.observe(mean, var, "k", 1000, 0.2, capped=True)  # a fault's window: at most CAP sd
    assert mean["k"] < 13.0
    for x in (10, 11, 9, 10, 12, 9):
        noise.observe(mean, var, "calm", x, 0.3)
    for x in (10, 40, 3, 25, 2, 30):
        noise.observe(mean, var, "swinging", x, 0.3)
    assert noise.dispersion(mean["calm"], var["calm"]) == 0.0  # no more spread than Poisson
    assert noise.dispersion(mean["swinging"], var["swinging"]) > 0.3  # beyond what makes a service noisy


def test_a_negative_binomial_tail_needs_a_bigger_change_from_a_swinging_count():
    assert noise.tail_z(40, 10, 0.0) > 3  # Poisson: 40 warnings where 10 are usual is news
    assert noise.tail_z(40, 10, 1.0) < 3  # a count whose sd is its mean: not yet


def rec(t, service, body, severity=9, trace_id=None):
    return ls.LogRecord(t, service, severity, body, trace_id, None)


def window(t0: float, rng: random.Random, churn: bool = True) -> list[ls.LogRecord]:
    """30 s of two services: ``quiet`` logs the same lines every window; ``noisy`` swings in volume
    (and in its warnings) and shows templates never seen before in about a third of its windows."""
    lines = [rec(t0 + i, "quiet", f"order {i} created") for i in range(20)]
    lines += [rec(t0 + 1, "quiet", "cache miss for item 3", severity=13)]
    swing = rng.lognormvariate(0.0, 0.9)
    lines += [rec(t0 + i % 30, "noisy", f"step done for item {i}") for i in range(int(20 * swing))]
    lines += [
        rec(t0 + i % 30, "noisy", f"retrying call attempt {i}", severity=13) for i in range(int(4 * swing))
    ]
    if churn and rng.random() < 0.4:
        words = " ".join(rng.sample(WORDS, rng.randint(4, 8)))
        level = rng.choice((9, 13, 13, 17))
        lines += [
            rec(t0 + 2 + k, "noisy", f"{words} id {k}", severity=level) for k in range(rng.randint(3, 8))
        ]
    return lines


def replay(windows: int, seed: int = 7):
    """Judge and learn ``windows`` windows as the cycle does; returns the memory and every window's
    log-only anomalies."""
    miner, base, rng = TemplateMiner(), ls.LogBaselines(), random.Random(seed)
    raised = []
    for w in range(windows):
        lines = window(w * 30.0, rng)
        seen = ls.judge(lines, miner, base, RULES)
        raised.append(logrca.anomalies(seen, {s: (s, "") for s in seen.suspects}, [], set()))
        ls.learn(base, seen, {r.service for r in lines} | set(base.windows), RULES, skip=seen.suspects)
    return miner, base, rng, raised


def test_a_service_whose_logs_swing_in_normal_operation_is_noisy_and_raises_nothing_alone():
    miner, base, rng, raised = replay(40)
    assert base.quiet("quiet")
    assert [a for window_raised in raised for a in window_raised] == []  # 40 windows, nothing raised


def test_a_quiet_service_still_raises_on_a_new_error_and_a_noisy_one_only_corroborates():
    miner, base, rng, _ = replay(20)
    lines = window(600.0, rng, churn=False)
    lines += [rec(601.0 + i, "quiet", f"ledger {i} refused the write", severity=17) for i in range(4)]
    lines += [rec(601.0 + i, "noisy", f"ledger {i} refused the write", severity=17) for i in range(4)]
    seen = ls.judge(lines, miner, base, RULES)
    assert "quiet" not in seen.noisy
    raised = logrca.anomalies(seen, {s: (s, "") for s in seen.suspects}, [], set())
    assert [a.service for a in raised] == ["quiet"]


def test_a_noisy_services_usual_churn_of_new_templates_is_no_signal():
    miner, base, rng, _ = replay(30)
    assert noise.churn(base.count_mean, base.count_var, "noisy") >= 1
    assert noise.churn(base.count_mean, base.count_var, "quiet") == 0
    one_new = window(900.0, rng, churn=False) + [
        rec(901.0 + k, "noisy", f"shard quota pool idle id {k}") for k in range(4)
    ]
    seen = ls.judge(one_new, miner, base, RULES)
    assert not [s for s in seen.suspects.get("noisy", ls.LogSuspect("noisy")).signals if s.kind == "new"]


def test_a_service_whose_logs_would_have_raised_alone_is_noisy_for_a_while():
    mean, var = {}, {}
    noise.observe(mean, var, ("api", "raised"), 0.0, 1.0)
    assert noise.quiet(mean, var, 6, "api") and not noise.quiet(mean, var, 5, "api")  # watched long enough
    noise.observe(mean, var, ("api", "raised"), 1.0, 0.2)
    assert noise.noisy(mean, var, "api")
    for _ in range(8):
        noise.observe(mean, var, ("api", "raised"), 0.0, 0.2)
    assert noise.quiet(mean, var, 20, "api")


def test_logs_add_only_to_a_candidate_the_traces_name():
    traces = {("front", "order"): 0.7, ("mid", "price"): 0.3}
    logs = {("back", "rates"): 40.0}
    assert logrca.blend(traces, logs, logs_only=False) == traces  # a candidate only the logs name: none
    assert logrca.blend(traces, {}, logs_only=False) == traces  # no logs: the traces' arithmetic, exactly
    corroborated = logrca.blend(traces, {("mid", "price"): 40.0, **logs}, logs_only=False)
    assert set(corroborated) == set(traces)
    assert max(corroborated, key=corroborated.get) == ("mid", "price")  # logs add to a trace-backed one
    clear = {("front", "order"): 0.85, ("mid", "price"): 0.1, ("db", "query"): 0.05}
    lifted = logrca.blend(clear, {("mid", "price"): 7.0}, logs_only=False)
    assert max(lifted, key=lifted.get) == ("front", "order")  # loud logs do not overturn a clear leader
    assert lifted[("mid", "price")] > clear[("mid", "price")] and sum(lifted.values()) == pytest.approx(1.0)
    alone = logrca.blend({("x", "y"): 1.0}, logs, logs_only=True)  # an anomaly the logs raised themselves
    assert alone[("back", "rates")] == pytest.approx(0.5)


def test_a_service_whose_warnings_come_in_bursts_swings():
    mean, var = {}, {}
    for x in (0, 12, 1, 0, 9, 2, 0, 15):  # retry warnings in bursts: sd above their mean
        noise.observe(mean, var, ("batch", "warn"), x, 0.2)
    for x in (4, 5, 3, 4, 6, 4, 5, 3):  # a warning or so per request, steady
        noise.observe(mean, var, ("api", "warn"), x, 0.2)
    for x in (0, 0, 0, 1, 0, 0, 0, 0):  # one warning in eight windows: no swing
        noise.observe(mean, var, ("rare", "warn"), x, 0.2)
    assert noise.swinging(mean, var, "batch") and not noise.noisy(mean, var, "batch")  # raises nothing alone
    assert not noise.swinging(mean, var, "api") and not noise.swinging(mean, var, "rare")
