"""The database servers scripts/start-services.sh starts, and a fresh database per test.

Outside CI a missing server skips its tests with the reason; in CI (CI=true) it fails.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

SERVERS = {
    "postgresql": os.environ.get(
        "CACHENET_TEST_POSTGRES", "postgresql+psycopg://cachenet:cachenet@127.0.0.1:5432/postgres"
    ),
    "mariadb": os.environ.get(
        "CACHENET_TEST_MARIADB", "mysql+pymysql://cachenet:cachenet@127.0.0.1:3306/mysql"
    ),
}
MARIADB_SOCKET = "/run/mysqld/mysqld.sock"


def server_or_skip(kind: str) -> Engine:
    """An AUTOCOMMIT engine on the server's admin database, or skip (fail in CI)."""
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


@contextlib.contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """The URL of an empty database of ``kind``, dropped (connections and all) afterwards."""
    engine = server_or_skip(kind)
    name = f"cn_test_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(SERVERS[kind]).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            if kind == "postgresql":
                conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
            else:
                kill_connections(conn, name)
                conn.execute(text(f"DROP DATABASE {name}"))
        engine.dispose()


def kill_connections(conn: object, database: str) -> None:
    """End every MariaDB session using ``database`` (as a server restart would)."""
    sessions = text(
        "SELECT id FROM information_schema.processlist WHERE db = :db AND id <> CONNECTION_ID()"
    )
    ids = conn.execute(sessions, {"db": database}).scalars()  # type: ignore[attr-defined]
    for session in list(ids):
        with contextlib.suppress(Exception):  # it may have ended by itself
            conn.execute(text(f"KILL {int(session)}"))  # type: ignore[attr-defined]


def connections_to(url: str) -> int:
    """How many sessions the server has open on ``url``'s database (the admin's aside)."""
    parsed = make_url(url)
    kind = "postgresql" if parsed.get_backend_name() == "postgresql" else "mariadb"
    query = {
        "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
        "AND pid <> pg_backend_pid()",
        "mariadb": "SELECT count(*) FROM information_schema.processlist WHERE db = :db "
        "AND id <> CONNECTION_ID()",
    }[kind]
    engine = server_or_skip(kind)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(query), {"db": parsed.database}).scalar())
    finally:
        engine.dispose()
