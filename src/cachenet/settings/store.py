"""The port store: its database URL, this host's name in it, and the connection pool.

Also how a database URL is checked and shown: ``mask_password`` is the one way a
URL reaches a message, a log line or the output.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from oslo_config import cfg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from cachenet.identity import HOST_MAX, host_name_problem
from cachenet.settings.reading import Area, Values, all_read, shown_value

DATABASE_BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb")
UNPARSEABLE_URL = "<unparseable URL>"
# Query parameters psycopg and PyMySQL take a password from.
_SECRET_QUERY_KEYS = ("password", "passwd", "pwd")
_MASK_TOKEN = "cachenetmasked"

OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "database",
        default="sqlite:////var/lib/cachenet/cachenet.sqlite",
        secret=True,
        help="SQLAlchemy URL of the port store: sqlite:////ABSOLUTE/PATH (one host), "
        "postgresql+psycopg://... or mysql+pymysql://... (shared by many hosts). "
        "Write '@', '/' or ':' in a password as %40, %2F, %3A.",
    ),
    cfg.StrOpt(
        "host",
        default=socket.gethostname(),
        sample_default="<hostname>",
        help=f"Name of this host in the port store (at most {HOST_MAX} characters, no whitespace).",
    ),
    # Connections to a database server (SQLite has no pool): kept for a burst, closed when idle.
    cfg.IntOpt(
        "pool_size",
        default=2,
        min=1,
        max=100,
        help="Connections a process keeps open to the database server during a burst.",
    ),
    cfg.IntOpt(
        "pool_max_overflow",
        default=4,
        min=0,
        max=100,
        help="Connections a process may open beyond pool_size while they are all in use.",
    ),
    cfg.IntOpt(
        "pool_idle_timeout",
        default=10,
        min=1,
        max=3600,
        help="Seconds without a store operation after which a process closes its "
        "connections (a host holds no session between bursts).",
    ),
    cfg.IntOpt(
        "pool_recycle",
        default=600,
        min=10,
        max=86400,
        help="Seconds after which a connection is replaced by a new one at its next use "
        "(a long-running poller reconnects, e.g. to a new primary behind a proxy).",
    ),
    cfg.IntOpt(
        "pool_timeout",
        default=30,
        min=1,
        max=3600,
        help="Seconds an operation waits for a connection when all pool_size + "
        "pool_max_overflow are in use.",
    ),
    cfg.BoolOpt(
        "database_prepared_statements",
        default=True,
        help="Let psycopg prepare statements it runs often (PostgreSQL). Set false behind "
        "PgBouncer in transaction mode (before 1.21), which cannot keep them.",
    ),
]


@dataclass(frozen=True)
class StoreSettings(Area):
    """Where the port store is, who this host is in it, how connections are pooled."""

    database: str
    host: str
    pool_size: int
    pool_max_overflow: int
    pool_idle_timeout: int
    pool_recycle: int
    pool_timeout: int
    prepared_statements: bool = field(metadata={"option": "database_prepared_statements"})

    def public_items(self) -> Iterator[tuple[str, object]]:
        for name, value in super().public_items():
            yield name, mask_password(self.database) if name == "database" else value


def parse(v: Values, problems: list[str]) -> StoreSettings | None:
    """The store of the values read, or None with ``problems`` saying why."""
    before = len(problems)
    if v["database"] is not None:
        problem = database_problem(str(v["database"]))
        if problem:
            problems.append(problem)
    if v["host"] is not None:
        reason = host_name_problem(str(v["host"]))
        if reason:
            problems.append(f"host {shown_value(v['host'])} is not a host name: {reason}")
    if len(problems) > before or not all_read(v, OPTS):
        return None
    return StoreSettings(
        database=str(v["database"]),
        host=str(v["host"]),
        pool_size=int(v["pool_size"]),
        pool_max_overflow=int(v["pool_max_overflow"]),
        pool_idle_timeout=int(v["pool_idle_timeout"]),
        pool_recycle=int(v["pool_recycle"]),
        pool_timeout=int(v["pool_timeout"]),
        prepared_statements=bool(v["database_prepared_statements"]),
    )


def parse_database_url(url: str) -> URL | None:
    """``url`` parsed by SQLAlchemy, or None when it is not a URL with unambiguous parts.

    An '@' left in the host means the password held a raw '@', so where the
    password ends (and what of it would be shown as the host) is a guess.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return None
    if parsed.host and re.search(r"[@/\s]", parsed.host):
        return None
    return parsed


def mask_password(url: str) -> str:
    """A database URL fit for messages, logs and output: no password anywhere in it.

    The password and any ``password`` query parameter become ***; a value that
    does not parse as a URL is shown as nothing of itself.
    """
    parsed = parse_database_url(url)
    if parsed is None:
        return UNPARSEABLE_URL
    secret = {key: _MASK_TOKEN for key in parsed.query if key.lower() in _SECRET_QUERY_KEYS}
    if secret:  # a token URL quoting leaves alone, so the query reads password=***
        parsed = parsed.update_query_dict(secret)
    return parsed.render_as_string(hide_password=True).replace(_MASK_TOKEN, "***")


def database_secrets(url: str) -> list[str]:
    """The passwords ``url`` holds (user part and query), to scrub from a driver's message."""
    parsed = parse_database_url(url)
    if parsed is None:
        return []
    found = [parsed.password] + [
        value for key, value in parsed.query.items() if key.lower() in _SECRET_QUERY_KEYS
    ]
    flat = [v for item in found for v in ([item] if isinstance(item, str) else item or [])]
    return [v for v in flat if v]


def database_problem(url: str) -> str | None:
    """Why ``url`` cannot be the port store (one line, no secret in it), or None."""
    if not url.strip():
        return "database is empty"
    parsed = parse_database_url(url)
    if parsed is None:
        return (
            "database is not a SQLAlchemy URL (driver://user:password@host/name; "
            "write '@', '/' or ':' in the password as %40, %2F, %3A)"
        )
    backend = parsed.get_backend_name()
    if backend not in DATABASE_BACKENDS:
        return f"database backend {backend!r} is not sqlite, postgresql or mysql"
    if backend != "sqlite":
        return _multi_host_problem(url, parsed)
    path = parsed.database or ""
    if path in ("", ":memory:") or parsed.query.get("mode") == "memory":
        return (
            f"database {mask_password(url)} is an in-memory SQLite store: every process "
            "would get its own; use sqlite:////ABSOLUTE/PATH"
        )
    if not os.path.isabs(path):
        return (
            f"database {mask_password(url)} has a relative path: every process would find "
            "its own store from its working directory; use sqlite:////ABSOLUTE/PATH"
        )
    return None


def _multi_host_problem(url: str, parsed: URL) -> str | None:
    """libpq splits host= at commas but takes "db1:5432" as a host name."""
    hosts = parsed.query.get("host", ())
    for host in [hosts] if isinstance(hosts, str) else hosts:
        if "," in host and ":" in host:
            return (
                f"database {mask_password(url)} gives several host:port in one host=; "
                "write one per server: ?host=db1:5432&host=db2:5432"
            )
    return None
