"""End-to-end fixtures: servers start on an empty database and migrate it, as in production."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_url(empty_db_url):
    """Per backend, a throwaway database with nothing in it (see ``empty_db_url``)."""
    return empty_db_url
