"""The allocatable space of the cache subnet as a dense index (pure).

Index 0 is the first address that is neither the network address, the
broadcast address nor reserved; index ``allocatable_count - 1`` the last. The
allocator hands out indexes in order, so mapping one to an address costs a
walk over the (few) reserved ranges, never over the subnet.
"""

from __future__ import annotations

import ipaddress

from cachenet.settings import AddressRange, Settings


def merged_exclusions(settings: Settings) -> list[AddressRange]:
    """Excluded ranges, sorted and merged, so that no two overlap or touch."""
    merged: list[AddressRange] = []
    for r in settings.excluded_ranges:
        if merged and int(r.first) <= int(merged[-1].last) + 1:
            if r.last > merged[-1].last:
                merged[-1] = AddressRange(merged[-1].first, r.last)
        else:
            merged.append(r)
    return merged


def address_at(
    settings: Settings, index: int, exclusions: list[AddressRange] | None = None
) -> ipaddress.IPv4Address:
    """The ``index``-th allocatable address of the subnet."""
    if not 0 <= index < settings.allocatable_count:
        raise IndexError(f"index {index} outside 0..{settings.allocatable_count - 1}")
    value = int(settings.subnet.network_address) + index
    for r in exclusions if exclusions is not None else merged_exclusions(settings):
        if value >= int(r.first):
            value += r.size
        else:
            break
    return ipaddress.IPv4Address(value)
