"""The bridge types: one registry, matching the bridge_type option; the domain XML of
every type built without the libraries the backends drive."""

import errno
import subprocess
import sys

import pytest
from ovsdbapp.exceptions import TimeoutException
from pyroute2.netlink.exceptions import NetlinkError

from cachenet.bridge import BRIDGE_TYPES, backend_class
from cachenet.bridge.base import translated
from cachenet.errors import BridgeError, PrivilegeError
from cachenet.settings import ALL_OPTS


def test_every_bridge_type_the_option_accepts_is_registered_under_its_own_name():
    [option] = [opt for opt in ALL_OPTS if opt.dest == "bridge_type"]
    assert set(BRIDGE_TYPES) == set(option.type.choices)
    for name in BRIDGE_TYPES:
        assert backend_class(name).bridge_type == name


def test_the_interface_xml_of_every_type_loads_neither_pyroute2_nor_ovsdbapp():
    script = (
        "import ipaddress, sys\n"
        "from cachenet import domxml\n"
        "from cachenet.port import Port\n"
        "from cachenet.settings import make_settings\n"
        "port = Port('2a9f4c4e-5a0e-4d47-9c39-8e6a4d1f0b7a', 'fa:17:3e:00:00:07',\n"
        "            ipaddress.IPv4Address('10.99.0.7'), 'cache-2a9f4c4e5', 'h1')\n"
        f"for kind in {sorted(BRIDGE_TYPES)!r}:\n"
        "    settings = make_settings(bridge_type=kind)\n"
        "    domxml.interface_xml(port, settings.bridge, settings.network)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyroute2', 'ovsdbapp')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("raised", "expected", "message"),
    [
        (NetlinkError(errno.EEXIST, "File exists"), BridgeError, "br0 failed: File exists$"),
        (NetlinkError(errno.EPERM, "Operation not permitted"), PrivilegeError, "kernel refused"),
        (TimeoutException(commands=[], timeout=10, cause="x"), BridgeError, "br0 failed: .*x"),
        (RuntimeError("OVSDB Error: x"), BridgeError, "br0 failed: OVSDB Error: x$"),
        (KeyError("x"), KeyError, "x"),  # not a library's error: a bug, left as it is
    ],
)
def test_library_errors_leave_a_backend_as_cachenet_errors(raised, expected, message):
    with pytest.raises(expected, match=message), translated("reading bridge br0"):
        raise raised
