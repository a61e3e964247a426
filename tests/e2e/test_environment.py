"""The suite ignores the caller's shell: a real pytest run with hostile AIOPS_* settings exported.

Without ``tests/support/environment.py`` an exported ``AIOPS_API_TOKEN`` turns every
unauthenticated ``POST /simulate/*`` in the unit tests into a 401, and an
invalid ``AIOPS_DETECTION_INTERVAL`` makes ``create_app`` refuse to start.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.server import ROOT, GunicornServer

HOSTILE = {"AIOPS_API_TOKEN": "x", "AIOPS_DETECTION_INTERVAL": "garbage", "PORT": "not-a-port",
           "AIOPS_ENABLE_SIMULATION": "0"}
TOKEN_SENSITIVE = "tests/web/test_api.py::test_fault_injection_is_visible_and_cleared"


def test_unit_tests_pass_with_hostile_settings_exported():
    env = {**os.environ, **HOSTILE}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TOKEN_SENSITIVE, "-k", "sqlite"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout, result.stdout[-3000:]


def test_a_server_gets_only_the_settings_its_test_names(monkeypatch):
    for name, value in HOSTILE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIOPS_TEST_REQUIRE_POSTGRES", "1")
    env = GunicornServer({"AIOPS_DATABASE_URL": "sqlite://"}).env
    assert env["AIOPS_DATABASE_URL"] == "sqlite://"
    assert not set(HOSTILE) & set(env)
    assert env["AIOPS_TEST_REQUIRE_POSTGRES"] == "1"  # the suite's own switches pass through
    assert env["PATH"] == os.environ["PATH"]
