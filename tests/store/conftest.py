"""Databases for the store tests: SQLite in a temp dir, and a fresh database per test
on the PostgreSQL and MariaDB servers scripts/start-services.sh starts.
"""

import pytest

from harness.databases import fresh_database


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request, tmp_path):
    """A URL to an empty database of each kind, dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ports.sqlite"
        return
    with fresh_database(request.param) as url:
        yield url
