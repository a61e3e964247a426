"""``/aiops/silences`` and the ``/silences`` page with the Flask test client (SQLite and PostgreSQL):
create, list, read, expire; every bad body a 400 naming the field, changing nothing; the token;
the incident JSON's ``silenced``; the ``aiops_silences_active`` gauge; the page's forms."""

from __future__ import annotations

import re
import time

import pytest

from aiops.settings import reconfigure
from aiops.store.models import iso
from tests.conftest import sqlite_only
from tests.support.factories import add_incident
from tests.support.hostile_pages import HOSTILE_NAME, Page, assert_inert

SHOP = [{"name": "service", "value": "shop"}]


def later(seconds: float = 3600) -> str:
    return iso(time.time() + seconds)


def create(client, headers=None, **body):
    return client.post("/aiops/silences", json={"matchers": SHOP, "ends_at": later(), **body},
                       headers=headers or {})


def listed(client, query: str = "") -> list[dict]:
    response = client.get("/aiops/silences" + query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["silences"]


def test_create_read_list_and_expire(client):
    response = create(client, created_by="alice", comment="db upgrade",
                      matchers=[{"name": "service", "value": "shop"},
                                {"name": "endpoint", "value": "pay.*", "regex": True}])
    assert response.status_code == 200, response.get_json()
    silence = response.get_json()
    assert re.fullmatch(r"[0-9a-f-]{36}", silence["id"])
    assert silence["state"] == "active"
    assert (silence["created_by"], silence["comment"]) == ("alice", "db upgrade")
    assert silence["matchers"] == [{"name": "service", "value": "shop", "regex": False},
                                   {"name": "endpoint", "value": "pay.*", "regex": True}]
    assert client.get(f"/aiops/silences/{silence['id']}").get_json() == silence

    pending = create(client, starts_at=later(600), ends_at=later(1200)).get_json()
    assert pending["state"] == "pending"
    assert [s["id"] for s in listed(client)] == [silence["id"], pending["id"]]  # active first
    assert [s["id"] for s in listed(client, "?state=pending")] == [pending["id"]]

    expired = client.delete(f"/aiops/silences/{silence['id']}")
    assert expired.status_code == 200 and expired.get_json()["state"] == "expired"
    assert client.delete(f"/aiops/silences/{pending['id']}").get_json()["state"] == "expired"  # never starts
    assert [s["state"] for s in listed(client)] == ["expired", "expired"]
    assert listed(client, "?state=active") == []
    again = client.delete(f"/aiops/silences/{silence['id']}")  # expiring twice changes nothing
    assert again.status_code == 200 and again.get_json()["ends_at"] == expired.get_json()["ends_at"]


def test_unknown_ids_are_404(client):
    for response in (client.get("/aiops/silences/nope"), client.delete("/aiops/silences/nope"),
                     client.get("/aiops/silences/" + "x" * 300)):
        assert response.status_code == 404
        assert response.get_json()["error"] == "Not Found"


@pytest.mark.parametrize(("body", "field"), [
    ({"matchers": []}, "'matchers'"),
    ({"matchers": None}, "'matchers'"),
    ({"matchers": [{"name": "pod", "value": "a"}]}, "'matchers[0].name'"),
    ({"matchers": [{"name": "endpoint", "value": "(pay", "regex": True}]}, "'matchers[0].value'"),
    ({"matchers": [{"name": "endpoint", "value": "(a+)+", "regex": True}]}, "'matchers[0].value'"),
    ({"starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "'ends_at'"),
    ({"ends_at": "2020-01-01T00:00:00Z"}, "'ends_at'"),
    ({"ends_at": "soon"}, "'ends_at'"),
    ({"starts_at": "yesterday"}, "'starts_at'"),
    ({"created_by": "x" * 201}, "'created_by'"),
    ({"comment": "x" * 2001}, "'comment'"),
    ({"silence": True}, "'silence'"),
])
@sqlite_only
def test_bad_bodies_are_400_naming_the_field_and_store_nothing(client, body, field):
    response = create(client, **body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["error"] == "Bad Request" and error["message"].startswith(field), error
    assert listed(client) == []


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'"text"'])
@sqlite_only
def test_a_body_that_is_no_json_object_is_400(client, raw):
    response = client.post("/aiops/silences", data=raw, content_type="application/json")
    assert response.status_code == 400 and "'body'" in response.get_json()["message"]
    assert client.get("/aiops/silences?state=gone").status_code == 400


def test_mutations_need_the_token_and_reads_do_not(app, client):
    reconfigure(app, api_token="s3cret")
    assert create(client).status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    silence = create(client, headers=auth).get_json()
    assert client.get("/aiops/silences").status_code == 200
    assert client.delete(f"/aiops/silences/{silence['id']}").status_code == 401
    assert listed(client)[0]["state"] == "active"
    assert client.delete(f"/aiops/silences/{silence['id']}", headers=auth).status_code == 200
    cross_site = {**auth, "Origin": "http://evil.example"}
    assert create(client, headers=cross_site).status_code == 403


def test_incident_json_says_which_silence_covers_it(app, client):
    iid = add_incident(app, "INC-1700000000-1")  # shop / payment, high
    add_incident(app, "INC-1700000000-2", root_endpoint="inventory")
    incident = client.get(f"/aiops/incidents/{iid}").get_json()
    assert (incident["silenced"], incident["silence_id"]) == (False, None)

    high = {"name": "severity", "value": "high|critical", "regex": True}
    silence = create(client, matchers=[{"name": "endpoint", "value": "payment"}, high]).get_json()
    incident = client.get(f"/aiops/incidents/{iid}").get_json()
    assert (incident["silenced"], incident["silence_id"]) == (True, silence["id"])
    page = client.get("/aiops/incidents").get_json()["active_incidents"]
    assert {i["id"]: i["silence_id"] for i in page} == {iid: silence["id"], "INC-1700000000-2": None}

    client.delete(f"/aiops/silences/{silence['id']}")
    incident = client.get(f"/aiops/incidents/{iid}").get_json()
    assert (incident["silenced"], incident["silence_id"]) == (False, None)


def test_the_gauge_counts_active_silences_at_scrape_time(client):
    def gauge() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        [line] = [x for x in text.splitlines() if x.startswith("aiops_silences_active ")]
        return float(line.split()[1])

    assert gauge() == 0
    one = create(client).get_json()
    create(client)
    create(client, starts_at=later(600), ends_at=later(1200))  # pending: not counted
    assert gauge() == 2
    client.delete(f"/aiops/silences/{one['id']}")
    assert gauge() == 1


# -- the page ----------------------------------------------------------------------------


def open_page(client, url: str = "/silences") -> tuple[Page, str]:
    response = client.get(url)
    assert response.status_code == 200
    doc = assert_inert(response.get_data(as_text=True))
    [token] = {a["value"] for t, a in doc.tags if t == "input" and a.get("name") == "csrf"}
    return doc, token


def test_silence_this_from_the_incident_page(app, client):
    iid = add_incident(app, "INC-1700000000-1")
    html = client.get(f"/incidents/{iid}").get_data(as_text=True)
    [link] = [a["href"] for t, a in Page(html).tags if t == "a" and a.get("id") == "silence-this"]
    assert link == f"/silences?service=shop&endpoint=payment&incident={iid}#create-silence"

    doc, token = open_page(client, link.partition("#")[0])
    values = {a["name"]: a.get("value") for t, a in doc.tags if t == "input" and "name" in a}
    assert (values["service"], values["endpoint"], values["incident"]) == ("shop", "payment", iid)
    form = {"csrf": token, "service": "shop", "endpoint": "payment", "duration": "3600", "incident": iid,
            "created_by": HOSTILE_NAME, "comment": "deploying payment"}
    response = client.post("/silences", data=form)
    assert response.status_code == 303 and response.headers["Location"] == f"/incidents/{iid}?done=silenced"

    [silence] = listed(client)
    assert silence["created_by"] == HOSTILE_NAME and silence["matchers"] == [
        {"name": "service", "value": "shop", "regex": False},
        {"name": "endpoint", "value": "payment", "regex": False}]
    page = assert_inert(client.get(f"/incidents/{iid}?done=silenced").get_data(as_text=True))
    assert page.text_of(id="silenced").startswith(f"Silenced by {silence['id']}")
    assert "silence-this" not in page.raw
    doc, _ = open_page(client)
    assert HOSTILE_NAME in doc.plain  # shown as text


def test_page_creates_and_expires_with_csrf_and_token(app, client):
    reconfigure(app, api_token="s3cret")
    doc, token = open_page(client)
    form = {"csrf": token, "endpoint": "pay.*", "endpoint_regex": "on", "duration": "1800"}
    assert client.post("/silences", data=form).status_code == 401  # no token typed
    assert client.post("/silences", data={**form, "token": "s3cret", "csrf": "x" * 43}).status_code == 403
    assert listed(client) == []
    response = client.post("/silences", data={**form, "token": "s3cret"})
    assert response.status_code == 303 and response.headers["Location"] == "/silences?done=created"
    [silence] = listed(client)
    assert silence["matchers"] == [{"name": "endpoint", "value": "pay.*", "regex": True}]

    bad = client.post("/silences", data={**form, "token": "s3cret", "endpoint": "(a+)+"})
    assert bad.status_code == 400 and "text/html" in bad.content_type
    assert "matchers[0].value" in bad.get_data(as_text=True)
    assert client.post("/silences", data={**form, "token": "s3cret", "duration": "5"}).status_code == 400

    url = f"/silences/{silence['id']}/expire"
    assert client.post(url, data={"csrf": token}).status_code == 401
    response = client.post(url, data={"csrf": token, "token": "s3cret"})
    assert response.status_code == 303 and response.headers["Location"] == "/silences?done=expired"
    assert listed(client)[0]["state"] == "expired"
    doc, _ = open_page(client, "/silences?done=expired")
    assert doc.text_of(id="notice") == "Silence expired."
    assert [a.get("class") for t, a in doc.tags if t == "tr" and a.get("id")] == ["silence silence-expired"]
