"""Port security on the OVS bridge, against the real test Open vSwitch, with namespaces.

Two "instances" (namespaces behind veths named under device_prefix, plugged into
the bridge) and a "cache node" (a namespace behind the uplink). What is checked
is what the cache node receives or learns, as a user of the cache would.
"""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cachenet.bridge.ovs import OvsBridge
from cachenet.port import Port
from cachenet.settings import make_settings
from harness import netns
from harness.loopback import free_port
from harness.ovs import ofctl, restart_vswitchd, vsctl
from harness.wait import wait_for

pytestmark = pytest.mark.root

CACHE_IP, CACHE_MAC = "10.99.0.1", "fa:17:3e:00:00:01"
A_IP, A_MAC = "10.99.0.10", "fa:17:3e:00:00:0a"
B_IP, B_MAC = "10.99.0.11", "fa:17:3e:00:00:0b"
SPOOFED_IP = "10.99.0.77"
UDP_PORT = 9999


def run_in(ns: str, *cmd: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout
    )


@dataclass
class Net:
    prefix: str
    bridge: OvsBridge
    cache: str  # namespaces
    a: str
    b: str
    ports: list[Port] = field(default_factory=list)

    def dev(self, ns: str) -> str:
        """The namespace end of a veth (the bridge end is under device_prefix)."""
        return f"{self.prefix}{ns[-1]}"

    def pings(self, ns: str, dst: str) -> bool:
        # Three echoes, 0.2 s apart: the userspace datapath revalidates its cached
        # flows a moment after a rule change, so one lost echo proves nothing.
        return run_in(ns, "busybox", "ping", "-c3", "-i0.2", "-W1", dst).returncode == 0

    def neighbour_mac(self, ns: str, ip: str) -> str | None:
        out = run_in(ns, "ip", "neigh", "show", ip).stdout.split()
        return out[out.index("lladdr") + 1] if "lladdr" in out else None

    def secure(self) -> list[str]:
        return self.bridge.secure_ports(self.ports)

    def static_neighbour_of_cache(self, ns: str) -> None:
        """So that what is sent is the datagram itself, not an ARP request first."""
        run_in(ns, "ip", "neigh", "replace", CACHE_IP, "lladdr", CACHE_MAC, "dev", self.dev(ns),
               "nud", "permanent")  # fmt: skip

    def udp_sources_heard(self, send_from: str, sources: list[str]) -> set[str]:
        """Send a datagram from ``send_from`` with each source address; those the cache
        node received."""
        listener = subprocess.Popen(
            ["ip", "netns", "exec", self.cache, sys.executable, "-c", LISTEN, str(UDP_PORT)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            time.sleep(0.3)
            for source in sources:
                run_in(send_from, sys.executable, "-c", SEND, source, CACHE_IP, str(UDP_PORT))
            out, _ = listener.communicate(timeout=10)
        finally:
            listener.kill()
            listener.wait()
        return set(out.split())


LISTEN = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(1.5)
try:
    while True:
        print(s.recvfrom(100)[1][0], flush=True)
except TimeoutError:
    pass
"""
SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
for _ in range(3):
    s.sendto(b"hello", (sys.argv[2], int(sys.argv[3])))
"""


def add_end(prefix: str, bridge_end: str, ns: str, mac: str, ip: str) -> None:
    ns_end = f"{prefix}{ns[-1]}"
    netns.add_veth(bridge_end, ns_end, peer_ns=ns)
    run_in(ns, "ip", "link", "set", "dev", ns_end, "address", mac)
    netns.add_address(ns_end, ip, 24, ns=ns)
    # OVS's userspace datapath drops frames whose checksum a veth left to offload.
    netns.tx_offload_off(ns_end, ns=ns)
    netns.tx_offload_off(bridge_end)


@pytest.fixture
def make_net(ovsdb, prefix) -> Iterator:
    with contextlib.ExitStack() as stack:

        def make(**overrides: object) -> Net:
            names = [stack.enter_context(netns.namespace(f"{prefix}-{n}")) for n in "cab"]
            cache, a, b = names
            add_end(prefix, f"{prefix}up", cache, CACHE_MAC, CACHE_IP)
            stack.callback(netns.delete_link, f"{prefix}up")
            options = dict(
                bridge=f"{prefix}br", bridge_type="ovs", uplink=f"{prefix}up",
                device_prefix=f"{prefix}-", datapath_type="netdev", ovsdb_connection=ovsdb,
            )  # fmt: skip
            options.update(overrides)
            settings = make_settings(**options)
            listen = f"127.0.0.1:{free_port()}"
            bridge = OvsBridge(settings.bridge, settings.network, listen)
            stack.callback(vsctl, "--if-exists", "del-br", f"{prefix}br")
            bridge.ensure()
            net = Net(prefix, bridge, cache, a, b)
            for ns, mac, ip in ((a, A_MAC, A_IP), (b, B_MAC, B_IP)):
                device = f"{prefix}-{ns[-1]}"
                add_end(prefix, device, ns, mac, ip)
                stack.callback(netns.delete_link, device)
                vsctl("add-port", f"{prefix}br", device)
                uuid = f"00000000-0000-4000-8000-00000000000{ns[-1]}"
                address = ipaddress.IPv4Address(ip)
                net.ports.append(Port(uuid, mac, address, device, "host"))
            wait_until_numbered(net)
            return net

        yield make


def wait_until_numbered(net: Net) -> None:
    """Until the backend sees the OpenFlow numbers of the plugged ports (its OVSDB cache)."""
    devices = [p.device for p in net.ports]
    wait_for(lambda: all(net.bridge._ofport(d) for d in devices),
             f"{devices} to get OpenFlow port numbers", 10)  # fmt: skip


def test_a_plugged_port_forwards_nothing_until_it_is_secured(make_net):
    net = make_net()
    assert not net.pings(net.a, CACHE_IP)  # default deny: no window after plugging
    assert net.bridge.status().unsecured_ports == [p.device for p in net.ports]
    changes = net.secure()
    assert changes[:2] == [f"secured {net.prefix}-a", f"secured {net.prefix}-b"]
    assert net.bridge.status().unsecured_ports == []
    # The denied attempt left the cache node's neighbour entry FAILED in the
    # instance; the kernel resolves it again at its own pace: a few tries.
    assert any(net.pings(net.a, CACHE_IP) for _ in range(4))
    assert net.secure() == []  # a reconciliation with nothing to do changes nothing


def test_instances_reach_the_cache_node_but_not_each_other(make_net):
    net = make_net()
    net.secure()
    assert net.pings(net.a, CACHE_IP)
    assert net.pings(net.b, CACHE_IP)
    assert net.pings(net.cache, A_IP)
    assert not net.pings(net.a, B_IP)
    # a port the store no longer lists loses its rules
    changes = net.bridge.secure_ports(net.ports[:1])
    assert "removed the rules of OpenFlow port" in " ".join(changes)
    assert not net.pings(net.b, CACHE_IP)


def test_without_isolation_instances_reach_each_other(make_net):
    net = make_net(isolate_ports=False)
    net.secure()
    assert net.pings(net.a, B_IP)


@pytest.mark.parametrize("anti_spoofing", [True, False])
def test_a_spoofed_source_address_never_reaches_the_cache_node(make_net, anti_spoofing):
    net = make_net(anti_spoofing=anti_spoofing)
    net.secure()
    netns.add_address(net.dev(net.b), SPOOFED_IP, 32, ns=net.b)
    net.static_neighbour_of_cache(net.b)
    heard = net.udp_sources_heard(net.b, [SPOOFED_IP, B_IP])
    assert B_IP in heard  # the well-behaved datagram gets through
    assert (SPOOFED_IP in heard) is not anti_spoofing  # off: the check would see a spoof


@pytest.mark.parametrize("anti_spoofing", [True, False])
def test_a_spoofed_mac_never_reaches_the_cache_node(make_net, anti_spoofing):
    net = make_net(anti_spoofing=anti_spoofing)
    net.secure()
    run_in(net.b, "ip", "link", "set", "dev", net.dev(net.b), "address", "fa:17:3e:00:00:99")
    net.static_neighbour_of_cache(net.b)  # the kernel flushed it with the MAC change
    assert (net.udp_sources_heard(net.b, [B_IP]) == {B_IP}) is not anti_spoofing
    assert net.pings(net.a, CACHE_IP)  # the other instance keeps working


@pytest.mark.parametrize("anti_spoofing", [True, False])
def test_gratuitous_arp_cannot_take_over_an_address(make_net, anti_spoofing):
    net = make_net(anti_spoofing=anti_spoofing)
    net.secure()
    assert net.pings(net.a, CACHE_IP)  # the cache node and A know each other
    time.sleep(1.1)  # past the neighbour table's lock time, when an update would be taken
    run_in(net.b, "sysctl", "-w", "net.ipv4.ip_nonlocal_bind=1")  # to send as another
    for claimed in (A_IP, CACHE_IP):
        garp = run_in(net.b, "busybox", "arping", "-U", "-c", "2", "-w", "1",
                      "-I", net.dev(net.b), "-s", claimed, claimed)  # fmt: skip
        assert garp.returncode == 0, garp.stderr
    assert (net.neighbour_mac(net.cache, A_IP) == A_MAC) is anti_spoofing
    assert net.neighbour_mac(net.a, CACHE_IP) == CACHE_MAC  # isolation: A never heard it
    assert net.pings(net.b, CACHE_IP)


def udhcpd(ns: str, dev: str, tmp: Path, *static: str) -> subprocess.Popen[bytes]:
    conf = tmp / f"udhcpd-{ns}.conf"
    conf.write_text(
        f"interface {dev}\nstart 10.99.0.100\nend 10.99.0.110\n"
        f"lease_file {tmp}/leases-{ns}\npidfile {tmp}/udhcpd-{ns}.pid\n"
        "option subnet 255.255.255.0\n" + "".join(f"static_lease {s}\n" for s in static)
    )
    (tmp / f"leases-{ns}").touch()
    argv = ["ip", "netns", "exec", ns, "busybox", "udhcpd", "-f", str(conf)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return server


def gets_a_lease(ns: str, dev: str) -> bool:
    udhcpc = ["busybox", "udhcpc", "-i", dev, "-n", "-q", "-f", "-t", "3", "-T", "1",
              "-s", "/bin/true"]  # fmt: skip
    return run_in(ns, *udhcpc).returncode == 0


@pytest.mark.parametrize("anti_spoofing", [True, False])
def test_a_rogue_dhcp_server_is_not_heard(make_net, tmp_path, anti_spoofing):
    net = make_net(anti_spoofing=anti_spoofing)
    net.secure()
    server = udhcpd(net.b, net.dev(net.b), tmp_path)
    try:
        assert gets_a_lease(net.cache, net.dev(net.cache)) is not anti_spoofing
    finally:
        server.kill()
        server.wait()


def test_an_instance_gets_its_lease_from_the_cache_network(make_net, tmp_path):
    net = make_net()
    net.secure()
    server = udhcpd(net.cache, net.dev(net.cache), tmp_path, f"{A_MAC} {A_IP}")
    try:
        assert gets_a_lease(net.a, net.dev(net.a))  # DISCOVER/REQUEST from 0.0.0.0 pass
    finally:
        server.kill()
        server.wait()


def test_rules_lost_in_a_switch_restart_fail_closed_and_come_back(make_net):
    net = make_net()
    net.secure()
    assert net.pings(net.a, CACHE_IP)
    restart_vswitchd()
    wait_until_numbered(net)
    bridge_flows = ofctl("dump-flows", f"{net.prefix}br", "--no-stats")
    assert "cookie" not in bridge_flows  # fail_mode secure: no fail-open NORMAL flow
    assert not net.pings(net.a, CACHE_IP)  # closed until cachenet is back
    assert net.bridge.status().unsecured_ports == [p.device for p in net.ports]
    assert net.secure()[0] == f"installed the flows of {net.prefix}br (default deny)"
    assert net.pings(net.a, CACHE_IP)
    netns.add_address(net.dev(net.b), SPOOFED_IP, 32, ns=net.b)
    net.static_neighbour_of_cache(net.b)
    assert net.udp_sources_heard(net.b, [SPOOFED_IP, B_IP]) == {B_IP}
