"""deploy/grafana/aiops.json: a Grafana dashboard whose every query is valid PromQL over metrics the
product exports."""

from __future__ import annotations

import json

from tests.support.prometheus import DASHBOARD, METRIC_NAME, check_exprs

VARIABLES = {"$job": ".+"}  # the dashboard's template variables, as Grafana fills them in


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def queries() -> dict[str, str]:
    """``{"panel <id> <refId>": expr}`` for every panel target."""
    return {f"panel {p['id']} {t['refId']}": t["expr"]
            for p in dashboard()["panels"] for t in p.get("targets", [])}


def test_it_is_a_dashboard_grafana_can_import():
    board = dashboard()
    assert board["title"] and board["uid"] == "aiops-self" and isinstance(board["schemaVersion"], int)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in board["panels"]:
        place = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(place) and place["x"] + place["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"  # no fixed data source: importable anywhere


def test_every_query_is_valid_promql(tmp_path):
    exprs = {}
    for name, expr in queries().items():
        for variable, value in VARIABLES.items():
            expr = expr.replace(variable, value)
        exprs["aiops_dashboard:" + name.replace(" ", "_")] = expr
    done = check_exprs(exprs, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_query_names_only_exported_metrics(exported):
    named = {name for expr in queries().values() for name in METRIC_NAME.findall(expr)}
    assert named - exported == set()
    # ... and the dashboard shows every figure the product has.
    assert {family(n) for n in exported if n.startswith("aiops_")} - {family(n) for n in named} == set()


def family(sample: str) -> str:
    """``aiops_anomalies_total`` -> ``aiops_anomalies`` (a histogram's samples: its name)."""
    for suffix in ("_total", "_bucket", "_count", "_sum", "_created"):
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample
