"""What the incident rules refuse. Plain exceptions with a message for the user and no HTTP:
the web edge (:data:`aiops.web.errors.DOMAIN_STATUS`) makes them a 404 and a 409."""

from __future__ import annotations


class IncidentNotFound(LookupError):
    """No incident has this id."""


class InvalidTransition(ValueError):
    """The incident's state does not allow the change now (it is already resolved, or already
    acknowledged): nothing changed."""
