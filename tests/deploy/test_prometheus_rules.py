"""deploy/prometheus/rules.yml: valid for Prometheus (``promtool check rules``), alerting as its
unit tests say (``promtool test rules``, tests/deploy/rules_test.yml), and naming only metrics the
product exports."""

from __future__ import annotations

import subprocess

from tests.support.prometheus import METRIC_NAME, ROOT, RULES, binary, rule_exprs


def test_promtool_checks_the_rules():
    done = subprocess.run([binary("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_rules_fire_as_their_unit_tests_say():
    done = subprocess.run([binary("promtool"), "test", "rules", "tests/deploy/rules_test.yml"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_names_only_exported_metrics(exported):
    named = {name for expr in rule_exprs() for name in METRIC_NAME.findall(expr)}
    assert named, "no aiops_* metric found in the rules"
    assert named - exported == set()
