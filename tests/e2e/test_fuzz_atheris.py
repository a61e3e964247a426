"""Coverage-guided fuzzing of the OTLP decoders with atheris (libFuzzer), bounded to seconds.

The harness is ``tests/support/fuzz_otlp_atheris.py`` (it also runs by hand, for as long as you
like); here it runs as a subprocess of its own from valid protobuf, JSON and gzip bodies, so this
is e2e. The Hypothesis fuzzing of the same decoders is ``tests/test_fuzz.py``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
import zlib

import pytest
from packaging.requirements import Requirement

from telemetry import otlp
from tests.conftest import ROOT
from tests.support import environment
from tests.support.factories import good_request

pytestmark = pytest.mark.e2e

HARNESS = ROOT / "tests" / "support" / "fuzz_otlp_atheris.py"


def _installed_here() -> bool:
    """requirements-dev.txt installs atheris on this interpreter and machine (it has a wheel here)."""
    lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    requirement = Requirement(next(line for line in lines if line.startswith("atheris")))
    return requirement.marker is None or requirement.marker.evaluate()


def _atheris_or_skip() -> None:
    if importlib.util.find_spec("atheris") is not None:
        return
    if not _installed_here():
        pytest.skip("atheris is not installed: requirements-dev.txt installs it only where it has a wheel")
    reason = "atheris is not installed, though requirements-dev.txt installs it on this machine"
    if environment.flag("REQUIRE_ATHERIS"):
        pytest.fail(f"{reason}; AIOPS_TEST_REQUIRE_ATHERIS=1 makes this a failure")
    pytest.skip(reason)


def test_atheris_finds_nothing(tmp_path):
    _atheris_or_skip()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pb = good_request(2).SerializeToString()
    js = json.dumps(otlp.to_json_dict(good_request(2))).encode()
    for i, seed in enumerate((b"\x00\x00" + pb, b"\x01\x00" + js, b"\x00\x01" + gzip.compress(pb),
                              b"\x01\x02" + zlib.compress(js))):
        (corpus / f"seed{i}").write_bytes(seed)
    result = subprocess.run(
        [sys.executable, str(HARNESS), str(corpus), "-runs=30000", "-max_len=8192", "-seed=1",
         f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=environment.clean(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DONE" in result.stderr
