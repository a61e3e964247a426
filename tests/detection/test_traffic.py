"""Traffic drop / missing data (aiops.detection.traffic): expected traffic from the rest of the system."""

from __future__ import annotations

from aiops.detection import traffic
from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import WHOLE_SERVICE, Anomaly, Thresholds, detect, window_stats
from aiops.kinds import AnomalyType
from aiops.settings import Settings
from tests.support.factories import client, span

CFG = traffic.Config.from_settings(Settings.load({"AIOPS_SLOW_MIN_WINDOWS": "3"}))
TH = Thresholds.from_settings(Settings())
CHECKOUT, PAYMENT, INVENTORY = ("shop", "checkout"), ("shop", "payment"), ("shop", "inventory")


def known(ratio: float, windows: int = 10) -> BaselineValue:
    return BaselineValue(20.0, samples=500, windows=windows, traffic_ratio=ratio, traffic_windows=windows)


# payment and inventory each get one request per checkout: half of the others' requests
BASELINES = {CHECKOUT: known(0.5), PAYMENT: known(0.5), INVENTORY: known(0.5)}


def checkouts(n: int, payment: str = "answered", timeout: bool = False) -> list:
    spans = []
    for _ in range(n):
        root = span("checkout", 40.0, status_code=504 if timeout else (502 if payment == "refused" else 200))
        spans += [root, span("inventory", 10.0, parent=root), client(root, "inventory")]
        if payment == "answered":
            spans += [client(root, "payment"), span("payment", 20.0, parent=root)]
        elif payment == "refused":
            spans.append(client(root, "payment", status_code=None, exception_type="ConnectionError"))
    return spans


def run(spans, baselines=BASELINES, already=()):
    return traffic.detect(window_stats(spans), baselines, traffic.calls_to(spans), CFG, list(already))


def test_an_endpoint_its_callers_cannot_reach_is_a_traffic_drop():
    found = run(checkouts(20, payment="refused"))
    assert [(a.key, a.type) for a in found] == [(PAYMENT, AnomalyType.TRAFFIC_DROP)]
    assert found[0].baseline == 20.0  # 0.5 x 40 requests to the others
    assert len(found[0].evidence) == 20 and "20 calls to it got no answer" in found[0].message


def test_a_silent_endpoints_refused_calls_are_its_drop_not_a_dependency_failure():
    """The unanswered-calls rule names payment too; the drop tells the story (a stopped endpoint),
    so that anomaly goes, and only for the silent service."""
    spans = checkouts(20, payment="refused")
    [calls] = [a for a in detect(window_stats(spans), BASELINES, TH) if a.key == PAYMENT]
    assert calls.message.startswith("Calls failing: 20 of 20")
    drop = run(spans)
    elsewhere = Anomaly("other", "/x", AnomalyType.ERROR, 1.0, 0.0, 9, "Calls failing: 9 of 9 calls")
    own = Anomaly("shop", "checkout", AnomalyType.ERROR, 1.0, 0.0, 20, "Error spike: 20 of 20")
    assert traffic.explained([own, calls, elsewhere, *drop]) == [own, elsewhere, *drop]
    assert traffic.explained([own, calls, elsewhere]) == [own, calls, elsewhere]


def test_normal_traffic_and_total_silence_are_calm():
    assert run(checkouts(20)) == []
    assert run([]) == []  # nothing at all arrived: the telemetry stopped, not one endpoint


def test_zero_is_significant_only_with_enough_expected_requests():
    assert run(checkouts(5, payment="refused")) == []  # 5 expected: could be chance
    assert run(checkouts(10, payment="refused"))  # 10 expected, none seen


def test_the_expected_traffic_needs_history():
    young = {**BASELINES, PAYMENT: known(0.5, windows=2)}
    assert run(checkouts(20, payment="refused"), young) == []


def test_a_callee_starved_by_its_failing_caller_is_not_a_drop():
    """Checkout times out on inventory before it calls payment: that is inventory's incident."""
    spans = checkouts(20, payment="none", timeout=True)
    timeouts = [Anomaly("shop", "checkout", AnomalyType.TIMEOUT, 20.0, None, 20, "Timeout")]
    assert run(spans, already=timeouts) == []
    assert [a.key for a in run(spans)] == [PAYMENT]  # nothing else explains it: a drop


def test_a_whole_service_that_stops_reporting_is_one_anomaly_for_the_service():
    front = [span("home", 10.0, service="web") for _ in range(40)]
    baselines = {("web", "home"): known(1.0), ("api", "a"): known(0.5), ("api", "b"): known(0.5)}
    found = run(front, baselines)
    assert [(a.key, a.type) for a in found] == [(("api", WHOLE_SERVICE), AnomalyType.TRAFFIC_DROP)]
    assert found[0].baseline == 40.0 and "api stopped reporting" in found[0].message


def test_the_ratio_learns_every_window_with_traffic_but_not_while_silent():
    b = known(0.5)
    assert traffic.learn(b, 0, 0, CFG, "normal", silent=False) == b  # the others were silent too
    assert traffic.learn(b, 0, 40, CFG, "normal", silent=True) == b  # frozen while flagged
    learned = traffic.learn(b, 10, 40, CFG, "normal", silent=False)
    assert learned.traffic_ratio == CFG.alpha * 0.25 + (1 - CFG.alpha) * 0.5
    assert learned.traffic_windows == 11
    assert traffic.learn(b, 10, 40, CFG, "reseed", silent=False).traffic_ratio == 0.25
