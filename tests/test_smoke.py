"""One request through the whole app: the demo's route, recorded as a span.

At the top of ``tests/``, as ``app.py`` is at the top of the code: it runs the app as a whole.
"""


def test_checkout_is_recorded_with_trace(app, client):
    from sqlalchemy import select

    import telemetry
    from telemetry.db import db
    from telemetry.models import Span

    # The test client cannot serve checkout's outgoing HTTP calls; payment alone is enough here.
    r = client.post("/payment", json={"amount": 3})
    assert r.status_code == 200
    with app.app_context():
        app.extensions["aiops_buffer"].flush()
        spans = db.session.scalars(select(Span)).all()
    # payment's call to the demo's external peer (a CLIENT span), then payment itself
    assert [(s.service, s.endpoint, s.status_code) for s in spans] == [("shop", "charge", 200),
                                                                       ("shop", "payment", 200)]
    assert len(spans[1].trace_id) == 32 and spans[1].parent_span_id is None
    assert spans[0].peer == "gateway" and spans[0].parent_span_id == spans[1].span_id
    assert telemetry
