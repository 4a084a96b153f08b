"""The allocatable space of the cache pool as dense indexes (pure).

The pool is the ``subnet`` setting: one or more IPv4 subnets, filled in the
order given. In each subnet, index 0 is the first address that is neither the
network address, the broadcast address nor reserved; index ``size - 1`` the
last. The allocator hands out indexes in order, so mapping one to an address
costs a walk over the (few) reserved ranges, never over the subnet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cachenet.settings.network import NetworkSettings


@dataclass(frozen=True)
class AddressRange:
    """An inclusive range of IPv4 addresses."""

    first: ipaddress.IPv4Address
    last: ipaddress.IPv4Address

    def __contains__(self, address: object) -> bool:
        return isinstance(address, ipaddress.IPv4Address) and self.first <= address <= self.last

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


def parse_address_range(text: str) -> AddressRange:
    """``10.0.0.1``, ``10.0.0.1-10.0.0.9`` or ``10.0.0.0/28`` as an ``AddressRange``;
    ValueError when it is none of them."""
    text = text.strip()
    if "/" in text:
        net = ipaddress.IPv4Network(text, strict=True)
        return AddressRange(net.network_address, net.broadcast_address)
    first_text, _, last_text = text.partition("-")
    first = ipaddress.IPv4Address(first_text.strip())
    last = ipaddress.IPv4Address(last_text.strip()) if last_text else first
    if last < first:
        raise ValueError(f"range ends ({last}) before it starts ({first})")
    return AddressRange(first, last)


@dataclass(frozen=True)
class SubnetSpace:
    """One subnet of the pool and the addresses of it never handed out."""

    subnet: ipaddress.IPv4Network
    # Network and broadcast addresses plus the reserved ranges inside the
    # subnet: sorted and merged, so that no two overlap or touch.
    exclusions: tuple[AddressRange, ...]

    @classmethod
    def of(cls, subnet: ipaddress.IPv4Network, reserved: Iterable[AddressRange]) -> SubnetSpace:
        edges = [
            AddressRange(subnet.network_address, subnet.network_address),
            AddressRange(subnet.broadcast_address, subnet.broadcast_address),
        ]
        inside = [r for r in reserved if r.first in subnet and r.last in subnet]
        return cls(subnet, _merged(edges + inside))

    @property
    def size(self) -> int:
        """How many addresses of the subnet can be handed to instances."""
        return self.subnet.num_addresses - sum(r.size for r in self.exclusions)

    def address_at(self, index: int) -> ipaddress.IPv4Address:
        """The ``index``-th allocatable address of the subnet."""
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} outside 0..{self.size - 1}")
        value = int(self.subnet.network_address) + index
        for r in self.exclusions:
            if value >= int(r.first):
                value += r.size
            else:
                break
        return ipaddress.IPv4Address(value)

    def is_host(self, address: ipaddress.IPv4Address) -> bool:
        """In the subnet, and neither its network nor its broadcast address."""
        subnet = self.subnet
        return address in subnet and address not in (
            subnet.network_address,
            subnet.broadcast_address,
        )

    def is_allocatable(self, address: ipaddress.IPv4Address) -> bool:
        return address in self.subnet and not any(address in r for r in self.exclusions)


@dataclass(frozen=True)
class AddressPool:
    """The subnets of the pool, in the order they are filled."""

    spaces: tuple[SubnetSpace, ...]

    @classmethod
    def of(
        cls, subnets: Sequence[ipaddress.IPv4Network], reserved: Iterable[AddressRange]
    ) -> AddressPool:
        ranges = tuple(reserved)
        return cls(tuple(SubnetSpace.of(s, ranges) for s in subnets))

    @classmethod
    def from_settings(cls, pool: NetworkSettings) -> AddressPool:
        return cls.of(pool.subnets, pool.reserved)

    def __str__(self) -> str:
        """How messages name it: "subnet X" (one subnet) or "pool X, Y"."""
        if not self.spaces:
            return "IPv6-only pool (no IPv4 subnet)"
        subnets = ", ".join(str(space.subnet) for space in self.spaces)
        return ("subnet " if len(self.spaces) == 1 else "pool ") + subnets

    @property
    def size(self) -> int:
        """How many addresses of the whole pool can be handed to instances."""
        return sum(space.size for space in self.spaces)

    def space_of(self, address: ipaddress.IPv4Address) -> SubnetSpace | None:
        """The subnet ``address`` lies in, or None when it is outside the pool."""
        return next((s for s in self.spaces if address in s.subnet), None)

    def is_host(self, address: ipaddress.IPv4Address) -> bool:
        space = self.space_of(address)
        return space is not None and space.is_host(address)

    def is_allocatable(self, address: ipaddress.IPv4Address) -> bool:
        space = self.space_of(address)
        return space is not None and space.is_allocatable(address)


def subnet_of(pool: NetworkSettings, address: ipaddress.IPv4Address) -> ipaddress.IPv4Network:
    """The subnet of the pool holding a port's address (its netmask is the guest's).

    A port outside every subnet of the pool is never served (the store refuses
    to open while a removed subnet still holds ports): asking is a bug.
    """
    for subnet in pool.subnets:
        if address in subnet:
            return subnet
    raise ValueError(f"address {address} is outside every subnet of the pool")


def _merged(ranges: Iterable[AddressRange]) -> tuple[AddressRange, ...]:
    merged: list[AddressRange] = []
    for r in sorted(ranges, key=lambda r: r.first):
        if merged and int(r.first) <= int(merged[-1].last) + 1:
            if r.last > merged[-1].last:
                merged[-1] = AddressRange(merged[-1].first, r.last)
        else:
            merged.append(r)
    return tuple(merged)
