"""The README's first command, past its install step: the demonstration itself."""

import os
import subprocess
import sys
from pathlib import Path

import libvirt
import pytest

from harness import netns

pytestmark = [pytest.mark.root, pytest.mark.slow]
ROOT = Path(__file__).parents[2]


def test_demo_shows_addresses_isolation_and_anti_spoofing_and_cleans_up(libvirtd):
    # As scripts/demo.sh runs it (past its install step): from the repository's root.
    result = subprocess.run(
        [sys.executable, "-m", "harness.demo"], cwd=ROOT, capture_output=True, text=True,
        timeout=300, check=False, env={**os.environ, "PYTHONPATH": ":".join(sys.path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every VM got its reserved address and reached the cache node" in result.stdout
    assert "none reached another VM, and the forged address got nowhere" in result.stdout
    rows = {
        cells[0]: cells
        for line in result.stdout.splitlines()
        if "-vm" in line and "│" in line
        for cells in [[cell.strip() for cell in line.strip("│ ").split("│")]]
    }
    assert len(rows) == 3, result.stdout
    header = [
        "VM", "MAC", "reserved address", "DHCP gave", "reached cache node", "reached other VMs",
        "forged address", "lease after (s)",
    ]  # fmt: skip
    column = {name: header.index(name) for name in header}
    for name, cells in rows.items():
        assert cells[column["DHCP gave"]] == cells[column["reserved address"]], cells
        assert cells[column["reached cache node"]] == "yes", cells
        assert cells[column["reached other VMs"]] == "no (blocked)", cells
        vm1_address = next(c for n, c in rows.items() if n.endswith("-vm1"))[2]
        forged = cells[column["forged address"]]
        if name.endswith("-vm3"):
            assert forged == f"vm1's {vm1_address}: blocked", cells
        else:
            assert forged == "-", cells
    assert not [name for name in netns.links() if name.startswith("cndemo")]
    conn = libvirt.open(libvirtd)
    assert not [d for d in conn.listAllDomains() if d.name().startswith("cndemo")]
