"""The system under test, read from a TOML file: services, endpoints, calls, work and traffic.

The lab never hard-codes a service name: every process, port, fault target and
traffic share comes from this file, so a topology the lab has never seen runs
as long as it validates. Validation fails early with messages that name the
offending service or call, because a typo found after a ten-minute warm-up is
ten minutes lost.

Format (see ``topologies/*.toml``)::

    name = "shop"
    call_timeout_ms = 1000          # optional: a leaf call's timeout (scaled up the call tree)

    [[service]]
    name = "frontend"

    [[service.endpoint]]
    name = "home"                   # served as GET /home
    method = "GET"                  # optional (GET)
    work_ms = 4                     # own work: sleeping (waiting on a disk, a lock) ...
    jitter_ms = 2                   # ... +/- uniformly this much
    cpu_ms = 1                      # ... and computing
    share = 3                       # optional: an entry endpoint, weight of its share of traffic
    calls = [{ to = "catalog.list", repeat = 2 }, { to = "cart.view", p = 0.5 }]
    # best_effort = true on a call: the caller absorbs its failures (its own span stays healthy)
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
MAX_REPEAT = 10
METHODS = ("GET", "POST")


class TopologyError(ValueError):
    """The topology file is unusable; the message says where and why."""


@dataclass(frozen=True)
class Call:
    service: str
    endpoint: str
    repeat: int = 1
    p: float = 1.0
    best_effort: bool = False  # the caller absorbs its failures (answers without its result)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str = "GET"
    work_ms: float = 2.0
    jitter_ms: float = 1.0
    cpu_ms: float = 0.5
    share: float = 0.0
    calls: tuple[Call, ...] = ()

    @property
    def path(self) -> str:
        return "/" + self.name


@dataclass(frozen=True)
class Service:
    name: str
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    def callees(self) -> list[str]:
        """Services this one calls, in first-call order."""
        seen: dict[str, None] = {}
        for ep in self.endpoints.values():
            for call in ep.calls:
                seen.setdefault(call.service, None)
        return list(seen)


@dataclass(frozen=True)
class Topology:
    name: str
    services: dict[str, Service]
    call_timeout_ms: float = 1000.0

    def entries(self) -> list[tuple[str, str, float]]:
        """(service, endpoint, share) of every endpoint that receives outside traffic."""
        return [(s.name, e.name, e.share) for s in self.services.values()
                for e in s.endpoints.values() if e.share > 0]

    def entry_services(self) -> set[str]:
        return {service for service, _, _ in self.entries()}

    def height(self, service: str) -> int:
        """Longest chain of calls below ``service`` (0 for a leaf); the service graph is acyclic."""
        callees = self.services[service].callees()
        return 1 + max(self.height(c) for c in callees) if callees else 0

    def timeout_s(self, service: str) -> float:
        """How long a caller waits for ``service``: longer for services with deeper call chains,
        so a timeout deep down surfaces as an error at its caller, not a timeout at every level."""
        return self.call_timeout_ms / 1000.0 * (1 + 2 * self.height(service))

    def reachable(self) -> set[tuple[str, str]]:
        """(service, endpoint) pairs that entry traffic can reach."""
        todo = [(s, e) for s, e, _ in self.entries()]
        seen: set[tuple[str, str]] = set()
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            todo += [(c.service, c.endpoint) for c in self.services[key[0]].endpoints[key[1]].calls]
        return seen

    def callers(self, service: str) -> set[str]:
        return {s.name for s in self.services.values() if service in s.callees()}


def load(path: str | Path) -> Topology:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TopologyError(f"{path}: {exc}") from exc
    try:
        return parse(data)
    except TopologyError as exc:
        raise TopologyError(f"{path}: {exc}") from exc


def parse(data: dict) -> Topology:
    """Build and validate a topology from the decoded TOML document."""
    _keys(data, {"name", "call_timeout_ms", "service"}, "the file")
    name = data.get("name", "topology")
    timeout = _number(data.get("call_timeout_ms", 1000), "call_timeout_ms", low=50, high=60_000)
    raw_services = data.get("service")
    if not isinstance(raw_services, list) or len(raw_services) < 2:
        raise TopologyError("needs at least two [[service]] tables")
    services: dict[str, Service] = {}
    for raw in raw_services:
        service = _service(raw)
        if service.name in services:
            raise TopologyError(f"service {service.name!r} is defined twice")
        services[service.name] = service
    topology = Topology(name=str(name), services=services, call_timeout_ms=timeout)
    _check_calls(topology)
    _check_acyclic(topology)
    if not topology.entries():
        raise TopologyError("no entry endpoint: give at least one endpoint a share > 0")
    return topology


def _service(raw) -> Service:
    if not isinstance(raw, dict):
        raise TopologyError("a [[service]] entry is not a table")
    _keys(raw, {"name", "endpoint"}, f"service {raw.get('name')!r}")
    name = _name(raw.get("name"), "service name")
    raw_endpoints = raw.get("endpoint")
    if not isinstance(raw_endpoints, list) or not raw_endpoints:
        raise TopologyError(f"service {name!r} has no [[service.endpoint]]")
    endpoints: dict[str, Endpoint] = {}
    for raw_ep in raw_endpoints:
        ep = _endpoint(raw_ep, name)
        if ep.name in endpoints:
            raise TopologyError(f"endpoint {name}.{ep.name} is defined twice")
        endpoints[ep.name] = ep
    return Service(name=name, endpoints=endpoints)


def _endpoint(raw, service: str) -> Endpoint:
    if not isinstance(raw, dict):
        raise TopologyError(f"an endpoint of {service!r} is not a table")
    where = f"endpoint {service}.{raw.get('name')}"
    _keys(raw, {"name", "method", "work_ms", "jitter_ms", "cpu_ms", "share", "calls"}, where)
    name = _name(raw.get("name"), f"{where}: name")
    method = str(raw.get("method", "GET")).upper()
    if method not in METHODS:
        raise TopologyError(f"{where}: method must be one of {', '.join(METHODS)}")
    calls = []
    raw_calls = raw.get("calls", [])
    if not isinstance(raw_calls, list):
        raise TopologyError(f"{where}: calls must be a list")
    for raw_call in raw_calls:
        calls.append(_call(raw_call, where))
    return Endpoint(
        name=name, method=method,
        work_ms=_number(raw.get("work_ms", 2), f"{where}: work_ms", high=10_000),
        jitter_ms=_number(raw.get("jitter_ms", 1), f"{where}: jitter_ms", high=10_000),
        cpu_ms=_number(raw.get("cpu_ms", 0.5), f"{where}: cpu_ms", high=1_000),
        share=_number(raw.get("share", 0), f"{where}: share", high=1_000),
        calls=tuple(calls),
    )


def _call(raw, where: str) -> Call:
    if not isinstance(raw, dict):
        raise TopologyError(f"{where}: a call is not a table like {{ to = \"service.endpoint\" }}")
    _keys(raw, {"to", "repeat", "p", "best_effort"}, f"{where}: call")
    target = raw.get("to")
    if not isinstance(target, str) or target.count(".") != 1:
        raise TopologyError(f"{where}: call target {target!r} is not \"service.endpoint\"")
    service, endpoint = target.split(".")
    repeat = raw.get("repeat", 1)
    if not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise TopologyError(f"{where}: repeat of {target} must be an integer 1..{MAX_REPEAT}")
    p = _number(raw.get("p", 1.0), f"{where}: p of {target}", high=1.0)
    if p <= 0:
        raise TopologyError(f"{where}: p of {target} must be above 0")
    best_effort = raw.get("best_effort", False)
    if not isinstance(best_effort, bool):
        raise TopologyError(f"{where}: best_effort of {target} must be true or false")
    return Call(service=service, endpoint=endpoint, repeat=repeat, p=p, best_effort=best_effort)


def _check_calls(topology: Topology) -> None:
    for service in topology.services.values():
        for ep in service.endpoints.values():
            for call in ep.calls:
                target = f"{call.service}.{call.endpoint}"
                where = f"endpoint {service.name}.{ep.name}"
                if call.service == service.name:
                    raise TopologyError(f"{where} calls its own service ({target})")
                callee = topology.services.get(call.service)
                if callee is None:
                    raise TopologyError(f"{where} calls unknown service {call.service!r}")
                if call.endpoint not in callee.endpoints:
                    raise TopologyError(f"{where} calls unknown endpoint {target}")


def _check_acyclic(topology: Topology) -> None:
    """Service-level cycles are refused: timeouts are scaled by call depth, which needs a tree."""
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name):] + [name]
            raise TopologyError("calls form a cycle: " + " -> ".join(cycle))
        state[name] = 1
        for callee in topology.services[name].callees():
            visit(callee, path + [name])
        state[name] = 2

    for name in topology.services:
        visit(name, [])


def _keys(raw: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise TopologyError(f"{where}: unknown key(s) {', '.join(unknown)} "
                            f"(allowed: {', '.join(sorted(allowed))})")


def _name(value, where: str) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise TopologyError(f"{where} {value!r} must match {NAME.pattern}")
    return value


def _number(value, where: str, low: float = 0.0, high: float = float("inf")) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise TopologyError(f"{where} must be a number in {low:g}..{high:g}, got {value!r}")
    return float(value)
