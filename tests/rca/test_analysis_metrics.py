"""RCA with metrics (aiops.rca.analysis.analyse ``metrics=``, aiops.metrics.clues): a service the traces
reach whose CPU left its band is corroborated (a candidate, and the root when it left far), its hop
showing the metric, its band and the change; a metric change alone raises nothing; without metric
points the result is the trace-only one, exactly."""

from __future__ import annotations

import copy

from aiops.metrics import baseline as mb
from aiops.metrics.kinds import CPU
from aiops.rca.analysis import analyse
from tests.rca.test_analysis_logs import BASELINES, TH, detect, summary, window, window_stats


def hog(service: str, z_values: list[float]) -> dict[str, mb.MetricSuspect]:
    """A suspect whose pod's CPU went from about 0.2 cores to ``0.2 + 0.02 z``."""
    band = mb.Band(0.2, 0.19, 0.21, 10)
    return mb.suspects(
        [
            mb.MetricShift(
                service, f"{service}-7d9f", "k8s.pod.cpu.usage", CPU, None, band, 0.2 + 0.02 * z, z, 1010.0
            )
            for z in z_values
        ]
    )


def run(spans, metrics=None):
    anomalies = detect(window_stats(spans), BASELINES, TH)
    by_trace = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    asked: list[set] = []

    def load(services):
        asked.append(set(services))
        return metrics or {}

    groups = analyse(
        anomalies,
        spans,
        lambda ids: {t: by_trace.get(t, []) for t in ids},
        BASELINES,
        TH,
        (),
        None,
        load if metrics is not None else None,
    )
    return groups, asked


def test_without_metric_points_the_result_is_the_trace_only_one():
    spans, _ = window()
    alone, _ = run(copy.deepcopy(spans))
    empty, asked = run(copy.deepcopy(spans), {})
    assert summary(alone) == summary(empty)
    assert asked == [{"front", "mid", "back"}]  # one read, for the services the traces reach
    assert alone[0].root[0] == "front"


def test_a_cpu_hog_the_traces_reach_is_corroborated():
    spans, _ = window()
    alone, _ = run(copy.deepcopy(spans))
    groups, _ = run(copy.deepcopy(spans), hog("back", [300.0]))
    (group,) = groups
    # The errors surface at front, and the walk trusts where an error is raised; back's starved pod
    # comes next, with nearly half of the opinion, where the traces alone gave it nothing.
    ranked = dict(group.candidates)
    assert group.root == alone[0].root and ("back", "") in ranked
    assert ranked[("back", "")] > 0.4 and all(key[0] != "back" for key, _ in alone[0].candidates)
    assert alone[0].anomalies[0].label == group.anomalies[0].label  # the same anomaly


def test_the_roots_hop_shows_the_metric_its_band_and_the_change():
    spans, _ = window()
    (group,) = run(copy.deepcopy(spans), hog("front", [300.0]))[0]
    assert group.root[0] == "front"
    hop = next(h for h in group.path if h["signal"] == "metrics")
    assert hop["service"] == "front" and hop["deviation"] == 300.0
    (series,) = hop["metrics"]
    assert series["metric"] == "k8s.pod.cpu.usage" and series["normal"] == [0.19, 0.21]
    assert series["observed"] == 0.2 + 0.02 * 300 and series["pod"] == "front-7d9f"
    assert "normal 0.19-0.21" in hop["detail"]


def test_a_small_wobble_only_ranks_the_service_as_a_candidate():
    spans, _ = window()
    groups, _ = run(copy.deepcopy(spans), hog("back", [4.0]))
    (group,) = groups
    assert group.root[0] == "front"
    assert "back" in [key[0] for key, _ in group.candidates]


def test_a_metric_change_alone_raises_nothing_and_unreached_services_add_nothing():
    spans, _ = window()
    calm = [s for s in spans if s.status_code != 500]
    groups, asked = run(copy.deepcopy(calm), hog("back", [300.0]))
    assert groups == [] and asked == []  # no anomaly: no read, no incident
    alone, _ = run(copy.deepcopy(spans))
    elsewhere, _ = run(copy.deepcopy(spans), hog("billing", [300.0]))
    assert summary(alone) == summary(elsewhere)
