"""Port security on a Linux bridge as one nftables table (pure: text in, text out).

``table bridge cachenet`` holds the rules of every instance port of the host's
cache bridge (README, "Port security"). Ports are keyed by their host device
name, known at allocation, so a port's rules exist before libvirt creates its
tap; a device under ``device_prefix`` that is not in the sets forwards nothing
(default deny). Four sets name what each port may use:

- ``ports``: its device name;
- ``macs``: device . MAC;
- ``addresses``: device . IPv4 address;
- ``addresses6``: device . IPv6 address, for each its EUI-64 address in every
  prefix of the pool and its link-local address (none on an IPv4-only pool).
  nft 1.0.6 (Debian 12) cannot match a neighbour discovery target
  (``icmpv6 taddr`` came later), so the set holds 128-bit integers and the
  rules read the source and the target as raw payload.

Adding or removing a port is one atomic element update of the sets; the
chains are only written when the table is created or its rules changed (a new
setting, rules lost). The device prefix is cachenet's on the whole host: a device
under it is filtered on whichever bridge it is (the kernel's bridge-name match,
nft_meta_bridge, is not built everywhere).

Frames from an instance port (prerouting: forwarded and delivered to the host
alike): source MAC its own; ARP with its own MAC and address as sender; IPv4
from its own address, or DHCP DISCOVER/REQUEST from 0.0.0.0 (on a pool with
IPv4: an IPv6-only pool's ports send no IPv4 at all); never a DHCP server
reply; IPv6 from its own addresses, or from :: for duplicate address detection
(a neighbour solicitation for its own address, an MLDv2 report); neighbour
advertisements only for its own addresses; never a router advertisement, a
redirect or a DHCPv6 server reply; nothing else (VLAN tags, other protocols). Frames to an instance
port (postrouting: from the uplink and from the host alike): unicast only to its
MAC, broadcast and multicast. With isolation (forward), no frame from one
instance port to another.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cachenet import ipv6
from cachenet.errors import BridgeError
from cachenet.port import Port

FAMILY = "bridge"
TABLE = "cachenet"
# The signature of the chains sits in this rule comment (nft's JSON omits table comments).
SIGNATURE_PREFIX = "cachenet rules "
# Raw payload (see addresses6 above): the IPv6 source address, the ND target address.
IP6_SADDR = "@nh,64,128"
ND_TARGET = "@th,64,128"


@dataclass(frozen=True)
class RuleOptions:
    """What shapes the chains: the instance devices' prefix and the two protections;
    ``dhcpv4``: whether the pool has IPv4 (an IPv6-only pool's ports send no DHCP request)."""

    device_prefix: str
    isolate_ports: bool
    anti_spoofing: bool
    dhcpv4: bool = True

    @property
    def enabled(self) -> bool:
        return self.isolate_ports or self.anti_spoofing


@dataclass
class Elements:
    """The contents of the three sets."""

    ports: set[str] = field(default_factory=set)
    macs: set[tuple[str, str]] = field(default_factory=set)
    addresses: set[tuple[str, str]] = field(default_factory=set)
    addresses6: set[tuple[str, str]] = field(default_factory=set)  # values: _integer()

    @classmethod
    def of(
        cls, ports: Iterable[Port], ipv6_prefixes: Sequence[ipaddress.IPv6Network] = ()
    ) -> Elements:
        elements = cls()
        for port in ports:
            elements.ports.add(port.device)
            elements.macs.add((port.device, port.mac.lower()))
            if port.address is not None:  # none on an IPv6-only pool: IPv4 and ARP dropped
                elements.addresses.add((port.device, str(port.address)))
            for address in ipv6.allowed_sources(port.mac, ipv6_prefixes):
                elements.addresses6.add((port.device, _integer(address)))
        return elements

    def sets(self) -> dict[str, set[str] | set[tuple[str, str]]]:
        return {"ports": self.ports, "macs": self.macs, "addresses": self.addresses,
                "addresses6": self.addresses6}  # fmt: skip

    def __len__(self) -> int:
        return len(self.ports)


@dataclass(frozen=True)
class InstalledTable:
    """What ``nft -j list table bridge cachenet`` says about the table."""

    signature: str | None
    rule_count: int
    elements: Elements


@dataclass(frozen=True)
class Chain:
    name: str
    hook: str | None  # a base chain's "type ... hook ..." line; None for a jump target
    rules: tuple[str, ...]


def chains(options: RuleOptions) -> list[Chain]:
    """The table's chains for ``options``."""
    prefix = _quoted(options.device_prefix + "*")
    from_instance = (
        "iifname . ether saddr != @macs drop",  # a port without rules, or a forged MAC
        "ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 "
        "iifname . arp saddr ether @macs iifname . arp saddr ip @addresses accept",
        "ether type ip udp sport 67 udp dport 68 drop",  # no rogue DHCP server
        "ether type ip iifname . ip saddr @addresses accept",
        *(_DHCP_REQUEST if options.dhcpv4 else ()),
        *_from_instance_ipv6(),
        "drop",
    )
    to_instance = (
        "oifname != @ports drop",  # a port without rules receives nothing either
        "oifname . ether daddr @macs accept",
        "ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 accept",
        "drop",
    )
    found = []
    if options.anti_spoofing:
        found += [
            Chain("prerouting", "filter hook prerouting priority filter; policy accept;",
                  (f"iifname {prefix} jump from_instance",)),
            Chain("from_instance", None, from_instance),
            # postrouting: frames forwarded from the uplink and sent by the host alike.
            Chain("postrouting", "filter hook postrouting priority filter; policy accept;",
                  (f"oifname {prefix} jump to_instance",)),
            Chain("to_instance", None, to_instance),
        ]  # fmt: skip
    if options.isolate_ports:
        # forward: the only hook that knows both ports (postrouting has no input port).
        found.append(Chain("forward", "filter hook forward priority filter; policy accept;",
                           (f"iifname {prefix} oifname {prefix} drop",)))  # fmt: skip
    return found


# DHCP DISCOVER / REQUEST, before the client holds its address.
_DHCP_REQUEST = (
    "ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept",
)


def _from_instance_ipv6() -> tuple[str, ...]:
    """The IPv6 rules from an instance port (``meta l4proto``: past extension headers)."""
    icmpv6 = "ether type ip6 meta l4proto ipv6-icmp icmpv6 type"
    return (
        f"{icmpv6} {{ nd-router-advert, nd-redirect }} drop",  # no rogue router
        "ether type ip6 meta l4proto udp udp sport 547 drop",  # no rogue DHCPv6 server
        f"{icmpv6} nd-neighbor-advert iifname . {ND_TARGET} != @addresses6 drop",
        f"ether type ip6 iifname . {IP6_SADDR} @addresses6 accept",
        # Duplicate address detection, before the address is the port's to use:
        f"ether type ip6 ip6 saddr :: meta l4proto ipv6-icmp icmpv6 type nd-neighbor-solicit "
        f"iifname . {ND_TARGET} @addresses6 accept",
        "ether type ip6 ip6 saddr :: ip6 daddr ff02::16 meta l4proto ipv6-icmp "
        "icmpv6 type mld2-listener-report accept",
    )


def signature(options: RuleOptions) -> str:
    """A digest of the chains: a table whose rules say otherwise is rewritten."""
    return hashlib.sha256(repr(chains(options)).encode()).hexdigest()[:16]


def rule_count(options: RuleOptions) -> int:
    """How many rules the table holds when intact."""
    return sum(len(chain.rules) for chain in chains(options))


def table_script(options: RuleOptions, elements: Elements) -> str:
    """An ``nft -f`` script replacing the table (whether or not it exists) in one transaction."""
    lines = [f"table {FAMILY} {TABLE}", f"delete table {FAMILY} {TABLE}",
             f"table {FAMILY} {TABLE} {{"]  # fmt: skip
    for name, kind in (("ports", "type ifname"), ("macs", "type ifname . ether_addr"),
                       ("addresses", "type ifname . ipv4_addr"),
                       ("addresses6", f"typeof iifname . {ND_TARGET}")):  # fmt: skip
        lines += [f"\tset {name} {{", f"\t\t{kind}"]
        members = elements.sets()[name]
        if members:
            lines.append(f"\t\telements = {{ {_listed(members)} }}")
        lines.append("\t}")
    # The first rule (the first base chain's jump) carries the signature.
    tag = f' comment "{SIGNATURE_PREFIX}{signature(options)}"'
    for n, chain in enumerate(chains(options)):
        lines.append(f"\tchain {chain.name} {{")
        if chain.hook:
            lines.append(f"\t\ttype {chain.hook}")
        lines += [f"\t\t{rule}{tag if n == 0 and i == 0 else ''}"
                  for i, rule in enumerate(chain.rules)]  # fmt: skip
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def delete_script() -> str:
    """An ``nft -f`` script removing the table, whether or not it exists."""
    return f"table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n"


def element_script(installed: Elements, wanted: Elements) -> str:
    """The element updates turning ``installed`` into ``wanted`` (empty: nothing to do).

    Deletions come first, so a device whose MAC or address changed ends with the new one.
    """
    deletions, additions = [], []
    for name, members in wanted.sets().items():
        present = installed.sets()[name]
        gone, new = present - members, members - present
        if gone:
            deletions.append(_element_line("delete", name, gone))
        if new:
            additions.append(_element_line("add", name, new))
    return "".join(line + "\n" for line in deletions + additions)


def parse_table(listing: str) -> InstalledTable:
    """The table as ``nft -j list table bridge cachenet`` prints it."""
    try:
        objects = json.loads(listing)["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BridgeError(f"cannot read nft's listing of table {FAMILY} {TABLE}: {exc}") from None
    found: str | None = None
    rules = 0
    elements = Elements()
    for item in objects:
        if "rule" in item:
            rules += 1
            comment = str(item["rule"].get("comment", ""))
            if comment.startswith(SIGNATURE_PREFIX):
                found = comment.removeprefix(SIGNATURE_PREFIX)
        elif "set" in item and item["set"].get("name") in elements.sets():
            target = elements.sets()[item["set"]["name"]]
            for member in item["set"].get("elem", []):
                target.add(_member(member))  # type: ignore[arg-type]
    return InstalledTable(signature=found, rule_count=rules, elements=elements)


def _element_line(verb: str, name: str, members: set[str] | set[tuple[str, str]]) -> str:
    return f"{verb} element {FAMILY} {TABLE} {name} {{ {_listed(members)} }}"


def _listed(members: set[str] | set[tuple[str, str]]) -> str:
    """A set's members in nft's syntax, sorted, comma-separated."""
    return ", ".join(_element(m) for m in sorted(members, key=_sort_key))


def _sort_key(member: str | tuple[str, str]) -> tuple[str, ...]:
    """Orders a set's members as sorted() would (a set holds names or pairs, never both)."""
    return (member,) if isinstance(member, str) else member


def _element(member: str | tuple[str, str]) -> str:
    if isinstance(member, str):
        return _quoted(member)
    device, value = member
    return f"{_quoted(device)} . {value}"


def _member(member: object) -> str | tuple[str, str]:
    """An element of nft's JSON: a name, or {"concat": [name, MAC or address]}."""
    if isinstance(member, dict) and isinstance(member.get("concat"), list):
        device, value = member["concat"]
        return (str(device), _canonical(str(value)))
    return str(member)


def _canonical(value: str) -> str:
    if value.startswith("0x"):  # an addresses6 member
        return _integer(ipaddress.IPv6Address(int(value, 16)))
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        return value.lower()


def _integer(address: ipaddress.IPv6Address) -> str:
    """An IPv6 address as the 128-bit integer the addresses6 set holds."""
    return f"{int(address):#034x}"


def _quoted(name: str) -> str:
    """``name`` as an nft string; a name nft cannot quote is refused in one line."""
    if '"' in name or "\\" in name or not name.isprintable():
        raise BridgeError(f"cannot write the interface name {name!r} into an nftables rule")
    return f'"{name}"'
