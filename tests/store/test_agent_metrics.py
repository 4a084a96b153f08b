"""/metrics of a real `cachenet agent` following the real libvirtd: domains defined before
and while it runs get their port, an undefined one's port is released, and the figures
move with them. The agent runs in a network namespace of the test's: its port security
rules (nftables) and its metrics listener stay there."""

import contextlib
import json
import signal
import time
import uuid

import libvirt
import pytest

from harness import netns
from harness.cli import run_cachenet, start_cachenet
from harness.metrics import scrape_until

pytestmark = pytest.mark.root

LISTEN = "127.0.0.1:9464"  # on the namespace's own loopback
SUBNET = "10.99.0.0/16"  # the default
DOMAIN_XML = (
    "<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid><memory unit='MiB'>64</memory>"
    "<os><type arch='x86_64'>hvm</type></os><devices></devices></domain>"
)


@pytest.fixture
def lab(tmp_path, libvirtd):
    """A namespace for the agent, a config selecting this test's domains, and a
    libvirt connection whose domains of this test are undefined afterwards."""
    prefix = netns.unique_prefix()
    conf = tmp_path / "cachenet.conf"
    conf.write_text(
        f"[cachenet]\ndatabase = sqlite:///{tmp_path}/ports.sqlite\nhost = compute-1\n"
        f"libvirt_uri = {libvirtd}\nagent_selector = name:{prefix}-*\n"
        f"agent_reconcile_interval = 1\nmetrics_listen = {LISTEN}\n"
    )
    conn = libvirt.open(libvirtd)
    with netns.namespace(f"{prefix}-agent") as ns:
        try:
            yield prefix, conf, conn, ns
        finally:
            for domain in conn.listAllDomains():
                if domain.name().startswith(prefix):
                    with contextlib.suppress(libvirt.libvirtError):
                        domain.undefine()
            conn.close()


def define(conn, name):
    return conn.defineXML(DOMAIN_XML.format(name=name, uuid=uuid.uuid4()))


def pool_allocated(scraped):
    return scraped["cachenet_pool_allocated_addresses", {"subnet": SUBNET}]


def test_agent_metrics_follow_its_domains(lab, tmp_path):
    prefix, conf, conn, ns = lab
    before = define(conn, f"{prefix}-before")
    log = open(tmp_path / "agent.log", "w")  # noqa: SIM115 - closed with the process
    agent = start_cachenet(conf, "agent", ns=ns, log=log)
    try:
        first = scrape_until(
            LISTEN, lambda s: s["cachenet_agent_reconciliations_total", {"result": "success"}] >= 1,
            "a reconciliation", ns, timeout=30,
        )  # fmt: skip
        changes = "cachenet_agent_reconcile_changes_total"
        assert first[changes, {"change": "interface_added"}] == 1  # the domain defined before
        assert first[changes, {"change": "port_security"}] >= 1  # its rules, in the namespace
        assert first["cachenet_port_allocations_total"] == 1
        assert pool_allocated(first) == 1
        assert time.time() - first["cachenet_agent_last_reconcile_timestamp_seconds"] < 5
        assert "cachenet_dhcp_last_sync_timestamp_seconds" not in first.text  # not dhcp's

        define(conn, f"{prefix}-during")  # the DEFINED event: attached at once
        defined = scrape_until(LISTEN, lambda s: s["cachenet_port_allocations_total"] == 2,
                               "the second allocation", ns)  # fmt: skip
        assert pool_allocated(defined) == 2
        assert defined["cachenet_port_allocation_duration_seconds_count"] >= 2

        before.undefine()  # the UNDEFINED event: its port released
        released = scrape_until(LISTEN, lambda s: s["cachenet_port_releases_total"] == 1,
                                "the release", ns)  # fmt: skip
        assert pool_allocated(released) == 1
        assert released["cachenet_store_up"] == 1

        # Another host's allocation: the pool's figures are the store's, not this agent's.
        # Another host has its own configuration (so this agent does not answer for it).
        other_conf = tmp_path / "other-host.conf"
        other_conf.write_text(conf.read_text().replace("host = compute-1", "host = compute-2"))
        other = run_cachenet(other_conf, "ports", "allocate", str(uuid.uuid4()), "--json")
        assert other.returncode == 0, other.stderr
        assert json.loads(other.stdout)["address"]
        moved = scrape_until(LISTEN, lambda s: pool_allocated(s) == 2, "the other port", ns)
        assert moved["cachenet_port_allocations_total"] == 2
        assert agent.poll() is None
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=15)
        log.close()
    text = (tmp_path / "agent.log").read_text()
    assert "Traceback" not in text
    assert "agent starting: " in text and f"metrics_listen={LISTEN}" in text
