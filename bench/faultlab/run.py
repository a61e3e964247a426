"""One lab run: start everything, warm up, inject the faults one at a time, score, report.

Phases (each printed on stderr as it goes): the product (started here, or
``--product URL``), one sidecar and one service process per topology service,
steady traffic, a warm-up while baselines learn, the dedicated fault-free
period, then per fault: inject -> hold -> clear -> grace (one detection
interval) -> fault-free gap (at least ``gap`` seconds, then until no incident
is open, at most ``settle_cap``). Ground truth is appended to
``<report>.truth.jsonl`` the moment a fault is injected and again when it is
cleared.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.faultlab import control, faults, ports, product, scoring
from bench.faultlab import topology as topo
from bench.faultlab.loadgen import Load
from bench.faultlab.processes import Children, clean_env


@dataclass
class Config:
    topology: Path
    report: Path
    faults: list[str]
    seed: int = 1
    rounds: int = 1
    targets: tuple[str, ...] = ()  # restrict fault targets to these services
    rate: float = 10.0
    interval: float = 10.0
    warmup: float = 180.0
    hold: float = 75.0
    gap: float = 60.0
    settle_cap: float = 180.0
    fault_free: float = 600.0
    product_url: str | None = None
    product_env: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None


def say(message: str) -> None:
    print(f"[faultlab {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_avg() -> float | None:
    """The host's 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 1)
    except OSError:
        return None


def truth_path(report: Path) -> Path:
    return report.with_name(report.name.removesuffix(".json") + ".truth.jsonl")


class Lab:
    def __init__(self, config: Config):
        self.config = config
        self.topology = topo.load(config.topology)
        self.plan = faults.plan(self.topology, config.faults, config.seed, config.rounds, config.targets)
        self.workdir = Path(config.workdir or tempfile.mkdtemp(prefix="faultlab-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.children = Children(self.workdir)
        self.ports: dict = {}
        self.url = config.product_url
        self.load: Load | None = None
        self.snapshots: dict[str, dict] = {}  # incident id -> latest JSON seen
        self.rows: list[dict] = []
        self.periods: list[dict] = []  # fault-free periods: {"after", "start", "end"}
        self.truth = truth_path(config.report)

    # -- processes -----------------------------------------------------------------------------
    def start(self) -> None:
        say(f"work directory {self.workdir} (logs, ports, database)")
        if self.url is None:
            say("starting the product (gunicorn, fresh SQLite)")
            settings = {**self.config.product_env, "AIOPS_DETECTION_INTERVAL": str(self.config.interval)}
            self.url = product.start(self.children, self.workdir, self.config.interval, settings)
        say(f"product at {self.url}")
        self.ports = ports.allocate(self.topology)
        plan_file = self.workdir / "ports.json"
        ports.save(self.ports, plan_file)
        env = clean_env()
        for name in self.topology.services:
            self.children.start(f"sidecar-{name}", ["-m", "bench.faultlab.sidecar", "--plan", str(plan_file),
                                                    "--name", name], env)
            self.children.start(f"service-{name}", [
                "-m", "bench.faultlab.service", "--topology", str(self.config.topology), "--plan",
                str(plan_file), "--name", name, "--otlp", self.url.rstrip("/") + "/v1/traces"], env)
        self._wait_ready()
        say(f"{len(self.topology.services)} services up, each behind its sidecar")

    def _wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        pending = {(name, kind) for name in self.topology.services for kind in ("control", "sidecar_control",
                                                                                 "ingress")}
        while pending:
            self.children.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout:.0f} s: {sorted(pending)}; "
                                   f"logs in {self.workdir}")
            for name, kind in sorted(pending):
                port = self.ports[name][kind]
                try:
                    if kind == "ingress":
                        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).raise_for_status()
                    else:
                        control.ask(port, {"op": "ping"}, timeout=2)
                    pending.discard((name, kind))
                except (OSError, requests.RequestException, ValueError):
                    pass
            time.sleep(0.3)

    def stop(self) -> None:
        if self.load:
            self.load.stop()
        self.children.stop_all()

    # -- phases --------------------------------------------------------------------------------
    def wait(self, seconds: float, label: str, until=None) -> None:
        """Sleep ``seconds`` (or until ``until()`` is true), checking the children and saying how long."""
        end = time.monotonic() + seconds
        next_note = 0.0
        while (left := end - time.monotonic()) > 0:
            self.children.check()
            if until is not None and until():
                return
            if time.monotonic() >= next_note:
                say(f"{label}: {left:.0f} s left")
                next_note = time.monotonic() + 15
            time.sleep(min(1.0, left))

    def refresh(self) -> list[dict]:
        for incident in product.incidents(self.url):
            self.snapshots[incident["id"]] = incident
        return list(self.snapshots.values())

    def no_open_incident(self) -> bool:
        return not any(i.get("status") != "resolved" for i in product.incidents(self.url))

    def run(self) -> dict:
        c = self.config
        self.truth.write_text("")
        self.load = Load(self.topology, self.ports, c.rate, c.seed).start()
        entries = ", ".join(f"{s}.{e}" for s, e, _ in self.topology.entries())
        say(f"traffic: {c.rate:g} requests/s into {entries}")
        self.wait(c.warmup, "warm-up (baselines learn)")
        warmup_incidents = [i["id"] for i in self.refresh()]
        if c.fault_free > 0:
            start = time.time()
            self.wait(c.fault_free, "fault-free period")
            self.periods.append({"after": "fault-free", "start": start, "end": time.time(),
                                 "load_avg": load_avg()})
        for fault in self.plan:
            self.one_fault(fault)
        self.refresh()
        return self.report(warmup_incidents)

    def one_fault(self, fault: faults.Fault) -> None:
        c = self.config
        record = {**fault.record(), "injected_at": time.time(), "cleared_at": None}
        faults.inject(fault, self.ports)
        record["injected_at"] = time.time()
        self._write_truth(record)
        say(f"fault {fault.id}/{len(self.plan)} injected: {fault.describe()}")
        try:
            self.wait(c.hold, f"fault {fault.id} {fault.type} at {fault.target}")
        finally:
            faults.clear(fault, self.ports)
            record["cleared_at"] = time.time()
            self._write_truth(record)
        self.wait(c.interval, f"fault {fault.id} cleared, grace")
        row = scoring.score_fault(record, self.refresh(), c.interval)
        row["load_avg"] = load_avg()  # the machine is shared: a busy host explains noisy timings
        self.rows.append(row)
        say(f"fault {fault.id} scored: detected={row['detected']} after {row['detection_s']} s, "
            f"rank of {fault.target} = {row['rank']}, ranking {row['ranking']}")
        start = time.time()
        self.wait(c.gap, f"fault-free gap after fault {fault.id}")
        self.wait(max(c.settle_cap - c.gap, 0), "waiting for open incidents to resolve",
                  self.no_open_incident)
        self.periods.append({"after": fault.type, "start": start, "end": time.time(), "load_avg": load_avg()})

    def _write_truth(self, record: dict) -> None:
        line = {**record, "injected": scoring.iso(record["injected_at"]),
                "cleared": scoring.iso(record["cleared_at"]) if record["cleared_at"] else None}
        with open(self.truth, "a") as f:
            f.write(json.dumps(line) + "\n")

    # -- report --------------------------------------------------------------------------------
    def report(self, warmup_incidents: list[str], interrupted: bool = False) -> dict:
        incidents = list(self.snapshots.values())
        false_by_type: dict[str, int] = {}
        periods = []
        for period in self.periods:
            found = scoring.false_incidents(incidents, [(period["start"], period["end"])])
            false_by_type[period["after"]] = false_by_type.get(period["after"], 0) + len(found)
            periods.append({"after": period["after"], "start": scoring.iso(period["start"]),
                            "end": scoring.iso(period["end"]),
                            "seconds": round(period["end"] - period["start"]),
                            "load_avg": period.get("load_avg"), "false_incidents": found})
        summary = scoring.summarize(self.rows, {k: v for k, v in false_by_type.items() if k != "fault-free"})
        fault_free = [p for p in periods if p["after"] == "fault-free"]
        report = {
            "topology": self.topology.name,
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.config).items()},
            "product": self.url,
            "interrupted": interrupted,
            "faults": self.rows,
            "summary": summary,
            "fault_free": {
                "seconds": sum(p["seconds"] for p in fault_free),
                "false_incidents": sum(len(p["false_incidents"]) for p in fault_free),
            },
            "false_incidents_total": sum(len(p["false_incidents"]) for p in periods),
            "periods": periods,
            "warmup_incidents": warmup_incidents,
            "traffic": self.load.counts() if self.load else {},
            "ground_truth": str(self.truth),
            "workdir": str(self.workdir),
        }
        self.config.report.write_text(json.dumps(report, indent=1))
        return report


def execute(config: Config) -> dict:
    """Run the lab and always stop every child, also on Ctrl-C, SIGTERM and errors."""
    lab = Lab(config)

    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        lab.start()
        return lab.run()
    except (KeyboardInterrupt, Exception) as exc:
        say(f"stopped early ({type(exc).__name__}): writing what was scored so far to {config.report}")
        lab.report([], interrupted=True)
        raise
    finally:
        say("stopping services, sidecars and the product")
        lab.stop()
        signal.signal(signal.SIGTERM, previous)
