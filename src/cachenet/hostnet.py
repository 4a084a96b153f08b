"""Netlink on this host or in a network namespace: the few link and address lookups
the bridge backends, the DHCP server and the lab share (pyroute2).

pyroute2 costs ~0.2 s to import and is loaded on the first ``route()``: modules that
import this one (e.g. the Linux bridge's port security, run by every attach) stay fast.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cachenet.errors import NamespaceNotFound

if TYPE_CHECKING:
    from pyroute2 import IPRoute

# Where `ip netns` (and pyroute2) keep named network namespaces.
NETNS_RUNDIR = Path("/var/run/netns")
SYSCTL_NET = Path("/proc/sys/net")
IFF_UP = 0x1  # linux/if.h


@dataclass(frozen=True)
class Link:
    """What cachenet reads of a network device."""

    index: int
    name: str
    kind: str | None  # 'bridge', 'veth', 'openvswitch', ...; None for a plain device
    up: bool  # administratively (IFF_UP)
    state: str | None  # operational state: 'UP', 'DOWN', 'UNKNOWN', ...
    mtu: int | None
    master: int | None  # the index of the bridge or bond it is enslaved to
    alias: str | None

    @classmethod
    def of(cls, message: Any) -> Link:
        info = message.get_attr("IFLA_LINKINFO")
        return cls(
            index=int(message["index"]),
            name=str(message.get_attr("IFLA_IFNAME")),
            kind=info.get_attr("IFLA_INFO_KIND") if info else None,
            up=bool(message["flags"] & IFF_UP),
            state=message.get_attr("IFLA_OPERSTATE"),
            mtu=message.get_attr("IFLA_MTU"),
            master=message.get_attr("IFLA_MASTER") or None,
            alias=message.get_attr("IFLA_IFALIAS"),
        )


@contextlib.contextmanager
def route(netns: str | None = None) -> Iterator[IPRoute]:
    """A netlink socket in the network namespace ``netns`` (this host's when None).

    A namespace that does not exist is refused (``NamespaceNotFound``), never
    created: a typo must not give an empty namespace that looks like a host.
    """
    from pyroute2 import IPRoute

    if netns is not None:
        check_namespace(netns)
    try:
        # flags=0: without O_CREAT, as a namespace removed since the check is refused too.
        ipr = IPRoute(netns=netns, flags=0) if netns is not None else IPRoute()
    except FileNotFoundError:
        raise NamespaceNotFound(f"network namespace {netns} does not exist") from None
    with ipr:
        yield ipr


def check_namespace(netns: str) -> None:
    """Refuse ``netns`` unless it is an existing named network namespace."""
    if not (NETNS_RUNDIR / netns).exists():
        raise NamespaceNotFound(f"network namespace {netns} does not exist")


def disable_ipv6(ifname: str, netns: str | None = None) -> bool:
    """Turn IPv6 off on ``ifname`` in ``netns``: no link-local address, none taken from
    router advertisements. True when it changed; False when it was off already, or
    the kernel has no IPv6 (booted with ipv6.disable=1) or no such device yet.

    A sysctl (no netlink message sets it): written from inside the namespace, as
    /proc/sys/net is the namespace of the thread that opens it.
    """
    knob = SYSCTL_NET / "ipv6" / "conf" / ifname / "disable_ipv6"
    with _in_namespace(netns):
        try:
            if knob.read_text().strip() == "1":
                return False
            knob.write_text("1\n")
        except FileNotFoundError:
            return False
    return True


@contextlib.contextmanager
def _in_namespace(netns: str | None) -> Iterator[None]:
    """This thread in the network namespace ``netns`` (unchanged when None)."""
    if netns is None:
        yield
        return
    from pyroute2 import netns as namespaces

    check_namespace(netns)
    namespaces.pushns(netns)
    try:
        yield
    finally:
        namespaces.popns()


def find_link(ipr: IPRoute, name: str) -> Link | None:
    """The device called ``name``, or None."""
    found = ipr.link_lookup(ifname=name)
    return Link.of(ipr.get_links(found[0])[0]) if found else None


def link_at(ipr: IPRoute, index: int) -> Link:
    """The device with interface index ``index``."""
    return Link.of(ipr.get_links(index)[0])


def ports_of(ipr: IPRoute, master: int) -> list[Link]:
    """The devices enslaved to the bridge (or bond) with index ``master``."""
    return [Link.of(message) for message in ipr.get_links(master=master)]


def ipv4_addresses(ipr: IPRoute, index: int) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses of the device with index ``index``."""
    return [
        ipaddress.IPv4Address(a.get_attr("IFA_ADDRESS"))
        for a in ipr.get_addr(family=socket.AF_INET, index=index)
    ]


def ipv6_addresses(ipr: IPRoute, index: int) -> list[ipaddress.IPv6Address]:
    """The IPv6 addresses of the device with index ``index`` (link-local ones included)."""
    return [
        ipaddress.IPv6Address(a.get_attr("IFA_ADDRESS"))
        for a in ipr.get_addr(family=socket.AF_INET6, index=index)
    ]


def lookup_link(name: str, netns: str | None = None) -> Link | None:
    """The device called ``name`` in ``netns`` (this host's namespace when None), or None."""
    with route(netns) as ipr:
        return find_link(ipr, name)


def master_of(link: Link, netns: str | None = None) -> Link | None:
    """The device ``link`` is enslaved to, or None."""
    if link.master is None:
        return None
    with route(netns) as ipr:
        return link_at(ipr, link.master)
