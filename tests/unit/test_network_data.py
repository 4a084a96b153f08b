import copy
import ipaddress

import pytest

from cachenet.guest.network_data import add_cache_link
from cachenet.port import Port
from cachenet.settings import make_settings

# What Nova's get_network_metadata writes for one Neutron port on a static IPv4 subnet.
NEUTRON_DOCUMENT = {
    "links": [
        {
            "id": "tap1a2b3c4d-5e",
            "vif_id": "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d",
            "type": "ovs",
            "mtu": 1450,
            "ethernet_mac_address": "fa:16:3e:11:22:33",
        }
    ],
    "networks": [
        {
            "id": "network0",
            "type": "ipv4",
            "link": "tap1a2b3c4d-5e",
            "ip_address": "192.168.0.5",
            "netmask": "255.255.255.0",
            "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.168.0.1"}],
            "network_id": "5d3c1f0e-0000-4000-8000-000000000001",
            "services": [{"type": "dns", "address": "192.168.0.2"}],
        }
    ],
    "services": [{"type": "dns", "address": "192.168.0.2"}],
}

PORT = Port(
    instance_uuid="6e0d6d3e-4a7e-4a59-9a43-1f0a6c1d2b3e",
    mac="fa:17:3e:0a:05:ff",
    address=ipaddress.IPv4Address("10.20.0.17"),
    device="cnet0a05ff",
    host="compute-1",
)


@pytest.fixture
def settings():
    return make_settings(subnet="10.20.0.0/22", mtu=9000, bridge="br-cache").network


def test_adds_a_link_with_the_port_mac_and_the_configured_mtu(settings):
    document = add_cache_link(NEUTRON_DOCUMENT, PORT, settings)
    assert document["links"][1] == {
        "id": "cnet0a05ff",
        "type": "phy",
        "ethernet_mac_address": "fa:17:3e:0a:05:ff",
        "mtu": 9000,
        "vif_id": PORT.instance_uuid,
    }


def test_adds_a_static_ipv4_network_without_route_gateway_or_dns(settings):
    network = add_cache_link(NEUTRON_DOCUMENT, PORT, settings)["networks"][1]
    assert network == {
        "id": "network1",
        "type": "ipv4",
        "link": "cnet0a05ff",
        "ip_address": "10.20.0.17",
        "netmask": "255.255.252.0",
        "routes": [],
    }


def test_a_port_of_the_pools_second_subnet_gets_that_subnets_netmask():
    pool = make_settings(subnet="10.19.0.0/24, 10.20.0.0/27").network
    network = add_cache_link(NEUTRON_DOCUMENT, PORT, pool)["networks"][1]
    assert (network["ip_address"], network["netmask"]) == ("10.20.0.17", "255.255.255.224")


def test_unset_mtu_is_null_so_the_guest_keeps_its_default():
    document = add_cache_link(NEUTRON_DOCUMENT, PORT, make_settings(subnet="10.20.0.0/22").network)
    assert document["links"][1]["mtu"] is None


def test_neutron_part_and_input_are_unchanged(settings):
    before = copy.deepcopy(NEUTRON_DOCUMENT)
    document = add_cache_link(NEUTRON_DOCUMENT, PORT, settings)
    assert before == NEUTRON_DOCUMENT
    assert document["links"][0] == before["links"][0]
    assert document["networks"][0] == before["networks"][0]
    assert document["services"] == before["services"]
    assert set(document) == set(before)


def test_adding_twice_gives_one_link_and_one_network(settings):
    once = add_cache_link(NEUTRON_DOCUMENT, PORT, settings)
    assert add_cache_link(once, PORT, settings) == once


def test_a_link_already_holding_the_mac_is_replaced_not_duplicated(settings):
    upper = add_cache_link(NEUTRON_DOCUMENT, PORT, settings)
    upper["links"][1]["ethernet_mac_address"] = PORT.mac.upper()
    upper["links"][1]["id"] = "old-name"
    upper["networks"][1]["link"] = "old-name"
    document = add_cache_link(upper, PORT, settings)
    assert [link["id"] for link in document["links"]] == ["tap1a2b3c4d-5e", "cnet0a05ff"]
    assert [network["link"] for network in document["networks"]] == [
        "tap1a2b3c4d-5e",
        "cnet0a05ff",
    ]


def test_network_id_does_not_collide_with_nova_numbering(settings):
    neutron = copy.deepcopy(NEUTRON_DOCUMENT)
    neutron["networks"].append(dict(neutron["networks"][0], id="network1", type="ipv6"))
    ids = [network["id"] for network in add_cache_link(neutron, PORT, settings)["networks"]]
    assert ids == ["network0", "network1", "network2"]


def test_empty_document_gets_the_three_keys(settings):
    document = add_cache_link({}, PORT, settings)
    assert [link["id"] for link in document["links"]] == ["cnet0a05ff"]
    assert document["services"] == []
    assert len(document["networks"]) == 1


def test_a_dual_stack_pool_adds_a_static_ipv6_network_per_prefix_with_the_eui64_address():
    dual = make_settings(subnet="10.20.0.0/22, fd00:20::/64, 2001:db8:20::/64").network
    document = add_cache_link(NEUTRON_DOCUMENT, PORT, dual)
    assert document["networks"][2:] == [
        {
            "id": f"network{n}",
            "type": "ipv6",
            "link": "cnet0a05ff",
            "ip_address": address,
            "netmask": "ffff:ffff:ffff:ffff::",
            "routes": [],
        }
        for n, address in (
            (2, "fd00:20::f817:3eff:fe0a:5ff"),  # fa:17:3e:0a:05:ff, EUI-64
            (3, "2001:db8:20:0:f817:3eff:fe0a:5ff"),
        )
    ]
    assert add_cache_link(document, PORT, dual) == document  # still idempotent


def test_an_ipv6_only_port_gets_only_its_eui64_networks():
    pool = make_settings(subnet="fd00:99::/64, 2001:db8:99::/64", mtu=9000).network
    port = Port(PORT.instance_uuid, PORT.mac, None, PORT.device, PORT.host)
    document = add_cache_link(NEUTRON_DOCUMENT, port, pool)
    cache = [n for n in document["networks"] if n["link"] == port.device]
    assert [(n["type"], n["ip_address"], n["netmask"], n["routes"]) for n in cache] == [
        ("ipv6", "fd00:99::f817:3eff:fe0a:5ff", "ffff:ffff:ffff:ffff::", []),
        ("ipv6", "2001:db8:99:0:f817:3eff:fe0a:5ff", "ffff:ffff:ffff:ffff::", []),
    ]
    assert document["networks"][0] == NEUTRON_DOCUMENT["networks"][0]
