"""examples/guest: the snippets for images without cloud-init parse, and match the cache NIC."""

import configparser
import fnmatch
import re
from pathlib import Path

from cachenet.settings import make_settings

GUEST = Path(__file__).parents[2] / "examples" / "guest"
NAME = "cache0"
NEUTRON_MAC = "fa:16:3e:12:34:56"  # Neutron's default base_mac


def udev_rule():
    """The one rule of 70-cachenet.rules as {key: (operator, value)}."""
    lines = [line for line in (GUEST / "70-cachenet.rules").read_text().splitlines()
             if line.strip() and not line.startswith("#")]  # fmt: skip
    assert len(lines) == 1
    pairs = re.findall(r'([A-Z]+(?:\{[a-z_]+\})?)(==|=)"([^"]*)"', lines[0])
    assert ", ".join(f'{k}{op}"{v}"' for k, op, v in pairs) == lines[0]  # nothing unparsed
    return {key: (op, value) for key, op, value in pairs}


def ini(name):
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str
    parser.read_string((GUEST / name).read_text())
    return parser


def test_the_udev_rule_names_nics_of_the_default_mac_prefix_only():
    rule = udev_rule()
    op, pattern = rule["ATTR{address}"]
    prefix = make_settings().network.mac_prefix

    assert op == "==" and pattern == f"{prefix}:*"
    assert fnmatch.fnmatchcase(f"{prefix}:00:00:07", pattern)  # udev matches with fnmatch
    assert not fnmatch.fnmatchcase(NEUTRON_MAC, pattern)
    assert rule["NAME"] == ("=", NAME)
    assert rule["SUBSYSTEM"] == ("==", "net") and rule["ACTION"] == ("==", "add")


def test_networkd_dhcps_the_named_nic_without_dns():
    network = ini("10-cachenet.network")

    assert network["Match"]["Name"] == NAME
    assert network["Network"]["DHCP"] == "ipv4"
    assert network["DHCPv4"]["UseDNS"] == "no"


def test_networkmanager_profile_dhcps_the_named_nic_never_as_default_route():
    profile = ini("cachenet.nmconnection")

    assert profile["connection"]["interface-name"] == NAME
    assert profile["connection"]["type"] == "ethernet"
    assert profile["ipv4"]["method"] == "auto"
    assert profile["ipv4"]["never-default"] == "true"


def test_ifupdown_stanza_dhcps_the_named_nic_on_hotplug():
    lines = [line.split() for line in (GUEST / "cachenet.interfaces").read_text().splitlines()
             if line.strip() and not line.startswith("#")]  # fmt: skip

    assert lines == [["allow-hotplug", NAME], ["iface", NAME, "inet", "dhcp"]]
