"""The one token check (telemetry.tokens) and every kind of route it protects: a state change under
/aiops, the demo's fault injection under /simulate, OTLP ingest and, with AIOPS_PROTECT_READS, reads."""

from __future__ import annotations

import base64

import pytest
from werkzeug.datastructures import Headers

from telemetry import tokens
from tests.support.factories import good_request
from tests.support.otlp_http import PB, post

TOKEN = "s3cret-token"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- the check (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize("headers, ok", [
    ({"Authorization": f"Bearer {TOKEN}"}, True),
    ({"Authorization": f"bearer {TOKEN}"}, True),  # RFC 7235: the scheme is case-insensitive
    ({"Authorization": f"BEARER {TOKEN}"}, True),
    ({"Authorization": f"bEaReR   {TOKEN} "}, True),  # one or more spaces, none kept around the token
    ({"X-AIOps-Token": TOKEN}, True),
    ({"x-aiops-token": f" {TOKEN}"}, True),
    ({"Authorization": "Bearer wrong", "X-AIOps-Token": TOKEN}, True),  # either form may carry it
    ({"Authorization": "Bearer wrong"}, False),
    ({"Authorization": f"Bearer {TOKEN}x"}, False),
    ({"Authorization": f"Bearer {TOKEN[:-1]}"}, False),
    ({"Authorization": TOKEN}, False),  # no scheme
    ({"Authorization": f"Token {TOKEN}"}, False),
    ({"Authorization": f"Bearer{TOKEN}"}, False),
    ({"Authorization": f"Bearer: {TOKEN}"}, False),
    ({"X-AIOps-Token": "wrong"}, False),
    ({"X-AIOps-Token": f"Bearer {TOKEN}"}, False),
    ({"Authorization": basic("me", TOKEN)}, False),  # a browser's login: only where basic=True
    ({}, False),
])
def test_the_forms_a_token_is_accepted_in(headers, ok):
    assert tokens.presented(Headers(headers), TOKEN) is ok


@pytest.mark.parametrize("header, ok", [
    (basic("me", TOKEN), True),
    (basic("", TOKEN), True),
    ("basic " + basic("ops", TOKEN).split()[1], True),
    (basic("me", "wrong"), False),
    (basic(TOKEN, ""), False),  # the token is the password, not the user
    ("Basic !!!", False),
    ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), False),
    (f"Bearer {TOKEN}", True),
    (TOKEN, False),
    ("", False),
])
def test_basic_counts_where_the_caller_allows_it(header, ok):
    assert tokens.presented(Headers({"Authorization": header}), TOKEN, basic=True) is ok


def test_an_empty_token_matches_nothing():
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer"}, {"X-AIOps-Token": ""},
                    {"Authorization": basic("me", "")}):
        assert not tokens.presented(Headers(headers), "", basic=True), headers


# -- every kind of protected route -----------------------------------------------------------


ACCEPTED = [
    {"Authorization": f"Bearer {TOKEN}"},
    {"Authorization": f"bearer {TOKEN}"},
    {"Authorization": f"BEARER {TOKEN}"},
    {"X-AIOps-Token": TOKEN},
]
REFUSED = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": "bearer wrong"},
    {"X-AIOps-Token": "wrong"},
    {"Authorization": TOKEN},
]


def test_state_changes_take_every_form_but_a_browsers_login(app_factory):
    """A mutating /aiops route and the demo's fault injection: 401 without the token, the view runs
    with it (a 404 for an incident that does not exist: past the check). HTTP Basic is refused: a
    browser would send it by itself, for another site's page too."""
    client = app_factory(AIOPS_API_TOKEN=TOKEN).test_client()
    calls = (("/aiops/incidents/INC-nope/acknowledge", 404), ("/simulate/clear", 200))
    for path, status in calls:
        for headers in REFUSED + [{"Authorization": basic("me", TOKEN)}]:
            r = client.post(path, headers=headers)
            assert r.status_code == 401 and r.get_json()["error"] == "Unauthorized", (path, headers)
        for headers in ACCEPTED:
            assert client.post(path, headers=headers).status_code == status, (path, headers)


def test_ingest_takes_every_form_of_its_token(app_factory):
    client = app_factory(AIOPS_API_TOKEN="api-t", AIOPS_INGEST_TOKEN=TOKEN).test_client()
    body = good_request(1).SerializeToString()
    for headers in REFUSED + [{"Authorization": "Bearer api-t"}, {"Authorization": basic("me", TOKEN)}]:
        r = post(client, body, PB, **headers)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="otlp"', headers
    for headers in ACCEPTED:
        assert post(client, body, PB, **headers).status_code == 200, headers


def test_protected_reads_take_every_form_and_a_browsers_login(app_factory):
    client = app_factory(AIOPS_API_TOKEN=TOKEN, AIOPS_PROTECT_READS=True).test_client()
    for path in ("/aiops/incidents", "/"):
        for headers in REFUSED + [{"Authorization": basic("me", "wrong")}]:
            assert client.get(path, headers=headers).status_code == 401, (path, headers)
        for headers in ACCEPTED + [{"Authorization": basic("me", TOKEN)},
                                   {"Authorization": basic("me", TOKEN).replace("Basic", "BASIC")}]:
            assert client.get(path, headers=headers).status_code == 200, (path, headers)
