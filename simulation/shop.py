"""The demo shop: ``/checkout`` calls ``/payment`` and ``/inventory`` over real HTTP.

Recorded like any service. Each view first applies the fault injected for it
(delay, error rate, hang), so ``/simulate/*`` can prove the AIOps loop end to
end. Outgoing calls carry the trace on in a W3C ``traceparent`` header and are
recorded as CLIENT spans, so RCA can blame a callee even when its own span has
not arrived (it is still hanging).
"""

from __future__ import annotations

import errno
import http.client
import logging
import random
import threading
import time

import requests
from flask import Blueprint, Response, current_app, g, jsonify, request
from opentelemetry import propagate
from werkzeug.exceptions import BadGateway, BadRequest, GatewayTimeout

import telemetry
from aiops.settings import current_settings
from simulation import external, faults

bp = Blueprint("shop", __name__)
log = logging.getLogger(__name__)  # its records are stored with the request's trace (telemetry.log_bridge)
_local = threading.local()


class InjectedFault(RuntimeError):
    """Raised by an endpoint that ``/simulate/error`` told to fail."""

    expose = True  # its text is the demo's own, safe to show in the 500 (aiops.web.errors)


def _http() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


# Each endpoint's own work, with natural jitter (seconds): a realistic baseline.
# AIOPS_DEMO_WORK scales it (0: none, for benchmarking the request path itself).
_WORK = {"checkout": (0.002, 0.008), "payment": (0.010, 0.030), "inventory": (0.003, 0.012)}


# The recorded latency also counts the server's own overhead around the view, which no sleep in
# the view multiplies: the degradation's extra sleep is this much longer so the recorded latency
# reaches its factor.
DEGRADE_MARGIN = 0.1


@bp.before_request
def _started() -> None:
    g.shop_started = time.perf_counter()


@bp.after_request
def _degraded(response):
    """A degraded endpoint (``/simulate/degrade``) takes ``factor`` x the time it took so far."""
    factor = faults.degrade_factor(g.get("shop_fault"), time.time())
    if factor > 1.0:
        elapsed = time.perf_counter() - g.get("shop_started", time.perf_counter())
        time.sleep((factor - 1.0) * (1.0 + DEGRADE_MARGIN) * elapsed)
    return response


def _apply_fault(endpoint: str) -> dict | None:
    """Apply the endpoint's injected fault (delay, hang, error, exhaustion); returns it (None: none)."""
    faults.follow_cpu(current_app._get_current_object())  # a CPU hog injected through another worker
    low, high = _WORK.get(endpoint, (0.0, 0.0))
    scale = current_settings().demo_work
    if high and scale > 0:
        time.sleep(random.uniform(low, high) * scale)
    fault = g.shop_fault = faults.for_endpoint(endpoint)
    if not fault:
        return None
    if fault["timeout"]:
        # Hang past any caller's timeout, as a stuck dependency would.
        log.warning("%s: waiting on a stuck resource", endpoint)
        time.sleep(current_settings().demo_timeout + 1.0)
    if fault["delay_ms"]:
        log.warning("%s: slow backend, %d ms spent waiting", endpoint, fault["delay_ms"])
        time.sleep(fault["delay_ms"] / 1000.0)
    if fault["error_rate"] and random.random() < fault["error_rate"]:
        try:
            raise InjectedFault(f"injected error on {endpoint}")
        except InjectedFault as error:
            log.exception("%s failed: %s", endpoint, error)  # as real code logs before it gives up
            raise
    if fault["exhaust"]:
        try:
            external.exhaust(fault["exhaust"])
        except Exception as error:
            log.exception("%s failed: %s: %s", endpoint, type(error).__name__, error)
            raise
    return fault


def _gateway(endpoint: str, fault: dict | None) -> None:
    """The endpoint's call to the external peer (:mod:`simulation.external`), failing as its
    ``/simulate/dependency`` fault says: 502 when it cannot be reached or answers 5xx."""
    method, path = external.CALLERS[endpoint]
    mode = fault["dependency"] if fault else None
    timeout = current_settings().demo_timeout
    try:
        with telemetry.active_recorder().client_span(path, method, service=external.PEER) as call:
            response = external.call(_http(), method, path, mode, timeout)
            call["status_code"] = response.status_code
    except requests.RequestException as exc:
        telemetry.record_exception(exc)
        log.error("call to %s failed: %s", external.PEER, exc, exc_info=exc)
        if isinstance(exc, requests.Timeout):
            raise GatewayTimeout(f"{external.PEER} did not answer within {timeout:g}s") from exc
        raise BadGateway(f"{external.PEER} could not be reached: {type(exc).__name__}") from exc
    if response.status_code >= 500:
        err = BadGateway(f"{external.PEER} answered {response.status_code}")
        telemetry.record_exception(err)
        log.error("call to %s answered %d", external.PEER, response.status_code)
        raise err


def _answer(fault: dict | None, **body) -> Response:
    """The endpoint's JSON answer, or (``/simulate/invalid``) a 200 whose body is not JSON."""
    if fault and fault["invalid"]:
        return Response(external.INVALID_BODY, 200, mimetype="text/html")
    return jsonify(**body)


def _dropped(exc: requests.ConnectionError) -> bool:
    """Whether the server closed a kept-alive connection before answering (it was idle too long).

    gunicorn closes idle keep-alive connections after a few seconds; a pooled
    connection reused just then fails at once with a reset or "remote end
    closed", before the other endpoint ever saw the request.
    """
    seen, todo = set(), [exc]
    while todo:  # requests and urllib3 keep the socket's error in args and in the chain
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ConnectionResetError | BrokenPipeError | http.client.RemoteDisconnected):
            return True
        todo += [e for e in (err.__cause__, err.__context__, *err.args) if isinstance(e, BaseException)]
    return False


def _send(method: str, url: str, json, headers: dict, timeout: float) -> requests.Response:
    """One call, sent again once if a stale kept-alive connection dropped it (never after a timeout)."""
    try:
        return _http().request(method, url, json=json, headers=headers, timeout=timeout)
    except requests.ConnectionError as exc:
        if isinstance(exc, requests.Timeout) or not _dropped(exc):
            raise
    return _http().request(method, url, json=json, headers=headers, timeout=timeout)


def _slow_network(endpoint: str, timeout: float) -> None:
    """The network fault on ``endpoint``, inside the caller's CLIENT span: the call takes longer
    while the callee's own SERVER span stays normal. A delay past the timeout is a timeout. A
    stopped endpoint (``/simulate/stop``) refuses the connection, as a closed port does."""
    fault = faults.for_endpoint(endpoint) or {}
    if fault.get("stopped"):
        refused = ConnectionRefusedError(errno.ECONNREFUSED, f"Connection refused: {endpoint} is stopped")
        raise requests.ConnectionError(refused)
    delay = (fault.get("network_delay_ms") or 0.0) / 1000.0
    if delay >= timeout:
        time.sleep(timeout)
        raise requests.ConnectTimeout(f"network delay to {endpoint} ({delay:g}s) exceeds the timeout")
    if delay:
        time.sleep(delay)


def own_address(environ: dict) -> str | None:
    """``http://host:port`` of the socket this request arrived on: the server's own bind address.

    gunicorn and Werkzeug's server put the connection in the environ. Its
    local address is one this server listens on, whatever the client wrote in
    ``Host`` (which, used as the base URL, would let any caller make the demo
    call any host:port and hand back the answer: SSRF). None for a unix
    socket or a server that does not expose the connection.
    """
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    try:
        name = sock.getsockname() if sock is not None else None
    except OSError:
        return None
    if not isinstance(name, tuple) or len(name) < 2:
        return None
    host, port = name[0], name[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def demo_base_url() -> str:
    """Where the demo calls its own services: ``AIOPS_DEMO_BASE_URL``, else its own bind address."""
    base = current_settings().demo_base_url or own_address(request.environ)
    if not base:
        raise BadGateway("the demo cannot tell its own address here: set AIOPS_DEMO_BASE_URL")
    return base


def _call(method: str, endpoint: str, json=None) -> dict:
    """Call another demo endpoint; raise 504 on timeout and 502 on any other failure."""
    base = demo_base_url()
    timeout = current_settings().demo_timeout
    try:
        with telemetry.active_recorder().client_span(endpoint, method) as call:
            _slow_network(endpoint, timeout)
            headers: dict[str, str] = {}
            propagate.inject(headers)
            response = _send(method, base.rstrip("/") + "/" + endpoint, json, headers, timeout)
            call["status_code"] = response.status_code
    except requests.Timeout as exc:
        telemetry.record_exception(exc)
        log.error("call to %s timed out after %gs", endpoint, timeout, exc_info=exc)
        raise GatewayTimeout(f"{endpoint} did not answer within {timeout:g}s") from exc
    except requests.RequestException as exc:
        telemetry.record_exception(exc)
        log.error("call to %s failed: %s", endpoint, type(exc).__name__, exc_info=exc)
        raise BadGateway(f"{endpoint} could not be reached: {type(exc).__name__}") from exc
    if response.status_code >= 500:
        err = BadGateway(f"{endpoint} answered {response.status_code}")
        telemetry.record_exception(err)
        log.error("call to %s answered %d", endpoint, response.status_code)
        raise err
    try:
        return response.json()
    except ValueError as exc:  # requests' JSONDecodeError: a 200 that is not what was asked for
        telemetry.record_exception(exc)
        log.error("call to %s answered %d with a body that is not JSON: %s", endpoint,
                  response.status_code, exc, exc_info=exc)
        raise BadGateway(f"{endpoint} answered a body that is not JSON") from exc


def _amount(default: float) -> float:
    """The order's optional ``{"amount": <number>}``; any other body is a 400, not a 500 (``[1]``
    has no ``.get``) nor an amount of ``"lots"`` passed on to payment."""
    if not request.get_data():
        return default
    body = request.get_json(silent=True)
    amount = body.get("amount", default) if isinstance(body, dict) else None
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise BadRequest('the body must be a JSON object like {"amount": 42.0}')
    return amount


@bp.post("/checkout")
def checkout():
    _apply_fault("checkout")
    amount = _amount(42.0)
    stock = _call("GET", "inventory")
    paid = _call("POST", "payment", json={"amount": amount})
    return jsonify(status="ordered", payment=paid, inventory=stock)


@bp.post("/payment")
def payment():
    fault = _apply_fault("payment")
    amount = _amount(0)
    _gateway("payment", fault)
    return _answer(fault, status="paid", amount=amount)


@bp.get("/inventory")
def inventory():
    fault = _apply_fault("inventory")
    _gateway("inventory", fault)
    return _answer(fault, items={"widget": 12, "gadget": 7})
