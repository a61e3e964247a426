"""Acknowledge and Resolve from the incident page, and cross-site requests refused.

The page's forms carry a double-submit CSRF token (cookie + hidden field);
the form routes and the JSON API refuse a request whose ``Origin`` names
another host. Flask test client, SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

import pytest

from aiops.settings import reconfigure
from aiops.web.auth import CSRF_COOKIE, origin_matches
from tests.support.factories import add_incident
from tests.support.hostile_pages import HOSTILE_NAME, Page, assert_inert


def state(client, incident_id: str) -> tuple[str, list]:
    body = client.get(f"/aiops/incidents/{incident_id}").get_json()
    return body["status"], body["timeline"]


def open_page(client, incident_id: str) -> tuple[Page, str]:
    """Load the incident page; returns it and the CSRF token its form carries."""
    response = client.get(f"/incidents/{incident_id}")
    assert response.status_code == 200
    doc = assert_inert(response.get_data(as_text=True))
    fields = [a for t, a in doc.tags if t == "input" and a.get("name") == "csrf"]
    assert len(fields) == 1 and fields[0]["type"] == "hidden"
    return doc, fields[0]["value"]


def post(client, incident_id: str, action: str, csrf: str | None, headers=None, **form):
    """POST the page's form (``csrf``: the hidden field's value, None leaves it out)."""
    if csrf is not None:
        form["csrf"] = csrf
    return client.post(f"/incidents/{incident_id}/{action}", data=form, headers=headers or {})


def buttons(doc: Page) -> list[str]:
    return [a.get("id") for t, a in doc.tags if t == "button"]


def test_page_has_the_forms_and_sets_the_cookie(app, client):
    iid = add_incident(app)
    response = client.get(f"/incidents/{iid}")
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 1
    parts = [p.strip() for p in cookies[0].split(";")]
    name, token = parts[0].split("=", 1)
    assert name == CSRF_COOKIE and re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert {"HttpOnly", "Path=/", "SameSite=Strict"} <= set(parts)
    assert "Secure" not in parts and not any(p.lower().startswith(("expires", "max-age")) for p in parts)
    assert response.headers["Cache-Control"] == "no-store"

    doc = assert_inert(response.get_data(as_text=True))
    forms = [a for t, a in doc.tags if t == "form"]
    assert forms == [{"class": "card actions", "id": "actions", "method": "post",
                      "action": f"/incidents/{iid}/acknowledge"}]
    inputs = {a["name"]: a for t, a in doc.tags if t == "input"}
    assert set(inputs) == {"csrf", "by", "comment"}  # no token field: no token configured
    assert inputs["csrf"]["value"] == token
    assert buttons(doc) == ["acknowledge", "resolve"]
    formactions = [a["formaction"] for t, a in doc.tags if t == "button"]
    assert formactions == [f"/incidents/{iid}/acknowledge", f"/incidents/{iid}/resolve"]

    # The same browser keeps its token (forms in other tabs stay valid).
    again, token2 = open_page(client, iid)
    assert token2 == token
    # A browser with a malformed cookie gets a fresh one.
    client.set_cookie(CSRF_COOKIE, "not-a-token")
    _, token3 = open_page(client, iid)
    assert token3 != "not-a-token" and client.get_cookie(CSRF_COOKIE).value == token3


def test_form_acknowledges_then_resolves(app, client):
    iid = add_incident(app)
    _, token = open_page(client, iid)
    response = post(client, iid, "acknowledge", token, by="  alice  ", comment="looking into it")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/incidents/{iid}?done=acknowledged"
    status, timeline = state(client, iid)
    assert status == "acknowledged"
    assert [(e["event"], e["by"], e["detail"]) for e in timeline] == [
        ("acknowledged", "alice", "looking into it")]

    page = client.get(response.headers["Location"])
    doc = assert_inert(page.get_data(as_text=True))
    assert doc.text_of(id="notice") == "Incident acknowledged."
    assert "acknowledged by alice: looking into it" in doc.text_of(id="timeline")
    assert buttons(doc) == ["resolve"]  # acknowledged: only Resolve is left
    assert [a["action"] for t, a in doc.tags if t == "form"] == [f"/incidents/{iid}/resolve"]

    # Hostile input is stored as given and shown as text; an empty name is "web".
    response = post(client, iid, "resolve", token, by=HOSTILE_NAME)
    assert response.status_code == 303 and response.headers["Location"].endswith("?done=resolved")
    status, timeline = state(client, iid)
    assert status == "resolved" and timeline[-1]["by"] == HOSTILE_NAME
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    doc = assert_inert(html)
    assert HOSTILE_NAME in doc.text_of(id="timeline")
    assert doc.text_of(id="notice") == "Incident resolved."
    assert buttons(doc) == [] and not any(t == "form" for t, _ in doc.tags)


def test_empty_name_is_web_and_unknown_notice_is_not_echoed(app, client):
    iid = add_incident(app)
    _, token = open_page(client, iid)
    assert post(client, iid, "resolve", token).status_code == 303
    assert [(e["event"], e["by"], e["detail"]) for e in state(client, iid)[1]] == [("resolved", "web", "")]
    html = client.get(f"/incidents/{iid}?done=%3Cb%3Epwned%3C%2Fb%3E").get_data(as_text=True)
    assert 'id="notice"' not in html and "pwned" not in html


@pytest.mark.parametrize("case", ["no cookie", "no field", "mismatch", "empty both", "forged, no cookie"])
def test_missing_or_mismatched_csrf_is_403_and_changes_nothing(app, client, case):
    iid = add_incident(app)
    _, token = open_page(client, iid)
    if case in ("no cookie", "forged, no cookie"):
        client.delete_cookie(CSRF_COOKIE)
    elif case == "empty both":
        client.set_cookie(CSRF_COOKIE, "")
    other = token[:-1] + ("A" if token[-1] != "A" else "B")
    field = {"no cookie": token, "no field": None, "mismatch": other, "empty both": "",
             "forged, no cookie": "x" * 43}[case]
    for action in ("acknowledge", "resolve"):
        response = post(client, iid, action, field, by="mallory")
        assert response.status_code == 403, case
        assert response.mimetype == "text/html"
        assert "<h1>403 Forbidden</h1>" in response.get_data(as_text=True)
    assert state(client, iid) == ("open", [])


def test_foreign_origin_is_refused_by_the_form_route(app, client):
    iid = add_incident(app)
    _, token = open_page(client, iid)
    for origin in ("http://evil.example", "http://localhost.evil.example", "http://localhost:8080",
                   "null", "", "https://localhost/path"):
        response = post(client, iid, "acknowledge", token, headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert response.mimetype == "text/html"
        assert "cross-site request refused" in response.get_data(as_text=True)
    assert state(client, iid) == ("open", [])
    # The page's own origin is fine (the test client's host is "localhost").
    response = post(client, iid, "acknowledge", token, headers={"Origin": "http://localhost"}, by="bob")
    assert response.status_code == 303
    assert state(client, iid)[0] == "acknowledged"


def test_foreign_origin_is_refused_by_the_json_api(app, client):
    iid = add_incident(app)
    evil = {"Origin": "https://evil.example"}
    # What a cross-site HTML form sends: an empty form body, the browser's Origin.
    for path in (f"/aiops/incidents/{iid}/acknowledge", f"/aiops/incidents/{iid}/resolve", "/aiops/analyze",
                 "/simulate/clear", "/simulate/delay?endpoint=payment&duration=2000"):
        response = client.post(path, headers=evil, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 403, path
        assert response.get_json() == {"error": "Forbidden", "message": "cross-site request refused"}
    assert client.get("/simulate/faults").get_json()["faults"] == []
    assert state(client, iid) == ("open", [])
    # Same origin, and clients that send no Origin (curl, requests), are unaffected.
    response = client.post(f"/aiops/incidents/{iid}/acknowledge", headers={"Origin": "http://localhost"},
                           json={"by": "carol"})
    assert response.status_code == 200 and response.get_json()["status"] == "acknowledged"
    response = client.post(f"/aiops/incidents/{iid}/resolve")
    assert response.status_code == 200 and response.get_json()["status"] == "resolved"
    # The origin check comes before the token check: a cross-site request is 403 even with the token.
    reconfigure(app, api_token="s3cret")
    response = client.post("/simulate/clear", headers={**evil, "Authorization": "Bearer s3cret"})
    assert response.status_code == 403


def test_with_an_api_token_the_form_needs_it(app, client):
    iid = add_incident(app)
    reconfigure(app, api_token="s3cret ü")
    doc, token = open_page(client, iid)
    secret = [a for t, a in doc.tags if t == "input" and a.get("name") == "token"]
    assert len(secret) == 1 and secret[0]["type"] == "password"
    for given in (None, "", "s3cret", "s3cret ü "):
        form = {"by": "dave"} if given is None else {"by": "dave", "token": given}
        response = post(client, iid, "acknowledge", token, **form)
        assert response.status_code == 401, given
        assert response.mimetype == "text/html"
        assert "<h1>401 Unauthorized</h1>" in response.get_data(as_text=True)
    assert state(client, iid) == ("open", [])
    # The right token without the CSRF token is still refused.
    assert post(client, iid, "acknowledge", None, token="s3cret ü").status_code == 403
    response = post(client, iid, "acknowledge", token, by="dave", token="s3cret ü")
    assert response.status_code == 303
    status, timeline = state(client, iid)
    assert status == "acknowledged" and timeline[-1]["by"] == "dave"


def test_resolved_incident_has_no_buttons_and_posts_are_409(app, client):
    iid = add_incident(app, status="resolved")
    doc = assert_inert(client.get(f"/incidents/{iid}").get_data(as_text=True))
    assert buttons(doc) == [] and not any(t == "form" for t, _ in doc.tags)
    other = add_incident(app, "INC-1-2")
    _, token = open_page(client, other)  # a valid token from another incident's page
    for action in ("acknowledge", "resolve"):
        response = post(client, iid, action, token, by="erin")
        assert response.status_code == 409
        assert response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        assert "<h1>409 Conflict</h1>" in html and f"{iid} is already resolved" in html
    assert state(client, iid) == ("resolved", [])
    # Acknowledging twice is a conflict too.
    assert post(client, other, "acknowledge", token).status_code == 303
    assert post(client, other, "acknowledge", token).status_code == 409


def test_bad_form_input_is_400_and_unknown_incident_404(app, client):
    iid = add_incident(app)
    _, token = open_page(client, iid)
    for form in ({"by": "x" * 201}, {"comment": "y" * 2001}):
        response = post(client, iid, "acknowledge", token, **form)
        assert response.status_code == 400 and response.mimetype == "text/html"
    assert state(client, iid) == ("open", [])
    assert post(client, iid, "acknowledge", token, by="x" * 200, comment="y" * 2000).status_code == 303
    response = post(client, "INC-nope", "resolve", token)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert client.get(f"/incidents/{iid}/resolve").status_code == 405


@pytest.mark.parametrize(("origin", "host", "same"), [
    ("http://localhost", "localhost", True),
    ("http://127.0.0.1:5000", "127.0.0.1:5000", True),
    ("https://aiops.example.com", "aiops.example.com", True),
    ("https://aiops.example.com", "aiops.example.com:443", True),
    ("http://aiops.example.com", "aiops.example.com:80", True),
    ("https://AIOps.Example.com", "aiops.example.com", True),
    ("http://[::1]:8000", "[::1]:8000", True),
    ("https://aiops.example.com", "aiops.example.com:80", False),
    ("http://127.0.0.1:5001", "127.0.0.1:5000", False),
    ("http://evil.example", "aiops.example.com", False),
    ("http://aiops.example.com.evil.example", "aiops.example.com", False),
    ("null", "localhost", False),
    ("", "localhost", False),
    ("file://", "localhost", False),
    ("ftp://localhost", "localhost", False),
    ("http://localhost:notaport", "localhost", False),
    ("http://localhost:99999", "localhost", False),
    ("http://user@localhost", "localhost", False),
    ("http://localhost/", "localhost", False),
])
def test_origin_matches(origin, host, same):
    assert origin_matches(origin, host) is same
