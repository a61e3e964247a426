"""``flask --app app aiops ...`` commands."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from aiops.cycle import run_claimed
from telemetry import ensure_schema

aiops_cli = AppGroup("aiops", help="AIOps maintenance and analysis commands.")


@aiops_cli.command("init-db")
def init_db():
    """Create the tables (also done automatically on first request)."""
    ensure_schema()
    click.echo("database ready")


@aiops_cli.command("analyze")
def analyze():
    """Run one detection cycle now and print its summary as JSON."""
    ensure_schema()
    summary = run_claimed(current_app.config, force=True)
    if summary is None:
        raise click.ClickException("another detection cycle is running; try again")
    click.echo(json.dumps(summary, indent=2))
