"""The Port value object: one per instance, from the store to the domain XML."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cachenet import ipv6


@dataclass(frozen=True)
class Port:
    """An instance's place on the cache network.

    ``mac`` is canonical, ``device`` is the host-side tap/port name (at most 15
    characters), ``host`` the compute node the instance runs on. The bridge is
    not the port's: it is the configured bridge of the host that renders it
    (``settings.bridge``: the domain XML, the bridge's port security).
    """

    instance_uuid: str
    mac: str
    # None on an IPv6-only pool (and for a port allocated while the pool was one).
    address: ipaddress.IPv4Address | None
    device: str
    host: str
    created_at: datetime | None = field(default=None, kw_only=True)

    @property
    def shown_address(self) -> str:
        """Its IPv4 address as messages name it; "no IPv4" on an IPv6-only pool."""
        return "no IPv4" if self.address is None else str(self.address)

    def ipv6_addresses(
        self, prefixes: Sequence[ipaddress.IPv6Network]
    ) -> tuple[ipaddress.IPv6Address, ...]:
        """Its IPv6 address in each prefix of the pool: the EUI-64 of its MAC."""
        return ipv6.port_addresses(self.mac, prefixes)

    def as_dict(
        self, ipv6_prefixes: Sequence[ipaddress.IPv6Network] = ()
    ) -> dict[str, str | list[str] | None]:
        """What the CLI and the agent show; ``address`` is None without IPv4, and
        ``ipv6_addresses`` only on a pool with IPv6 (an IPv4-only pool's output is unchanged)."""
        shown: dict[str, str | list[str] | None] = {
            "instance_uuid": self.instance_uuid,
            "mac": self.mac,
            "address": None if self.address is None else str(self.address),
            "device": self.device,
            "host": self.host,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }
        if ipv6_prefixes:
            shown["ipv6_addresses"] = [str(a) for a in self.ipv6_addresses(ipv6_prefixes)]
        return shown
