"""Port security on a Linux bridge (the nftables table) against the real kernel.

Each test builds, in namespaces of its own: a host namespace with the cache
bridge, a cache node namespace behind the uplink (10.77.0.1), and "instance"
namespaces whose veth peers are the bridge's instance ports (``cache-...``),
each with the MAC and address the store would have given it. The instances
then behave, or misbehave, and the cache node is checked.
"""

import contextlib
import ipaddress
import subprocess
import sys
import uuid

import pytest
from pyroute2 import NetNS

from cachenet.bridge.linuxbridge import LinuxBridge
from cachenet.port import Port
from cachenet.settings import make_settings
from harness import netns

pytestmark = pytest.mark.root

NODE = "10.77.0.1"
NODE_MAC = "02:00:00:77:00:01"

SEND_ARP = r"""
import socket, struct, sys
dev, mac, sender_ip, target_ip = sys.argv[1:5]
hw = bytes.fromhex(mac.replace(":", ""))
arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + hw + socket.inet_aton(sender_ip)
arp += b"\xff" * 6 + socket.inet_aton(target_ip)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
for _ in range(3):
    s.send(b"\xff" * 6 + hw + b"\x08\x06" + arp)
"""

SEND_UDP = r"""
import socket, sys
source, sport, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((source, sport))
for _ in range(3):
    s.sendto(b"offer", (target, 68))
"""

LISTEN_UDP_68 = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 68))
s.settimeout(2)
print("ready", flush=True)
got = []
try:
    while True:
        got.append(s.recvfrom(100)[1][1])
except socket.timeout:
    pass
print(" ".join(map(str, got)))
"""


class Lab:
    """Host, cache node and instance namespaces around one cache bridge."""

    def __init__(self, prefix, stack, **settings):
        self.prefix = prefix
        self.stack = stack
        self.host = stack.enter_context(netns.namespace(f"{prefix}-host"))
        self.node = stack.enter_context(netns.namespace(f"{prefix}-node"))
        add_veth_to_eth0(f"{prefix}up", self.host, self.node)
        set_mac(self.node, "eth0", NODE_MAC)
        netns.add_address("eth0", NODE, 24, ns=self.node)
        subnet = settings.pop("subnet", "10.77.0.0/24")  # a dual-stack pool too
        self.settings = make_settings(bridge=f"{prefix}br", uplink=f"{prefix}up",
                                      subnet=subnet, **settings)  # fmt: skip
        self.bridge = LinuxBridge(self.settings.bridge, self.settings.network, netns=self.host)
        self.bridge.ensure()
        self.count = 0

    def instance(self, secured=True):
        """A namespace plugged into the bridge as an instance would be; its Port."""
        self.count += 1
        n = self.count
        port = Port(str(uuid.uuid4()), f"fa:17:3e:00:00:{n:02x}",
                    ipaddress.IPv4Address(f"10.77.0.{10 + n}"), f"cache-{self.prefix}{n:03x}",
                    "host")  # fmt: skip
        ns = self.stack.enter_context(netns.namespace(f"{self.prefix}-vm{n}"))
        add_veth_to_eth0(port.device, self.host, ns)
        set_mac(ns, "eth0", port.mac)
        netns.add_address("eth0", str(port.address), 24, ns=ns)
        with NetNS(self.host) as ipr:
            bridge = ipr.link_lookup(ifname=self.settings.bridge.name)[0]
            ipr.link("set", index=ipr.link_lookup(ifname=port.device)[0], master=bridge)
        return ns, port


def add_veth_to_eth0(name, ns, peer_ns):
    """A veth pair: ``name`` in ``ns``, its peer ``eth0`` in ``peer_ns``."""
    peer = f"{name[:11]}peer"
    netns.add_veth(name, peer, ns=ns, peer_ns=peer_ns)
    with NetNS(peer_ns) as ipr:
        index = ipr.link_lookup(ifname=peer)[0]
        ipr.link("set", index=index, state="down")
        ipr.link("set", index=index, ifname="eth0")
        ipr.link("set", index=index, state="up")


def set_mac(ns, dev, mac):
    with NetNS(ns) as ipr:
        index = ipr.link_lookup(ifname=dev)[0]
        ipr.link("set", index=index, state="down")
        ipr.link("set", index=index, address=mac)
        ipr.link("set", index=index, state="up")


def in_ns(ns, *command, **kwargs):
    return subprocess.run(["ip", "netns", "exec", ns, *command], capture_output=True,
                          text=True, check=False, **kwargs)  # fmt: skip


def reaches(ns, address):
    # busybox: iputils ping is not installed everywhere (the test guest uses it too).
    # One reply within 3 s (a ping a second): ARP resolution retries once a second.
    return in_ns(ns, "busybox", "ping", "-c", "1", "-w", "3", address).returncode == 0


def neighbour_mac(ns, address):
    """The MAC ``ns`` holds for ``address`` (None: no usable entry)."""
    with NetNS(ns) as ipr:
        for entry in ipr.get_neighbours(dst=address):
            if entry["state"] not in (0x20, 0x01):  # NUD_FAILED, NUD_INCOMPLETE
                return entry.get_attr("NDA_LLADDR")
    return None


def udp_68_senders(node, send):
    """The source ports of the datagrams to UDP port 68 the node receives while ``send()``."""
    listener = subprocess.Popen(["ip", "netns", "exec", node, sys.executable, "-c", LISTEN_UDP_68],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert listener.stdout.readline().strip() == "ready"
    send()
    out, _ = listener.communicate(timeout=10)
    return sorted({int(p) for p in out.split()})


@pytest.fixture
def lab(prefix):
    with contextlib.ExitStack() as stack:
        yield Lab(prefix, stack)


def test_a_well_behaved_instance_reaches_the_cache_node_and_no_other_instance(lab):
    good, good_port = lab.instance()
    other, other_port = lab.instance()
    changes = lab.bridge.secure_ports([good_port, other_port])
    assert changes == [f"secured {good_port.device}", f"secured {other_port.device}"]
    assert reaches(good, NODE) and reaches(other, NODE)
    assert not reaches(good, str(other_port.address))  # isolation
    assert lab.bridge.secure_ports([good_port, other_port]) == []  # nothing to change
    assert lab.bridge.status().unisolated_ports == []


def test_spoofed_address_mac_and_gratuitous_arp_neither_reach_nor_poison_the_node(lab):
    good, good_port = lab.instance()
    spoofer, spoofer_port = lab.instance()
    lab.bridge.secure_ports([good_port, spoofer_port])
    assert reaches(good, NODE) and reaches(spoofer, NODE)
    assert neighbour_mac(lab.node, str(good_port.address)) == good_port.mac

    # Gratuitous ARP claiming the well-behaved instance's address, and the node's own.
    for claimed in (str(good_port.address), NODE):
        sent = in_ns(spoofer, sys.executable, "-c", SEND_ARP, "eth0", spoofer_port.mac,
                     claimed, claimed)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
    assert neighbour_mac(lab.node, str(good_port.address)) == good_port.mac
    assert neighbour_mac(good, NODE) == NODE_MAC
    assert reaches(good, NODE)

    # Another address.
    in_ns(spoofer, "ip", "addr", "replace", "10.77.0.200/24", "dev", "eth0")
    in_ns(spoofer, "ip", "addr", "del", f"{spoofer_port.address}/24", "dev", "eth0")
    assert not reaches(spoofer, NODE)
    assert neighbour_mac(lab.node, "10.77.0.200") is None

    # Its own address, another MAC.
    in_ns(spoofer, "ip", "addr", "replace", f"{spoofer_port.address}/24", "dev", "eth0")
    set_mac(spoofer, "eth0", "fa:17:3e:00:00:99")
    in_ns(spoofer, "ip", "addr", "replace", f"{spoofer_port.address}/24", "dev", "eth0")
    assert not reaches(spoofer, NODE)
    assert neighbour_mac(lab.node, str(spoofer_port.address)) != "fa:17:3e:00:00:99"
    assert reaches(good, NODE)  # the well-behaved one is unaffected


def test_an_instance_answering_dhcp_reaches_nobody(lab):
    rogue, rogue_port = lab.instance()
    lab.bridge.secure_ports([rogue_port])
    address = str(rogue_port.address)

    def send():
        for sport in (67, 5067):  # a DHCP server's reply, and a control from another port
            for target in ("255.255.255.255", NODE):
                sent = in_ns(rogue, sys.executable, "-c", SEND_UDP, address, str(sport), target)
                assert sent.returncode == 0, sent.stderr

    assert udp_68_senders(lab.node, send) == [5067]


def test_a_device_plugged_before_its_rules_forwards_nothing_until_secured(lab):
    early, early_port = lab.instance()  # bridge ensure made the table: default deny
    assert not reaches(early, NODE)
    assert lab.bridge.secure_ports([early_port]) == [f"secured {early_port.device}"]
    assert reaches(early, NODE)
    assert lab.bridge.secure_ports([]) == [f"removed the rules of {early_port.device}"]
    assert not reaches(early, NODE)


def test_rules_of_a_port_exist_before_its_device(lab):
    port = Port(str(uuid.uuid4()), "fa:17:3e:00:00:42", ipaddress.IPv4Address("10.77.0.42"),
                f"cache-{lab.prefix}fff", "host")  # fmt: skip
    assert lab.bridge.secure_ports([port]) == [f"secured {port.device}"]
    ns = lab.stack.enter_context(netns.namespace(f"{lab.prefix}-late"))
    add_veth_to_eth0(port.device, lab.host, ns)
    set_mac(ns, "eth0", port.mac)
    netns.add_address("eth0", str(port.address), 24, ns=ns)
    with NetNS(lab.host) as ipr:
        bridge = ipr.link_lookup(ifname=lab.settings.bridge.name)[0]
        ipr.link("set", index=ipr.link_lookup(ifname=port.device)[0], master=bridge)
    assert reaches(ns, NODE)


def test_a_deleted_table_is_restored_by_the_next_secure_ports(lab):
    good, good_port = lab.instance()
    spoofer, spoofer_port = lab.instance()
    lab.bridge.secure_ports([good_port, spoofer_port])
    assert in_ns(lab.host, "nft", "delete", "table", "bridge", "cachenet").returncode == 0
    assert lab.bridge.status().unisolated_ports == sorted([good_port.device, spoofer_port.device])
    assert lab.bridge.secure_ports([good_port, spoofer_port]) == [
        "created nftables table bridge cachenet (2 instance ports)"
    ]
    assert not reaches(good, str(spoofer_port.address))
    in_ns(spoofer, "ip", "addr", "replace", "10.77.0.201/24", "dev", "eth0")
    in_ns(spoofer, "ip", "addr", "del", f"{spoofer_port.address}/24", "dev", "eth0")
    assert not reaches(spoofer, NODE)
    assert reaches(good, NODE)


def test_a_flushed_chain_is_rewritten_and_the_ports_kept(lab):
    good, good_port = lab.instance()
    lab.bridge.secure_ports([good_port])
    flushed = in_ns(lab.host, "nft", "flush", "chain", "bridge", "cachenet", "from_instance")
    assert flushed.returncode == 0, flushed.stderr
    assert lab.bridge.ensure() == ["restored nftables table bridge cachenet (1 instance ports)"]
    assert reaches(good, NODE)
    assert lab.bridge.ensure() == []


def test_without_isolation_instances_reach_each_other_but_still_cannot_spoof(prefix):
    with contextlib.ExitStack() as stack:
        lab = Lab(prefix, stack, isolate_ports=False)
        one, one_port = lab.instance()
        two, two_port = lab.instance()
        lab.bridge.secure_ports([one_port, two_port])
        assert reaches(one, str(two_port.address))
        assert lab.bridge.status().unisolated_ports == sorted([one_port.device, two_port.device])
        in_ns(two, "ip", "addr", "replace", "10.77.0.202/24", "dev", "eth0")
        in_ns(two, "ip", "addr", "del", f"{two_port.address}/24", "dev", "eth0")
        assert not reaches(two, NODE)


def test_with_both_protections_off_the_table_goes(prefix):
    with contextlib.ExitStack() as stack:
        lab = Lab(prefix, stack)
        vm, port = lab.instance()
        lab.bridge.secure_ports([port])
        lab.bridge.settings = make_settings(
            bridge=lab.settings.bridge.name, isolate_ports=False, anti_spoofing=False
        ).bridge
        assert lab.bridge.secure_ports([port]) == [
            "removed nftables table bridge cachenet: isolate_ports and anti_spoofing are off"
        ]
        assert in_ns(lab.host, "nft", "list", "tables").stdout == ""
        in_ns(vm, "ip", "addr", "replace", "10.77.0.203/24", "dev", "eth0")
        assert reaches(vm, NODE)
