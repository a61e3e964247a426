"""The fault catalogue: what each fault type is, where it is switched, and which service it hits.

Targets and sizes come from ``--seed`` alone, so a run can be repeated.
Targets are never entry services (traffic enters there, a fault there is
trivially visible) and rotate, so consecutive faults hit different services.

| type            | made by                                    | the callers see                  |
| --------------- | ------------------------------------------ | -------------------------------- |
| delay-answers   | sidecar holds the service's answers         | slower calls; the service's own  |
|                 |                                            | SERVER spans unchanged           |
| delay-all       | sidecar holds every byte the service sends | same, and its own calls slower   |
| connection      | sidecar resets (RST) or swallows requests  | ConnectionError / timeouts       |
| cpu             | busy threads inside the service process    | every endpoint of it slower      |
| exception       | the endpoint raises                        | 500s with exception events       |
| slow            | the endpoint's own work takes longer       | slower calls, longer self time   |
| wrong           | 200 with an incomplete body                | their own KeyError -> their 500  |
| down            | the sidecar stops listening                | connection refused               |
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from bench.faultlab import control
from bench.faultlab.topology import Topology

TYPES = ("delay-answers", "delay-all", "connection", "cpu", "exception", "slow", "wrong", "down")


@dataclass
class Fault:
    id: int
    type: str
    variant: str
    target: str
    endpoint: str | None  # for faults of one endpoint; None: the whole service
    where: str  # "sidecar" or "service": whose control port switches it
    kind: str  # the fault name on that control port
    params: dict = field(default_factory=dict)

    def describe(self) -> str:
        at = f"{self.target}.{self.endpoint}" if self.endpoint else self.target
        sizes = ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "endpoint")
        return f"{self.type} ({self.variant}) at {at}" + (f" [{sizes}]" if sizes else "")

    def record(self) -> dict:
        return asdict(self)


def parse_types(text: str) -> list[str]:
    """``all`` or a comma list of known types, in the order given."""
    if text.strip() == "all":
        return list(TYPES)
    types = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in types if t not in TYPES]
    if unknown or not types:
        raise ValueError(f"unknown fault type(s) {unknown or text!r}; known: all, {', '.join(TYPES)}")
    return types


def plan(topology: Topology, types: list[str], seed: int, rounds: int = 1,
         only: Sequence[str] = ()) -> list[Fault]:
    """The faults to inject, in order: every type once per round, targets rotating (among ``only``
    when given: to aim faults at one part of a topology, a shared mid-tier service and its leaf)."""
    rng = random.Random(seed)
    reachable = topology.reachable()
    entries = topology.entry_services()
    targets = sorted({s for s, _ in reachable} - entries)
    if not targets:
        raise ValueError("the topology has no non-entry service that traffic reaches")
    unknown = sorted(set(only) - set(targets))
    if unknown:
        raise ValueError(f"--targets {', '.join(unknown)}: not a non-entry service traffic reaches "
                         f"(those are: {', '.join(targets)})")
    targets = sorted(set(only)) or targets
    rng.shuffle(targets)
    faults: list[Fault] = []
    for _ in range(rounds):
        for kind in types:
            pool = targets
            if kind == "delay-all":  # its own calls must exist for the variant to differ
                pool = [t for t in targets if topology.services[t].callees()] or targets
            target = min(pool, key=lambda t: _least_recent(t, faults, pool))
            endpoints = sorted(e for s, e in reachable if s == target)
            faults.append(_make(len(faults) + 1, kind, target, rng.choice(endpoints), rng))
    return faults


def _least_recent(target: str, faults: list[Fault], pool: list[str]) -> tuple[int, int, int]:
    """Sort key: least used first, then longest ago, then the shuffled order."""
    used = [i for i, f in enumerate(faults) if f.target == target]
    return len(used), used[-1] if used else -1, pool.index(target)


def _make(n: int, kind: str, target: str, endpoint: str, rng: random.Random) -> Fault:
    if kind in ("delay-answers", "delay-all"):
        ms = rng.randrange(150, 801, 10)
        scope = "answers" if kind == "delay-answers" else "all"
        return Fault(n, kind, scope, target, None, "sidecar", "delay",
                     {"ms": ms, "jitter_ms": round(ms * 0.2), "scope": scope})
    if kind == "connection":
        variant = rng.choice(["reset", "loss"])
        share = round(rng.uniform(0.3, 0.7), 2) if variant == "reset" else round(rng.uniform(0.2, 0.5), 2)
        return Fault(n, kind, variant, target, None, "sidecar", variant, {"share": share})
    if kind == "down":
        return Fault(n, kind, "refused", target, None, "sidecar", "refuse", {})
    if kind == "cpu":
        return Fault(n, kind, "hog", target, None, "service", "cpu",
                     {"duty": round(rng.uniform(0.6, 0.9), 2), "threads": 1})
    if kind == "exception":
        return Fault(n, kind, "raise", target, endpoint, "service", "exception",
                     {"endpoint": endpoint, "rate": round(rng.uniform(0.5, 1.0), 2)})
    if kind == "slow":
        return Fault(n, kind, "own-work", target, endpoint, "service", "slow",
                     {"endpoint": endpoint, "ms": rng.randrange(100, 501, 10)})
    if kind == "wrong":
        return Fault(n, kind, "incomplete-body", target, endpoint, "service", "wrong",
                     {"endpoint": endpoint, "rate": round(rng.uniform(0.5, 1.0), 2)})
    raise ValueError(f"unknown fault type {kind!r}")


def control_port(fault: Fault, ports: dict) -> int:
    return ports[fault.target]["sidecar_control" if fault.where == "sidecar" else "control"]


def inject(fault: Fault, ports: dict) -> None:
    reply = control.ask(control_port(fault, ports), {"op": "set", "kind": fault.kind, "params": fault.params})
    if not reply.get("ok"):
        raise RuntimeError(f"could not inject {fault.describe()}: {reply}")


def clear(fault: Fault, ports: dict) -> None:
    reply = control.ask(control_port(fault, ports), {"op": "clear"})
    if not reply.get("ok"):
        raise RuntimeError(f"could not clear {fault.describe()}: {reply}")
