"""The ``cachenet`` command as a user runs it: a real process, stdin to stdout."""

import json
import time
from pathlib import Path

import pytest
from lxml import etree

from harness.cli import run_cachenet

NOVA_XML = (Path(__file__).parent / "data" / "nova-domain.xml").read_text()
UUID = "2a9f4c4e-5a0e-4d47-9c39-8e6a4d1f0b7a"


def cachenet(*args, stdin=""):
    """Run ``python -m cachenet`` with no config file but the ones given in ``args``."""
    return run_cachenet(None, *args, stdin=stdin)


def test_xml_add_then_show_then_remove():
    added = cachenet("xml", "add", UUID, "--mac", "FA:17:3E:A:5:FF", "--ip", "10.99.0.9",
                     stdin=NOVA_XML)  # fmt: skip
    assert added.returncode == 0, added.stderr
    shown = cachenet("xml", "show", "--json", stdin=added.stdout)
    assert json.loads(shown.stdout) == {
        "mac": "fa:17:3e:0a:05:ff",
        "bridge": "br-cache",
        "device": "cache-2a9f4c4e5",
        "model": "virtio",
        "address": None,  # only interfaces with libvirt's clean-traffic filter carry it
    }
    removed = cachenet("xml", "remove", stdin=added.stdout)
    assert removed.returncode == 0
    assert cachenet("xml", "show", stdin=removed.stdout).returncode == 1
    assert etree.fromstring(removed.stdout.encode()).find("devices/interface[4]") is None


@pytest.mark.parametrize(
    ("stdin", "args", "message"),
    [
        ("<domain><devices>", [], "malformed domain XML"),
        ("<network/>", [], "root is <network>"),
        ("<domain/>", [], "no <devices>"),
        (NOVA_XML, ["--mac", "01:17:3e:00:00:01"], "not under the cache MAC prefix"),
        (NOVA_XML, ["--ip", "192.0.2.1"], "outside the cache subnet"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(stdin, args, message):
    options = {"--mac": "fa:17:3e:00:00:01", "--ip": "10.99.0.9"}
    options.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for kv in options.items() for x in kv]
    result = cachenet("xml", "add", UUID, *flat, stdin=stdin)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_names_every_problem(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[cachenet]\nmac_prefix = 01:00:5e\nbridge_type = ovs\nvlan = 9999\n")
    result = cachenet("--config-file", str(conf), "config", "show")
    assert result.returncode == 2
    assert "multicast" in result.stderr and "vlan 9999" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_show_json_and_sample():
    shown = json.loads(cachenet("config", "show", "--json").stdout)
    assert shown["bridge"] == "br-cache" and shown["subnet"] == "10.99.0.0/16"
    sample = cachenet("config", "sample").stdout
    assert "[cachenet]" in sample and "#mac_prefix = fa:17:3e" in sample


def test_version():
    assert cachenet("--version").stdout.startswith("cachenet, version")


def cachenet_bytes(*args, stdin=b""):
    return run_cachenet(None, *args, stdin=stdin, text=False)


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"<domain>\0<devices/></domain>", "Char 0x0"),
        (b'<?xml version="1.0" encoding="IBM037"?><domain><devices/></domain>', "EBCDIC"),
        ("<domain><devices/></domain>".encode("cp037"), "malformed domain XML"),
        (b"<domain><devices>\xff\xfe</devices></domain>", "Invalid bytes"),
        (b"<domain><devices>" + b"<a>" * 300 + b"</devices></domain>", "Excessive depth"),
    ],
    ids=["nul", "ebcdic-declared", "ebcdic", "not-utf8", "deep"],
)
def test_unusable_xml_is_one_line_for_every_xml_command(stdin, message):
    if b"IBM037" in stdin:
        stdin = stdin.decode().encode("cp037")
    for args in (["add", UUID, "--mac", "fa:17:3e:00:00:01", "--ip", "10.99.0.9"],
                 ["remove"], ["show"]):  # fmt: skip
        result = cachenet_bytes("xml", *args, stdin=stdin)
        assert result.returncode == 2 and result.stdout == b""
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr


def test_xml_over_4_mib_fails_fast_without_reading_it_all(tmp_path):
    big = b"<domain><devices>" + b"<a/>" * (5 * 1024 * 1024 // 4) + b"</devices></domain>"
    started = time.monotonic()
    result = cachenet_bytes("xml", "add", UUID, "--mac", "fa:17:3e:00:00:01", "--ip",
                            "10.99.0.9", stdin=big)  # fmt: skip
    assert time.monotonic() - started < 5
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode() == (
        "cachenet: error: domain XML is larger than 4 MiB, libvirt's own limit\n"
    )
    # From a file that never ends, too: only 4 MiB and one byte are read.
    endless = cachenet_bytes("xml", "show", "--file", "/dev/zero")
    assert endless.returncode == 2 and b"larger than 4 MiB" in endless.stderr


def test_xml_show_reports_an_ip_parameter_that_is_not_an_address():
    odd = NOVA_XML.replace(
        "</devices>",
        "<interface type='bridge'><mac address='fa:17:3e:00:00:09'/><source bridge='br-cache'/>"
        "<filterref filter='clean-traffic'><parameter name='IP' value='any'/></filterref>"
        "</interface></devices>",
    )
    shown = cachenet("xml", "show", "--json", stdin=odd)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["address"] == "any"
    assert "any" in cachenet("xml", "show", stdin=odd).stdout


def test_xml_add_on_an_ipv6_only_pool_takes_the_mac_alone(tmp_path):
    conf = tmp_path / "v6only.conf"
    conf.write_text("[cachenet]\nsubnet = fd00:99::/64\n")
    added = run_cachenet(conf, "xml", "add", UUID, "--mac", "fa:17:3e:00:00:01", stdin=NOVA_XML)
    assert added.returncode == 0, added.stderr
    shown = json.loads(run_cachenet(conf, "xml", "show", "--json", stdin=added.stdout).stdout)
    assert (shown["mac"], shown["device"]) == ("fa:17:3e:00:00:01", "cache-2a9f4c4e5")
    with_ip = run_cachenet(conf, "xml", "add", UUID, "--mac", "fa:17:3e:00:00:01", "--ip",
                           "10.99.0.9", stdin=NOVA_XML)  # fmt: skip
    assert with_ip.returncode == 2 and "IPv6-only pool" in with_ip.stderr
    assert with_ip.stdout == ""
