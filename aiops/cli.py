"""``flask --app app aiops ...`` commands."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from aiops.jobs.cycle import forget_last_data, run_claimed
from aiops.settings import current_settings
from aiops.store.schema import ensure_schema

aiops_cli = AppGroup("aiops", help="AIOps maintenance and analysis commands.")


@aiops_cli.command("migrate")
def migrate():
    """Migrate the database to the newest schema (run it before serving; the worker does too)."""
    from aiops.store import schema
    from telemetry.db import db

    outcome = ensure_schema()
    with db.engine.connect() as conn:
        revision = ", ".join(sorted(schema.current(conn)))
    click.echo({"current": f"database already at revision {revision}",
                "upgraded": f"database migrated to revision {revision}",
                "adopted": f"existing database adopted and migrated to revision {revision}"}[outcome])


@aiops_cli.command("worker")
def worker():
    """Run the scheduled work: detection, outbox delivery, retention, and cycles asked for by
    ``POST /aiops/analyze``. Web workers only serve; run one of these beside them (more are
    standbys: the database leases give each cycle and message to one). Stops on SIGTERM/Ctrl-C
    after the running job."""
    import logging
    import signal
    import threading

    from aiops.jobs import worker as worker_process

    root = logging.getLogger()
    # Its cycles and deliveries are worth a line each. The root logger may already hold the
    # request-log bridge (telemetry.log_bridge), which prints nothing: look for a stream.
    if not any(type(h) is logging.StreamHandler for h in root.handlers):
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
        root.setLevel(logging.INFO)
    outcome = ensure_schema()
    click.echo(f"database schema {outcome}", err=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    running = worker_process.start(current_app._get_current_object())
    click.echo(f"worker {running.name} started (detection every {running.settings.detection_interval:g}s)",
               err=True)
    stop.wait()
    click.echo("stopping: letting the running job finish", err=True)
    running.stop()


@aiops_cli.command("init-db", hidden=True)
@click.pass_context
def init_db(ctx):
    """Same as ``migrate`` (kept for older instructions)."""
    ctx.invoke(migrate)


@aiops_cli.command("revision")
@click.option("-m", "--message", required=True, help="What the schema change is, e.g. 'add span links'.")
def new_revision(message: str):
    """Write a new migration script for the models' changes (autogenerate; review it before use).

    Compares the models with the configured database, which must be migrated
    to the newest revision first.
    """
    from aiops.store import schema
    from telemetry.db import db

    ensure_schema()
    path = schema.revision(db.engine, db.metadata, message)
    click.echo(f"wrote {path}")


@aiops_cli.command("analyze")
def analyze():
    """Run one detection cycle now and print its summary as JSON."""
    ensure_schema()
    summary = run_claimed(current_settings(), force=True)
    if summary is None:
        raise click.ClickException("another detection cycle is running; try again")
    click.echo(json.dumps(summary, indent=2))


CLAIM_WAIT = 60.0  # seconds to wait for a live cycle holding the lease


def _claimed_cycle(settings) -> Callable[[float], dict]:
    """Run a cycle at a given (data) clock, waiting out a cycle another process is running."""

    def cycle(now: float) -> dict:
        deadline = time.monotonic() + CLAIM_WAIT
        while True:
            summary = run_claimed(settings, force=True, now=now)
            if summary is not None:
                return summary
            if time.monotonic() > deadline:
                raise click.ClickException("another process holds the detection lease; try again")
            time.sleep(0.2)

    return cycle


def incident_table(incidents: list[dict]) -> str:
    """Incidents (``Incident.to_dict()`` shape) as a fixed-width text table."""
    header = ("ID", "STATUS", "SEVERITY", "FIRST DETECTED", "ROOT CAUSE", "TITLE")
    rows = [
        (
            i["id"], i["status"], i["severity"], i["first_detected"] or "",
            f'{i["root_cause"]["service"]} / {i["root_cause"]["endpoint"]}', i["title"],
        )
        for i in incidents
    ]
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return "\n".join(lines)


@aiops_cli.command("replay")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--report", "report", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help='Write {"incidents": [...]} (the API\'s incident shape) to this JSON file.')
def replay(files: tuple[Path, ...], report: Path | None):
    """Replay OTLP/JSON lines FILES (.gz too) with detection on the data's own clock.

    Each line is one ExportTraceServiceRequest, ExportLogsServiceRequest or
    ExportMetricsServiceRequest (told apart by content), as the Collector's file
    exporter writes them. Files replay in the order given; a trace file and the
    logs and metrics files next to it are one recording, merged on their own
    clock (each window's spans, log records and metric points are stored before
    its cycle; older metric points with the first window). Cycles run every
    AIOPS_DETECTION_INTERVAL seconds of data time. Each recording after the
    first relearns the baselines in its first windows, as after a silence
    (AIOPS_RELEARN_FOR). Malformed lines are reported (file:line) and
    skipped. Prints the incidents found.
    """
    settings = current_settings().replace(notifications=False)  # past incidents page nobody, run no hooks
    ensure_schema()
    err = sys.stderr  # progress and warnings; the incident table goes to stdout
    player = _player(settings, warn=lambda message: click.echo(message, file=err))
    _play(player, files, err)
    incidents = _found_incidents(player.incident_ids())
    click.echo(_replay_stats(player.stats), file=err)
    if incidents:
        click.echo(f"{len(incidents)} incident(s):")
        click.echo(incident_table(incidents))
    else:
        click.echo("no incidents")
    if report is not None:
        report.write_text(json.dumps({"incidents": incidents}, indent=2))
        click.echo(f"report written to {report}", file=err)


def _player(settings, warn: Callable[[str], None]):
    """A :class:`telemetry.replay.Replay` that stores into this app's database and runs claimed
    cycles on the data's clock."""
    from telemetry.db import db
    from telemetry.replay import Replay
    from telemetry.store import insert_logs, insert_metrics, insert_spans

    engine = db.engine
    return Replay(
        lambda rows: insert_spans(engine, rows),
        _claimed_cycle(settings),
        settings.detection_interval,
        max_pending=settings.replay_max_pending,
        max_idle_cycles=settings.resolve_after_cycles,
        warn=warn,
        insert_logs=lambda rows: insert_logs(engine, rows),
        insert_metrics=lambda rows: insert_metrics(engine, rows),
    )


def _play(player, files: tuple[Path, ...], err) -> None:
    """Read ``files`` recording by recording (a trace file and the logs file beside it are one), each
    followed by its detection cycles, with progress bars on ``err``."""
    from telemetry.replay import file_kind, recordings

    for number, recording in enumerate(recordings(files, file_kind)):
        if number:
            forget_last_data()  # a new recording: the silence before it is unknown
        for index, path in enumerate(recording):
            with click.progressbar(length=path.stat().st_size, label=f"reading {path.name}",
                                   file=err) as bar:
                player.read_file(path, progress=bar.update, new_recording=index == 0)
        with click.progressbar(length=player.pending_cycles(), label=f"detecting {recording[0].name}",
                               file=err) as bar:
            player.flush(on_cycle=lambda: bar.update(1))


def _found_incidents(ids) -> list[dict]:
    """The replay's incidents with their reports (the API's shape), first detected first."""
    from aiops.incidents.reports import with_report
    from aiops.store.models import Incident
    from telemetry.db import db

    found = [db.session.get(Incident, i) for i in ids]
    return sorted((with_report(i.to_dict()) for i in found if i is not None),
                  key=lambda d: (d["first_detected"] or "", d["id"]))


def _replay_stats(s) -> str:
    """One line of what the replay read, stored, rejected and ran."""
    return (
        f"replayed {s.spans} spans from {s.files} file(s), {s.lines} lines "
        f"({s.bad_lines} malformed, {s.rejected} spans rejected, {s.late} late) and {s.logs} log records "
        f"({s.rejected_logs} rejected), {s.metric_rows} metric values ({s.rejected_points} points "
        f"rejected) in {s.seconds:.1f}s "
        f"({s.spans_per_second:.0f} spans/s); {s.cycles} detection cycles ({s.idle_cycles} idle)"
    )
