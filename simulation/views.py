"""``/simulate/*``: fault injection for the demo, off unless ``AIOPS_ENABLE_SIMULATION=1``."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request

from aiops.settings import current_settings
from aiops.web.auth import require_token
from simulation import collector, faults

bp = Blueprint("simulation", __name__, url_prefix="/simulate")


@bp.before_request
def _enabled():
    if not current_settings().enable_simulation:
        abort(404, description="fault injection is disabled; start with AIOPS_ENABLE_SIMULATION=1")


def _params() -> dict:
    params = dict(request.args)
    body = request.get_json(silent=True)
    if isinstance(body, dict):
        params.update({k: v for k, v in body.items() if k not in params})
    return params


def _checked(parse):
    try:
        return parse(_params())
    except faults.FaultError as exc:
        abort(400, description=str(exc))


@bp.post("/delay")
@require_token
def delay():
    endpoint, duration = _checked(faults.parse_delay)
    return jsonify(injected=faults.set_delay(endpoint, duration).to_dict())


@bp.post("/error")
@require_token
def error():
    endpoint, rate = _checked(faults.parse_error)
    return jsonify(injected=faults.set_error(endpoint, rate).to_dict())


@bp.post("/timeout")
@require_token
def timeout():
    endpoint = _checked(faults.parse_timeout)
    return jsonify(injected=faults.set_timeout(endpoint).to_dict())


@bp.post("/network")
@require_token
def network():
    """A slow network to ``endpoint``: its callers wait inside their CLIENT span, it never knows."""
    endpoint, delay_ms = _checked(faults.parse_network)
    return jsonify(injected=faults.set_network(endpoint, delay_ms).to_dict())


@bp.post("/degrade")
@require_token
def degrade():
    """The endpoint's latency grows linearly to ``factor`` x over ``ramp_s`` seconds: a slow creep."""
    endpoint, factor, ramp_s = _checked(faults.parse_degrade)
    return jsonify(injected=faults.set_degrade(endpoint, factor, ramp_s).to_dict())


@bp.post("/stop")
@require_token
def stop():
    """The endpoint stops answering: its callers' connections are refused, its traffic drops to zero."""
    endpoint = _checked(faults.parse_stop)
    return jsonify(injected=faults.set_stop(endpoint).to_dict())


@bp.post("/dependency")
@require_token
def dependency():
    """The endpoint's call to the demo's external peer fails: connection refused, DNS error or 5xx."""
    endpoint, mode = _checked(faults.parse_dependency)
    return jsonify(injected=faults.set_dependency(endpoint, mode).to_dict())


@bp.post("/exhaust")
@require_token
def exhaust():
    """The endpoint fails with a resource's real error: pool timeout, MemoryError, EMFILE, ENOSPC."""
    endpoint, resource = _checked(faults.parse_exhaust)
    return jsonify(injected=faults.set_exhaust(endpoint, resource).to_dict())


@bp.post("/invalid")
@require_token
def invalid():
    """The endpoint answers 200 with a body its caller cannot parse."""
    endpoint = _checked(faults.parse_invalid)
    return jsonify(injected=faults.set_invalid(endpoint).to_dict())


@bp.post("/cpu")
@require_token
def cpu():
    """Busy threads in every process of the service (each starts its own on its next request)."""
    threads, duration = _checked(faults.parse_cpu)
    fault = faults.set_cpu(threads, duration).to_dict()
    faults.follow_cpu(current_app._get_current_object(), force=True)  # this process: now
    return jsonify(injected=fault)


@bp.post("/collector-failure")
@require_token
def collector_failure():
    """Every OTLP export of every process fails for ``seconds`` (``GET /telemetry/health`` shows it)."""
    seconds = _checked(collector.parse)
    return jsonify(injected=collector.inject(seconds).to_dict())


@bp.post("/clear")
@require_token
def clear():
    """All faults, or one endpoint's with ``?endpoint=`` (``*``: the CPU hog)."""
    if "endpoint" in request.args:
        removed = faults.clear((_checked(faults.parse_clear),))
    else:
        removed = faults.clear()
    faults.follow_cpu(current_app._get_current_object(), force=True)  # the other processes within a second
    return jsonify(cleared=removed)


@bp.post("/remediate")
@require_token
def remediate():
    """The demo's remediation hook: clears the fault on the incident's root-cause endpoint.

    Point ``AIOPS_REMEDIATION_<KIND>_URL`` here to watch the loop close: the
    incident opens, the hook clears the fault, the next cycle sees it cleared.
    """
    try:
        targets = faults.remediation_targets(request.get_json(silent=True))
    except faults.FaultError as exc:
        abort(400, description=str(exc))
    removed = faults.clear(targets) if targets else 0
    faults.follow_cpu(current_app._get_current_object(), force=True)
    return jsonify(endpoints=list(targets), cleared=removed)


@bp.get("/faults")
def active():
    return jsonify(faults=[f.to_dict() for f in faults.active()])
