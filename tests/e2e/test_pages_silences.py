"""Silencing from an incident's page in a real browser: headless Chromium against a real gunicorn.

The user opens the incident, follows "Silence this…" to ``/silences`` (the form filled in from the
incident), types who and why, creates the silence, lands back on the incident shown as silenced,
then expires the silence from the silences page. Chromium is driven over the DevTools protocol
(:class:`tests.e2e.test_pages.Browser`); skipped without Chromium as the other page tests are.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import dispose_app, make_app
from tests.e2e import helpers as h
from tests.e2e.test_pages import Browser, assert_no_payload_elements, chromium_binary, screenshot
from tests.support.factories import add_incident
from tests.support.hostile_pages import HOSTILE_NAME

pytestmark = pytest.mark.e2e


def test_silence_an_incident_from_its_page_then_expire_it(tmp_path):
    chromium_binary()
    url = h.sqlite_url(tmp_path)
    app = make_app(url)
    try:
        iid = add_incident(app, "INC-1700000000-1")  # shop / payment, open
    finally:
        dispose_app(app)
    with h.running(tmp_path, h.shop_env(url)) as server, Browser() as browser:
        page_url = f"{server.url}/incidents/{iid}"
        tab = browser.new_tab()
        tab.navigate(page_url)
        assert tab.document().text_of(id="silence-this") == "Silence this…"

        tab.click("#silence-this")
        where = urlsplit(tab.location())
        assert (where.path, where.fragment) == ("/silences", "create-silence")
        assert parse_qs(where.query) == {"service": ["shop"], "endpoint": ["payment"], "incident": [iid]}
        assert tab.evaluate("document.querySelector('input[name=service]').value") == "shop"
        assert tab.evaluate("document.querySelector('input[name=endpoint]').value") == "payment"
        tab.type_into("input[name=created_by]", HOSTILE_NAME)
        tab.type_into("input[name=comment]", "payment deploy")
        tab.click("#create")

        assert tab.location() == page_url + "?done=silenced"
        doc = tab.document()
        assert_no_payload_elements(doc)
        [silence] = server.get("/aiops/silences").json()["silences"]
        assert silence["state"] == "active" and silence["created_by"] == HOSTILE_NAME
        assert silence["matchers"] == [{"name": "service", "value": "shop", "regex": False},
                                       {"name": "endpoint", "value": "payment", "regex": False}]
        assert doc.text_of(id="silenced").startswith(f"Silenced by {silence['id']}")
        assert not tab.evaluate("!!document.getElementById('silence-this')")
        incident = server.get(f"/aiops/incidents/{iid}").json()
        assert (incident["silenced"], incident["silence_id"]) == (True, silence["id"])
        screenshot(page_url, tmp_path / "incident-silenced.png")
        screenshot(f"{server.url}/silences", tmp_path / "silences.png")

        tab.navigate(f"{server.url}/silences")
        doc = tab.document()
        assert_no_payload_elements(doc)
        assert HOSTILE_NAME in doc.plain  # as text
        tab.click(f"#silence-{silence['id']} button.expire")
        assert tab.location() == f"{server.url}/silences?done=expired"
        assert tab.document().text_of(id="notice") == "Silence expired."
        assert server.get(f"/aiops/silences/{silence['id']}").json()["state"] == "expired"
        assert server.get(f"/aiops/incidents/{iid}").json()["silenced"] is False
