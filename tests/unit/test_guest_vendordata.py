"""The cloud-config vendor data: its shape, the script's syntax and the files it writes."""

import configparser
import ipaddress
import shutil
import subprocess

import pytest
import yaml

from cachenet.guest import vendordata
from cachenet.port import Port
from cachenet.settings import make_settings
from harness.cloudinit import consume_vendor_data2

UUID = "2a9f4c4e-5a0e-4d47-9c39-8e6a4d1f0b7a"
PORT = Port(UUID, "fa:17:3e:00:00:07", ipaddress.IPv4Address("10.99.0.7"), "cache-2a9f4c4e5", "h1")
PLAIN = make_settings().network
JUMBO = make_settings(subnet="10.99.0.0/20", mtu=9000).network
DUAL = make_settings(subnet="10.99.0.0/20, fd00:99::/64, 2001:db8:99::/64").network
V6 = ["fd00:99::f817:3eff:fe00:7/64", "2001:db8:99:0:f817:3eff:fe00:7/64"]  # EUI-64 of the MAC


def script(settings=PLAIN):
    document = vendordata.cloud_config(PORT, settings)
    return yaml.safe_load(document)["bootcmd"][0]


def ini(text):
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # networkd and NM keys are case-sensitive
    parser.read_string(text)
    return parser


def test_answer_is_cloud_config_with_one_bootcmd_script():
    document = vendordata.cloud_config(PORT, PLAIN)

    assert document.startswith("#cloud-config\n")
    parsed = yaml.safe_load(document)
    assert list(parsed) == ["bootcmd"]
    assert len(parsed["bootcmd"]) == 1 and isinstance(parsed["bootcmd"][0], str)


@pytest.mark.parametrize("settings", [PLAIN, JUMBO, DUAL], ids=["default", "mtu", "dual"])
def test_script_is_valid_posix_shell(settings):
    shell = shutil.which("dash") or shutil.which("sh")
    assert shell, "no POSIX shell"
    result = subprocess.run([shell, "-n"], input=script(settings), text=True, capture_output=True)
    assert result.returncode == 0, result.stderr


def test_script_finds_the_nic_by_mac_and_sets_the_address_with_the_subnet_prefix():
    text = script(JUMBO)

    assert "mac=fa:17:3e:00:00:07 interface=10.99.0.7/20" in text
    assert 'ip addr replace "$interface" dev "$dev"' in text
    assert 'ip link set dev "$dev" mtu 9000' in text
    assert "via" not in text and "gateway" not in text.lower()  # no route, no default route


def test_a_port_of_the_pools_second_subnet_gets_that_subnets_prefix():
    pool = make_settings(subnet="10.98.0.0/24, 10.99.0.0/26").network
    assert "mac=fa:17:3e:00:00:07 interface=10.99.0.7/26" in script(pool)
    assert "address1=10.99.0.7/26\n" in vendordata.nm_keyfile(PORT, pool)


def test_no_mtu_command_when_mtu_is_unset():
    assert "mtu" not in script(PLAIN).lower()


def test_embedded_files_reach_the_shell_verbatim():
    text = script(JUMBO)
    assert vendordata.netplan_config(PORT, JUMBO) in text
    assert vendordata.networkd_network(PORT, JUMBO) in text
    assert vendordata.nm_keyfile(PORT, JUMBO) in text
    assert vendordata.ifupdown_stanza("$dev", PORT, JUMBO) in text


def test_netplan_matches_the_mac_without_dhcp_or_route():
    doc = yaml.safe_load(vendordata.netplan_config(PORT, JUMBO))

    nic = doc["network"]["ethernets"]["cachenet"]
    assert doc["network"]["version"] == 2
    assert nic["match"] == {"macaddress": "fa:17:3e:00:00:07"}
    assert nic["addresses"] == ["10.99.0.7/20"]
    assert nic["mtu"] == 9000
    assert nic["dhcp4"] is False and nic["dhcp6"] is False
    assert "routes" not in nic and "gateway4" not in nic and "set-name" not in nic


def test_netplan_without_mtu_has_none():
    nic = yaml.safe_load(vendordata.netplan_config(PORT, PLAIN))["network"]["ethernets"]
    assert "mtu" not in nic["cachenet"]


def test_networkd_network_matches_the_mac():
    parsed = ini(vendordata.networkd_network(PORT, JUMBO))

    assert parsed["Match"]["MACAddress"] == "fa:17:3e:00:00:07"
    assert parsed["Network"]["Address"] == "10.99.0.7/20"
    assert parsed["Link"]["MTUBytes"] == "9000"
    assert "Gateway" not in parsed["Network"] and "DHCP" not in parsed["Network"]
    assert not ini(vendordata.networkd_network(PORT, PLAIN)).has_section("Link")


def test_nm_keyfile_is_bound_to_the_mac_and_never_default():
    parsed = ini(vendordata.nm_keyfile(PORT, JUMBO))

    assert parsed["ethernet"]["mac-address"] == "fa:17:3e:00:00:07"
    assert parsed["ethernet"]["mtu"] == "9000"
    assert parsed["ipv4"]["method"] == "manual"
    assert parsed["ipv4"]["address1"] == "10.99.0.7/20"
    assert parsed["ipv4"]["never-default"] == "true"


def test_ifupdown_stanza_is_static_for_the_named_nic():
    stanza = vendordata.ifupdown_stanza("ens4", PORT, JUMBO)

    lines = [line.strip() for line in stanza.splitlines() if not line.startswith("#")]
    assert lines == [
        "allow-hotplug ens4",
        "iface ens4 inet static",
        "address 10.99.0.7/20",
        "mtu 9000",
    ]


@pytest.mark.parametrize("settings", [PLAIN, JUMBO, DUAL], ids=["default", "mtu", "dual"])
def test_cloud_init_takes_it_as_cloud_config_that_passes_its_schema(settings):
    consumed = consume_vendor_data2({"cloud-init": vendordata.cloud_config(PORT, settings)})

    assert consumed["parts"] == ["text/cloud-config"]
    assert consumed["schema_errors"] == []


def test_cloud_init_schema_check_refuses_a_broken_cloud_config():
    consumed = consume_vendor_data2({"cloud-init": "#cloud-config\nbootcmd: 5\n"})
    assert consumed["schema_errors"] and "bootcmd" in consumed["schema_errors"][0]


def test_an_ipv4_pool_leaves_ipv6_off_on_the_nic():
    assert "ip -6" not in script(JUMBO) and "/proc/sys/net/ipv6" not in script(JUMBO)
    assert (
        yaml.safe_load(vendordata.netplan_config(PORT, JUMBO))["network"]["ethernets"]["cachenet"][
            "link-local"
        ]
        == []
    )
    assert ini(vendordata.nm_keyfile(PORT, JUMBO))["ipv6"]["method"] == "ignore"
    assert ini(vendordata.networkd_network(PORT, JUMBO))["Network"]["LinkLocalAddressing"] == "no"


def test_a_dual_stack_pool_adds_the_eui64_addresses_fixed_without_router_advertisements():
    text = script(DUAL)
    assert [line for line in text.splitlines() if line.startswith("ip -6")] == [
        f'ip -6 addr replace {address} dev "$dev"' for address in V6
    ]
    # RAs, SLAAC and temporary addresses off, link-local from the MAC, before the link is up
    assert text.index("use_tempaddr=0") < text.index('ip link set dev "$dev" up')
    assert "accept_ra=0" in text and "addr_gen_mode=0" in text

    nic = yaml.safe_load(vendordata.netplan_config(PORT, DUAL))["network"]["ethernets"]["cachenet"]
    assert nic["addresses"] == ["10.99.0.7/20", *V6]
    assert nic["accept-ra"] is False and nic["dhcp6"] is False and nic["link-local"] == ["ipv6"]

    networkd = vendordata.networkd_network(PORT, DUAL)
    assert [line for line in networkd.splitlines() if line.startswith("Address=")] == [
        "Address=10.99.0.7/20",
        *(f"Address={a}" for a in V6),
    ]
    assert "IPv6AcceptRA=no\n" in networkd and "LinkLocalAddressing=ipv6\n" in networkd

    nm = ini(vendordata.nm_keyfile(PORT, DUAL))["ipv6"]
    assert (nm["method"], nm["address1"], nm["address2"]) == ("manual", *V6)
    assert nm["addr-gen-mode"] == "eui64" and nm["ip6-privacy"] == "0"
    assert nm["never-default"] == "true"

    stanza = vendordata.ifupdown_stanza("ens4", PORT, DUAL)
    assert f"iface ens4 inet6 static\n    address {V6[0]}\n    accept_ra 0\n" in stanza
    assert "gateway" not in stanza


V6ONLY = make_settings(subnet="fd00:99::/64, 2001:db8:99::/64", mtu=9000).network
V6ONLY_PORT = Port(UUID, "fa:17:3e:00:00:07", None, "cache-2a9f4c4e5", "h1")


def test_an_ipv6_only_port_gets_its_eui64_addresses_and_no_ipv4():
    document = vendordata.cloud_config(V6ONLY_PORT, V6ONLY)
    text = yaml.safe_load(document)["bootcmd"][0]
    shell = shutil.which("dash") or shutil.which("sh")
    checked = subprocess.run([shell, "-n"], input=text, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    consumed = consume_vendor_data2({"cloud-init": document})
    assert (consumed["parts"], consumed["schema_errors"]) == (["text/cloud-config"], [])

    # The first address is $interface, the others follow; each once, no IPv4 anywhere.
    assert f"mac=fa:17:3e:00:00:07 interface={V6[0]}\n" in text
    assert [line for line in text.splitlines() if line.startswith("ip -6")] == [
        f'ip -6 addr replace {V6[1]} dev "$dev"'
    ]
    assert "10.99." not in text and "dhcp4: true" not in text
    assert text.index("accept_ra=0") < text.index('ip link set dev "$dev" up')

    nic = yaml.safe_load(vendordata.netplan_config(V6ONLY_PORT, V6ONLY))
    nic = nic["network"]["ethernets"]["cachenet"]
    assert (nic["addresses"], nic["dhcp4"], nic["accept-ra"]) == (V6, False, False)
    networkd = vendordata.networkd_network(V6ONLY_PORT, V6ONLY)
    assert [line for line in networkd.splitlines() if line.startswith("Address=")] == [
        f"Address={a}" for a in V6
    ]
    nm = ini(vendordata.nm_keyfile(V6ONLY_PORT, V6ONLY))
    assert nm["ipv4"]["method"] == "disabled" and "address1" not in nm["ipv4"]
    assert (nm["ipv6"]["method"], nm["ipv6"]["address1"]) == ("manual", V6[0])
    stanza = vendordata.ifupdown_stanza("ens4", V6ONLY_PORT, V6ONLY)
    assert "inet static" not in stanza
    assert f"iface ens4 inet6 static\n    address {V6[0]}\n    accept_ra 0\n    mtu 9000\n" in (
        stanza
    )
