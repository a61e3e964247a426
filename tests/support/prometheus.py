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


class PrometheusServer:
    """A real Prometheus (Debian's binary) on a free loopback port, scraping ``targets`` every
    ``scrape`` seconds and evaluating ``rules`` (the shipped ones by default); stopped on exit."""

    def __init__(self, tmp_path: Path, targets: list[str], scrape: float = 1.0, rules: Path = RULES):
        from tests.e2e.server import free_port

        self.dir = tmp_path / "prometheus"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": f"{scrape:g}s", "scrape_timeout": f"{scrape:g}s",
                       "evaluation_interval": f"{scrape:g}s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "aiops", "static_configs": [{"targets": targets}]}],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> PrometheusServer:
        import requests

        from tests.e2e.helpers import wait_for

        cmd = [binary("prometheus"), f"--config.file={self.dir / 'prometheus.yml'}",
               f"--storage.tsdb.path={self.dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"]
        with open(self.dir / "prometheus.log", "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert self.proc.poll() is None, (self.dir / "prometheus.log").read_text()
            try:
                return requests.get(self.url + "/-/ready", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, "Prometheus to start", timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def api(self, path: str, **params) -> dict | list:
        import requests

        r = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> dict[tuple, float]:
        """An instant query: ``{((label, value), ...) without __name__: value}``."""
        return {tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__")): float(s["value"][1])
                for s in self.api("query", query=promql)["result"]}
