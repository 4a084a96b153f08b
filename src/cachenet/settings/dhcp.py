"""``cachenet dhcp serve``: the interface dnsmasq serves, what guests are told, where state is."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from oslo_config import cfg, types

from cachenet.settings.reading import Area, Values, all_read, check_ifname, shown_value

OPTS: list[cfg.Opt] = [
    cfg.StrOpt("dhcp_interface", help="Interface dnsmasq serves the cache subnet on."),
    cfg.IntOpt(
        "dhcp_lease_time", default=3600, min=120, max=31536000, help="DHCP lease time in seconds."
    ),
    cfg.IPOpt(
        "dhcp_router",
        version=4,
        help="Router handed to guests (DHCP option 3): an address of the subnet listed "
        "in reserved. Unset: none.",
    ),
    cfg.ListOpt(
        "dhcp_dns_servers",
        item_type=types.IPAddress(4),
        default=[],
        help="DNS servers handed to guests (option 6); one inside the subnet must be reserved.",
    ),
    cfg.StrOpt(
        "dhcp_state_dir",
        default="/var/lib/cachenet/dhcp",
        help="Directory for dnsmasq's reservations (hosts/) and lease file (absolute path).",
    ),
    cfg.StrOpt("dnsmasq", default="dnsmasq", help="dnsmasq executable."),
    cfg.BoolOpt(
        "dhcp_authoritative",
        default=False,
        help="Run dnsmasq with --dhcp-authoritative. Leave it false when several nodes "
        "run `cachenet dhcp serve` on one cache network (the documented topology): "
        "authoritative servers NAK each other's clients. True only for a single server.",
    ),
]


@dataclass(frozen=True)
class DhcpSettings(Area):
    """What ``cachenet dhcp serve`` runs dnsmasq with."""

    interface: str | None = field(metadata={"option": "dhcp_interface"})
    lease_time: int = field(metadata={"option": "dhcp_lease_time"})
    router: ipaddress.IPv4Address | None = field(metadata={"option": "dhcp_router"})
    dns_servers: tuple[ipaddress.IPv4Address, ...] = field(metadata={"option": "dhcp_dns_servers"})
    state_dir: Path = field(metadata={"option": "dhcp_state_dir"})
    dnsmasq: str = field(metadata={"option": "dnsmasq"})
    authoritative: bool = field(metadata={"option": "dhcp_authoritative"})


def handed_addresses(v: Values) -> list[tuple[str, ipaddress.IPv4Address]]:
    """(option, address) of the router and DNS servers read, to check against the pool."""
    router = [("dhcp_router", _address(v["dhcp_router"]))] if v["dhcp_router"] else []
    servers = [("dhcp_dns_servers", _address(a)) for a in v["dhcp_dns_servers"] or []]
    return router + servers


def parse(v: Values, problems: list[str]) -> DhcpSettings | None:
    """The DHCP settings of the values read, or None with ``problems`` saying why."""
    before = len(problems)
    check_ifname(v, "dhcp_interface", problems)
    state_dir = v["dhcp_state_dir"]
    if state_dir is not None and not os.path.isabs(str(state_dir)):
        problems.append(
            f"dhcp_state_dir {shown_value(state_dir)} is not an absolute path "
            "(a relative one would follow each process's working directory)"
        )
    if v["dnsmasq"] is not None and not str(v["dnsmasq"]).strip():
        problems.append("dnsmasq is empty: give the dnsmasq executable or leave the option out")
    if len(problems) > before or not all_read(v, OPTS):
        return None
    return DhcpSettings(
        interface=v["dhcp_interface"],
        lease_time=int(v["dhcp_lease_time"]),
        router=None if v["dhcp_router"] is None else _address(v["dhcp_router"]),
        dns_servers=tuple(_address(s) for s in v["dhcp_dns_servers"]),
        state_dir=Path(str(state_dir)),
        dnsmasq=str(v["dnsmasq"]),
        authoritative=bool(v["dhcp_authoritative"]),
    )


def _address(value: object) -> ipaddress.IPv4Address:
    """An address oslo.config's IPOpt already checked, as an ``IPv4Address``."""
    return ipaddress.IPv4Address(str(value))
