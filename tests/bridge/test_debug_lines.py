"""`cachenet --debug bridge ensure|teardown` logs each change it makes to the host: netlink
link changes and the nftables script (Linux bridge, in a namespace), OVSDB commands and
OpenFlow bundles (Open vSwitch)."""

import pytest

from harness.cli import run_cachenet
from harness.loopback import free_port
from harness.ovs import vsctl

pytestmark = pytest.mark.root


def debug_lines(result):
    assert result.returncode == 0, result.stderr
    return [line.split(" DEBUG ", 1)[1] for line in result.stderr.splitlines() if " DEBUG " in line]


def test_linux_bridge_changes_are_logged(ns, prefix, tmp_path):
    conf = tmp_path / "cachenet.conf"
    conf.write_text(f"[cachenet]\nbridge = {prefix}br\nuplink = {prefix}up\nmtu = 9000\n")
    ensured = debug_lines(run_cachenet(conf, "--debug", "bridge", "ensure", ns=ns))
    assert f"netlink: link add ifname={prefix}br kind=bridge" in ensured
    assert any(line.startswith("netlink: link set ") and " master=" in line for line in ensured)
    assert any(line.endswith(" mtu=9000") for line in ensured)
    [nft] = [line for line in ensured if line.startswith("nftables: applying: ")]
    assert "table bridge cachenet {" in nft  # the whole table, in one transaction
    assert debug_lines(run_cachenet(conf, "--debug", "bridge", "ensure", ns=ns)) == []  # no change

    removed = debug_lines(run_cachenet(conf, "--debug", "bridge", "teardown", ns=ns))
    assert any(line.startswith("netlink: link del index=") for line in removed)
    [nft] = [line for line in removed if line.startswith("nftables: applying: ")]
    assert "delete table bridge cachenet" in nft


def test_open_vswitch_changes_are_logged(ovsdb, prefix, root_veth, tmp_path):
    conf = tmp_path / "cachenet.conf"
    conf.write_text(
        f"[cachenet]\nbridge_type = ovs\nbridge = {prefix}br\nuplink = {root_veth}\n"
        f"datapath_type = netdev\novsdb_connection = {ovsdb}\n"
        f"openflow_listen = 127.0.0.1:{free_port()}\n"
    )
    try:
        ensured = debug_lines(run_cachenet(conf, "--debug", "bridge", "ensure"))
        ovsdb_lines = [line for line in ensured if line.startswith("OVSDB: ")]
        assert any(
            "AddBridgeCommand(" in line and f"name={prefix}br" in line for line in ovsdb_lines
        )
        assert any(
            "AddPortCommand(" in line and f"port={root_veth}" in line for line in ovsdb_lines
        )
        [flows] = [line for line in ensured if line.startswith("OpenFlow: ovs-ofctl add-flows ")]
        assert "table=0,priority=0,actions=drop" in flows
        removed = debug_lines(run_cachenet(conf, "--debug", "bridge", "teardown"))
        assert f"OVSDB: deleting bridge {prefix}br" in removed
    finally:
        vsctl("--if-exists", "del-br", f"{prefix}br")
