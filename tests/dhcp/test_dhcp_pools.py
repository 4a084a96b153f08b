"""`cachenet dhcp serve` on a pool of two subnets: real dnsmasq, real udhcpc clients."""

import ipaddress
import json
import uuid

import pytest
from pyroute2 import NetNS

pytestmark = pytest.mark.root


def allocate(network):
    result = network.cachenet("ports", "allocate", str(uuid.uuid4()), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_client_of_the_second_subnet_gets_its_address_netmask_and_router(cache_network):
    cache_network.configure(
        subnet="10.77.0.0/28, 10.78.0.0/24",
        reserved="10.77.0.1-10.77.0.9, 10.78.0.1",
        dhcp_router="10.78.0.1",
    )
    ports = [allocate(cache_network) for _ in range(6)]  # 5 fill the /28
    assert [p["address"] for p in ports[4:]] == ["10.77.0.14", "10.78.0.2"]

    # dnsmasq answers in a subnet only through an address of its own there.
    refused = cache_network.cachenet("dhcp", "serve", ns=cache_network.server_ns)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "interface br0 has no address in the cache subnet 10.78.0.0/24" in refused.stderr
    with NetNS(cache_network.server_ns) as ns:
        ns.addr("add", index=ns.link_lookup(ifname="br0")[0], address="10.78.0.1", prefixlen=24)

    cache_network.start_server()
    second = cache_network.lease_details(cache_network.client(ports[5]["mac"]))
    assert second == {"ip": "10.78.0.2", "mask": "24", "router": "10.78.0.1"}
    # The router is on-link in its own subnet only: the first subnet's clients get none.
    first = cache_network.lease_details(cache_network.client(ports[0]["mac"]))
    assert first == {"ip": "10.77.0.10", "mask": "28", "router": ""}
    assert ipaddress.IPv4Address(first["ip"]) in ipaddress.IPv4Network("10.77.0.0/28")
