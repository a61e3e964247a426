"""How cycles learn and carry evidence, through the database: baselines after a long silence
(AIOPS_REBASELINE_AFTER: re-centred on the first window and relearned for AIOPS_RELEARN_FOR
seconds, raising nothing), and a quiet series' evidence carried from window to window."""

from __future__ import annotations

import random
import uuid

import pytest

from aiops.detection import robust as lb
from aiops.jobs.cycle import run_claimed
from aiops.settings import settings_of
from telemetry import store
from telemetry.columns import KIND_CLIENT, KIND_SERVER
from telemetry.db import db
from tests.support.factories import span_row

RULES = lb.Rules()


def _rows(start: float, n: int, work_ms: float, gap_ms: float = 1.0, seed: int = 0) -> list[tuple]:
    """``n`` calls front -> back; back's own work is ``work_ms`` (x jitter)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        t, trace = start + i * 0.25, uuid.uuid4().hex
        ids = [uuid.uuid4().hex[:16] for _ in range(3)]
        back = work_ms * rng.uniform(0.8, 1.2)
        call = back + gap_ms * rng.uniform(0.8, 1.2)
        values = [
            dict(span_id=ids[0], parent_span_id=None, service="front", endpoint="/home", kind=KIND_SERVER,
                 start_time=t, duration_ms=call + 3.0),
            dict(span_id=ids[1], parent_span_id=ids[0], service="front", endpoint="GET", kind=KIND_CLIENT,
                 start_time=t + 0.001, duration_ms=call, peer="back"),
            dict(span_id=ids[2], parent_span_id=ids[1], service="back", endpoint="/data", kind=KIND_SERVER,
                 start_time=t + 0.001 + gap_ms / 2000, duration_ms=back),
        ]
        rows += [span_row(trace_id=trace, method="GET", status_code=200, error=False, **v) for v in values]
    return rows


def _cycle(app, rows, now):
    with app.app_context():
        store.insert_spans(db.engine, rows)
        return run_claimed(settings_of(app), force=True, now=now)


@pytest.mark.parametrize("gap_hours, raises", [(0.1, True), (5.0, False)])
def test_the_first_window_after_a_long_silence_teaches_and_raises_nothing(app, gap_hours, raises):
    t = 1_000_000.0
    for w in range(6):
        assert _cycle(app, _rows(t + 30 * w, 100, 20.0, seed=w), t + 30 * (w + 1))["anomalies"] == []
    later = t + 180 + gap_hours * 3600
    first = _cycle(app, _rows(later, 100, 200.0, seed=10), later + 30)  # 10x slower
    assert first["learning"] == ("normal" if raises else "reseed")
    assert bool(first["anomalies"]) is raises
    assert bool(first["incidents_opened"]) is raises
    if raises:
        return
    second = _cycle(app, _rows(later + 30, 100, 200.0, seed=11), later + 60)  # within AIOPS_RELEARN_FOR
    assert second["learning"] == "relearn" and second["anomalies"] == []
    # The new level is the new normal; a fault on top of it is still seen.
    third = _cycle(app, _rows(later + 60, 100, 200.0, seed=12), later + 120)
    assert third["learning"] == "normal" and third["anomalies"] == [], third
    shifted = _cycle(app, _rows(later + 120, 100, 2000.0, seed=13), later + 150)
    assert {a["service"] for a in shifted["anomalies"]} >= {"back"}, shifted


def test_reseed_recentres_but_keeps_the_tails_it_knew():
    old = lb.LogBaseline(center=1.0, var=0.2, tail=0.05, far=0.04, samples=500, windows=20)
    new = lb.reseed(old, [100.0] * 30, RULES)
    assert abs(new.typical_ms - 100.0) < 1e-9
    assert (new.var, new.tail, new.far) == (0.2, 0.05, 0.04)
    assert new.samples == 530 and new.windows == 1


def test_after_forget_last_data_the_next_window_relearns(app):
    """What the replay does between files: the next recording starts like data after a silence."""
    from aiops.jobs.cycle import forget_last_data

    t = 2_000_000.0
    for w in range(4):
        _cycle(app, _rows(t + 30 * w, 60, 20.0, seed=w), t + 30 * (w + 1))
    with app.app_context():
        forget_last_data()
    resumed = _cycle(app, _rows(t + 120, 60, 200.0, seed=9), t + 150)
    assert resumed["learning"] == "reseed" and resumed["anomalies"] == []


def test_a_quiet_callee_delayed_once_per_window_is_found_in_the_second(app):
    t = 3_000_000.0
    for w in range(8):
        assert _cycle(app, _rows(t + 30 * w, 10, 20.0, seed=w), t + 30 * (w + 1))["anomalies"] == []
    found = []
    for w in range(8, 10):
        start = t + 30 * w
        rows = _rows(start, 12, 20.0, seed=w) + _rows(start + 7 + w, 1, 20.0, gap_ms=400.0, seed=w)
        found.append(_cycle(app, rows, start + 30)["anomalies"])
    assert found[0] == [], found  # one slow call: not enough alone
    network = [a for a in found[1] if a["message"].startswith("Network")]
    assert [(a["service"], a["endpoint"]) for a in network] == [("back", "/data")], found[1]


def test_carried_evidence_keeps_its_sign_test(app):
    """Carried to the next window, a verdict keeps how many of its values sat above typical: merged
    without them, a starved entry's sign test would fail (34 judged, only this window's 16 above)."""
    import json

    from aiops.jobs.cycle import _pending_in, _pending_out

    t = 4_000_000.0
    rows = _rows(t, 3, 20.0)
    with app.app_context():
        store.insert_spans(db.engine, rows)
        stored = store.spans_by_id(range(1, 10))
        strong = [(s, 80.0, 20.0, 4.0) for s in stored.values() if s.service == "back"]
        carried = lb.Shift(("back", "/data"), judged=18, expected=0.5, power=3.0, strong=strong, above=17)
        saved = json.loads(json.dumps(_pending_out({carried.key: carried}, {}, None, t + 1)))
        [back] = _pending_in(saved, t + 2, horizon=30.0)[0].values()
    assert (back.judged, back.above, len(back.strong)) == (18, 17, 3)
    assert back.moved


def test_a_span_stored_a_cycle_after_its_children_keeps_its_own_time(app):
    """A service exports its spans as they end: a long request's calls can land a batch (and a cycle)
    before the request's own span. Judged without them, its self time would count the calls."""
    from telemetry.columns import SPAN_FIELDS

    service, kind = SPAN_FIELDS.index("service"), SPAN_FIELDS.index("kind")
    t = 5_000_000.0
    for w in range(6):
        assert _cycle(app, _rows(t + 30 * w, 60, 20.0, seed=w), t + 30 * (w + 1))["anomalies"] == []
    start = t + 180
    rows = _rows(start, 60, 20.0, seed=7)
    entries = [r for r in rows if r[service] == "front" and r[kind] == KIND_SERVER]
    assert _cycle(app, [r for r in rows if r not in entries], start + 30)["anomalies"] == []
    late = _cycle(app, entries, start + 60)
    assert late["spans"] == 60 and late["anomalies"] == [], late["anomalies"]


def test_the_product_s_own_spans_during_a_silence_are_not_data(app):
    """A worker alone records a span per cycle (telemetry.work_spans) and a dashboard polls: those
    spans of the ignored service "aiops" must not hide a silence of the analysed services."""
    t = 3_000_000.0
    for w in range(4):
        _cycle(app, _rows(t + 30 * w, 60, 20.0, seed=w), t + 30 * (w + 1))
    quiet = t + 120 + 2 * 3600  # two hours on, only the product's own spans
    own = [span_row(trace_id=uuid.uuid4().hex, span_id=uuid.uuid4().hex[:16], service="aiops",
                    endpoint="detection cycle", kind=1, error=False, start_time=quiet, duration_ms=3.0)]
    assert _cycle(app, own, quiet + 30)["learning"] == "normal"
    resumed = _cycle(app, _rows(quiet + 60, 60, 200.0, seed=9), quiet + 90)
    assert resumed["learning"] == "reseed" and resumed["anomalies"] == []


def test_a_process_learns_on_from_the_cycles_another_process_ran(app, app_factory):
    """Each process keeps the baselines its last cycle committed, but a cycle run meanwhile by
    another (the web's, on demand) moved the store's cycle count: the next starts from the tables."""
    from aiops.store.models import SignalBaseline

    web = app_factory()
    t = 6_000_000.0
    for w, runner in enumerate([app, app, web, app, web, web, app]):
        assert _cycle(runner, _rows(t + 30 * w, 60, 20.0, seed=w), t + 30 * (w + 1))["anomalies"] == []
    with app.app_context():
        series = db.session.get(SignalBaseline, ("self", "back", "/data"))
        assert (series.windows, series.samples) == (7, 7 * 60)


def test_baselines_read_before_another_cycle_committed_are_not_kept():
    """A cycle that overran its lease while another committed: what it learned is not the store's."""
    from aiops.jobs.baselines import Remembered

    memory = Remembered()
    memory.keep({}, {}, read_at=4, committed_at=6)
    assert memory.cycles is None
    memory.keep({}, {}, read_at=4, committed_at=5)
    assert memory.cycles == 5


def _best_effort(start: float, fail: str | None, seed: int) -> list[tuple]:
    """Busy front -> back traffic, and two requests that also ask ``recs`` for suggestions, answered
    200 with or without them: when ``fail``, the calls into recs are reset or time out (a tight
    10 ms budget: no slower than usual, so only the timeout says it), no recs span under them."""
    rows = _rows(start, 20, 20.0, seed=seed)
    for i in range(2):
        t, trace = start + 3 + 10 * i, uuid.uuid4().hex
        ids = [uuid.uuid4().hex[:16] for _ in range(3)]
        rows += [
            span_row(trace_id=trace, span_id=ids[0], parent_span_id=None, service="front", endpoint="/home",
                     kind=KIND_SERVER, start_time=t, duration_ms=12.0, method="GET", status_code=200,
                     error=False),
            span_row(trace_id=trace, span_id=ids[1], parent_span_id=ids[0], service="front", endpoint="GET",
                     kind=KIND_CLIENT, start_time=t + 0.001, duration_ms=10.0 if fail == "timeout" else 8.0,
                     peer="recs", method="GET", status_code=None if fail else 200, error=bool(fail),
                     exception_type={"reset": "ConnectionResetError", "timeout": "ReadTimeout"}.get(fail)),
        ]
        if not fail:
            rows.append(span_row(trace_id=trace, span_id=ids[2], parent_span_id=ids[1], service="recs",
                                 endpoint="/suggest", kind=KIND_SERVER, start_time=t + 0.002, duration_ms=6.0,
                                 method="GET", status_code=200, error=False))
    return rows


@pytest.mark.parametrize("fail, kind", [("reset", "error"), ("timeout", "timeout")])
def test_a_quiet_best_effort_callee_failing_two_calls_a_window_is_found_over_its_last_windows(
        app, fail, kind):
    """Two calls a window into recs, each reset or timed out: too few for one window's rules; over
    the last windows (stored CLIENT spans, read back by ``store.recent_calls``) recs' incident."""
    t = 4_000_000.0
    for w in range(10):
        assert _cycle(app, _best_effort(t + 30 * w, None, w), t + 30 * (w + 1))["anomalies"] == []
    found = []
    for w in range(10, 14):
        found.append(_cycle(app, _best_effort(t + 30 * w, fail, w), t + 30 * (w + 1)))
    assert found[0]["anomalies"] == [], found[0]  # two unanswered calls: not enough alone
    refused = [(n, a) for n, f in enumerate(found) for a in f["anomalies"] if a["service"] == "recs"]
    assert refused, [f["anomalies"] for f in found]
    n, anomaly = refused[0]
    assert anomaly["type"] == kind and "over the last windows" in anomaly["message"], anomaly
    assert {a["service"] for f in found for a in f["anomalies"]} == {"recs"}, found
    [opened] = found[n]["incidents_opened"]
    incident = app.test_client().get(f"/aiops/incidents/{opened}").get_json()
    assert incident["root_cause"]["service"] == "recs", incident["root_cause"]
