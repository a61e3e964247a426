"""The settings an app was built with: installed by ``create_app``, read by whatever handles a request
or command. Flask is imported only by :func:`current_settings`, the one reader that needs the app
context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiops.settings.fields import Settings
from telemetry import SETTINGS_EXTENSION as EXTENSION

if TYPE_CHECKING:
    from flask import Flask


def install(app: Flask, settings: Settings) -> None:
    """Make ``settings`` the app's (``create_app`` does it; tests use it to reconfigure an app)."""
    app.extensions[EXTENSION] = settings


def settings_of(app: Flask) -> Settings:
    return app.extensions[EXTENSION]


def current_settings() -> Settings:
    """The settings of the app handling this request or command."""
    from flask import current_app

    return current_app.extensions[EXTENSION]


def reconfigure(app: Flask, **changes: Any) -> Settings:
    """Replace some values of a running app's settings (field names); returns the new settings."""
    updated = settings_of(app).replace(**changes)
    install(app, updated)
    return updated
