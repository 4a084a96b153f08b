"""Network namespaces and veth pairs with unique names (the demonstration and the tests)."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator

from pyroute2 import IPRoute, NetNS, netns


def unique_prefix() -> str:
    """``cn`` + 4 hex digits: room for a suffix within Linux's 15-character names."""
    return "cn" + secrets.token_hex(2)


@contextlib.contextmanager
def namespace(name: str) -> Iterator[str]:
    netns.create(name)
    try:
        with NetNS(name) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        yield name
    finally:
        netns.remove(name)


def add_veth(name: str, peer: str, ns: str | None = None, peer_ns: str | None = None) -> None:
    """A veth pair, each end moved into a namespace when given, both ends up."""
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="veth", peer=peer)
        for end, target in ((name, ns), (peer, peer_ns)):
            if target:
                ipr.link("set", index=ipr.link_lookup(ifname=end)[0], net_ns_fd=target)
    for end, target in ((name, ns), (peer, peer_ns)):
        with NetNS(target) if target else IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=end)[0], state="up")


def delete_link(name: str, ns: str | None = None) -> None:
    with NetNS(ns) if ns else IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if found:
            ipr.link("del", index=found[0])


def links(ns: str | None = None) -> set[str]:
    with NetNS(ns) if ns else IPRoute() as ipr:
        return {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}


def tx_offload_off(dev: str, ns: str | None = None) -> None:
    """Open vSwitch's userspace datapath drops packets whose checksum the veth left undone."""
    prefix = ["ip", "netns", "exec", ns] if ns else []
    subprocess.run([*prefix, "ethtool", "-K", dev, "tx", "off"], check=True, capture_output=True)


def add_address(dev: str, address: str, prefixlen: int, ns: str | None = None) -> None:
    with NetNS(ns) if ns else IPRoute() as ipr:
        ipr.addr("add", index=ipr.link_lookup(ifname=dev)[0], address=address, prefixlen=prefixlen)
