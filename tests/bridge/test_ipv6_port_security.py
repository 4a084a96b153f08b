"""IPv6 port security on both bridge types, against the real kernel and Open vSwitch.

The labs of the IPv4 port-security tests (namespaces around a Linux bridge with its
nftables table, or around an OVS bridge with its flows), on a dual-stack pool. Each
instance uses its EUI-64 address (with duplicate address detection, so DAD must get
through) and its link-local one; one misbehaves. What is checked is what the cache
node receives or learns. With anti_spoofing off, the same misbehaviour succeeds:
the attacks are real, and the rules are what stops them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_linuxbridge_port_security import NODE, NODE_MAC, Lab
from test_ovs_port_security import CACHE_IP, CACHE_MAC, make_net  # noqa: F401 - a fixture

from cachenet import ipv6
from cachenet.dhcp.server import dnsmasq_command
from cachenet.port import Port
from cachenet.settings import make_settings
from harness.wait import WaitTimeout, wait_for

pytestmark = pytest.mark.root

PREFIX = ipaddress.IPv6Network("fd00:77::/64")
NODE6 = PREFIX[1]
SPOOFED6 = PREFIX[0xBAD]
ROGUE_PREFIX = ipaddress.IPv6Network("fd00:66::/64")

SEND_ICMPV6 = r"""
import socket, sys
dev, source, destination, payload = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)  # kernel checksums
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)  # ND needs hop limit 255
index = socket.if_nametoindex(dev)
s.bind((source, 0, 0, index))
for _ in range(3):
    s.sendto(bytes.fromhex(payload), (destination, 0, 0, index))
"""

SEND_UDP6 = r"""
import socket, sys
source, sport, destination, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((source, sport))
for _ in range(3):
    s.sendto(b"reply", (destination, dport))
"""

LISTEN_UDP6 = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", int(sys.argv[1])))
s.settimeout(2)
print("ready", flush=True)
try:
    while True:
        print(s.recvfrom(100)[1][1], flush=True)
except TimeoutError:
    pass
"""


def in_ns(ns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip


@dataclass
class Instance:
    ns: str
    dev: str
    port: Port

    @property
    def address(self) -> ipaddress.IPv6Address:
        return ipv6.eui64_address(PREFIX, self.port.mac)

    @property
    def link_local(self) -> ipaddress.IPv6Address:
        return ipv6.link_local_address(self.port.mac)


@dataclass
class Side:
    """The cache node and two secured instances, on either bridge type."""

    node: str
    node_dev: str
    node_mac: str
    good: Instance
    spoofer: Instance
    node_ipv4: str  # the node's IPv4 address (each namespace holds one, whatever the pool)

    def pings(self, instance: Instance, address: ipaddress.IPv6Address = NODE6) -> bool:
        # Three echoes 0.2 s apart: OVS's userspace datapath revalidates a moment late.
        argv = ["busybox", "ping", "-6", "-c3", "-i0.2", "-W1", str(address)]
        return in_ns(instance.ns, *argv).returncode == 0

    def node_neighbour_mac(self, address: ipaddress.IPv6Address) -> str | None:
        out = in_ns(self.node, "ip", "-6", "neigh", "show", str(address), "dev", self.node_dev)
        words = out.stdout.split()
        return words[words.index("lladdr") + 1] if "lladdr" in words else None

    def node_default_route(self) -> str:
        return in_ns(self.node, "ip", "-6", "route", "show", "default").stdout.strip()

    def send_icmpv6(self, instance: Instance, payload: bytes) -> None:
        sent = in_ns(instance.ns, sys.executable, "-c", SEND_ICMPV6, instance.dev,
                     str(instance.link_local), "ff02::1", payload.hex())  # fmt: skip
        assert sent.returncode == 0, sent.stderr

    def udp6_sources_heard(self, instance: Instance, sports: list[int], dport: int) -> set[int]:
        listener = subprocess.Popen(
            ["ip", "netns", "exec", self.node, sys.executable, "-c", LISTEN_UDP6, str(dport)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
            for sport in sports:
                sent = in_ns(instance.ns, sys.executable, "-c", SEND_UDP6, str(instance.address),
                             str(sport), str(NODE6), str(dport))  # fmt: skip
                assert sent.returncode == 0, sent.stderr
            out, _ = listener.communicate(timeout=10)
        finally:
            listener.kill()
            listener.wait()
        return {int(p) for p in out.split()}


def relink(instance: Instance) -> None:
    """Bring the NIC down and up: its link-local address from its (new) MAC, a fresh
    round of router solicitations."""
    for state in ("down", "up"):
        in_ns(instance.ns, "ip", "link", "set", "dev", instance.dev, state)


def without_tentative(instance: Instance) -> str:
    """The NIC's IPv6 addresses once duplicate address detection is over."""

    def addresses() -> str | None:
        shown = in_ns(instance.ns, "ip", "-6", "addr", "show", "dev", instance.dev).stdout
        return None if "tentative" in shown else shown

    return wait_for(addresses, "duplicate address detection to finish", 10, interval=0.1)


def use_eui64_address(instance: Instance) -> None:
    """Add the EUI-64 address by hand, the ordinary way (duplicate address detection
    included), on a NIC that takes no router advertisements."""
    relink(instance)
    added = in_ns(instance.ns, "ip", "-6", "addr", "add", f"{instance.address}/64",
                  "dev", instance.dev)  # fmt: skip
    assert added.returncode == 0, added.stderr
    out = without_tentative(instance)
    assert str(instance.address) in out and str(instance.link_local) in out, out  # DAD passed


def router_advertisement(prefix: ipaddress.IPv6Network) -> bytes:
    """An RA offering a default route (lifetime 1800 s) and ``prefix`` for SLAAC."""
    header = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
    prefix_info = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0)
    return header + prefix_info + prefix.network_address.packed


def neighbour_advertisement(target: ipaddress.IPv6Address, mac: str) -> bytes:
    """An unsolicited NA with the override flag: "``target`` is at ``mac``"."""
    header = struct.pack("!BBHI", 136, 0, 0, 0x20000000)
    return header + target.packed + bytes([2, 1]) + bytes.fromhex(mac.replace(":", ""))


@pytest.fixture(params=["linuxbridge", "ovs"])
def make_side(request: pytest.FixtureRequest, prefix: str) -> Iterator[Callable[..., Side]]:
    with contextlib.ExitStack() as stack:

        def make(
            anti_spoofing: bool = True, addresses: bool = True, ipv6_only: bool = False
        ) -> Side:
            """``ipv6_only``: the pool is PREFIX alone and the ports hold no IPv4 address
            (the namespaces keep theirs, to try IPv4 with)."""

            def pool(ipv4_subnet: str) -> str:
                return str(PREFIX) if ipv6_only else f"{ipv4_subnet}, {PREFIX}"

            def as_stored(port: Port) -> Port:
                return dataclasses.replace(port, address=None) if ipv6_only else port

            if request.param == "linuxbridge":
                lab = Lab(prefix, stack, subnet=pool("10.77.0.0/24"), anti_spoofing=anti_spoofing)
                (a, a_port), (b, b_port) = lab.instance(), lab.instance()
                a_port, b_port = as_stored(a_port), as_stored(b_port)
                lab.bridge.secure_ports([a_port, b_port])
                side = Side(lab.node, "eth0", NODE_MAC, Instance(a, "eth0", a_port),
                            Instance(b, "eth0", b_port), NODE)  # fmt: skip
            else:
                net = request.getfixturevalue("make_net")(
                    subnet=pool("10.99.0.0/16"), anti_spoofing=anti_spoofing
                )
                net.ports[:] = [as_stored(port) for port in net.ports]
                net.secure()
                a, b = (Instance(ns, net.dev(ns), port) for ns, port in zip(
                    (net.a, net.b), net.ports, strict=True))  # fmt: skip
                side = Side(net.cache, net.dev(net.cache), CACHE_MAC, a, b, CACHE_IP)
            added = in_ns(side.node, "ip", "-6", "addr", "add", f"{NODE6}/64",
                          "dev", side.node_dev, "nodad")  # fmt: skip
            assert added.returncode == 0, added.stderr
            for instance in (side.good, side.spoofer):
                if addresses:
                    use_eui64_address(instance)
            return side

        yield make


@pytest.mark.parametrize("anti_spoofing", [True, False])
def test_only_the_eui64_address_reaches_the_cache_node(make_side, anti_spoofing):
    side = make_side(anti_spoofing)
    assert side.pings(side.good) and side.pings(side.spoofer)
    assert side.node_neighbour_mac(side.good.address) == side.good.port.mac

    # The spoofer moves to another address of the prefix.
    spoofer = side.spoofer
    in_ns(spoofer.ns, "ip", "-6", "addr", "del", f"{spoofer.address}/64", "dev", spoofer.dev)
    in_ns(spoofer.ns, "ip", "-6", "addr", "add", f"{SPOOFED6}/64", "dev", spoofer.dev, "nodad")
    assert side.pings(spoofer) is not anti_spoofing
    assert (side.node_neighbour_mac(SPOOFED6) is None) is anti_spoofing
    assert side.pings(side.good)  # the well-behaved one is unaffected


@pytest.mark.parametrize("anti_spoofing", [True, False])
def test_a_router_advertisement_from_an_instance_is_not_heard(make_side, anti_spoofing):
    side = make_side(anti_spoofing)
    side.send_icmpv6(side.spoofer, router_advertisement(ROGUE_PREFIX))
    with contextlib.suppress(WaitTimeout):  # heard within 3 s, or not at all
        wait_for(side.node_default_route, "a default route from the advertisement", 3, 0.1)
    assert (side.node_default_route() == "") is anti_spoofing
    addresses = in_ns(side.node, "ip", "-6", "addr", "show", "dev", side.node_dev).stdout
    assert ("fd00:66::" not in addresses) is anti_spoofing


@pytest.mark.parametrize("anti_spoofing", [True, False])
def test_a_neighbour_advertisement_for_another_address_is_not_heard(make_side, anti_spoofing):
    side = make_side(anti_spoofing)
    assert side.pings(side.good)  # the node holds the good instance's MAC for its address
    assert side.node_neighbour_mac(side.good.address) == side.good.port.mac
    side.send_icmpv6(
        side.spoofer, neighbour_advertisement(side.good.address, side.spoofer.port.mac)
    )
    time.sleep(0.5)
    held = side.node_neighbour_mac(side.good.address)
    assert held == (side.good.port.mac if anti_spoofing else side.spoofer.port.mac)


@pytest.mark.parametrize("anti_spoofing", [True, False])
def test_a_dhcpv6_server_reply_from_an_instance_is_not_heard(make_side, anti_spoofing):
    side = make_side(anti_spoofing)
    heard = side.udp6_sources_heard(side.spoofer, [547, 5547], dport=546)
    assert heard == ({5547} if anti_spoofing else {547, 5547})


@pytest.fixture
def router_advertisements() -> Iterator[Callable[[Side], None]]:
    """Start, in the cache node's namespace, the dnsmasq `cachenet dhcp serve` would run."""
    processes: list[subprocess.Popen[bytes]] = []
    state_dir = Path(tempfile.mkdtemp(prefix="cachenet-ra-"))
    state_dir.chmod(0o755)  # dnsmasq reads it as its own user

    def start(side: Side) -> None:
        (state_dir / "hosts").mkdir(mode=0o755)
        settings = make_settings(subnet=f"10.99.0.0/16, {PREFIX}", dhcp_interface=side.node_dev,
                                 dhcp_state_dir=str(state_dir))  # fmt: skip
        command = dnsmasq_command(settings.dhcp, settings.network, "dnsmasq")
        argv = ["ip", "netns", "exec", side.node, *command]
        log = open(state_dir / "dnsmasq.log", "w")  # noqa: SIM115 - closed with the process
        processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
    shutil.rmtree(state_dir, ignore_errors=True)


def test_an_instance_gets_its_address_by_slaac_through_port_security(
    make_side, router_advertisements
):
    side = make_side(addresses=False)
    router_advertisements(side)
    instance = side.good
    in_ns(instance.ns, "sysctl", "-qw", f"net.ipv6.conf.{instance.dev}.accept_ra=1")
    relink(instance)  # solicits: the answer crosses the bridge, so do DAD and the solicitation
    wait_for(
        lambda: str(instance.address) in without_tentative(instance),
        lambda: f"{instance.address} by SLAAC: {without_tentative(instance)}", 20, 0.2,
    )  # fmt: skip
    assert in_ns(instance.ns, "ip", "-6", "route", "show", "default").stdout.strip() == ""
    assert side.pings(instance)


LISTEN_DHCP = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.bind(("0.0.0.0", 67))
s.settimeout(4)
print("ready", flush=True)
try:
    print(s.recvfrom(1500)[1][0], flush=True)
except TimeoutError:
    pass
"""


def node_hears_dhcp_discover(side: Side, instance: Instance) -> bool:
    """Whether a DHCP DISCOVER (from 0.0.0.0, broadcast) of the instance reaches the node."""
    listener = subprocess.Popen(["ip", "netns", "exec", side.node, sys.executable, "-c",
                                 LISTEN_DHCP], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        in_ns(instance.ns, "busybox", "udhcpc", "-i", instance.dev, "-n", "-q", "-t", "2",
              "-T", "1", "-s", "/bin/true")  # fmt: skip
        out, _ = listener.communicate(timeout=10)
    finally:
        listener.kill()
        listener.wait()
    return out.strip() == "0.0.0.0"


def node_ipv4_neighbour_of(side: Side, instance: Instance) -> bool:
    """Whether the node learnt the instance's MAC for an IPv4 address (ARP got through)."""
    shown = in_ns(side.node, "ip", "-4", "neigh", "show", "dev", side.node_dev).stdout
    return instance.port.mac in shown.lower()


@pytest.mark.parametrize("anti_spoofing", [True, False])
def test_an_ipv6_only_port_reaches_the_node_from_its_eui64_address_and_no_ipv4(
    make_side, anti_spoofing
):
    side = make_side(anti_spoofing, ipv6_only=True)
    assert side.good.port.address is None
    assert side.pings(side.good) and side.pings(side.spoofer)
    # IPv4 from the address the namespace holds anyway, and the ARP before it: dropped.
    ipv4 = ["busybox", "ping", "-c3", "-i0.2", "-W1", side.node_ipv4]
    assert (in_ns(side.good.ns, *ipv4).returncode == 0) is not anti_spoofing
    assert node_ipv4_neighbour_of(side, side.good) is not anti_spoofing
    assert node_hears_dhcp_discover(side, side.good) is not anti_spoofing
    # Another IPv6 source of the prefix: dropped too.
    spoofer = side.spoofer
    in_ns(spoofer.ns, "ip", "-6", "addr", "del", f"{spoofer.address}/64", "dev", spoofer.dev)
    in_ns(spoofer.ns, "ip", "-6", "addr", "add", f"{SPOOFED6}/64", "dev", spoofer.dev, "nodad")
    assert side.pings(spoofer) is not anti_spoofing
    assert side.pings(side.good)
