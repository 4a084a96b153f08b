"""The database servers scripts/start-services.sh starts, and a fresh database per test.

Outside CI a missing server skips its tests with the reason; in CI (CI=true) it fails.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
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


def kill_connections(conn: Connection, database: str) -> None:
    """End every MariaDB session using ``database`` (as a server restart would)."""
    sessions = text(
        "SELECT id FROM information_schema.processlist WHERE db = :db AND id <> CONNECTION_ID()"
    )
    ids = conn.execute(sessions, {"db": database}).scalars()
    for session in list(ids):
        with contextlib.suppress(Exception):  # it may have ended by itself
            conn.execute(text(f"KILL {int(session)}"))


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
            return int(conn.execute(text(query), {"db": parsed.database}).scalar() or 0)
    finally:
        engine.dispose()


@contextlib.contextmanager
def limited_user(kind: str, url: str, max_connections: int) -> Iterator[str]:
    """``url`` as a new user allowed ``max_connections`` sessions at once, as a
    server out of connection slots would. It may use the tables already there
    (create them first); it is dropped afterwards."""
    user = f"cn_lim_{uuid.uuid4().hex[:8]}"
    database = str(make_url(url).database)
    if kind == "postgresql":
        _as_postgres("postgres", f"CREATE ROLE {user} LOGIN PASSWORD '{user}' "
                                 f"CONNECTION LIMIT {max_connections}")  # fmt: skip
        grant = f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {user}"
        _as_postgres(database, f"{grant}; {grant.replace('TABLES', 'SEQUENCES')}")
    else:
        _as_mariadb(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{user}' WITH "
                    f"MAX_USER_CONNECTIONS {max_connections}; GRANT ALL ON {database}.* TO "
                    f"'{user}'@'127.0.0.1';")  # fmt: skip
    try:
        yield make_url(url).set(username=user, password=user).render_as_string(hide_password=False)
    finally:
        if kind == "postgresql":
            _as_postgres(database, f"DROP OWNED BY {user}")
            _as_postgres("postgres", f"DROP ROLE {user}")
        else:
            _as_mariadb(f"DROP USER '{user}'@'127.0.0.1';")


def _as_postgres(database: str, sql: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-q", "-v", "ON_ERROR_STOP=1",
                    "-d", database, "-c", sql], check=True, capture_output=True)  # fmt: skip


def _as_mariadb(sql: str) -> None:
    subprocess.run(["mariadb", "-e", sql], check=True, capture_output=True)


class LinkedDatabase:
    """A MariaDB database reached through a link to the server's Unix socket, which a
    test cuts to take the store away (no new connection, the open ones ended) and
    restores. A socket path also reaches the server from inside a network namespace."""

    def __init__(self, url: str, link: Path) -> None:
        self.name = str(make_url(url).database)
        self.link = link
        self.url = f"mysql+pymysql://cachenet:cachenet@localhost/{self.name}?unix_socket={link}"

    def cut(self) -> None:
        self.link.unlink()
        with server_or_skip("mariadb").connect() as admin:
            kill_connections(admin, self.name)

    def restore(self) -> None:
        self.link.symlink_to(MARIADB_SOCKET)


@contextlib.contextmanager
def mariadb_behind_a_link(directory: Path) -> Iterator[LinkedDatabase]:
    """A fresh MariaDB database behind a cuttable link in ``directory``, dropped afterwards."""
    with fresh_database("mariadb") as url:
        database = LinkedDatabase(url, directory / "mysqld.sock")
        database.restore()
        yield database
