"""Debian's Prometheus binaries (``apt-get install prometheus``) for the tests that use them: skipped
where they are missing, a failure under ``AIOPS_TEST_REQUIRE_PROMETHEUS=1`` (CI)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import environment

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "aiops.json"
# Exported by the SLO work of the same issue (aiops_slo_*): reserved names the shipped rules and dashboard
# already use. Drop a name from here once /metrics exports it (test_exported_names_cover_the_rules says).
RESERVED = frozenset({"aiops_slo_burn_rate", "aiops_slo_budget_remaining"})


def binary(name: str) -> str:
    """The path of ``promtool`` or ``prometheus``, or skip (fail under the require switch)."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install prometheus)"
        if environment.flag("REQUIRE_PROMETHEUS"):
            pytest.fail(f"{reason}; AIOPS_TEST_REQUIRE_PROMETHEUS=1 makes this a failure")
        pytest.skip(reason)
    return path


def rule_exprs() -> list[str]:
    """Every ``expr`` of the shipped rules."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


METRIC_NAME = re.compile(r"\baiops_[a-z0-9_]+")


def check_exprs(exprs: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``promtool check rules`` over ``exprs`` as recording rules (``{name: PromQL}``): their syntax."""
    rules = {"groups": [{"name": "check", "rules": [{"record": name, "expr": expr}
                                                    for name, expr in exprs.items()]}]}
    path = tmp_path / "exprs.yml"
    path.write_text(yaml.safe_dump(rules))
    return subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True)
