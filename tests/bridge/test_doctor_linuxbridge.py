"""``cachenet doctor`` on a Linux bridge host, built in a network namespace of the test's
own (bridge, uplink, two plugged instance ports, the nftables table of that namespace):
each fault is made for real, doctor must name it and its fix must clear it."""

import subprocess
import uuid
from dataclasses import dataclass

import pytest
from pyroute2 import NetNS

from cachenet.port import Port
from cachenet.settings import make_settings
from cachenet.store import open_store
from harness import netns
from harness.doctor import cachenet, run_doctor, write_conf

pytestmark = pytest.mark.root


@dataclass
class Host:
    ns: str
    conf: object
    bridge: str
    uplink: str
    ports: list[Port]

    def doctor(self, *args):
        return run_doctor(self.conf, *args, ns=self.ns)

    def fix(self, command):
        """Run the fix doctor named (a `cachenet ...` command line) on this host."""
        assert command.startswith("cachenet "), command
        cachenet(self.conf, *command.split()[1:3], ns=self.ns)

    def run(self, *command):
        subprocess.run(["ip", "netns", "exec", self.ns, *command], check=True,
                       capture_output=True)  # fmt: skip


@pytest.fixture
def host(prefix, ns, tmp_path, libvirtd):
    options = dict(
        database=f"sqlite:///{tmp_path}/ports.sqlite", host="compute-1", bridge=f"{prefix}br",
        uplink=f"{prefix}up", mtu=1400, subnet="10.77.0.0/24", reserved="10.77.0.1-10.77.0.9",
        libvirt_uri=libvirtd,
    )  # fmt: skip
    conf = write_conf(tmp_path / "cachenet.conf", **options)
    cachenet(conf, "bridge", "ensure", ns=ns)
    store = open_store(make_settings(**options))
    ports = [store.allocate(str(uuid.uuid4()), "compute-1") for _ in range(2)]
    for n, port in enumerate(ports):  # plugged as libvirt would plug them
        netns.add_veth(port.device, f"{prefix}vm{n}", ns=ns, peer_ns=ns)
        with NetNS(ns) as ipr:
            bridge = ipr.link_lookup(ifname=f"{prefix}br")[0]
            ipr.link("set", index=ipr.link_lookup(ifname=port.device)[0], master=bridge, mtu=1400)
    cachenet(conf, "bridge", "secure", ns=ns)
    return Host(ns, conf, f"{prefix}br", f"{prefix}up", ports)


def test_a_healthy_host_exits_0(host):
    found = host.doctor()
    assert found.status == 0, found.not_ok()
    assert found.not_ok() == {}
    for name in ("config", "store", "schema", "bridge", "bridge-mtu", "uplink", "port-security",
                 "port-isolation", "stray-ports", "libvirt", "pool"):  # fmt: skip
        assert found.status_of(name) == "ok", (name, found.results[name])
    assert "rules of the 2 ports of compute-1 in place (2 plugged)" in found.message(
        "port-security"
    )
    assert "not a DHCP node" in found.message("dnsmasq")  # skipped, saying why


def test_an_uplink_that_is_down_is_named(host):
    host.run("ip", "link", "set", host.uplink, "down")
    found = host.doctor()
    assert found.status == 1
    assert found.not_ok() == {"uplink": "fail"}  # the bridge itself is still up
    assert f"{host.uplink} is DOWN" in found.message("uplink")
    host.fix(found.fix("uplink"))
    assert host.doctor().status_of("uplink") == "ok"


def test_an_uplink_taken_off_the_bridge_is_named(host):
    host.run("ip", "link", "set", host.uplink, "nomaster")
    found = host.doctor()
    assert found.status_of("uplink") == "fail"
    assert f"{host.uplink} is not a port of {host.bridge}" in found.message("uplink")
    host.fix(found.fix("uplink"))
    assert host.doctor().status == 0


def test_a_removed_anti_spoofing_element_names_its_port(host):
    port = host.ports[1]
    host.run("nft", "delete", "element", "bridge", "cachenet", "macs",
             f'{{ "{port.device}" . {port.mac} }}')  # fmt: skip
    found = host.doctor()
    assert found.status == 1
    assert found.not_ok() == {"port-security": "fail"}
    assert found.message("port-security") == (
        f"{port.device}: rules missing or stale in table bridge cachenet"
    )
    assert found.fix("port-security") == "cachenet bridge secure"
    host.fix(found.fix("port-security"))
    assert host.doctor().status == 0


def test_lost_isolation_names_the_ports(host):
    host.run("nft", "flush", "chain", "bridge", "cachenet", "forward")
    found = host.doctor()
    assert found.status_of("port-isolation") == "fail"
    devices = sorted(p.device for p in host.ports)
    assert found.message("port-isolation") == f"can reach other instances: {', '.join(devices)}"
    assert found.status_of("port-security") == "fail"  # the table lost a rule
    host.fix(found.fix("port-isolation"))
    assert host.doctor().status == 0


def test_a_bridge_mtu_other_than_configured_is_named(host):
    host.run("ip", "link", "set", host.bridge, "mtu", "1300")
    found = host.doctor()
    assert found.not_ok() == {"bridge-mtu": "fail"}
    assert found.message("bridge-mtu") == f"{host.bridge} has MTU 1300, not 1400"
    host.fix(found.fix("bridge-mtu"))
    assert host.doctor().status == 0


def test_an_uplink_mtu_other_than_configured_is_named(host):
    """The host's network configuration resetting the uplink: the bridge still says 1400."""
    host.run("ip", "link", "set", host.uplink, "mtu", "1300")
    found = host.doctor()
    assert found.not_ok() == {"bridge-mtu": "fail"}
    assert found.message("bridge-mtu") == (
        f"{host.uplink}, the uplink of {host.bridge}, has MTU 1300, not 1400"
    )
    host.fix(found.fix("bridge-mtu"))
    found = host.doctor()
    assert found.status == 0
    assert (
        found.message("bridge-mtu") == f"{host.bridge} has MTU 1400 as has its uplink {host.uplink}"
    )


def test_instance_ports_of_no_port_of_this_host_are_named(host):
    """One port moved to another host while its NIC stayed plugged here, one released."""
    moved, released = host.ports
    cachenet(host.conf, "ports", "move", moved.instance_uuid, "compute-2")
    cachenet(host.conf, "ports", "release", released.instance_uuid)
    found = host.doctor()
    assert found.status_of("stray-ports") == "warn"
    named = {  # by device name
        moved.device: f"{moved.device} is instance {moved.instance_uuid}'s port on host compute-2",
        released.device: f"{released.device} holds no port (released)",
    }
    assert found.message("stray-ports") == "; ".join(named[device] for device in sorted(named))
    assert "cachenet ports move INSTANCE compute-1" in found.fix("stray-ports")
    host.run("ip", "link", "del", released.device)  # the domain's NIC detached
    cachenet(host.conf, "ports", "move", moved.instance_uuid, "compute-1")  # runs here after all
    host.fix("cachenet bridge secure")  # the released port's rules go
    assert host.doctor().not_ok() == {}


def test_a_missing_bridge_is_named_and_what_depends_on_it_skipped(host):
    host.run("ip", "link", "del", host.bridge)
    found = host.doctor()
    assert found.status_of("bridge") == "fail"
    assert found.message("bridge") == f"{host.bridge} does not exist"
    for name in ("bridge-mtu", "uplink", "port-security", "port-isolation", "stray-ports"):
        assert found.status_of(name) == "skipped"
    host.fix(found.fix("bridge"))
    assert host.doctor().status == 0


def test_a_bridge_without_carrier_points_at_its_uplink(prefix, ns, tmp_path):
    """No instance port: the uplink down leaves the bridge without a carrier."""
    conf = write_conf(tmp_path / "bare.conf", database=f"sqlite:///{tmp_path}/bare.sqlite",
                      bridge=f"{prefix}br", uplink=f"{prefix}up")  # fmt: skip
    cachenet(conf, "db", "upgrade")
    cachenet(conf, "bridge", "ensure", ns=ns)
    subprocess.run(["ip", "-n", ns, "link", "set", f"{prefix}up", "down"], check=True)
    found = run_doctor(conf, "--skip", "libvirt", ns=ns)
    assert found.not_ok() == {"bridge": "fail", "uplink": "fail"}
    assert "none of its ports has a carrier" in found.message("bridge")
    assert found.fix("bridge") == "see uplink"
    cachenet(conf, "bridge", "ensure", ns=ns)
    assert run_doctor(conf, "--skip", "libvirt", ns=ns).status == 0
