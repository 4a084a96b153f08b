"""`cachenet attach` and `ports allocate` are answered by a running agent of the
same configuration, and done by the CLI itself otherwise, with the same result.

The agent, and every `attach` run by the CLI alone, run in a network namespace
of the test's own (port security writes that namespace's nftables, not the
host's), against libvirt's test driver (a domain XML file, no VMs; it cannot
hot-plug, so an attach that needs the interface is refused, by the agent as
by the CLI).
"""

import contextlib
import json
import os
import signal
import stat
import uuid

import pytest

from cachenet.agent.handoff import socket_path
from harness import netns
from harness.cli import run_cachenet as run
from harness.cli import running_cachenet

INTERFACE = "<interface type='bridge'><mac address='{mac}'/><source bridge='br-cache'/></interface>"


def domain(name, devices="", instance=None):
    return (
        f"<domain type='test'><name>{name}</name><uuid>{instance or uuid.uuid4()}</uuid>"
        f"<memory>1024</memory><os><type>hvm</type></os><devices>{devices}</devices></domain>"
    )


def write_conf(path, tmp_path, node, comment=""):
    path.write_text(
        f"[cachenet]\n{comment}database = sqlite:///{tmp_path}/ports.sqlite\n"
        f"libvirt_uri = test://{node}\nhost = compute-1\nagent_selector = name:none-*\n"
    )
    return path


@pytest.fixture
def host(tmp_path):
    """A config, a test-driver libvirt with a domain that has its interface and one
    that lacks it, and an agent of that config in a namespace; yields (config,
    agent log, agent, namespace)."""
    node = tmp_path / "node.xml"
    conf = write_conf(tmp_path / "cachenet.conf", tmp_path, node)
    attached = str(uuid.uuid4())
    port = json.loads(run(conf, "ports", "allocate", attached, "--json").stdout)
    devices = INTERFACE.format(mac=port["mac"])
    node.write_text(f"<node>{domain('attached', devices, attached)}{domain('bare')}</node>")
    log = tmp_path / "agent.log"
    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(netns.namespace(netns.unique_prefix() + "-agent"))
        agent = stack.enter_context(
            running_cachenet(conf, "agent", ns=ns, log=log, ready="serving cachenet attach")
        )
        yield conf, log, agent, ns


def stop(agent):
    if agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=15)


def answered(log, command):
    return [
        line for line in log.read_text().splitlines() if f"answering cachenet {command}" in line
    ]


def test_the_agent_allocates_for_the_cli_what_the_cli_would(host, tmp_path):
    conf, log, _, _ = host
    instance = str(uuid.uuid4())
    by_agent = run(conf, "ports", "allocate", instance, "--json")
    assert (by_agent.returncode, by_agent.stderr) == (0, "")
    assert instance in answered(log, "allocate")[-1]
    # Another configuration (the same options, another file) is not the agent's.
    alone = write_conf(tmp_path / "other.conf", tmp_path, tmp_path / "node.xml", "# other\n")
    by_cli = run(alone, "ports", "allocate", instance, "--json")
    assert len(answered(log, "allocate")) == 1
    assert json.loads(by_agent.stdout) == json.loads(by_cli.stdout)
    shown = run(conf, "ports", "show", instance)
    assert run(conf, "ports", "allocate", instance).stdout == shown.stdout  # the table too


def test_the_agents_refusals_are_the_clis_one_line_errors(host, tmp_path):
    conf, log, _, ns = host
    alone = write_conf(tmp_path / "other.conf", tmp_path, tmp_path / "node.xml", "# other\n")
    for args in (["ports", "allocate", "not-a-uuid"], ["attach", "nosuch"], ["attach", "bare"]):
        by_agent, by_cli = run(conf, *args, ns=ns), run(alone, *args, ns=ns)
        assert by_agent.returncode == by_cli.returncode == 2
        assert by_agent.stderr == by_cli.stderr
        assert by_agent.stderr.startswith("cachenet: error: ") and by_agent.stderr.count("\n") == 1
    assert len(answered(log, "attach")) == 2
    done = run(conf, "attach", "attached", ns=ns)
    assert (done.returncode, done.stdout) == (0, "nothing to do: already attached\n")


def test_only_root_and_the_agents_user_may_reach_it_and_it_goes_with_the_agent(host):
    conf, log, agent, _ = host
    path = socket_path([str(conf)])
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert path.stat().st_uid == os.geteuid() == 0
    assert not stat.S_IMODE(path.parent.stat().st_mode) & 0o022
    conf.write_text(conf.read_text() + "# edited\n")  # the agent runs the old contents
    assert run(conf, "ports", "allocate", str(uuid.uuid4())).returncode == 0
    assert answered(log, "allocate") == []
    stop(agent)
    assert not path.exists()
