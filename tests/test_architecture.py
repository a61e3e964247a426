"""The shape of the code: the layers hold, and the pure logic imports without the web stack.

The layers are import-linter's contracts in ``pyproject.toml`` (``[tool.importlinter]``); the test runs
``lint-imports`` so the test command fails when a lower layer imports a higher one, with its report.
At the top of ``tests/``: it is about every package at once.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Detection, RCA, the rules of logs and incidents, TraceQL: plain data in and out, no app, no database.
PURE_PACKAGES = ("aiops.detection", "aiops.rca", "telemetry.traceql")
PURE_MODULES = (
    "aiops.logs.mining",
    "aiops.logs.signals",
    "aiops.logs.paths",
    "aiops.logs.clues",
    "aiops.metrics.kinds",
    "aiops.metrics.baseline",
    "aiops.metrics.clues",
    "telemetry.metric_math",
    "aiops.incidents.storm",
    "aiops.incidents.reports",
    "aiops.incidents.rules",
    "aiops.rules.aggregate",
    "aiops.rules.spec",
    "aiops.slos.rules",
    "aiops.slos.spec",
    "aiops.silences.matchers",
    "aiops.silences.specs",
    "aiops.settings",
    "aiops.kinds",
    "aiops.heap",
    "telemetry.columns",
    "telemetry.rows",
    "telemetry.export.policy",  # the export's backoff, breaker and buffer accounting
    "telemetry.regexes",
    "telemetry.tempo_json",
    "telemetry.tempo_pull",  # what the Tempo pull source decides from Tempo's answers
)
# What the pure modules must not need: the web framework, the database layer, the OpenTelemetry SDK.
WEB_STACK = ("flask", "sqlalchemy", "flask_sqlalchemy", "opentelemetry.sdk")


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_layers_in_pyproject_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = _run([str(lint_imports), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")])
    assert done.returncode == 0, f"lint-imports found imports against the layers:\n{done.stdout}{done.stderr}"


def _pure_modules() -> list[str]:
    found = list(PURE_MODULES)
    for package in PURE_PACKAGES:
        found.append(package)
        folder = ROOT.joinpath(*package.split("."))
        found += [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(folder)])]
    return found


_IMPORT_WITHOUT_WEB_STACK = textwrap.dedent("""
    import importlib, sys, traceback

    BLOCKED = {blocked!r}

    class Blocked:
        '''A meta path finder that makes the web stack unimportable.'''

        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ImportError(f"{{name}} is not available to pure modules")
            return None

    sys.meta_path.insert(0, Blocked())
    failed = 0
    for module in {modules!r}:
        try:
            importlib.import_module(module)
        except ImportError:
            failed += 1
            print(f"--- {{module}}:", traceback.format_exc(limit=-4), sep="\\n")
    sys.exit(1 if failed else 0)
""")


def test_the_pure_logic_imports_without_flask_sqlalchemy_or_the_sdk():
    modules = _pure_modules()
    assert "aiops.detection.rules" in modules and "aiops.rca.analysis" in modules
    script = _IMPORT_WITHOUT_WEB_STACK.format(blocked=WEB_STACK, modules=modules)
    done = _run([sys.executable, "-c", script])
    assert done.returncode == 0, f"pure modules that need the web stack:\n{done.stdout}{done.stderr}"
