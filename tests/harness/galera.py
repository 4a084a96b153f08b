"""A real three-node MariaDB Galera cluster on loopback, started and removed by the tests.

Debian 12's mariadb-server and galera-4: three ``mariadbd`` processes, each with its own
data directory, socket, SQL port and Galera ports (group communication, IST, SST) under
one temporary directory. The first node bootstraps the cluster (``--wsrep-new-cluster``);
the others join it by rsync SST, which needs nothing running beforehand (the SST script
starts an rsync daemon for the transfer and stops it). Every process is stopped and the
directory removed afterwards, whatever the test did.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.loopback import free_ports
from harness.wait import wait_for

PROVIDER = Path("/usr/lib/galera/libgalera_smm.so")
MARIADBD = "/usr/sbin/mariadbd"
START_TIMEOUT = 120.0  # a joiner's SST on a busy 2-core machine
STOP_TIMEOUT = 30.0
# As Debian runs it: the joiner's rsync SST daemon, started by root, would
# drop to user nobody and could not write the data directory.
SERVICE_USER = "mysql"
USER = "cachenet"
PASSWORD = "cachenet"
# Notice a killed node in about 2 s, not the default 5 s to 15 s: writes on the
# surviving nodes wait for the new membership before they commit.
FAILURE_DETECTION = (
    "evs.keepalive_period=PT0.5S;evs.suspect_timeout=PT2S;"
    "evs.inactive_timeout=PT3S;evs.install_timeout=PT3S;"
)


@dataclass
class Node:
    """One mariadbd of the cluster."""

    name: str
    directory: Path
    sql_port: int
    group_port: int  # Galera's group communication (gcomm)
    ist_port: int
    sst_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        return self.directory / "mysqld.sock"

    @property
    def log(self) -> Path:
        return self.directory / "error.log"

    def url(self, database: str) -> str:
        return f"mysql+pymysql://{USER}:{PASSWORD}@127.0.0.1:{self.sql_port}/{database}"

    def sql(self, statement: str) -> str:
        """Run ``statement`` as root over the node's socket; its output, tab-separated."""
        done = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot",
             "--batch", "--skip-column-names", "-e", statement],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"{self.name}: {statement!r} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def status(self, variable: str) -> str:
        out = self.sql(f"SHOW GLOBAL STATUS LIKE '{variable}'")
        return out.split("\t", 1)[1] if "\t" in out else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM (a clean leave), SIGKILL when it hangs; its SST helpers with it."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):  # a left-over rsync of the SST
            os.killpg(self.process.pid, signal.SIGKILL)


@dataclass
class Cluster:
    nodes: list[Node]
    name: str

    def create_database(self) -> str:
        """A new database (replicated to every node); its name."""
        database = f"cn_galera_{uuid.uuid4().hex[:10]}"
        self.nodes[0].sql(f"CREATE DATABASE {database}")
        return database


def galera_or_skip() -> None:
    """Skip when MariaDB or Galera is not installed (fail in CI, which installs both)."""
    missing = [p for p in (PROVIDER, Path(MARIADBD), Path("/usr/bin/rsync")) if not p.exists()]
    if missing:
        message = f"{', '.join(map(str, missing))} missing: scripts/install.sh installs them"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def write_config(node: Node, cluster_name: str, members: list[Node]) -> Path:
    """The node's whole configuration (--defaults-file: nothing of /etc/mysql is read)."""
    addresses = ",".join(f"127.0.0.1:{m.group_port}" for m in members)
    options = {
        "datadir": node.directory / "data",
        "socket": node.socket,
        "pid-file": node.directory / "mysqld.pid",
        "log-error": node.log,
        "port": node.sql_port,
        "bind-address": "127.0.0.1",
        "user": SERVICE_USER,
        "skip-name-resolve": "ON",
        # What Galera requires: row-based replication, InnoDB, interleaved auto-increment.
        "binlog_format": "ROW",
        "default_storage_engine": "InnoDB",
        "innodb_autoinc_lock_mode": 2,
        # Small and fast: three servers share two cores; a commit is durable
        # once it reached the other nodes.
        "innodb_buffer_pool_size": "64M",
        "innodb_flush_log_at_trx_commit": 2,
        "performance_schema": "OFF",
        "max_connections": 200,
        "wsrep_on": "ON",
        "wsrep_provider": PROVIDER,
        "wsrep_cluster_name": cluster_name,
        "wsrep_cluster_address": f"gcomm://{addresses}",
        "wsrep_node_name": node.name,
        "wsrep_node_address": f"127.0.0.1:{node.group_port}",
        "wsrep_provider_options": (
            f'"gmcast.listen_addr=tcp://127.0.0.1:{node.group_port};'
            f'ist.recv_addr=127.0.0.1:{node.ist_port};{FAILURE_DETECTION}"'
        ),
        "wsrep_sst_method": "rsync",
        "wsrep_sst_receive_address": f"127.0.0.1:{node.sst_port}",
        "wsrep_slave_threads": 2,
    }
    config = node.directory / "my.cnf"
    lines = ["[mariadbd]", *(f"{name} = {value}" for name, value in options.items())]
    config.write_text("\n".join(lines) + "\n")
    return config


def start(node: Node, config: Path, bootstrap: bool = False) -> None:
    """Start the node (bootstrapping a new cluster) and wait until it is Synced."""
    command = [MARIADBD, f"--defaults-file={config}"]
    if bootstrap:
        command.append("--wsrep-new-cluster")
    # Its own process group: stop() reaches the SST scripts and rsync it spawns.
    node.process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    wait_synced(node)


def wait_synced(node: Node) -> None:
    def synced() -> bool:
        if not node.alive():
            raise RuntimeError(f"{node.name} exited while starting:\n{tail(node.log)}")
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            return node.socket.exists() and node.status("wsrep_local_state_comment") == "Synced"
        return False

    wait_for(synced, lambda: f"{node.name} to be Synced:\n{tail(node.log)}", START_TIMEOUT, 0.3)


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def install_system_tables(node: Node) -> None:
    """The first node's mysql schema; the joiners receive it by SST."""
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={node.directory / 'data'}",
         f"--user={SERVICE_USER}", "--skip-test-db", "--auth-root-authentication-method=socket"],
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip


@contextlib.contextmanager
def galera_cluster(size: int = 3) -> Iterator[Cluster]:
    """``size`` Galera nodes, Synced, user cachenet/cachenet on every one.

    Their directory is a new one under /tmp owned by the service user (pytest's
    temporary directories are private to root).
    """
    galera_or_skip()
    directory = Path(tempfile.mkdtemp(prefix="cachenet-galera-"))
    name = f"cachenet-test-{uuid.uuid4().hex[:8]}"
    ports = iter(free_ports(4 * size))
    nodes = [
        Node(
            name=f"node{n}",
            directory=directory / f"node{n}",
            sql_port=next(ports),
            group_port=next(ports),
            ist_port=next(ports),
            sst_port=next(ports),
        )
        for n in range(1, size + 1)
    ]
    try:
        shutil.chown(directory, SERVICE_USER, SERVICE_USER)
        for node in nodes:
            (node.directory / "data").mkdir(parents=True)
            for made in (node.directory, node.directory / "data"):
                shutil.chown(made, SERVICE_USER, SERVICE_USER)
        install_system_tables(nodes[0])
        configs = [write_config(node, name, nodes) for node in nodes]
        start(nodes[0], configs[0], bootstrap=True)
        nodes[0].sql(
            f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';"
            f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1';"
        )
        for node, config in zip(nodes[1:], configs[1:], strict=True):
            start(node, config)  # one SST at a time: the donor serves one
        yield Cluster(nodes, name)
    finally:
        for node in reversed(nodes):
            node.stop()
        shutil.rmtree(directory, ignore_errors=True)
