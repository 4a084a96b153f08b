"""``cachenet vendordata serve``: where it listens and whom it answers."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from oslo_config import cfg

from cachenet.settings.reading import Area, Values, all_read, shown_value

OPTS: list[cfg.Opt] = [
    cfg.IPOpt(
        "vendordata_listen",
        default="127.0.0.1",
        help="Address `cachenet vendordata serve` listens on (IPv4 or IPv6).",
    ),
    cfg.PortOpt(
        "vendordata_port",
        default=8790,
        min=1,
        help="TCP port `cachenet vendordata serve` listens on.",
    ),
    cfg.ListOpt(
        "vendordata_allowed_sources",
        default=["127.0.0.0/8", "::1/128"],
        help="Networks (CIDRs) whose hosts may ask `cachenet vendordata serve`: those of "
        "the nova-api metadata and nova-compute hosts. Others get 403.",
    ),
]


@dataclass(frozen=True)
class VendordataSettings(Area):
    """The vendor-data service's listening address and the callers it answers."""

    listen: ipaddress.IPv4Address | ipaddress.IPv6Address = field(
        metadata={"option": "vendordata_listen"}
    )
    port: int = field(metadata={"option": "vendordata_port"})
    allowed_sources: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        metadata={"option": "vendordata_allowed_sources"}
    )


def parse(v: Values, problems: list[str]) -> VendordataSettings | None:
    """The vendor-data settings of the values read, or None with ``problems`` saying why."""
    before = len(problems)
    listen = v["vendordata_listen"]
    if listen is not None and ipaddress.ip_address(str(listen)).is_link_local:
        problems.append(
            f"vendordata_listen {listen} is link-local: it needs an interface to bind "
            "to; use a global or loopback address"
        )
    sources = _parse_sources(v["vendordata_allowed_sources"], problems)
    if len(problems) > before or not all_read(v, OPTS):
        return None
    return VendordataSettings(
        listen=ipaddress.ip_address(str(listen)),
        port=int(v["vendordata_port"]),
        allowed_sources=sources,
    )


def _parse_sources(
    items: Iterable[str] | None, problems: list[str]
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``vendordata_allowed_sources`` as networks; an empty list would refuse every caller."""
    if items is None:
        return ()
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=True))
        except ValueError as exc:
            problems.append(
                f"vendordata_allowed_sources {shown_value(item)} is not a network: {exc}"
            )
    if not items:
        problems.append(
            "vendordata_allowed_sources is empty: no host could ask for vendor data "
            "(give the CIDRs of the nova-api and nova-compute hosts)"
        )
    return tuple(networks)
