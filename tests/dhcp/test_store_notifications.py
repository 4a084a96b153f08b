"""`dhcp serve` on PostgreSQL hears of a change as it commits (LISTEN/NOTIFY).

The server runs with its safety-net poll set to an hour: a reservation that
shows up at all was written because the store announced it. The server and
its bridge are in the root namespace (a bridge of the test's own, on a
private subnet), where the PostgreSQL the harness started listens.
"""

import contextlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from pyroute2 import IPRoute
from sqlalchemy import create_engine, text

from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.notify import APPLICATION_NAME
from harness import netns
from harness.databases import fresh_database
from harness.wait import wait_for

# `cachenet dhcp serve`, but polling the store only once an hour while listening.
SERVE_POLLING_HOURLY = """
import logging, sys
from cachenet.dhcp.server import DhcpServer
from cachenet.settings import load_settings
from cachenet.store import open_store
logging.basicConfig(level=logging.INFO)
settings = load_settings([sys.argv[1]])
store = open_store(settings, hold_connection=True)
DhcpServer(settings.dhcp, settings.network, store, poll_while_listening=3600).serve()
"""


class Node:
    """A `dhcp serve` on a bridge of its own, the store on a PostgreSQL database."""

    def __init__(self, database: str, tmp_path: Path, state_dir: Path) -> None:
        self.bridge = netns.unique_prefix() + "br"
        self.network = f"10.{random.randrange(100, 200)}.{random.randrange(256)}"
        self.database = database
        self.state_dir = state_dir
        self.log = tmp_path / "serve.log"
        self.conf = tmp_path / "cachenet.conf"
        self.options = {
            "subnet": f"{self.network}.0/24", "reserved": f"{self.network}.1-{self.network}.9",
            "dhcp_interface": self.bridge, "dhcp_state_dir": state_dir, "database": database,
        }  # fmt: skip
        lines = [f"{name} = {value}" for name, value in self.options.items()]
        self.conf.write_text("[cachenet]\n" + "\n".join(lines) + "\n")
        self.store = open_store(make_settings(**self.options))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with IPRoute() as ipr:
            ipr.link("add", ifname=self.bridge, kind="bridge")
            index = ipr.link_lookup(ifname=self.bridge)[0]
            ipr.addr("add", index=index, address=f"{self.network}.1", prefixlen=24)
            ipr.link("set", index=index, state="up")
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVE_POLLING_HOURLY, str(self.conf)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(lambda: "dnsmasq started" in self.log.read_text(), "dnsmasq to start", timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        netns.delete_link(self.bridge)
        self.store.engine.dispose()

    def served(self, instance_uuid: str) -> bool:
        return (self.state_dir / "hosts" / f"{instance_uuid}.conf").exists()

    def listener_pids(self) -> list[int]:
        engine = create_engine(self.database, isolation_level="AUTOCOMMIT")
        query = text(
            "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
            "AND datname = current_database() AND query LIKE 'LISTEN%'"
        )
        try:
            with engine.connect() as conn:
                return list(conn.execute(query, {"name": APPLICATION_NAME}).scalars())
        finally:
            engine.dispose()

    def end_listener_sessions(self) -> None:
        """The server's listening session dies, as in a failover or a server restart."""
        engine = create_engine(self.database, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for pid in self.listener_pids():
                    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        finally:
            engine.dispose()


@pytest.fixture
def node(tmp_path):
    # Not under tmp_path: dnsmasq reads the reservations as its own unprivileged user.
    state_dir = Path(tempfile.mkdtemp(prefix="cachenet-dhcp-"))
    state_dir.chmod(0o755)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, state_dir, ignore_errors=True)
        database = stack.enter_context(fresh_database("postgresql"))
        server = Node(database, tmp_path, state_dir)
        stack.callback(server.stop)
        yield server


def test_a_port_is_served_as_its_allocation_commits(node):
    node.start()
    assert len(node.listener_pids()) == 1
    allocated = node.store.allocate(str(uuid.uuid4()), "compute-1")
    wait_for(lambda: node.served(allocated.instance_uuid), "the reservation", timeout=20)
    released = node.store.release(allocated.instance_uuid)
    wait_for(lambda: not node.served(released.instance_uuid), "the reservation to go", timeout=20)


def test_a_lost_listening_session_is_opened_again_and_changes_meanwhile_are_served(node):
    node.start()
    [first] = node.listener_pids()
    node.end_listener_sessions()
    during = node.store.allocate(str(uuid.uuid4()), "compute-1")  # polled for while deaf
    wait_for(
        lambda: node.served(during.instance_uuid), "the reservation made while deaf", timeout=20
    )
    wait_for(
        lambda: node.listener_pids() not in ([], [first]), "a new listening session", timeout=20
    )
    after = node.store.allocate(str(uuid.uuid4()), "compute-1")
    wait_for(
        lambda: node.served(after.instance_uuid), "the reservation made once listening", timeout=20
    )
    assert "not listening for the port store's changes" in node.log.read_text()
