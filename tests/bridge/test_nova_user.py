"""The Nova driver's host operations as the nova user: no root, privsep for the rest.

A dedicated user (made and removed here) runs, in a namespace of its own, what
nova-compute does on the host: the bridge check (status) and port security
(privileged entrypoints, secure_ports). Its privsep daemon is started the way
production does it: ``sudo privsep-helper`` allowed by exactly the sudoers line
the README gives operators. The test then reads the kernel as root.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cachenet import privileged
from cachenet.bridge.base import BridgeBackend
from cachenet.bridge.linuxbridge import LinuxBridge
from cachenet.settings import make_settings
from harness import netns
from harness.unprivileged import SRC, interpreter, run_as, service_user, sudoers_drop_in

pytestmark = pytest.mark.root

README = Path(__file__).parents[2] / "README.md"

# What nova-compute does, as the nova user, printed as JSON.
HOST_OPERATIONS = """
import json, sys
from oslo_config import cfg
from cachenet import privileged
from cachenet.bridge import backend_for
from cachenet.errors import CachenetError
from cachenet.port import Port
from cachenet.settings import make_settings

cfg.CONF(["--config-file", sys.argv[1]], project="nova")  # nova.conf: [cachenet_privileged]
bridge, port = sys.argv[2], sys.argv[3]
settings = make_settings(bridge=bridge, device_prefix=port[:-1], isolate_ports=True)
backend = backend_for(settings.bridge, settings.network)
out = {"exists": backend.status().exists}  # the driver's bridge check


def attempt(name, call):
    try:
        out[name] = call()
    except CachenetError as exc:
        out[name] = "error: " + str(exc)


if sys.argv[4] == "check":
    attempt("isolate", lambda: privileged.set_port_isolated(port, True))
    attempt("isolate_bridge", lambda: privileged.set_port_isolated(bridge, True))
    attempt("nft", lambda: privileged.apply_nft(
        "table bridge cachenet { set ports { type ifname; elements = { " + port + " } }; }"))
    attempt("nft_other", lambda: privileged.apply_nft("flush ruleset"))
    attempt("listed", privileged.list_nft_table)
else:  # the backend's own port security, as the driver calls it
    mine = Port("6d5b8a86-2b8f-4c8e-8a3e-1f0e8b9c0d11", "02:cc:00:00:00:01", "10.77.0.10",
                port, "host")
    attempt("secure_ports", lambda: backend.secure_ports([mine]))
print(json.dumps(out))
"""


@pytest.fixture
def nova_user():
    with service_user() as user:
        yield user


@pytest.fixture
def helper(shared_dir):
    """privsep-helper with this checkout's cachenet (installed, it is the package's own)."""
    path = shared_dir / "privsep-helper"
    venv_helper = Path(sys.executable).with_name("privsep-helper")
    path.write_text(f'#!/bin/sh\nPYTHONPATH={SRC} exec {venv_helper} "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def nova_conf(shared_dir, helper):
    path = shared_dir / "nova.conf"
    path.write_text(f"[cachenet_privileged]\nhelper_command = sudo -n {helper}\n")
    path.chmod(0o644)
    return path


@pytest.fixture
def host(prefix):
    """A namespace with a cache bridge and one instance port, as root made them."""
    with netns.namespace(f"{prefix}-ns") as ns:
        bridge, port = f"{prefix}br", f"{prefix}t0"
        settings = make_settings(bridge=bridge)
        LinuxBridge(settings.bridge, settings.network, netns=ns).ensure()
        netns.add_veth(port, f"{prefix}peer", ns=ns, peer_ns=ns)
        _ip(ns, "link", "set", port, "master", bridge)
        yield ns, bridge, port


def _ip(ns, *args):
    return subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True, text=True)


def _nft(ns, *args):
    return subprocess.run(["ip", "netns", "exec", ns, "nft", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


def as_nova(user, ns, shared_dir, nova_conf, bridge, port, mode="check"):
    script = shared_dir / "host_operations.py"
    script.write_text(HOST_OPERATIONS)
    script.chmod(0o644)
    argv = [interpreter(), str(script), str(nova_conf), bridge, port, mode]
    result = run_as(user.pw_uid, argv, gid=user.pw_gid, netns=ns, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_readme_gives_the_sudoers_line_this_test_installs():
    line = privileged.sudoers_line("nova", "/usr/local/bin/privsep-helper")
    assert line in README.read_text()


def test_bridge_check_and_port_security_work_as_the_nova_user(
    nova_user, host, shared_dir, helper, nova_conf
):
    ns, bridge, port = host
    with sudoers_drop_in(privileged.sudoers_line(nova_user.pw_name, str(helper))):
        out = as_nova(nova_user, ns, shared_dir, nova_conf, bridge, port)
    assert out["exists"] is True
    assert out["isolate"] is None
    details = _ip(ns, "-d", "link", "show", "dev", port).stdout
    assert "isolated on" in details
    # The privileged side refuses what is not a port, or not cachenet's table.
    assert out["isolate_bridge"] == f"error: cannot isolate {bridge}: not a port of a bridge"
    assert "isolated on" not in _ip(ns, "-d", "link", "show", "dev", bridge).stdout
    assert out["nft_other"].startswith("error: refused nftables rules: ")
    assert out["nft"] is None
    listed = _nft(ns, "-j", "list", "table", "bridge", "cachenet")
    assert listed.returncode == 0 and port in listed.stdout
    assert json.loads(out["listed"])["nftables"][1]["table"]["name"] == "cachenet"


def test_without_the_sudoers_line_the_nova_user_is_told_what_to_set_up(
    nova_user, host, shared_dir, helper, nova_conf
):
    ns, bridge, port = host
    out = as_nova(nova_user, ns, shared_dir, nova_conf, bridge, port)
    assert out["exists"] is True  # reading needs no privilege
    assert out["isolate"].startswith(f"error: isolating bridge port {port} needs CAP_NET_ADMIN")
    assert "Running as the nova user" in out["isolate"]
    assert "isolated on" not in _ip(ns, "-d", "link", "show", "dev", port).stdout
    # bridge ensure (root) made the table; the nova user added nothing to it.
    assert port not in _nft(ns, "list", "table", "bridge", "cachenet").stdout


@pytest.mark.skipif(
    LinuxBridge.secure_ports is BridgeBackend.secure_ports,
    reason="the Linux bridge backend does not implement secure_ports on this branch",
)
def test_secure_ports_as_the_nova_user(nova_user, host, shared_dir, helper, nova_conf):
    ns, bridge, port = host
    with sudoers_drop_in(privileged.sudoers_line(nova_user.pw_name, str(helper))):
        out = as_nova(nova_user, ns, shared_dir, nova_conf, bridge, port, mode="secure")
    assert isinstance(out["secure_ports"], list), out["secure_ports"]
    table = _nft(ns, "-j", "list", "table", "bridge", "cachenet")
    assert table.returncode == 0 and port in table.stdout
