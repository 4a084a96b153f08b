"""The Port value object: one per instance, from the store to the domain XML."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cachenet import ipv6


@dataclass(frozen=True)
class Port:
    """An instance's place on the cache network.

    ``mac`` is canonical, ``device`` is the host-side tap/port name (at most 15
    characters), ``host`` the compute node the instance runs on.
    """

    instance_uuid: str
    mac: str
    address: ipaddress.IPv4Address
    device: str
    host: str
    bridge: str
    created_at: datetime | None = None

    def ipv6_addresses(
        self, prefixes: Sequence[ipaddress.IPv6Network]
    ) -> tuple[ipaddress.IPv6Address, ...]:
        """Its IPv6 address in each prefix of the pool: the EUI-64 of its MAC."""
        return ipv6.port_addresses(self.mac, prefixes)

    def as_dict(self) -> dict[str, str | None]:
        return {
            "instance_uuid": self.instance_uuid,
            "mac": self.mac,
            "address": str(self.address),
            "device": self.device,
            "host": self.host,
            "bridge": self.bridge,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }
