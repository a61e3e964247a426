"""The ``/slos`` page in a real browser (headless Chromium against a real gunicorn server): every SLO
with its status, budget, burn rates and 30 daily bars; names from the API shown as text."""

from __future__ import annotations

import json
import time

import pytest

from aiops.slos import service as slo_service
from tests.conftest import dispose_app, make_app
from tests.e2e import helpers as h
from tests.e2e.test_pages import assert_no_payload_elements, chromium_binary, dump_dom, screenshot
from tests.support.factories import insert_spans, span
from tests.support.hostile_pages import HOSTILE_NAME

pytestmark = pytest.mark.e2e


def test_the_slos_page_draws_every_slo(tmp_path):
    chromium_binary()  # skip before the expensive part
    url = h.sqlite_url(tmp_path)
    app = make_app(url)
    now = time.time()
    try:
        insert_spans(app, [span("payment", start_time=now - 60 - i, status_code=500 if i < 10 else 200)
                           for i in range(100)])
        with app.app_context():
            slo_service.create({"name": HOSTILE_NAME, "service": "shop", "endpoint": "payment",
                                "sli": "availability", "objective": 99.9}, now)
    finally:
        dispose_app(app)
    config = tmp_path / "slos.json"
    config.write_text(json.dumps([{"name": "checkout fast", "service": "shop", "endpoint": "checkout",
                                   "sli": "latency", "objective": 99, "threshold_ms": 500}]))
    with h.running(tmp_path, h.shop_env(url, AIOPS_SLO_FILE=str(config)), workers=1) as server:
        slos = {s["name"]: s for s in server.get("/aiops/slos").json()["slos"]}
        assert set(slos) == {HOSTILE_NAME, "checkout fast"}
        doc = dump_dom(f"{server.url}/slos")
        screenshot(f"{server.url}/slos", tmp_path / "slos.png")

    assert_no_payload_elements(doc)
    assert doc.texts_of_class("slo-name") == [HOSTILE_NAME, "checkout fast"]  # by name; the payload as text
    assert doc.texts_of_class("slo-status") == ["page", "ok"]
    assert doc.texts_of_class("budget")[0] == f"{slos[HOSTILE_NAME]['budget_remaining'] * 100:.1f}%"
    burns = doc.texts_of_class("burn")
    assert len(burns) == 10 and burns[:5] == [f"{slos[HOSTILE_NAME]['burn_rates'][w]:.2f}"
                                              for w in ("5m", "30m", "1h", "6h", "3d")]
    assert float(burns[0]) == pytest.approx(100.0)  # 10 % bad against a 0.1 % budget
    days = doc.elements_with_class("day")
    assert len(days) == 60
    assert "missed" in days[29][1]["class"] and "nodata" in days[28][1]["class"]
    assert any(tag == "a" and attrs.get("href") == "/slos" for tag, attrs in doc.tags)  # in the nav
