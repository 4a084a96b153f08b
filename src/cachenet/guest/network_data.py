"""The cache NIC in an OpenStack network_data.json document (config drive, metadata).

cloud-init configures only the links network_data.json lists (matched to a NIC by MAC) and never
falls back to DHCP when a network config exists, so a guest configures its cache NIC only if the
document names it. The shape follows Nova's ``nova/virt/netutils.py`` (``get_network_metadata``).

On a pool with IPv6 prefixes the link gets one static ``ipv6`` network per prefix, with the
port's EUI-64 address: cloud-init renders it as a fixed /64 with router advertisements off
(netplan ``accept-ra: false``, ifupdown ``inet6 static``, networkd ``Address=``), so the
guest holds exactly the address port security lets through, whatever its privacy or
stable-address settings. (``ipv6_slaac`` would not do: cloud-init 22.4 renders it as
``dhcp6: true`` for netplan and as nothing for networkd.) On an IPv6-only pool those are the
link's only networks: the port has no IPv4 address.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from cachenet.port import Port
from cachenet.settings import NetworkSettings
from cachenet.store.addresses import subnet_of


def add_cache_link(
    network_data: dict[str, Any], port: Port, settings: NetworkSettings
) -> dict[str, Any]:
    """A copy of ``network_data`` with the cache NIC's link and its static networks added
    (IPv4 unless the pool is IPv6-only, IPv6 on a pool with prefixes).

    The network has no routes, no gateway and no DNS: the cache network is one segment and must
    never take the guest's default route or name resolution. Adding the same port twice gives one
    link; the input document is not modified, and nothing else of it changes.
    """
    document = copy.deepcopy(network_data)
    links: list[dict[str, Any]] = document.setdefault("links", [])
    networks: list[dict[str, Any]] = document.setdefault("networks", [])
    document.setdefault("services", [])
    stale = {link.get("id") for link in links if _is_cache_link(link, port)}
    links[:] = [link for link in links if link.get("id") not in stale]
    networks[:] = [network for network in networks if network.get("link") not in stale]
    links.append(_cache_link(port, settings))
    if port.address is not None:  # none on an IPv6-only pool
        networks.append(_cache_network(port, port.address, settings, _free_network_id(networks)))
    for address in port.ipv6_addresses(settings.ipv6_prefixes):
        networks.append(_cache_ipv6_network(port, address, _free_network_id(networks)))
    return document


def _is_cache_link(link: dict[str, Any], port: Port) -> bool:
    mac = str(link.get("ethernet_mac_address") or "").lower()
    return link.get("id") == port.device or mac == port.mac


def _cache_link(port: Port, settings: NetworkSettings) -> dict[str, Any]:
    # Nova names a link after the host-side device (the tap), as cachenet's device name is.
    return {
        "id": port.device,
        "type": "phy",
        "ethernet_mac_address": port.mac,
        "mtu": settings.mtu,
        "vif_id": port.instance_uuid,
    }


def _cache_network(
    port: Port, address: ipaddress.IPv4Address, settings: NetworkSettings, network_id: str
) -> dict[str, Any]:
    return {
        "id": network_id,
        "type": "ipv4",
        "link": port.device,
        "ip_address": str(address),
        "netmask": str(subnet_of(settings, address).netmask),
        "routes": [],
    }


def _cache_ipv6_network(
    port: Port, address: ipaddress.IPv6Address, network_id: str
) -> dict[str, Any]:
    return {
        "id": network_id,
        "type": "ipv6",
        "link": port.device,
        "ip_address": str(address),
        "netmask": str(ipaddress.IPv6Network(f"{address}/64", strict=False).netmask),
        "routes": [],
    }


def _free_network_id(networks: list[dict[str, Any]]) -> str:
    """Nova numbers its networks network0, network1, ...: the first number not taken."""
    taken = {network.get("id") for network in networks}
    number = 0
    while f"network{number}" in taken:
        number += 1
    return f"network{number}"
