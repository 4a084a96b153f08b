"""``cachenet doctor`` on an Open vSwitch host: a bridge of the test's own in the test
OVS (never restarted here), its uplink a veth, two plugged instance ports. Each fault
is made for real (a flow deleted, a port unprotected, the uplink down), doctor must
name it and its fix must clear it."""

import subprocess
import uuid
from dataclasses import dataclass

import pytest

from cachenet.port import Port
from cachenet.settings import make_settings
from cachenet.store import open_store
from harness import netns
from harness.doctor import cachenet, run_doctor, write_conf
from harness.loopback import free_port
from harness.ovs import ofctl, vsctl
from harness.wait import wait_for

pytestmark = pytest.mark.root


@dataclass
class Host:
    conf: object
    bridge: str
    uplink: str
    ports: list[Port]

    def doctor(self):
        return run_doctor(self.conf, "--skip", "libvirt")

    def fix(self, command):
        assert command.startswith("cachenet "), command
        cachenet(self.conf, *command.split()[1:3])

    def ofport(self, device):
        return int(vsctl("get", "Interface", device, "ofport"))


def wait_for_ofport(device):
    wait_for(lambda: int(vsctl("get", "Interface", device, "ofport") or -1) > 0,
             f"{device} to get an OpenFlow port number", 10)  # fmt: skip


@pytest.fixture
def host(prefix, ovsdb, root_veth, tmp_path):
    options = dict(
        database=f"sqlite:///{tmp_path}/ports.sqlite", host="compute-1", bridge=f"{prefix}br",
        bridge_type="ovs", datapath_type="netdev", ovsdb_connection=ovsdb, uplink=root_veth,
        openflow_listen=f"127.0.0.1:{free_port()}", device_prefix=f"{prefix}-",
        subnet="10.77.0.0/24", reserved="10.77.0.1-10.77.0.9", mtu=1400,
    )  # fmt: skip
    conf = write_conf(tmp_path / "cachenet.conf", **options)
    store = open_store(make_settings(**options))
    ports = [store.allocate(str(uuid.uuid4()), "compute-1") for _ in range(2)]
    try:
        cachenet(conf, "bridge", "ensure")
        for n, port in enumerate(ports):  # plugged as libvirt plugs them
            netns.add_veth(port.device, f"{prefix}p{n}")
            vsctl("add-port", f"{prefix}br", port.device)
            wait_for_ofport(port.device)
        cachenet(conf, "bridge", "secure")
        yield Host(conf, f"{prefix}br", root_veth, ports)
    finally:
        vsctl("--if-exists", "del-br", f"{prefix}br")
        for port in ports:
            netns.delete_link(port.device)


def test_a_healthy_ovs_host_exits_0(host):
    found = host.doctor()
    assert found.status == 0, {n: found.results[n] for n in found.not_ok()}
    for name in ("bridge", "bridge-mtu", "uplink", "port-security", "port-isolation"):
        assert found.status_of(name) == "ok", (name, found.results[name])
    assert found.message("bridge").startswith(f"{host.bridge} (ovs) exists")
    # OVS applies mtu_request to the uplink itself (and puts it back when changed).
    assert (
        found.message("bridge-mtu") == f"{host.bridge} has MTU 1400 as has its uplink {host.uplink}"
    )


def test_a_deleted_flow_names_its_port(host):
    port = host.ports[0]
    # The flow that drops DHCP server replies from this instance (a rogue DHCP server).
    ofport = host.ofport(port.device)
    ofctl("--strict", "del-flows", host.bridge,
          f"table=10,priority=200,in_port={ofport},udp,tp_src=67,tp_dst=68")  # fmt: skip
    found = host.doctor()
    assert found.status == 1
    assert found.not_ok() == {"port-security": "fail"}
    assert found.message("port-security") == (
        f"{port.device}: flows missing or incomplete on {host.bridge}"
    )
    host.fix(found.fix("port-security"))
    assert host.doctor().status == 0


def test_flows_all_gone_are_named(host):
    ofctl("del-flows", host.bridge)
    found = host.doctor()
    assert found.status_of("port-security") == "fail"
    assert f"the flows of {host.bridge} are gone" in found.message("port-security")
    host.fix(found.fix("port-security"))
    assert host.doctor().status == 0


def test_an_unprotected_port_is_named(host):
    port = host.ports[1]
    vsctl("set", "Port", port.device, "protected=false")
    found = host.doctor()
    assert found.not_ok() == {"port-isolation": "fail"}
    assert found.message("port-isolation") == f"can reach other instances: {port.device}"
    host.fix(found.fix("port-isolation"))
    assert host.doctor().status == 0


def test_an_uplink_that_is_down_is_named(host):
    subprocess.run(["ip", "link", "set", host.uplink, "down"], check=True)
    found = host.doctor()
    assert found.status_of("uplink") == "fail", found.results["uplink"]
    assert f"{host.uplink} is down" in found.message("uplink")
    host.fix(found.fix("uplink").split(" (")[0])
    subprocess.run(["ip", "link", "set", host.uplink, "up"], check=True)  # OVS leaves it down
    assert host.doctor().status_of("uplink") == "ok"


def test_an_instance_port_whose_port_was_released_is_named(host):
    released = host.ports[0]
    cachenet(host.conf, "ports", "release", released.instance_uuid)
    found = host.doctor()
    assert found.status_of("stray-ports") == "warn"
    assert found.message("stray-ports") == f"{released.device} holds no port (released)"
    vsctl("del-port", host.bridge, released.device)  # the domain's NIC detached
    host.fix("cachenet bridge secure")  # its flows go
    assert host.doctor().status == 0
