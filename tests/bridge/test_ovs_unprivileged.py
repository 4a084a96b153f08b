"""Port security on OVS as an unprivileged user (nova-compute and the agent run as one).

`bridge ensure`, run as root, adds an OVSDB listener on tcp:127.0.0.1:6640 and the
bridge's OpenFlow listener; through them a uid with no privilege secures ports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachenet.bridge.ovs import OvsBridge
from cachenet.settings import make_settings
from harness.cli import cachenet_argv, cachenet_env
from harness.loopback import free_port
from harness.ovs import ofctl, vsctl

pytestmark = pytest.mark.root

OVSDB_TCP = "tcp:127.0.0.1:6640"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
SECURE = """
import ipaddress, json, sys
from cachenet.bridge.ovs import OvsBridge
from cachenet.port import Port
from cachenet.settings import make_settings
options, listen, port = json.loads(sys.argv[1])
settings = make_settings(**options)
bridge = OvsBridge(settings.bridge, settings.network, listen)
port["address"] = ipaddress.IPv4Address(port["address"])
print(json.dumps(bridge.secure_ports([Port(**port)])))
print(json.dumps(bridge.status().unsecured_ports))
"""


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NOBODY, *argv], capture_output=True, text=True, env=cachenet_env(), check=False, cwd="/"
    )


@pytest.fixture
def options(ovsdb, prefix) -> Iterator[dict[str, object]]:
    yield {
        "bridge": f"{prefix}br", "bridge_type": "ovs", "device_prefix": f"{prefix}-",
        "datapath_type": "netdev", "ovsdb_connection": OVSDB_TCP,
    }  # fmt: skip
    vsctl("--if-exists", "del-br", f"{prefix}br")


@pytest.fixture
def readable_dir() -> Iterator[Path]:
    """A directory the unprivileged user can read (pytest's tmp_path is root's only)."""
    with tempfile.TemporaryDirectory() as name:
        os.chmod(name, 0o755)
        yield Path(name)


def ensure_as_root(options, listen):
    settings = make_settings(**options)
    OvsBridge(settings.bridge, settings.network, listen).ensure()


def test_secure_ports_without_root_through_the_local_listeners(options, prefix):
    listen = f"127.0.0.1:{free_port()}"
    ensure_as_root(options, listen)  # at boot
    assert "ptcp:6640:127.0.0.1" in vsctl("get-manager").split()
    device = f"{prefix}-aaaaaaaa"
    vsctl("add-port", f"{prefix}br", device, "--", "set", "Interface", device, "type=internal")
    ofport = vsctl("get", "Interface", device, "ofport")
    port = {
        "instance_uuid": "00000000-0000-4000-8000-000000000001", "mac": "fa:17:3e:00:00:0a",
        "address": "10.99.0.10", "device": device, "host": "h",
    }  # fmt: skip
    done = as_nobody(sys.executable, "-c", SECURE, json.dumps([options, listen, port]))
    assert done.returncode == 0, done.stderr
    changes, unsecured = (json.loads(line) for line in done.stdout.splitlines())
    assert f"secured {device}" in changes
    assert unsecured == []
    flows = ofctl("dump-flows", f"{prefix}br", "--no-stats")
    assert f"in_port={ofport},dl_src=fa:17:3e:00:00:0a,nw_src=10.99.0.10" in flows


def cachenet_as_nobody(conf_dir: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    conf = conf_dir / "cachenet.conf"
    conf.write_text("[cachenet]\n" + text)
    conf.chmod(0o644)
    return as_nobody(*cachenet_argv(conf, *args))


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_without_the_listeners_an_unprivileged_user_gets_one_clear_line(
    options, prefix, readable_dir
):
    listen = f"127.0.0.1:{free_port()}"
    ensure_as_root(options, listen)
    common = f"bridge_type = ovs\nbridge = {prefix}br\ndatapath_type = netdev\n"

    root_socket = cachenet_as_nobody(readable_dir, common, "bridge", "status")
    assert "may not open the Open vSwitch database socket" in one_line_error(root_socket)
    assert "ovsdb_connection = tcp:127.0.0.1:6640" in one_line_error(root_socket)

    unused = f"tcp:127.0.0.1:{free_port()}"
    no_ovsdb = cachenet_as_nobody(
        readable_dir, common + f"ovsdb_connection = {unused}\n", "bridge", "status"
    )
    assert f"cannot reach the Open vSwitch database at {unused}" in one_line_error(no_ovsdb)

    # OVSDB reachable, but not the OpenFlow listener the settings name (a free port:
    # the default one may belong to another bridge of this machine)
    nobody_listens = f"openflow_listen = 127.0.0.1:{free_port()}\n"
    no_openflow = cachenet_as_nobody(
        readable_dir,
        common + f"ovsdb_connection = {OVSDB_TCP}\n" + nobody_listens,
        "bridge",
        "status",
    )
    assert "cannot reach the OpenFlow listener" in one_line_error(no_openflow)
    assert "run `cachenet bridge ensure` as root" in one_line_error(no_openflow)
