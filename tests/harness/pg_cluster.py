"""A real PostgreSQL 15 primary with a synchronous streaming standby, each in its
own data directory under a temporary directory and on its own loopback port,
stopped and removed afterwards even when the test fails.

The servers run as the ``postgres`` user (initdb and postgres refuse root).
Replication is synchronous (``synchronous_standby_names = '*'``): a commit is
acknowledged once the standby has it, which is what "no acknowledged port lost
when the primary dies" needs; with asynchronous replication the last commits
before a crash can be missing on the promoted standby.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.loopback import free_port
from harness.wait import wait_for

BIN = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "postgres"
USER = PASSWORD = DATABASE = "cachenet"

PRIMARY_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
max_connections = 60
shared_buffers = 16MB
fsync = off                      # a test: the processes die, the machine does not
wal_level = replica
max_wal_senders = 4
hot_standby = on
"""
STANDBY_CONF = "port = {port}\n"
HBA = """
local all postgres trust
local replication postgres trust
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
"""


class PgCluster:
    """The two servers' directories and ports, and the failover steps a test takes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.primary = root / "primary"
        self.standby = root / "standby"
        self.primary_port = free_port()
        self.standby_port = free_port()
        while self.standby_port == self.primary_port:
            self.standby_port = free_port()

    @property
    def url(self) -> str:
        """A multi-host URL: psycopg tries the hosts in order and keeps the writable one."""
        return (
            f"postgresql+psycopg://{USER}:{PASSWORD}@/{DATABASE}?host=127.0.0.1:{self.primary_port}"
            f"&host=127.0.0.1:{self.standby_port}&target_session_attrs=read-write"
        )

    @property
    def socket_url(self) -> str:
        """The same through the servers' Unix sockets: reachable from a network namespace."""
        hosts = f"host={self.root}:{self.primary_port}&host={self.root}:{self.standby_port}"
        return (
            f"postgresql+psycopg://{USER}:{PASSWORD}@/{DATABASE}?{hosts}"
            "&target_session_attrs=read-write"
        )

    def url_of(self, port: int) -> str:
        return f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"

    def promote_standby(self) -> None:
        _as_postgres(BIN / "pg_ctl", "-D", self.standby, "-w", "-t", "60", "promote")

    def crash_primary(self) -> None:
        """Stop the primary as a crash would (no shutdown checkpoint, clients cut)."""
        _as_postgres(BIN / "pg_ctl", "-D", self.primary, "-m", "immediate", "stop")

    def psql(self, port: int, sql: str, database: str = "postgres") -> str:
        return _as_postgres(BIN / "psql", "-h", self.root, "-p", str(port), "-d", database,
                            "-At", "-v", "ON_ERROR_STOP=1", "-c", sql)  # fmt: skip


def _as_postgres(*command: object) -> str:
    result = subprocess.run(
        ["runuser", "-u", RUN_AS, "--", *map(str, command)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))}: {result.stderr.strip()}")
    return result.stdout.strip()


def _start(data: Path, log: Path) -> None:
    _as_postgres(BIN / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "start")


def _init_primary(cluster: PgCluster) -> None:
    _as_postgres(BIN / "initdb", "-D", cluster.primary, "-U", RUN_AS, "--no-sync")
    with (cluster.primary / "postgresql.conf").open("a") as conf:
        conf.write(PRIMARY_CONF.format(port=cluster.primary_port, sockets=cluster.root))
    (cluster.primary / "pg_hba.conf").write_text(HBA)
    _start(cluster.primary, cluster.root / "primary.log")
    cluster.psql(cluster.primary_port, f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
    cluster.psql(cluster.primary_port, f"CREATE DATABASE {DATABASE} OWNER {USER}")


def _init_standby(cluster: PgCluster) -> None:
    # -R: standby.signal and primary_conninfo; -X stream: the WAL of the copy too.
    _as_postgres(BIN / "pg_basebackup", "-h", cluster.root, "-p", cluster.primary_port,
                 "-D", cluster.standby, "-R", "-X", "stream", "-c", "fast",
                 "--no-sync")  # fmt: skip
    with (cluster.standby / "postgresql.conf").open("a") as conf:
        conf.write(STANDBY_CONF.format(port=cluster.standby_port))
    _start(cluster.standby, cluster.root / "standby.log")
    # Only now: set before a standby exists, every commit would wait for one. Not
    # in the standby's copy either: once promoted, it has no standby to wait for.
    cluster.psql(cluster.primary_port, "ALTER SYSTEM SET synchronous_standby_names = '*'")
    cluster.psql(cluster.primary_port, "SELECT pg_reload_conf()")
    _wait_for_sync_standby(cluster)


def _wait_for_sync_standby(cluster: PgCluster) -> None:
    query = (
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync'"
    )
    wait_for(lambda: cluster.psql(cluster.primary_port, query) == "1",
             "the standby to stream synchronously", 60, interval=0.1)  # fmt: skip


@contextlib.contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    """A primary and a synchronous streaming standby, both removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="cachenet-pgcluster-"))
    shutil.chown(root, RUN_AS)
    cluster = PgCluster(root)
    try:
        _init_primary(cluster)
        _init_standby(cluster)
        yield cluster
    finally:
        for data in (cluster.primary, cluster.standby):
            if (data / "postmaster.pid").exists():
                with contextlib.suppress(Exception):
                    _as_postgres(BIN / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
