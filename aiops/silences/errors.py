"""The silences' own errors; they carry no HTTP (:mod:`aiops.web.errors` maps them to 400 and 404)."""

from __future__ import annotations


class InvalidSilence(ValueError):
    """A silence body the service does not take: ``field`` names what is wrong (a 400)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"'{field}' {message}")


class SilenceNotFound(LookupError):
    """No silence has that id (a 404)."""
