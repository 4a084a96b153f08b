"""Allocate -> a DHCP client holds the address: cachenet against libvirt's ``net-update``.

    .venv/bin/python bench/dhcp_latency.py [--runs N] [--postgres URL]     (as root)

cachenet: ``cachenet dhcp serve`` on a bridge of its own (the cache node), the
store on a new PostgreSQL database; the clock starts as ``cachenet ports
allocate UUID`` (a new process, as an operator or a script runs it) starts, and
stops when a busybox udhcpc in a namespace, with the MAC that allocation hands
out, is bound. libvirt: an isolated libvirt network (libvirt's own dnsmasq);
the clock starts as ``virsh net-update NET add ip-dhcp-host '<host .../>'
--live`` starts. Both clients are asked the same way, from before the command
starts: a DISCOVER every POKE seconds (CLIENTS staggered udhcpc). The runs are
interleaved; medians and the ratio are printed. The cache node is in the root
namespace, as libvirt's network is: PostgreSQL listens on its loopback.

cachenet is measured twice: the CLI alone, and on a host running ``cachenet
agent`` (which answers ``ports allocate`` run with its configuration). That
agent runs in a namespace of its own (its port security writes that
namespace's nftables, not the host's), libvirt's test driver, and reaches
PostgreSQL through a Unix socket relayed to the server's TCP port.
Needs PostgreSQL (scripts/start-services.sh), libvirtd, dnsmasq, busybox.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
from pyroute2 import IPRoute, NetNS
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the harness
from cachenet.identity import mac_from_suffix
from cachenet.settings import load_settings
from harness import netns
from harness.cli import cachenet_argv, running_cachenet
from harness.libvirtd import ensure_libvirtd

POSTGRES = "postgresql+psycopg://cachenet:cachenet@127.0.0.1:5432/postgres"
URI = "qemu:///system"
# busybox udhcpc pauses at least a second between DISCOVERs (and ignores SIGUSR1
# while it has no lease): CLIENTS of them started POKE apart ask every POKE seconds.
CLIENTS = 20
POKE = 1.0 / CLIENTS
TIMEOUT = 20.0  # seconds a client may wait for its address
CLIENT_SCRIPT = '#!/bin/sh\n[ "$1" = bound ] && echo "LEASE $ip"\nexit 0\n'


class Client:
    """A namespace with eth0, whose other end is a port of the DHCP server's bridge."""

    def __init__(self, ns: str, script: Path) -> None:
        self.ns = ns
        self.script = script

    def lease_after(self, mac: str, command: list[str]) -> tuple[float, str]:
        """Seconds from starting ``command`` to a client with ``mac`` bound; its address."""
        with NetNS(self.ns) as ipr:
            index = ipr.link_lookup(ifname="eth0")[0]
            ipr.link("set", index=index, state="down")
            ipr.link("set", index=index, address=mac, state="up")
        clients: list[subprocess.Popen[str]] = []
        try:
            for _ in range(CLIENTS):  # staggered: together they ask every POKE seconds
                clients.append(self._udhcpc())
                time.sleep(POKE)
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            address = _first_lease(clients)  # asking while the command runs too
            seconds = time.perf_counter() - started
            if process.wait(timeout=TIMEOUT) != 0:
                assert process.stderr is not None
                raise RuntimeError(f"{command} failed: {process.stderr.read().decode()}")
            return seconds, address
        finally:
            for client in clients:
                client.kill()
                client.wait()

    def _udhcpc(self) -> subprocess.Popen[str]:
        """udhcpc sending a DISCOVER every second (its shortest pause) until bound."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "busybox", "udhcpc", "-i", "eth0", "-f", "-q",
             "-t", "1000000", "-T", "1", "-s", str(self.script)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip


def _first_lease(clients: list[subprocess.Popen[str]]) -> str:
    """The address of the first client that is bound."""
    pipes = [client.stdout for client in clients if client.stdout is not None]
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select(pipes, [], [], 0.5)
        for pipe in ready:
            line = pipe.readline()
            if line.startswith("LEASE "):
                return line.split()[1]
    raise RuntimeError("no DHCP client got an address")


def plug_client(
    stack: contextlib.ExitStack, name: str, script: Path, bridge: str, bridge_ns: str | None
) -> Client:
    """A client namespace ``name`` whose eth0 is a port of ``bridge`` (in ``bridge_ns``)."""
    ns = stack.enter_context(netns.namespace(name))
    port = name.replace("-", "")
    netns.add_veth(port, port + "p", ns=bridge_ns, peer_ns=ns)
    with NetNS(bridge_ns) if bridge_ns else IPRoute() as ipr:
        index = ipr.link_lookup(ifname=port)[0]
        ipr.link("set", index=index, master=ipr.link_lookup(ifname=bridge)[0])
    with NetNS(ns) as ipr:
        index = ipr.link_lookup(ifname=port + "p")[0]
        ipr.link("set", index=index, state="down")
        ipr.link("set", index=index, ifname="eth0")
    return Client(ns, script)


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"cn_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@contextlib.contextmanager
def cache_node(stack: contextlib.ExitStack, bridge: str, database: str) -> Iterator[list[str]]:
    """``cachenet dhcp serve`` on a new ``bridge``; yields the CLI's argv.

    In the root namespace, as libvirt's network is: PostgreSQL listens on its loopback.
    """
    with IPRoute() as ipr:
        ipr.link("add", ifname=bridge, kind="bridge")
        stack.callback(netns.delete_link, bridge)
        index = ipr.link_lookup(ifname=bridge)[0]
        ipr.addr("add", index=index, address="10.77.0.1", prefixlen=24)
        ipr.link("set", index=index, state="up")
    state = Path(tempfile.mkdtemp(prefix="cachenet-bench-dhcp-"))
    state.chmod(0o755)  # dnsmasq reads the reservations as its own user
    stack.callback(shutil.rmtree, state, ignore_errors=True)
    conf = state / "cachenet.conf"
    conf.write_text(
        "[cachenet]\nsubnet = 10.77.0.0/24\nreserved = 10.77.0.1-10.77.0.9\n"
        f"dhcp_interface = {bridge}\ndhcp_state_dir = {state}\ndatabase = {database}\n"
    )
    log = state / "serve.log"
    with running_cachenet(conf, "dhcp", "serve", log=log, ready="dnsmasq started", timeout=TIMEOUT):
        yield cachenet_argv(conf)


def relay_postgres(stack: contextlib.ExitStack, admin_url: str, directory: Path) -> None:
    """PostgreSQL's Unix socket in ``directory`` (reachable from any namespace),
    relayed to the server's TCP port (password authentication, as over TCP)."""
    url = make_url(admin_url)
    target = (url.host or "127.0.0.1", url.port or 5432)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(directory / ".s.PGSQL.5432"))
    listener.listen(16)
    stack.callback(listener.close)

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                server = socket.create_connection(target)
                for ends in ((client, server), (server, client)):
                    threading.Thread(target=pump, args=ends, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


@contextlib.contextmanager
def agent_host(
    stack: contextlib.ExitStack, prefix: str, node_conf: Path, database: str, tmp: Path
) -> Iterator[list[str]]:
    """``cachenet agent`` with the cache node's options (its own file and a database
    URL through the relay); yields the CLI's argv for that configuration."""
    sockets = tmp / "pg"
    sockets.mkdir()
    relay_postgres(stack, database, sockets)
    relayed = make_url(database).set(host=None, port=None, query={"host": str(sockets)})
    (tmp / "node.xml").write_text("<node/>")
    conf = tmp / "agent.conf"
    conf.write_text(
        node_conf.read_text().replace(database, relayed.render_as_string(hide_password=False))
        + f"libvirt_uri = test://{tmp}/node.xml\nagent_selector = name:none-*\n"
    )
    ns = stack.enter_context(netns.namespace(f"{prefix}-agent"))
    with running_cachenet(conf, "agent", ns=ns, log=tmp / "agent.log", ready="reconciled"):
        yield cachenet_argv(conf)


def libvirt_network(stack: contextlib.ExitStack, prefix: str) -> str:
    """An isolated libvirt network serving only its DHCP host entries; its name.

    One entry from the start (a MAC no client has): without any, libvirt
    configures no DHCP at all. STP off, as on cachenet's bridge.
    """
    name = f"{prefix}-net"
    xml = (
        f"<network><name>{name}</name><bridge name='{prefix}lb' stp='off'/>"
        "<ip address='10.78.0.1' netmask='255.255.255.0'><dhcp>"
        "<host mac='52:54:00:78:ff:ff' ip='10.78.0.254'/></dhcp></ip></network>"
    )
    conn = libvirt.open(URI)
    network = conn.networkCreateXML(xml)  # transient: gone once destroyed
    stack.callback(conn.close)
    stack.callback(network.destroy)
    return name


def allocate_and_lease(client: Client, cachenet: list[str], mac: str) -> float:
    """Seconds from ``cachenet ports allocate`` to ``client`` bound with ``mac``."""
    allocate = [*cachenet, "ports", "allocate", str(uuid.uuid4()), "--json"]
    seconds, address = client.lease_after(mac, allocate)
    port = json.loads(subprocess.run(allocate, check=True, capture_output=True).stdout)
    if (port["mac"], port["address"]) != (mac, address):
        raise RuntimeError(f"the client with {mac} got {address}, not {port}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--postgres", default=POSTGRES, help="admin URL of a PostgreSQL server")
    args = parser.parse_args()
    ensure_libvirtd(URI)
    prefix = netns.unique_prefix()
    times: dict[str, list[float]] = {"alone": [], "agent": [], "libvirt": []}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        script = tmp / "udhcpc.sh"
        script.write_text(CLIENT_SCRIPT)
        script.chmod(0o755)
        database = stack.enter_context(scratch_database(args.postgres))
        cachenet = stack.enter_context(cache_node(stack, f"{prefix}cb", database))
        served = stack.enter_context(agent_host(stack, prefix, Path(cachenet[-1]), database, tmp))
        ours = plug_client(stack, f"{prefix}-c", script, f"{prefix}cb", None)
        network = libvirt_network(stack, prefix)
        theirs = plug_client(stack, f"{prefix}-m", script, f"{prefix}lb", None)
        mac_prefix = load_settings([cachenet[-1]]).network.mac_prefix
        allocated = 0  # a new database hands MACs out in order
        for run in range(args.runs):
            for kind, cli in (("alone", cachenet), ("agent", served)):
                mac = mac_from_suffix(mac_prefix, allocated)
                allocated += 1
                times[kind].append(allocate_and_lease(ours, cli, mac))
            mac = f"52:54:00:78:00:{run:02x}"
            host = f"<host mac='{mac}' ip='10.78.0.{10 + run}'/>"
            virsh = ["virsh", "-c", URI, "net-update", network, "add", "ip-dhcp-host", host,
                     "--live"]  # fmt: skip
            times["libvirt"].append(theirs.lease_after(mac, virsh)[0])
    print(f"allocate -> DHCP client bound, {args.runs} interleaved runs, medians "
          f"(client asks every {POKE * 1000:.0f} ms)")  # fmt: skip
    median = {k: statistics.median(v) for k, v in times.items()}
    for kind, label in (
        ("alone", "cachenet ports allocate, CLI alone"),
        ("agent", "cachenet ports allocate, agent running"),
        ("libvirt", "virsh net-update --live"),
    ):
        ratio = median[kind] / median["libvirt"]
        print(f"  {label:40} {median[kind]:5.2f} s  min {min(times[kind]):.2f}  "
              f"ratio {ratio:.2f}")  # fmt: skip
    print("  (ratio: to virsh net-update; target <= 1.0)")


if __name__ == "__main__":
    main()
