"""The README's first command, past its install step: the demonstration itself."""

import subprocess
import sys

import libvirt
import pytest

from cachenet.demo import netns

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_demo_boots_two_vms_that_get_their_addresses_and_cleans_up(libvirtd):
    result = subprocess.run(
        [sys.executable, "-m", "cachenet.demo"], capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "both VMs got their reserved address and reached the cache node" in result.stdout
    table = [line for line in result.stdout.splitlines() if "-vm" in line and "│" in line]
    assert len(table) == 2 and all("yes" in line for line in table)
    assert not [name for name in netns.links() if name.startswith("cndemo")]
    conn = libvirt.open(libvirtd)
    assert not [d for d in conn.listAllDomains() if d.name().startswith("cndemo")]
