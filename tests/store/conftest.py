"""Databases for the store tests: SQLite in a temp dir, and a fresh database per test
on the PostgreSQL and MariaDB servers scripts/start-services.sh starts.

Outside CI a missing server skips its tests with the reason; in CI (CI=true) it fails.
"""

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SERVERS = {
    "postgresql": os.environ.get(
        "CACHENET_TEST_POSTGRES", "postgresql+psycopg://cachenet:cachenet@127.0.0.1:5432/postgres"
    ),
    "mariadb": os.environ.get(
        "CACHENET_TEST_MARIADB", "mysql+pymysql://cachenet:cachenet@127.0.0.1:3306/mysql"
    ),
}


def _server_or_skip(kind):
    admin_url = SERVERS[kind]
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except Exception as exc:
        engine.dispose()
        message = (
            f"{kind} server at {make_url(admin_url).host} not reachable ({type(exc).__name__})"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; scripts/start-services.sh should have started it")
        pytest.skip(message + "; run scripts/start-services.sh")
    return engine


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request, tmp_path):
    """A URL to an empty database of each kind, dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ports.sqlite"
        return
    engine = _server_or_skip(request.param)
    name = f"cn_test_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield (
            make_url(SERVERS[request.param])
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with engine.connect() as conn:
            if request.param == "postgresql":
                conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE {name}"))
        engine.dispose()
