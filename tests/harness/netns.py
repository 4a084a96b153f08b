"""Network namespaces and veth pairs with unique names (the demonstration and the tests);
netlink through ``cachenet.hostnet``, which refuses a namespace that does not exist."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

from pyroute2 import netns

from cachenet import hostnet
from cachenet.errors import CachenetError


def unique_prefix() -> str:
    """``cn`` + 4 hex digits: room for a suffix within Linux's 15-character names."""
    return "cn" + secrets.token_hex(2)


@contextlib.contextmanager
def namespace(name: str) -> Iterator[str]:
    netns.create(name)
    try:
        with hostnet.route(name) as ns:
            ns.link("set", index=_index(ns, "lo"), state="up")
        yield name
    finally:
        netns.remove(name)


def add_veth(name: str, peer: str, ns: str | None = None, peer_ns: str | None = None) -> None:
    """A veth pair, each end moved into a namespace when given, both ends up."""
    for target in (ns, peer_ns):  # refused before anything is created
        if target:
            hostnet.check_namespace(target)
    with hostnet.route() as ipr:
        ipr.link("add", ifname=name, kind="veth", peer=peer)
        for end, target in ((name, ns), (peer, peer_ns)):
            if target:
                ipr.link("set", index=_index(ipr, end), net_ns_fd=target)
    for end, target in ((name, ns), (peer, peer_ns)):
        with hostnet.route(target) as ipr:
            ipr.link("set", index=_index(ipr, end), state="up")


def delete_link(name: str, ns: str | None = None) -> None:
    with hostnet.route(ns) as ipr:
        link = hostnet.find_link(ipr, name)
        if link is not None:
            ipr.link("del", index=link.index)


def links(ns: str | None = None) -> set[str]:
    with hostnet.route(ns) as ipr:
        return {hostnet.Link.of(message).name for message in ipr.get_links()}


def tx_offload_off(dev: str, ns: str | None = None) -> None:
    """Open vSwitch's userspace datapath drops packets whose checksum the veth left undone."""
    prefix = ["ip", "netns", "exec", ns] if ns else []
    subprocess.run([*prefix, "ethtool", "-K", dev, "tx", "off"], check=True, capture_output=True)


def add_address(
    dev: str, address: str, prefixlen: int, ns: str | None = None, flags: int = 0
) -> None:
    """``flags``: IFA_F_* address flags (IFA_F_NODAD: an IPv6 address usable at once)."""
    with hostnet.route(ns) as ipr:
        ipr.addr("add", index=_index(ipr, dev), address=address, prefixlen=prefixlen,
                 flags=flags)  # fmt: skip


def _index(ipr: Any, name: str) -> int:
    link = hostnet.find_link(ipr, name)
    if link is None:
        raise CachenetError(f"no device {name}")
    return link.index
