"""Connection pools to a database server: reused during a burst, closed when idle.

A compute node allocates in bursts (a few instances start, then nothing for
minutes). A new connection costs the server a process and a password exchange
(8 ms on PostgreSQL, 18 ms on MariaDB), more than the allocation itself, so a
burst reuses a few connections; between bursts the host holds none, so a
thousand hosts cost the server only the sessions of the bursts under way.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.util.queue import Empty  # what QueuePool's queue raises

from cachenet.settings import StoreSettings

LOG = logging.getLogger(__name__)
# A connection idle this long is pinged before use (one round trip): within a
# burst, connections come back in milliseconds and go out again unpinged.
PING_AFTER_IDLE = 1.0  # seconds


@dataclass(frozen=True)
class PoolOptions:
    """The ``pool_*`` settings (defaults: those of the options in settings/store.py)."""

    size: int = 2
    max_overflow: int = 4
    idle_timeout: int = 10
    recycle: int = 600
    timeout: int = 30
    prepared_statements: bool = True

    @classmethod
    def of(cls, store: StoreSettings) -> PoolOptions:
        return cls(
            size=store.pool_size,
            max_overflow=store.pool_max_overflow,
            idle_timeout=store.pool_idle_timeout,
            recycle=store.pool_recycle,
            timeout=store.pool_timeout,
            prepared_statements=store.prepared_statements,
        )


class IdleClosingPool(QueuePool):
    """A ``QueuePool`` that closes its idle connections once none has been
    returned for ``idle_timeout`` seconds (None: keeps them, as QueuePool does).

    SQLAlchemy's ``pool_recycle`` only replaces an old connection when it is
    next used, so an idle process would hold its sessions for ever: a thread,
    alive only while connections are open, closes them instead.
    """

    def __init__(self, creator: Any, idle_timeout: float | None = None, **kw: Any) -> None:
        super().__init__(creator, **kw)
        self.idle_timeout = idle_timeout
        self._last_return = time.monotonic()
        self._reaper_lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        # Waits on an Event, never set, rather than time.sleep: libfaketime (a
        # host's clock skew, as tests simulate it) makes time.sleep fail with EINVAL.
        self._never = threading.Event()

    def recreate(self) -> IdleClosingPool:  # after engine.dispose() or a lost server
        pool = super().recreate()
        assert isinstance(pool, IdleClosingPool)
        pool.idle_timeout = self.idle_timeout
        return pool

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        super()._do_return_conn(record)
        self._last_return = time.monotonic()
        if self.idle_timeout is not None:
            self._ensure_reaper()

    def _ensure_reaper(self) -> None:
        with self._reaper_lock:
            if self._reaper is None:
                self._reaper = threading.Thread(
                    target=self._close_when_idle, name="cachenet-pool-idle", daemon=True
                )
                self._reaper.start()

    def _close_when_idle(self) -> None:
        assert self.idle_timeout is not None
        while True:
            deadline = self._last_return + self.idle_timeout
            self._never.wait(max(0.0, deadline - time.monotonic()))
            if time.monotonic() < self._last_return + self.idle_timeout:
                continue  # used meanwhile
            closed = self.close_idle_connections()
            if closed:
                LOG.debug("closed %d connection(s) idle for %s s", closed, self.idle_timeout)
            with self._reaper_lock:
                if self.checkedout() == 0 and self._pool.empty():
                    self._reaper = None
                    return
            # Connections in use: they start the clock again when returned.
            self._never.wait(self.idle_timeout)

    def close_idle_connections(self) -> int:
        """Close every connection waiting in the pool; those in use stay open."""
        closed = 0
        while True:
            try:
                record = self._pool.get(False)
            except Empty:
                return closed
            # As QueuePool does with a connection returned to a full pool.
            record.close()
            self._dec_overflow()
            closed += 1


def pool_arguments(options: PoolOptions, hold_connection: bool) -> dict[str, Any]:
    """``create_engine`` arguments for a server engine.

    A connection idle for a second is pinged before use (``ping_when_idle``).
    ``hold_connection`` (a poller such as ``dhcp serve``) keeps its idle
    connections: it uses them five times a second anyway.
    """
    return {
        "poolclass": IdleClosingPool,
        "pool_size": options.size,
        "max_overflow": options.max_overflow,
        "pool_recycle": options.recycle,
        "pool_timeout": options.timeout,
        "idle_timeout": None if hold_connection else options.idle_timeout,
    }


def ping_when_idle(engine: Engine, after: float = PING_AFTER_IDLE) -> None:
    """Ping a connection that was idle ``after`` seconds or more before handing it out.

    A connection kept across a server restart or a failover is found dead then and
    replaced (the pool connects again), instead of failing an allocation. SQLAlchemy's
    pool_pre_ping pings on every checkout: an allocation in a burst would pay a
    round trip for a connection returned a millisecond before. A connection that
    dies while in use fails its statement, and run_transaction retries that.
    """

    @event.listens_for(engine, "connect")
    def _opened(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < after:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"ping failed: {exc}") from exc  # the pool reconnects


def driver_arguments(url: URL, options: PoolOptions) -> dict[str, Any]:
    """Connection arguments of the driver beyond the connect timeout.

    psycopg prepares a statement run five times on one connection; PgBouncer
    in transaction mode (before 1.21) hands the next transaction another
    server connection, which does not have it (or already has one of that
    name: DuplicatePreparedStatement). ``prepare_threshold=None`` turns that off.
    """
    psycopg = url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg"
    return {"prepare_threshold": None} if psycopg and not options.prepared_statements else {}
