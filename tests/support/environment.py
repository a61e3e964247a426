"""The suite's own environment: none of the product's settings leak in from the caller's shell.

A developer who exported ``AIOPS_API_TOKEN`` (or any other ``AIOPS_*``
setting, ``PORT``, ``HOST``, an ``OTEL_*`` SDK setting or a Prometheus
multiprocess directory) must not see unit tests fail or servers start
differently. ``tests/conftest.py`` strips those from ``os.environ`` when the
session starts, and every test that starts a server or a subprocess builds
its environment from :func:`clean` plus what that test sets.

The suite's own switches are spelled ``AIOPS_TEST_*`` and are kept:

- ``AIOPS_TEST_REQUIRE_POSTGRES=1``: PostgreSQL variants fail instead of skipping (CI);
- ``AIOPS_TEST_REQUIRE_CHROMIUM=1``: the browser tests fail instead of skipping (CI);
- ``AIOPS_TEST_REQUIRE_ATHERIS=1``: the atheris run fails instead of skipping where
  requirements-dev.txt installs atheris (CPython 3.11 on x86_64 Linux; elsewhere it has no
  wheel, and the run still skips) (CI);
- ``AIOPS_TEST_REQUIRE_DATASETS=1``: the replay of the TrainTicket dataset
  (``../shared/datasets/trainticket/`` beside the clone) fails instead of skipping (CI);
- ``AIOPS_TEST_REQUIRE_PROMETHEUS=1``: the tests that run ``promtool`` and a real Prometheus server
  (Debian's ``prometheus`` package: ``tests/deploy/``, ``tests/e2e/test_prometheus.py``) fail
  instead of skipping (CI);
- ``AIOPS_TEST_CHROMIUM``: another Chromium binary;
- ``AIOPS_TEST_POSTGRES_URL``: the PostgreSQL server to make throwaway databases on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

TEST_PREFIX = "AIOPS_TEST_"
PRODUCT_PREFIXES = ("AIOPS_", "OTEL_")
PRODUCT_NAMES = frozenset({"PORT", "HOST", "PROMETHEUS_MULTIPROC_DIR"})


def is_product_setting(name: str) -> bool:
    """True for a variable the product (or the libraries it configures) reads."""
    if name.startswith(TEST_PREFIX):
        return False
    return name in PRODUCT_NAMES or name.startswith(PRODUCT_PREFIXES)


def strip(environ: MutableMapping[str, str]) -> list[str]:
    """Remove the product's settings from ``environ`` in place; the names removed."""
    removed = sorted(name for name in environ if is_product_setting(name))
    for name in removed:
        del environ[name]
    return removed


def clean(base: Mapping[str, str] | None = None, **overrides: object) -> dict[str, str]:
    """``base`` (default ``os.environ``) without the product's settings, then ``overrides``.

    The base for a server or subprocess a test starts: the test process itself
    may have exported settings since the session began (the metrics directory,
    say), and only what the test names should reach the child.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items() if not is_product_setting(k)}
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def flag(name: str) -> bool:
    """A test switch (``AIOPS_TEST_<name>=1``) is on."""
    return os.environ.get(TEST_PREFIX + name) == "1"
