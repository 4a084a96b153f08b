"""OVS commands print what cachenet says, not warnings of the libraries below."""

from harness.cli import run_cachenet


def test_an_ovs_command_without_ovs_prints_one_line_and_no_eventlet_warning(tmp_path):
    conf = tmp_path / "cachenet.conf"
    conf.write_text(
        f"[cachenet]\nbridge_type = ovs\novsdb_connection = unix:{tmp_path}/no-ovsdb.sock\n"
    )
    result = run_cachenet(conf, "bridge", "status")
    assert result.returncode == 2
    assert "Eventlet" not in result.stderr and "Warning" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cachenet: error: Open vSwitch"), lines
