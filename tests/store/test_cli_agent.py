"""``cachenet agent --once`` and ``cachenet attach`` against libvirt's test driver.

The test driver (``test:///<node file>``) serves the domains of an XML file
without running VMs; it cannot hot-plug (attachDeviceFlags is not supported),
so a domain needing the interface is reported as an error, but the store and
the reading of every domain's XML are real.
"""

import json
import signal
import uuid

import pytest

from harness.cli import run_cachenet as run
from harness.cli import start_cachenet
from harness.wait import wait_for

ODD_INTERFACE = (
    "<interface type='bridge'><mac address='{mac}'/><source bridge='br-cache'/>"
    "<filterref filter='clean-traffic'><parameter name='IP' value='any'/></filterref>"
    "</interface>"
)


def domain(name, devices="", description="", instance=None):
    return (
        f"<domain type='test'><name>{name}</name><uuid>{instance or uuid.uuid4()}</uuid>"
        f"<memory>1024</memory><os><type>hvm</type></os>"
        f"<description>{description}</description><devices>{devices}</devices></domain>"
    )


@pytest.fixture
def host(tmp_path):
    """A test-driver libvirt with a plain, an odd and an oversized domain.

    The odd one already has its cache interface (the store's MAC) with an
    anti-spoofing IP parameter that is not an address; the oversized one's XML
    is over cachenet's 4 MiB limit.
    """
    conf = tmp_path / "cachenet.conf"
    node = tmp_path / "node.xml"
    conf.write_text(
        f"[cachenet]\ndatabase = sqlite:///{tmp_path}/ports.sqlite\n"
        f"libvirt_uri = test://{node}\nhost = compute-1\n"
    )
    odd_uuid = str(uuid.uuid4())
    odd_port = json.loads(run(conf, "ports", "allocate", odd_uuid, "--json").stdout)
    odd = domain("odd", ODD_INTERFACE.format(mac=odd_port["mac"]), instance=odd_uuid)
    domains = [domain("plain"), odd, domain("huge", description="x" * (5 * 1024 * 1024))]
    node.write_text("<node>" + "".join(domains) + "</node>")
    return conf


def test_agent_once_skips_an_unusable_domain_and_reconciles_the_others(host):
    result = run(host, "agent", "--once")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert any("domain huge: domain XML is larger than 4 MiB" in line for line in errors), errors
    # The test driver cannot hot-plug: the plain domain got its port, then the
    # attach was refused; the odd one already had its interface.
    assert any("attaching the cache interface to plain: " in line for line in errors), errors
    assert not any(" odd" in line for line in errors), errors
    ports = json.loads(run(host, "ports", "list", "--json").stdout)
    assert len(ports) == 2  # plain and odd; huge got none


def test_attach_handles_an_odd_domain_and_refuses_an_unusable_one_in_one_line(host):
    odd = run(host, "attach", "odd")
    assert (odd.returncode, odd.stdout, odd.stderr) == (0, "nothing to do: already attached\n", "")
    huge = run(host, "attach", "huge")
    assert huge.returncode == 2 and huge.stdout == ""
    assert huge.stderr == (
        "cachenet: error: domain huge: domain XML is larger than 4 MiB, libvirt's own limit\n"
    )


def test_the_agent_daemon_keeps_running_past_an_unusable_domain(host, tmp_path):
    log_path = tmp_path / "agent.log"
    with open(log_path, "w") as log:
        agent = start_cachenet(host, "agent", log=log)
    try:
        wait_for(lambda: "reconciled" in log_path.read_text() or agent.poll() is not None,
                 lambda: f"a reconciliation: {log_path.read_text()}", 20, interval=0.1)  # fmt: skip
        assert agent.poll() is None, log_path.read_text()  # still running
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)
    text = log_path.read_text()
    assert "Traceback" not in text
    assert "ERROR domain huge: domain XML is larger than 4 MiB" in text
