"""A cache network in namespaces: the DHCP server's namespace holds a bridge with
the server's address; each client is a namespace joined to it by a veth pair.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from pyroute2 import NetNS

from harness import netns
from harness.cli import PATH, run_cachenet, start_cachenet
from harness.wait import wait_for

UDHCPC_SCRIPT = (
    '#!/bin/sh\ncase "$1" in bound|renew) echo "LEASE $ip mask=$mask router=$router" ;; esac\n'
)


class CacheNetwork:
    def __init__(self, prefix, tmp_path, state_dir):
        self.prefix = prefix
        self.tmp_path = tmp_path
        self.state_dir = state_dir
        self.server_ns = f"{prefix}-srv"
        self.clients = []
        self.conf = tmp_path / "cachenet.conf"
        self.configure(
            subnet="10.77.0.0/24", reserved="10.77.0.1-10.77.0.9", dhcp_interface="br0",
            dhcp_state_dir=state_dir, database=f"sqlite:///{tmp_path}/ports.sqlite",
            host="compute-1",
        )  # fmt: skip
        self.script = tmp_path / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)
        self.server = None

    def configure(self, **options):
        """Set options of the cachenet.conf every command of this network uses."""
        self.options = {**getattr(self, "options", {}), **options}
        lines = [f"{name} = {value}" for name, value in self.options.items()]
        self.conf.write_text("[cachenet]\n" + "\n".join(lines) + "\n")

    def build(self, stack):
        stack.enter_context(netns.namespace(self.server_ns))
        with NetNS(self.server_ns) as ns:
            ns.link("add", ifname="br0", kind="bridge")
            br = ns.link_lookup(ifname="br0")[0]
            ns.addr("add", index=br, address="10.77.0.1", prefixlen=24)
            ns.link("set", index=br, state="up")
        self._stack = stack

    def client(self, mac):
        """A new client namespace whose eth0 has ``mac``; returns its namespace."""
        name = f"{self.prefix}-c{len(self.clients)}"
        self._stack.enter_context(netns.namespace(name))
        port = f"c{len(self.clients)}"
        with NetNS(self.server_ns) as ns:
            ns.link("add", ifname=port, kind="veth", peer="eth0")
            ns.link("set", index=ns.link_lookup(ifname="eth0")[0], net_ns_fd=name)
            index = ns.link_lookup(ifname=port)[0]
            ns.link("set", index=index, master=ns.link_lookup(ifname="br0")[0], state="up")
        with NetNS(name) as ns:
            ns.link("set", index=ns.link_lookup(ifname="eth0")[0], address=mac, state="up")
        self.clients.append(name)
        return name

    def lease(self, client, tries=3):
        """The address udhcpc gets in ``client``, or None."""
        details = self.lease_details(client, tries)
        return details["ip"] if details else None

    def lease_details(self, client, tries=3):
        """What udhcpc gets in ``client`` (ip, and mask and router as udhcpc names
        them: the prefix length and the router's address, "" if none), or None."""
        result = subprocess.run(
            ["ip", "netns", "exec", client, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n",
             "-t", str(tries), "-T", "1", "-A", "1", "-s", str(self.script)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        for line in result.stdout.splitlines():
            if line.startswith("LEASE "):
                ip, *options = line.split(" ")[1:]
                return {"ip": ip, **dict(o.split("=", 1) for o in options)}
        return None

    def cachenet(self, *args, ns=None):
        """A cachenet command with this network's configuration."""
        return run_cachenet(self.conf, *args, ns=ns)

    def start_server(self):
        log = open(self.tmp_path / "serve.log", "w")  # noqa: SIM115 - closed with the process
        self.server = start_cachenet(self.conf, "dhcp", "serve", ns=self.server_ns, log=log)
        wait_for(lambda: self.dnsmasq_pid() is not None, "dnsmasq to start")

    def stop_server(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(timeout=10)

    def dnsmasq_pid(self):
        pid_file = self.state_dir / "dnsmasq.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            Path(f"/proc/{pid}").stat()
            return pid
        return None

    def reservation(self, instance_uuid):
        return self.state_dir / "hosts" / f"{instance_uuid}.conf"


@pytest.fixture
def cache_network(tmp_path):
    # Not under tmp_path: pytest makes that private, and dnsmasq reads the
    # reservations as its own unprivileged user.
    state_dir = Path(tempfile.mkdtemp(prefix="cachenet-dhcp-"))
    state_dir.chmod(0o755)
    network = CacheNetwork(netns.unique_prefix(), tmp_path, state_dir)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, state_dir, ignore_errors=True)
        network.build(stack)
        try:
            yield network
        finally:
            network.stop_server()


# A client that stays up (udhcpc without -q): its script records every event and
# sets the address, so a renew or rebind is told apart from losing the address.
TRACKING_SCRIPT = """#!/bin/sh
echo "$1 ${ip:-}" >> "$EVENTS"
case "$1" in
  deconfig) ip addr flush dev "$interface" ;;
  bound|renew) ip addr replace "$ip/${mask:-24}" dev "$interface" ;;
esac
"""


class DhcpNode:
    """One `cachenet dhcp serve` on its own namespace, state directory and config file."""

    def __init__(self, network, name, address):
        self.network = network
        self.ns = f"{network.prefix}-{name}"
        self.address = address
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"cachenet-dhcp-{name}-"))
        self.state_dir.chmod(0o755)
        self.conf = network.tmp_path / f"{name}.conf"
        self.log = network.tmp_path / f"{name}.log"
        self.process = None

    def write_conf(self, options):
        options = {**options, "dhcp_interface": "eth0", "dhcp_state_dir": self.state_dir}
        lines = [f"{name} = {value}" for name, value in options.items()]
        self.conf.write_text("[cachenet]\n" + "\n".join(lines) + "\n")

    def start(self):
        log = open(self.log, "w")  # noqa: SIM115 - closed with the process
        self.process = start_cachenet(self.conf, "dhcp", "serve", ns=self.ns, log=log)
        wait_for(lambda: "dnsmasq started" in self.log.read_text(), "dnsmasq", 10)

    def link(self, state):
        """Set the node's link on the cache network "up" or "down"."""
        with NetNS(self.ns) as ns:
            ns.link("set", index=ns.link_lookup(ifname="eth0")[0], state=state)

    def kill(self):
        """The node dies: its server and dnsmasq are killed, its link goes down."""
        self.link("down")
        pid = self.dnsmasq_pid()
        self.process.kill()
        self.process.wait(timeout=10)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)

    def dnsmasq_pid(self):
        with contextlib.suppress(OSError, ValueError):
            return int((self.state_dir / "dnsmasq.pid").read_text())
        return None

    def logged(self, text):
        return text in self.log.read_text()


class SharedCacheNetwork(CacheNetwork):
    """One L2 (a bridge in its own namespace) with several DHCP server nodes on it."""

    def __init__(self, prefix, tmp_path, state_dir):
        super().__init__(prefix, tmp_path, state_dir)
        self.server_ns = f"{prefix}-lan"  # holds the bridge the clients plug into
        self.nodes = []
        self.events = tmp_path / "events"

    def configure(self, **options):
        super().configure(**options)
        for node in getattr(self, "nodes", []):
            node.write_conf(self.options)

    def build(self, stack):
        stack.enter_context(netns.namespace(self.server_ns))
        with NetNS(self.server_ns) as ns:
            ns.link("add", ifname="br0", kind="bridge")
            ns.link("set", index=ns.link_lookup(ifname="br0")[0], state="up")
        self._stack = stack

    def node(self, name, address):
        """A DHCP server node with ``address`` on the shared L2."""
        node = DhcpNode(self, name, address)
        self._stack.enter_context(netns.namespace(node.ns))
        self._stack.callback(shutil.rmtree, node.state_dir, ignore_errors=True)
        self._stack.callback(node.stop)
        with NetNS(self.server_ns) as ns:
            ns.link("add", ifname=f"p{name}", kind="veth", peer="eth0")
            ns.link("set", index=ns.link_lookup(ifname="eth0")[0], net_ns_fd=node.ns)
            index = ns.link_lookup(ifname=f"p{name}")[0]
            ns.link("set", index=index, master=ns.link_lookup(ifname="br0")[0], state="up")
        with NetNS(node.ns) as ns:
            eth0 = ns.link_lookup(ifname="eth0")[0]
            ns.addr("add", index=eth0, address=address, prefixlen=24)
            ns.link("set", index=eth0, state="up")
        node.write_conf(self.options)
        self.nodes.append(node)
        return node

    def hold(self, client):
        """A udhcpc that keeps its lease in ``client``; returns (process, address)."""
        script = self.tmp_path / "tracking.sh"
        script.write_text(TRACKING_SCRIPT)
        script.chmod(0o755)
        process = subprocess.Popen(
            ["ip", "netns", "exec", client, "busybox", "udhcpc", "-i", "eth0", "-f",
             "-t", "5", "-T", "1", "-s", str(script)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={"PATH": PATH, "EVENTS": f"{self.events}.{client}"},
        )  # fmt: skip
        self._stack.callback(_end, process)
        wait_for(lambda: self.last_event(client).startswith("bound "), "a lease", 15)
        return process, self.last_event(client).split()[1]

    def last_event(self, client):
        events = self.client_events(client)
        return events[-1] if events else ""

    def client_events(self, client):
        path = Path(f"{self.events}.{client}")
        return path.read_text().splitlines() if path.exists() else []


def _end(process):
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def shared_cache_network(tmp_path):
    """Several `cachenet dhcp serve` nodes on one L2, the store on one SQLite file."""
    state_dir = Path(tempfile.mkdtemp(prefix="cachenet-dhcp-"))
    network = SharedCacheNetwork(netns.unique_prefix(), tmp_path, state_dir)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, state_dir, ignore_errors=True)
        network.build(stack)
        yield network
