"""Checking an SLO body, pure (the API's 400s are in tests/web/test_slos.py)."""

from __future__ import annotations

import pytest

from aiops.slos.spec import SpecError, check


def test_a_whole_body_and_its_defaults():
    spec = check({"name": "n", "service": "s", "sli": "latency", "objective": 99, "threshold_ms": 300})
    assert spec.as_dict() == {"name": "n", "service": "s", "endpoint": "", "sli": "latency",
                              "objective": 99.0, "threshold_ms": 300.0, "min_rps": None, "window_days": 30}
    assert check({"name": "n", "service": "s", "sli": "throughput", "objective": 99, "min_rps": 0.5,
                  "window_days": 7.0}).window_days == 7


@pytest.mark.parametrize("body, field", [
    ([], "body"),
    ({"name": "n\x00", "service": "s", "sli": "availability", "objective": 99}, "name"),
    ({"name": "\ud800", "service": "s", "sli": "availability", "objective": 99}, "name"),
    ({"name": "n", "service": "s", "sli": "availability", "objective": float("nan")}, "objective"),
    ({"name": "n", "service": "s", "sli": "throughput", "objective": 99, "min_rps": 0}, "min_rps"),
])
def test_the_error_names_the_field(body, field):
    with pytest.raises(SpecError) as caught:
        check(body)
    assert caught.value.field == field and str(caught.value).startswith(f"{field}: ")
