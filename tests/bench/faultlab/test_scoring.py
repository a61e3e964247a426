"""The fault lab's scoring: which incidents count for a fault, AC@k, detection time, false incidents."""

from __future__ import annotations

from bench.faultlab import scoring

T0 = 1_800_000_000.0  # an injection time


def incident(id_, *events, candidates=("x",), status="open") -> dict:
    return {
        "id": id_, "status": status,
        "root_cause": {"service": candidates[0], "endpoint": "e"},
        "root_cause_candidates": [{"service": s, "endpoint": "e", "score": 1.0} for s in candidates],
        "first_detected": scoring.iso(T0 + events[0][1]),
        "timeline": [{"at": scoring.iso(T0 + offset), "event": kind} for kind, offset in events],
    }


def truth(target="db") -> dict:
    return {"id": 1, "type": "slow", "variant": "own-work", "target": target,
            "injected_at": T0, "cleared_at": T0 + 60}


def test_epoch_reads_the_api_times():
    assert scoring.epoch("2027-01-15T08:00:00Z") == scoring.epoch("2027-01-15T08:00:00+00:00")
    assert abs(scoring.epoch(scoring.iso(T0 + 0.25)) - (T0 + 0.25)) < 1e-3


def test_truth_first_is_ac1_and_detection_time_counts_from_injection():
    row = scoring.score_fault(truth(), [incident("A", ("detected", 12.5), candidates=("db", "api"))], 10)
    assert (row["detected"], row["rank"], row["ac1"], row["ac3"]) == (True, 1, 1, 1)
    assert row["detection_s"] == 12.5 and row["detection_cycles"] == 1.25
    assert row["incidents"] == ["A"]


def test_ranking_runs_over_incidents_earliest_first_without_repeats():
    incidents = [
        incident("late", ("detected", 30), candidates=("db",)),
        incident("early", ("detected", 5), candidates=("api", "web")),
        incident("dup", ("detected", 20), candidates=("api", "cache")),
    ]
    row = scoring.score_fault(truth(), incidents, 10)
    assert row["ranking"] == ["api", "web", "cache", "db"]
    assert (row["rank"], row["ac1"], row["ac3"]) == (4, 0, 0)
    assert row["detection_s"] == 5


def test_only_incidents_active_in_the_window_count():
    incidents = [
        incident("before", ("detected", -100), ("resolved", -50), candidates=("api",)),
        incident("after-grace", ("detected", 71), candidates=("api",)),
        incident("in-grace", ("detected", 69), candidates=("cache", "db")),
    ]
    row = scoring.score_fault(truth(), incidents, 10)
    assert row["incidents"] == ["in-grace"] and row["rank"] == 2 and row["ac3"] == 1


def test_reopened_and_updated_incidents_count_at_that_moment():
    incidents = [incident("old", ("detected", -900), ("resolved", -800), ("reopened", 14),
                          candidates=("db",))]
    row = scoring.score_fault(truth(), incidents, 10)
    assert (row["detection_s"], row["ac1"]) == (14, 1)
    updated = [incident("open", ("detected", -30), ("updated", 8), candidates=("db",))]
    assert scoring.score_fault(truth(), updated, 10)["detection_s"] == 8


def test_a_missed_fault_scores_zero():
    row = scoring.score_fault(truth(), [], 10)
    assert (row["detected"], row["rank"], row["ac1"], row["ac3"]) == (False, None, 0, 0)
    assert row["detection_s"] is None


def test_false_incidents_are_openings_inside_fault_free_periods():
    incidents = [
        incident("fault", ("detected", 5), ("updated", 200)),
        incident("false", ("detected", 150)),
        incident("reopen", ("detected", 5), ("resolved", 100), ("reopened", 160)),
    ]
    found = scoring.false_incidents(incidents, [(T0 + 120, T0 + 300)])
    assert [f["id"] for f in found] == ["false", "reopen"]


def test_summary_per_type_and_in_total():
    slow, down = {**truth("db"), "type": "slow"}, {**truth("db"), "type": "down"}
    rows = [
        scoring.score_fault(slow, [incident("a", ("detected", 10), candidates=("db",))], 10),
        scoring.score_fault(slow, [incident("b", ("detected", 30), candidates=("api", "db"))], 10),
        scoring.score_fault(down, [], 10),
    ]
    summary = scoring.summarize(rows, {"slow": 1})
    assert summary["slow"] == {"cases": 2, "detected": 2, "median_detection_s": 20.0, "max_detection_s": 30.0,
                               "median_detection_cycles": 2.0, "max_detection_cycles": 3.0,
                               "ac1": 0.5, "ac3": 1.0, "false_incidents": 1}
    assert summary["down"]["detected"] == 0 and summary["down"]["median_detection_s"] is None
    assert summary["all"]["cases"] == 3 and summary["all"]["ac3"] == round(2 / 3, 3)


def test_ranking_follows_the_evidence_across_incidents_before_their_order():
    """Issue 24: a lead-in blip (one candidate, weak evidence) does not outrank a strong fault."""
    blip = incident("blip", ("detected", 2), candidates=("api",))
    blip["root_cause_candidates"][0]["evidence"] = 6.0
    fault = incident("fault", ("detected", 12), candidates=("db", "api"))
    fault["root_cause_candidates"][0]["evidence"] = 30.0
    fault["root_cause_candidates"][1]["evidence"] = 3.0
    row = scoring.score_fault(truth(), [blip, fault], 10)
    assert row["ranking"] == ["db", "api"] and row["ac1"] == 1
    assert row["detection_s"] == 2  # detection still counts from the first incident
