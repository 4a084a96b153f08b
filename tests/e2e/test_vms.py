"""End to end: VMs get their reserved cache address by DHCP and reach the cache node."""

import json

import libvirt
import pytest

from harness import databases
from harness.lab import lease_of, outcome
from harness.wait import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]
BRIDGE_TYPES = ["linuxbridge", "ovs"]


def port_of(lab, domain):
    return json.loads(lab.cachenet("ports", "show", domain.UUIDString(), "--json", check=True))


def inactive_xml(domain):
    return domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


@pytest.mark.parametrize("bridge_type", BRIDGE_TYPES)
def test_attach_before_start_gets_the_reserved_address(make_lab, bridge_type):
    lab = make_lab(bridge_type)
    domain = lab.define("vm1")
    assert "attached" in lab.cachenet("attach", domain.name(), check=True)
    assert lab.cachenet("attach", domain.name(), check=True).startswith("nothing to do")
    port = port_of(lab, domain)
    if bridge_type == "ovs":  # on OVS the agent gives a started domain's port its flows
        lab.start_agent()
    domain.create()
    report = lab.wait_done(domain.name())
    assert lease_of(report) == (port["address"], port["mac"])
    assert outcome(report, "PING") == "ok"


@pytest.mark.parametrize("bridge_type", BRIDGE_TYPES)
def test_agent_gives_new_domains_the_nic_and_releases_it_on_undefine(make_lab, bridge_type):
    lab = make_lab(bridge_type)
    lab.start_agent()
    domain = lab.define("vm2")
    wait_for(lambda: "fa:17:3e" in inactive_xml(domain), "the agent to attach", 10)
    port = port_of(lab, domain)
    domain.create()
    report = lab.wait_done(domain.name())
    assert lease_of(report) == (port["address"], port["mac"])
    assert outcome(report, "PING") == "ok"
    wait_for(lambda: not domain.isActive(), "the guest to power off", 10)
    reservation = lab.state / "dhcp" / "hosts" / f"{port['instance_uuid']}.conf"
    assert reservation.exists()
    domain.undefine()
    wait_for(lambda: not reservation.exists(), "the reservation to go", 5)
    assert json.loads(lab.cachenet("ports", "list", "--json")) == []


@pytest.mark.parametrize("bridge_type", BRIDGE_TYPES)
def test_hot_plug_into_a_running_vm(make_lab, bridge_type):
    lab = make_lab(bridge_type)
    domain = lab.define("vm3", wait="60")
    domain.create()
    wait_for(lambda: "CACHENET BOOTED" in lab.report(domain.name()), "the guest to boot", 60)
    changes = lab.cachenet("attach", domain.name(), check=True)
    assert "(persistent)" in changes and "(live)" in changes
    port = port_of(lab, domain)
    report = lab.wait_done(domain.name())
    assert any(line.startswith("CACHENET HOTPLUG eth0") for line in report)
    assert lease_of(report) == (port["address"], port["mac"])
    assert outcome(report, "PING") == "ok"


def run_pair(lab):
    """VM a stays up while VM b pings it and then spoofs another address."""
    a, b = lab.define("a", linger="30"), lab.define("b", spoof="10.77.0.200")
    for domain in (a, b):
        lab.cachenet("attach", domain.name(), check=True)
    a_address = port_of(lab, a)["address"]
    b.undefine()
    b = lab.define("b", spoof="10.77.0.200", peer=a_address)
    lab.cachenet("attach", b.name(), check=True)
    a.create()
    wait_for(lambda: lease_of(lab.report(a.name())) is not None, "a's lease", 60)
    b.create()
    return lab.report(a.name()), lab.wait_done(b.name(), 150)


def test_isolation_and_anti_spoofing_on_linux_bridge(make_lab):
    a_report, b_report = run_pair(make_lab("linuxbridge"))
    assert outcome(a_report, "PING") == "ok" and outcome(b_report, "PING") == "ok"
    assert outcome(b_report, "PEER") == "fail"  # instances do not reach each other
    assert outcome(b_report, "SPOOF") == "fail"  # nor the cache node with a forged address


def test_isolation_on_ovs_where_the_agent_protects_the_ports_as_domains_start(make_lab):
    lab = make_lab("ovs")
    log = lab.start_agent()
    a_report, b_report = run_pair(lab)
    assert outcome(a_report, "PING") == "ok" and outcome(b_report, "PING") == "ok"
    assert outcome(b_report, "PEER") == "fail"  # instances do not reach each other
    assert log.read_text().count("marked cache-") == 2  # each port protected as it appeared


def test_ovs_without_isolation_lets_instances_reach_each_other(make_lab):
    """The control for the test above."""
    lab = make_lab("ovs", isolate_ports="false")
    lab.start_agent()
    _, b_report = run_pair(lab)
    assert outcome(b_report, "PEER") == "ok"


def test_without_isolation_and_anti_spoofing_both_get_through(make_lab):
    """The control for the test above: the same guests, protections off."""
    lab = make_lab("linuxbridge", isolate_ports="false", anti_spoofing="false")
    _, b_report = run_pair(lab)
    assert outcome(b_report, "PEER") == "ok"
    assert outcome(b_report, "SPOOF") == "ok"


def test_agent_makes_up_for_a_domain_defined_while_the_store_was_down(make_lab, tmp_path):
    """A shared MariaDB store goes away while a domain is defined: the agent logs
    it, and its next reconciliation gives the domain its NIC once the store is back."""
    with databases.mariadb_behind_a_link(tmp_path) as store:
        lab = make_lab(database=store.url, agent_reconcile_interval="1")
        log = lab.start_agent()

        store.cut()
        domain = lab.define("late")
        wait_for(lambda: "cannot use the port store" in log.read_text(), "the error", 10)
        assert "fa:17:3e" not in inactive_xml(domain)

        store.restore()
        wait_for(lambda: "fa:17:3e" in inactive_xml(domain), "the NIC after the outage", 10)
        assert port_of(lab, domain)["mac"] in inactive_xml(domain)
        assert "reconciled: 1 interfaces added" in log.read_text()


def test_ports_gc_without_a_list_releases_the_ports_of_domains_libvirt_no_longer_has(make_lab):
    lab = make_lab("linuxbridge")
    kept = lab.define("kept")
    lab.cachenet("attach", kept.name(), check=True)
    gone = lab.define("gone")
    lab.cachenet("attach", gone.name(), check=True)
    gone_port = port_of(lab, gone)
    gone.undefine()  # no agent runs: its port stays until a gc
    released = json.loads(lab.cachenet("ports", "gc", "--grace", "0", "--json", check=True))
    assert [p["instance_uuid"] for p in released] == [gone_port["instance_uuid"]]
    remaining = json.loads(lab.cachenet("ports", "list", "--json", check=True))
    assert [p["instance_uuid"] for p in remaining] == [kept.UUIDString()]
