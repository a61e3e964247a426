"""deploy/prometheus/rules.yml: valid for Prometheus (``promtool check rules``), alerting as its
unit tests say (``promtool test rules``, tests/deploy/rules_test.yml), and naming only metrics the
product exports."""

from __future__ import annotations

import re
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.factories import add_incident, add_notification
from tests.support.prometheus import RESERVED, ROOT, RULES, binary, rule_exprs

METRIC_NAME = re.compile(r"\baiops_[a-z0-9_]+")


def test_promtool_checks_the_rules():
    done = subprocess.run([binary("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_rules_fire_as_their_unit_tests_say():
    done = subprocess.run([binary("promtool"), "test", "rules", "tests/deploy/rules_test.yml"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def exported(app, client) -> set[str]:
    """Every sample name ``GET /metrics`` serves once a cycle ran and something waits in the outbox."""
    assert client.post("/aiops/analyze").status_code == 200
    with app.app_context():
        add_incident()
        add_notification("webhook")
    body = client.get("/metrics").get_data(as_text=True)
    return {s.name for family in text_string_to_metric_families(body) for s in family.samples}


def test_every_rule_names_only_exported_metrics(exported):
    named = {name for expr in rule_exprs() for name in METRIC_NAME.findall(expr)}
    assert named, "no aiops_* metric found in the rules"
    assert named - exported - RESERVED == set()
    assert RESERVED.isdisjoint(exported), "exported now: drop it from tests/support/prometheus.RESERVED"
