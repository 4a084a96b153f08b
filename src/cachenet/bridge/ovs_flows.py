"""The OpenFlow rules of the OVS cache bridge, rendered for ``ovs-ofctl`` (pure functions).

The bridge runs with ``fail_mode=secure`` and forwards only by these flows (no
NORMAL action), so a port without rules forwards nothing (default deny).
Tables (the shape of Neutron's native OVS firewall):

- 0 ``CLASSIFY``: the uplink and the host (LOCAL) go to DELIVER; each instance
  port to FROM_INSTANCE; any other in_port is dropped.
- 10 ``FROM_INSTANCE``: anti-spoofing per port (its MAC, its IPv4 address, ARP
  with both as sender, DHCP client packets from 0.0.0.0; DHCP server replies
  dropped; with IPv6 prefixes in the pool, IPv6 from its EUI-64 and link-local
  addresses, neighbour advertisements for those only, duplicate address
  detection from ::, router advertisements, redirects and DHCPv6 server replies
  dropped);
  the rest is dropped.
- 23 ``CANARY``: one flow nothing uses; gone means ovs-vswitchd lost its flows.
- 30 ``ISOLATED``: with isolate_ports, an instance's frames go to the uplink
  and the host only.
- 40 ``DELIVER``: by destination MAC: an instance's MAC to its port only;
  broadcast/multicast to every port; other unicast to the uplink and the host.

Every flow carries a cookie: cachenet's mark, the kind of group, the OpenFlow
port it is about and a checksum of the group's text. A reconciliation compares
cookies (and their flow counts) with the switch and changes only what differs.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CLASSIFY, FROM_INSTANCE, CANARY, ISOLATED, DELIVER = 0, 10, 23, 30, 40

COOKIE_MARK = 0xCAC7 << 48
COOKIE_MARK_MASK = 0xFFFF << 48
KIND_BASE, KIND_CANARY, KIND_PORT, KIND_FLOOD = 1, 2, 3, 4
MULTICAST = "01:00:00:00:00:00/01:00:00:00:00:00"


@dataclass(frozen=True)
class Layout:
    """What the bridge-wide flows depend on."""

    uplink_ofport: int | None
    isolate: bool
    anti_spoofing: bool
    vlan: int | None = None


@dataclass(frozen=True)
class SwitchPort:
    """An instance port as the switch numbers it, with the identity the store gave it."""

    device: str
    ofport: int
    mac: str
    address: ipaddress.IPv4Address | None  # None: no IPv4 at all (an IPv6-only pool)
    # Its EUI-64 address in each IPv6 prefix and its link-local one (cachenet.ipv6.allowed_sources)
    ipv6_sources: tuple[ipaddress.IPv6Address, ...] = ()


@dataclass(frozen=True)
class FlowGroup:
    """Flows installed and removed together, under one cookie."""

    kind: int
    ofport: int
    flows: tuple[str, ...]

    @property
    def cookie(self) -> int:
        digest = zlib.crc32("\n".join(self.flows).encode()) & 0xFFFFFF
        return COOKIE_MARK | self.kind << 40 | (self.ofport & 0xFFFF) << 24 | digest

    def add_lines(self) -> list[str]:
        return [f"add cookie={self.cookie:#x},{flow}" for flow in self.flows]


def cookie_kind(cookie: int) -> int:
    return cookie >> 40 & 0xFF


def cookie_ofport(cookie: int) -> int:
    return cookie >> 24 & 0xFFFF


def _outside(layout: Layout) -> list[str]:
    """The uplink and the host: where instances' frames may go."""
    return ["LOCAL"] + ([str(layout.uplink_ofport)] if layout.uplink_ofport else [])


def _output(ports: Iterable[str]) -> str:
    # OpenFlow never sends a frame back out of its in_port: no exclusion needed.
    return "actions=" + ",".join(f"output:{p}" for p in ports)


def base_groups(layout: Layout) -> list[FlowGroup]:
    """The bridge-wide flows: default deny, the uplink and host forwarding, the canary."""
    outside = _output(_outside(layout))
    flows = [
        f"table={CLASSIFY},priority=0,actions=drop",
        f"table={CLASSIFY},priority=100,in_port=LOCAL,actions=goto_table:{DELIVER}",
        f"table={FROM_INSTANCE},priority=0,actions=drop",
        f"table={ISOLATED},priority=0,{outside}",
        f"table={DELIVER},priority=0,{outside}",
        f"table={DELIVER},priority=10,dl_dst={MULTICAST},{outside}",
    ]
    if layout.uplink_ofport:
        uplink = f"in_port={layout.uplink_ofport}"
        flows.append(f"table={CLASSIFY},priority=100,{uplink},actions=goto_table:{DELIVER}")
        if layout.vlan is not None:  # an access port takes untagged frames only
            flows.append(
                f"table={CLASSIFY},priority=110,{uplink},vlan_tci=0x1000/0x1000,actions=drop"
            )
    canary = FlowGroup(KIND_CANARY, 0, (f"table={CANARY},priority=0,actions=drop",))
    return [FlowGroup(KIND_BASE, 0, tuple(flows)), canary]


def port_groups(layout: Layout, ports: Sequence[SwitchPort]) -> list[FlowGroup]:
    """One group per instance port, and the broadcast/multicast flood over all of them."""
    groups = [_port_group(layout, port) for port in sorted(ports, key=lambda p: p.ofport)]
    if ports:
        everyone = _outside(layout) + [str(p.ofport) for p in sorted(ports, key=lambda p: p.ofport)]
        flood = f"table={DELIVER},priority=20,dl_dst={MULTICAST},{_output(everyone)}"
        groups.append(FlowGroup(KIND_FLOOD, 0, (flood,)))
    return groups


def _port_group(layout: Layout, port: SwitchPort) -> FlowGroup:
    in_port, mac = f"in_port={port.ofport}", port.mac
    onward = f"actions=goto_table:{ISOLATED if layout.isolate else DELIVER}"
    flows = [f"table={CLASSIFY},priority=100,{in_port},actions=goto_table:{FROM_INSTANCE}"]
    if layout.anti_spoofing:
        flows += [
            # no rogue DHCP server, whatever its addresses
            f"table={FROM_INSTANCE},priority=200,{in_port},udp,tp_src=67,tp_dst=68,actions=drop",
            *_ipv4_flows(port, onward),
            *_ipv6_flows(port, onward),
        ]
    else:
        flows.append(f"table={FROM_INSTANCE},priority=100,{in_port},{onward}")
    flows.append(f"table={DELIVER},priority=100,dl_dst={mac},actions=output:{port.ofport}")
    return FlowGroup(KIND_PORT, port.ofport, tuple(flows))


def _ipv4_flows(port: SwitchPort, onward: str) -> list[str]:
    """An instance's IPv4 and ARP (none without an IPv4 address: the priority-0 drop
    takes them, DHCP requests included)."""
    if port.address is None:
        return []
    table, mac, ip = (
        f"table={FROM_INSTANCE},priority=100,in_port={port.ofport}",
        port.mac,
        port.address,
    )
    return [
        f"{table},dl_src={mac},ip,nw_src={ip},{onward}",
        f"{table},dl_src={mac},udp,nw_src=0.0.0.0,tp_src=68,tp_dst=67,{onward}",
        f"{table},dl_src={mac},arp,arp_spa={ip},arp_sha={mac},{onward}",
    ]


def _ipv6_flows(port: SwitchPort, onward: str) -> list[str]:
    """An instance's IPv6 (none without prefixes: the priority-0 drop takes it all)."""
    if not port.ipv6_sources:
        return []
    table, mac = f"table={FROM_INSTANCE},in_port={port.ofport}", port.mac
    flows = [
        f"{table},priority=200,icmp6,icmp_type=134,actions=drop",  # no rogue router
        f"{table},priority=200,icmp6,icmp_type=137,actions=drop",  # nor its redirects
        f"{table},priority=200,udp6,tp_src=547,actions=drop",  # no rogue DHCPv6 server
        # neighbour advertisements: only for its own addresses (and from them)
        f"{table},priority=150,icmp6,icmp_type=136,actions=drop",
        *(
            f"{table},priority=160,dl_src={mac},icmp6,icmp_type=136,ipv6_src={source},"
            f"nd_target={target},{onward}"
            for source in port.ipv6_sources
            for target in port.ipv6_sources
        ),
        *(
            f"{table},priority=100,dl_src={mac},ipv6,ipv6_src={a},{onward}"
            for a in port.ipv6_sources
        ),
        # duplicate address detection, before an address is the port's to use
        *(
            f"{table},priority=100,dl_src={mac},icmp6,ipv6_src=::,icmp_type=135,"
            f"nd_target={target},{onward}"
            for target in port.ipv6_sources
        ),
        f"{table},priority=100,dl_src={mac},icmp6,ipv6_src=::,ipv6_dst=ff02::16,"
        f"icmp_type=143,{onward}",
    ]
    return flows


def present_cookies(dump: str) -> Counter[int]:
    """Flows per cachenet cookie in ``ovs-ofctl dump-flows`` output."""
    found = (int(c, 16) for c in re.findall(r"cookie=(0x[0-9a-f]+)", dump))
    return Counter(c for c in found if c & COOKIE_MARK_MASK == COOKIE_MARK)


@dataclass
class Plan:
    """What a reconciliation changes: cookies to delete, groups to add."""

    delete: list[int]
    add: list[FlowGroup]

    def __bool__(self) -> bool:
        return bool(self.delete or self.add)

    def bundle(self, wipe: bool = False) -> str:
        """The ``ovs-ofctl --bundle add-flows`` input: one atomic transaction.

        ``wipe`` first deletes every flow of the bridge, cachenet's or not."""
        lines = ["delete"] if wipe else []
        lines += [f"delete cookie={c:#x}/-1" for c in self.delete]
        for group in self.add:
            lines += group.add_lines()
        return "\n".join(lines) + "\n"


def plan(wanted: Sequence[FlowGroup], present: Counter[int], kinds: set[int]) -> Plan:
    """Groups to add (missing or incomplete) and stale cookies of ``kinds`` to delete."""
    wanted_cookies = {g.cookie for g in wanted}
    delete = sorted(c for c in present if cookie_kind(c) in kinds and c not in wanted_cookies)
    add = [g for g in wanted if present.get(g.cookie, 0) != len(g.flows)]
    # an incomplete group is deleted before it is added again
    delete += [g.cookie for g in add if g.cookie in present]
    return Plan(delete, add)
