"""``cachenet ports`` on a dual-stack pool: each port's IPv6 addresses beside its IPv4 one."""

import ipaddress
import json

from cachenet.ipv6 import eui64_address
from harness.cli import run_cachenet

UUID = "2a9f4c4e-5a0e-4d47-9c39-8e6a4d1f0b7a"
PREFIXES = ("fd00:99::/64", "2001:db8:99::/64")


def _conf(tmp_path, subnet):
    conf = tmp_path / "cachenet.conf"
    conf.write_text(f"[cachenet]\ndatabase = sqlite:///{tmp_path}/ports.db\nsubnet = {subnet}\n")
    return conf


def _json(conf, *args):
    done = run_cachenet(conf, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_dual_stack_port_shows_its_eui64_address_in_each_prefix(tmp_path):
    conf = _conf(tmp_path, ", ".join(("10.99.0.0/24", *PREFIXES)))
    allocated = _json(conf, "ports", "allocate", UUID)
    expected = [str(eui64_address(ipaddress.IPv6Network(p), allocated["mac"])) for p in PREFIXES]
    assert allocated["ipv6_addresses"] == expected
    assert _json(conf, "ports", "show", UUID)["ipv6_addresses"] == expected
    assert [p["ipv6_addresses"] for p in _json(conf, "ports", "list")] == [expected]
    table = run_cachenet(conf, "ports", "list")
    assert expected[0] in table.stdout and expected[1] in table.stdout


def test_an_ipv4_only_pool_shows_what_it_showed(tmp_path):
    conf = _conf(tmp_path, "10.99.0.0/24")
    shown = _json(conf, "ports", "allocate", UUID)
    assert list(shown) == ["instance_uuid", "mac", "address", "device", "host", "created_at"]


def test_an_ipv6_only_port_has_a_null_address_and_its_eui64_addresses(tmp_path):
    conf = _conf(tmp_path, ", ".join(PREFIXES))
    allocated = _json(conf, "ports", "allocate", UUID)
    expected = [str(eui64_address(ipaddress.IPv6Network(p), allocated["mac"])) for p in PREFIXES]
    assert (allocated["address"], allocated["ipv6_addresses"]) == (None, expected)
    assert _json(conf, "ports", "show", UUID) == allocated
    assert _json(conf, "ports", "list") == [allocated]
    table = run_cachenet(conf, "ports", "show", UUID).stdout
    [address_row] = [line for line in table.splitlines() if " address " in line]
    assert address_row.split("│")[2].strip() == "-", table
    listed = run_cachenet(conf, "ports", "list").stdout
    assert expected[0] in listed and allocated["mac"] in listed
    pool = _json(conf, "pool", "show")
    assert [row["subnet"] for row in pool["subnets"]] == list(PREFIXES)
    assert pool["total"] == {"size": 1 << 24, "used": 1, "free": (1 << 24) - 1}
    assert _json(conf, "ports", "release", UUID) == allocated
    assert _json(conf, "ports", "list") == []
