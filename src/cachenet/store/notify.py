"""Change notifications on PostgreSQL: every write announces itself, ``dhcp serve`` listens.

Once a transaction that may have changed ports (allocate, release, move)
commits, the store runs ``pg_notify`` in a transaction of its own; PostgreSQL
delivers the notification to every session then listening on CHANNEL. The
notification carries nothing: it only says "look at the change log now", so a
listener reads the store exactly as its poll does, and a lost, duplicated or
forged notification costs one look.

Not inside the change's transaction: PostgreSQL serialises notifying
transactions on one lock held until their commit is flushed to disk, which
made every allocation on every host one queue again. The notification's own
transaction does not wait for the flush (nothing in it needs to be durable).

MariaDB and SQLite have no such thing: their followers poll. A listener also
polls, more slowly, as a safety net: LISTEN needs a session of its own, which
PgBouncer in transaction mode does not give (its LISTEN is accepted and then
hears nothing).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from cachenet.settings.store import database_secrets

LOG = logging.getLogger(__name__)
CHANNEL = "cachenet_ports"
APPLICATION_NAME = "cachenet-dhcp-listener"  # how the session shows in pg_stat_activity
RECONNECT_EVERY = 1.0  # seconds between attempts to listen again after losing the session
# One statement in a transaction of its own: its commit returns before the flush.
_ANNOUNCE = text(
    f"SELECT set_config('synchronous_commit', 'off', true), pg_notify('{CHANNEL}', '')"
)


def announce_change(conn: Connection) -> None:
    """Tell listeners that ports changed in the transaction ``conn`` just committed
    (PostgreSQL only; see store.engine.run_transaction's ``after_commit``).

    A failure is only logged: the change is committed, and listeners poll too.
    """
    if conn.dialect.name != "postgresql":
        return
    try:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(_ANNOUNCE)
    except DBAPIError as exc:
        LOG.debug("could not announce a change of the port store (%s)", type(exc.orig).__name__)


class ChangeListener:
    """One session LISTENing on CHANNEL; ``wait`` returns early when a change commits.

    The session is opened again (at most every RECONNECT_EVERY) when it is lost;
    ``listening`` says whether it is open, i.e. whether the caller may poll less.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._last_attempt = -RECONNECT_EVERY
        self._lost_logged = False

    @classmethod
    def for_engine(cls, engine: Engine) -> ChangeListener | None:
        """A listener when the store is on PostgreSQL, else None (poll only)."""
        return cls(engine) if engine.dialect.name == "postgresql" else None

    @property
    def listening(self) -> bool:
        return self._conn is not None

    def start(self) -> bool:
        """Open the session and LISTEN now; False (logged) when it cannot."""
        self._last_attempt = -RECONNECT_EVERY
        return self._listen()

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when a change was announced, or when
        the session was just opened again (what committed meanwhile is unknown)."""
        if self._conn is None:
            if self._listen():
                return True
            time.sleep(timeout)
            return False
        import psycopg  # loaded with the store's engine already: PostgreSQL only

        driver: Any = self._conn.connection.driver_connection
        try:
            return any(True for _ in driver.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error as exc:
            self._lost(exc)
            return False

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.invalidate()  # never back to a pool: it still LISTENs
            conn.close()

    def _listen(self) -> bool:
        """Open the session and LISTEN, unless tried less than RECONNECT_EVERY ago."""
        now = time.monotonic()
        if now - self._last_attempt < RECONNECT_EVERY:
            return False
        self._last_attempt = now
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql(f"SET application_name = '{APPLICATION_NAME}'")
            conn.exec_driver_sql(f"LISTEN {CHANNEL}")
        except DBAPIError as exc:
            self._lost(exc.orig or exc)
            return False
        self._conn = conn
        LOG.info("following the port store's changes as they commit (LISTEN %s)", CHANNEL)
        self._lost_logged = False
        return True

    def _lost(self, exc: BaseException) -> None:
        """Drop the session; say so once per outage (the store's own errors are logged apart)."""
        if self._conn is not None:
            self.close()
        if not self._lost_logged:
            self._lost_logged = True
            LOG.warning("not listening for the port store's changes (%s); polling until "
                        "listening again", self._reason(exc))  # fmt: skip

    def _reason(self, exc: BaseException) -> str:
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        url = self.engine.url.render_as_string(hide_password=False)
        for secret in database_secrets(url):
            reason = reason.replace(secret, "***")
        return reason
