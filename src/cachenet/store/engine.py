"""Engines for the three supported databases, migrations, and error translation."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
)

from cachenet import metrics
from cachenet.errors import ConfigError, StoreAccessDenied, StoreError, StoreUnavailable
from cachenet.settings.store import (
    DATABASE_BACKENDS,
    database_problem,
    database_secrets,
    mask_password,
)
from cachenet.store.pooling import (
    PoolOptions,
    driver_arguments,
    ping_when_idle,
    pool_arguments,
)

SCHEMA_LOCK_KEY = 0x63616368656E6574  # "cachenet": PostgreSQL advisory lock
SCHEMA_LOCK_NAME = "cachenet-schema"  # MariaDB named lock
SCHEMA_LOCK_TIMEOUT = 60  # seconds a host waits for another's schema upgrade (as GET_LOCK)
MAX_ATTEMPTS = 20
BACKOFF_CAP = 2.0  # seconds; 20 attempts then span about 15 s at most on average
SQLITE_BUSY_TIMEOUT = 30.0  # seconds SQLite waits for another writer's lock before "locked"
T = TypeVar("T")
SUPPORTED_DRIVERS = DATABASE_BACKENDS
LOG = logging.getLogger(__name__)


def make_engine(url: str, hold_connection: bool = False, pool: PoolOptions | None = None) -> Engine:
    """An engine for ``url``, tuned for many concurrent allocators.

    On a database server, a process reuses a few connections during a burst
    and closes them once idle for ``pool.idle_timeout`` (see store/pooling.py),
    unless ``hold_connection`` (a poller such as ``dhcp serve``).
    """
    problem = database_problem(url)  # settings checked it; a caller with a bare URL did not
    if problem:
        raise ConfigError([problem])
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    options = pool or PoolOptions()
    try:
        if backend == "sqlite":
            return _sqlite_engine(url, parsed.database)
        # READ COMMITTED: MariaDB's default REPEATABLE READ takes gap locks that
        # deadlock concurrent inserts into the free lists.
        engine = create_engine(
            url,
            isolation_level="READ COMMITTED",
            connect_args={**_timeouts(backend), **driver_arguments(parsed, options)},
            **pool_arguments(options, hold_connection),
        )
        ping_when_idle(engine)
        return engine
    except NoSuchModuleError:
        raise ConfigError([f"database driver of {mask_password(url)} is not installed"]) from None


def _check_sqlite_access(path: Path) -> None:
    """SQLite in WAL mode writes beside the file (-wal, -shm), even to read: this
    user must be able to write each of them, or the directory to create them."""
    if str(path) == ":memory:":
        return
    beside = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    needed = [p for p in (path, *beside) if os.path.exists(p)]  # False when unreachable
    if len(needed) < 3:
        needed.append(path.parent)
    for where in needed:
        mode = os.W_OK | os.X_OK if where == path.parent else os.R_OK | os.W_OK
        if not os.access(where, mode):
            raise StoreAccessDenied(
                f"cannot use the port store {path}: this user may not read and write {where} "
                "(run as root, or as a user that may)"
            )


def _timeouts(backend: str) -> dict[str, Any]:
    # Fail in seconds, not minutes, when the server is down.
    return {"connect_timeout": 5}


def _sqlite_engine(url: str, path: str | None) -> Engine:
    if path:
        directory = Path(path).parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the port store's directory {directory}: {exc.strerror}"
            ) from None
        _check_sqlite_access(Path(path))
    # isolation_level=None hands transaction control to us, so every transaction
    # can start with BEGIN IMMEDIATE: it takes the write lock up front instead of
    # failing with "database is locked" when a reader tries to become a writer.
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "isolation_level": None}
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def migrate(engine: Engine, step: Callable[[Connection], T]) -> T:
    """``step`` (a schema change: cachenet.store.phases) in one transaction under the schema lock.

    Every host may meet an empty or older database at once: one migrates, the
    others wait for it and then find nothing left to do.
    """
    # No chatter in a daemon's log, its import's ("setup plugin ...") included.
    logging.getLogger("alembic").setLevel(logging.WARNING)

    def locked(connection: Connection) -> T:
        with _schema_lock(connection):
            try:
                return step(connection)
            except DBAPIError as exc:
                if _orig_code(exc) in _CREATED_BY_ANOTHER_HOST:
                    raise ConcurrentUpgrade(_reason(exc, _plain(engine.url))) from None
                raise

    # On Galera, GET_LOCK locks one node only: a host on another node may be
    # creating the same tables. Its DDL replicates at once; ours then finds them
    # there. Wait for its upgrade to finish, as the lock would have. (A table of
    # another application in the way is reported after the wait: telling the two
    # apart by alembic_version races with the other host's creating it.)
    deadline = time.monotonic() + SCHEMA_LOCK_TIMEOUT
    while True:
        try:
            return run_transaction(engine, locked)
        except ConcurrentUpgrade as race:
            if time.monotonic() > deadline:
                raise StoreError(
                    f"the schema upgrade meets tables it did not create, and no other host's "
                    f"upgrade completed them in {SCHEMA_LOCK_TIMEOUT} s ({race})"
                ) from None
        time.sleep(0.5)


class ConcurrentUpgrade(Exception):
    """A migration met a table or index another host created meanwhile."""


# MariaDB: table exists, duplicate column name, duplicate index name, nothing to drop.
_CREATED_BY_ANOTHER_HOST = {1050, 1060, 1061, 1091}


def _orig_code(exc: DBAPIError) -> object:
    return exc.orig.args[0] if exc.orig is not None and exc.orig.args else None


@contextlib.contextmanager
def _schema_lock(connection: Connection) -> Iterator[None]:
    """A database-wide lock around schema changes (SQLite's BEGIN IMMEDIATE is one)."""
    backend = connection.dialect.name
    if backend == "postgresql":  # released with the transaction
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
    elif backend in ("mysql", "mariadb"):  # a session lock: MariaDB commits DDL at once
        got = connection.execute(text("SELECT GET_LOCK(:name, 60)"), {"name": SCHEMA_LOCK_NAME})
        if got.scalar() != 1:
            raise StoreError("timed out after 60 s waiting for another host's schema upgrade")
    try:
        yield
    finally:
        if backend in ("mysql", "mariadb"):
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": SCHEMA_LOCK_NAME})


def run_transaction(
    engine: Engine,
    work: Callable[[Connection], T],
    after_commit: Callable[[Connection], None] | None = None,
) -> T:
    """``work`` in one transaction, retried while the failure is one a retry fixes.

    A lost unique-constraint race or a deadlock is retried after a few ms; a
    server out of connection slots (a thousand hosts at once) after a growing
    wait, so the storm spreads out instead of failing. Anything else, or
    MAX_ATTEMPTS failures, is an error for the operator.

    ``after_commit`` runs on the same connection once ``work`` committed (it
    must not fail: the transaction is done).
    """
    last: DBAPIError | None = None
    for attempt in range(MAX_ATTEMPTS):
        try:
            with translate_errors(engine.url), engine.connect() as connection:
                with connection.begin():
                    result = work(connection)
                if after_commit is not None:
                    after_commit(connection)
                return result
        except IntegrityError as exc:
            # Another host inserted the same instance, address or MAC first:
            # the next attempt sees its row and skips or returns it.
            last, kind = exc, "conflict"
        except DBAPIError as exc:
            if not is_transient(exc):
                raise
            last, kind = exc, "transient"
        pause = _backoff(attempt)
        if LOG.isEnabledFor(logging.DEBUG):  # any password the driver echoes masked
            LOG.debug("store transaction attempt %d of %d failed (%s: %s); retrying in %.3f s",
                      attempt + 1, MAX_ATTEMPTS, kind, _reason(last, _plain(engine.url)),
                      pause)  # fmt: skip
        metrics.store_retried(kind)
        time.sleep(pause)
    reason = str(last.orig if last is not None else "").strip().splitlines()[0:1]
    raise StoreError(f"gave up after {MAX_ATTEMPTS} attempts ({''.join(reason)}); try again")


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter, capped."""
    return random.uniform(0, min(BACKOFF_CAP, 0.005 * 2**attempt))


@contextlib.contextmanager
def translate_errors(url: object) -> Iterator[None]:
    """Turn "cannot connect" into a ``StoreUnavailable`` naming the URL, password masked.

    A failure to connect is an ``OperationalError``, or another DBAPI error
    raised before any statement ran (a driver refusing the URL's options).
    """
    try:
        yield
    except DBAPIError as exc:
        if is_transient(exc):
            raise
        if not isinstance(exc, OperationalError) and exc.statement is not None:
            raise
        plain = _plain(url)
        raise StoreUnavailable(
            f"cannot use the port store at {mask_password(plain)}: {_reason(exc, plain)}"
        ) from None


def _plain(url: object) -> str:
    render = getattr(url, "render_as_string", None)
    return render(hide_password=False) if render else str(url)


def _reason(exc: DBAPIError, url: str) -> str:
    """The driver's first line, any password of ``url`` it echoes masked."""
    lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    reason = lines[0] if lines else type(exc.orig).__name__
    for secret in database_secrets(url):
        reason = reason.replace(secret, "***")
    return reason


# Errors that a retry of the whole transaction fixes: deadlocks, serialisation
# failures, SQLite's busy lock, and a server out of connection slots (a
# thousand hosts allocating at once; MariaDB 1040/1203/1226, PostgreSQL by message:
# psycopg gives no SQLSTATE for a refused connection).
# A PostgreSQL failover too: the primary shutting down or gone mid-transaction
# (57P01-57P03, "server closed the connection"), a multi-host URL finding only a
# standby until one is promoted ("session is read-only"), a connection to a
# demoted primary (25006). Every store operation is idempotent (allocate returns
# the port a lost COMMIT may have created), so retrying these is safe.
_TRANSIENT_CODES = {"40001", "40P01", 1213, 1205, 1040, 1203, 1226}
_TRANSIENT_CODES |= {"57P01", "57P02", "57P03", "25006"}
# MariaDB 1684: a table skipped while concurrent DDL changes it (on Galera, a
# schema upgrade made on another node is applied under this host's reads).
_TRANSIENT_CODES |= {1684}
# MariaDB's side of a server lost mid-transaction (2006 gone away, 2013 lost
# connection: PostgreSQL's "server closed the connection"), and a Galera node
# that left the primary component (1047, "WSREP has not yet prepared node"):
# behind a proxy, the next connection reaches a node that serves. A server that
# refuses connections (2003) is down, not transient: that is reported at once.
_TRANSIENT_CODES |= {2006, 2013, 1047}
_TRANSIENT_MESSAGES = (
    "database is locked",
    "deadlock",
    "too many clients",
    "too many connections",
    "connection slots are reserved",
    "server closed the connection unexpectedly",
    "session is read-only",
)


def is_transient(exc: DBAPIError) -> bool:
    orig = exc.orig
    # psycopg gives a SQLSTATE; PyMySQL a SQLSTATE too, and its own error number first.
    codes = {getattr(orig, "sqlstate", None), orig.args[0] if orig and orig.args else None}
    if codes & _TRANSIENT_CODES:
        return True
    message = str(orig).lower()
    return any(text in message for text in _TRANSIENT_MESSAGES)
