"""Every cachenet option, in the ``[cachenet]`` group, validated at load.

Options are oslo.config options so that they can live in nova.conf beside
Nova's own, or in /etc/cachenet/cachenet.conf for plain libvirt hosts. The
rest of cachenet never reads oslo.config: it gets a frozen ``Settings`` whose
fields are already parsed and checked (``load_settings`` or
``settings_from_conf``), so a bad value is reported once, at start, with one
message per problem.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from oslo_config import cfg

from cachenet.errors import ConfigError, IdentityError
from cachenet.identity import DEVICE_SUFFIX_MIN, IFNAMSIZ_MAX, parse_mac_prefix

GROUP = "cachenet"
DEFAULT_CONFIG_FILE = "/etc/cachenet/cachenet.conf"
CONFIG_ENV = "CACHENET_CONFIG"
BRIDGE_TYPES = ("linuxbridge", "ovs")
ON_STORE_ERROR = ("fail", "skip")

_network_opts = [
    cfg.StrOpt("bridge", default="br-cache", help="Name of the cache bridge on each host."),
    cfg.StrOpt(
        "bridge_type",
        default="linuxbridge",
        help="Kind of cache bridge: linuxbridge (netlink) or ovs (Open vSwitch).",
    ),
    cfg.StrOpt(
        "uplink",
        help="Host interface that faces the cache nodes; enslaved to the bridge. "
        "Unset: the bridge has no uplink.",
    ),
    cfg.IntOpt("mtu", help="MTU of the bridge, its uplink and the instances' cache NICs."),
    cfg.IntOpt("vlan", help="VLAN tag of the cache network (ovs only): access ports."),
    cfg.StrOpt(
        "datapath_type",
        default="system",
        help="OVS datapath of the bridge: system (kernel) or netdev (userspace).",
    ),
    cfg.StrOpt(
        "ovsdb_connection",
        default="unix:/var/run/openvswitch/db.sock",
        help="OVSDB server of the local Open vSwitch.",
    ),
    cfg.StrOpt(
        "mac_prefix",
        default="fa:17:3e",
        help="Leading octets (1 to 5) of every cache NIC's MAC address. Must be unicast; "
        "a locally administered prefix is recommended.",
    ),
    cfg.StrOpt(
        "device_prefix",
        default="cache-",
        help="Prefix of host-side device names; the rest is taken from the instance UUID "
        f"(at least {DEVICE_SUFFIX_MIN} characters, {IFNAMSIZ_MAX} in all).",
    ),
    cfg.StrOpt("subnet", default="10.99.0.0/16", help="IPv4 cache subnet (CIDR)."),
    cfg.ListOpt(
        "reserved",
        default=[],
        help="Addresses of the subnet never handed to an instance: gateway, DHCP servers, "
        "cache nodes. Single addresses, ranges (a-b) or CIDRs. The network and broadcast "
        "addresses are always excluded.",
    ),
    cfg.BoolOpt(
        "isolate_ports",
        default=True,
        help="Instances reach the uplink (cache nodes) but not each other (linuxbridge).",
    ),
    cfg.BoolOpt(
        "anti_spoofing",
        default=True,
        help="Drop traffic from an instance that does not use its own MAC and address "
        "(libvirt's clean-traffic filter, linuxbridge).",
    ),
    cfg.StrOpt("nic_model", default="virtio", help="Device model of the cache NIC."),
]

_store_opts = [
    cfg.StrOpt(
        "database",
        default="sqlite:////var/lib/cachenet/cachenet.sqlite",
        secret=True,
        help="SQLAlchemy URL of the port store: sqlite:///PATH (one host), "
        "postgresql+psycopg://... or mysql+pymysql://... (shared by many hosts).",
    ),
    cfg.StrOpt(
        "host",
        default=socket.gethostname(),
        sample_default="<hostname>",
        help="Name of this host in the port store.",
    ),
]

_dhcp_opts = [
    cfg.StrOpt("dhcp_interface", help="Interface dnsmasq serves the cache subnet on."),
    cfg.IntOpt("dhcp_lease_time", default=3600, min=120, help="DHCP lease time in seconds."),
    cfg.StrOpt("dhcp_router", help="Router handed to guests (DHCP option 3). Unset: none."),
    cfg.ListOpt("dhcp_dns_servers", default=[], help="DNS servers handed to guests (option 6)."),
    cfg.StrOpt(
        "dhcp_state_dir",
        default="/var/lib/cachenet/dhcp",
        help="Directory for dnsmasq's reservations (hosts/) and lease file.",
    ),
    cfg.StrOpt("dnsmasq", default="dnsmasq", help="dnsmasq executable."),
]

_libvirt_opts = [
    cfg.StrOpt("libvirt_uri", default="qemu:///system", help="libvirt connection URI."),
    cfg.StrOpt(
        "agent_selector",
        default="all",
        help="Domains the agent gives a cache NIC: 'all', 'name:<glob>', or "
        "'metadata:<namespace URI>' (domains holding that metadata element).",
    ),
    cfg.IntOpt(
        "agent_reconcile_interval",
        default=60,
        min=1,
        help="Seconds between the agent's reconciliations (interfaces missing, ports of "
        "vanished domains); also how soon an event missed while the store was down is made up.",
    ),
]

_nova_opts = [
    cfg.StrOpt(
        "flavor_extra_spec",
        help="Only instances whose flavor has this extra spec set to true get a cache NIC "
        "(e.g. cachenet:enabled). Unset: no flavor condition.",
    ),
    cfg.StrOpt(
        "image_property",
        help="Only instances whose image has this property set to true get a cache NIC "
        "(e.g. cachenet_enabled). Unset: no image condition.",
    ),
    cfg.ListOpt(
        "exclude_flavors", default=[], help="Flavors whose instances never get a cache NIC."
    ),
    cfg.ListOpt(
        "exclude_projects", default=[], help="Projects whose instances never get a cache NIC."
    ),
    cfg.StrOpt(
        "on_store_error",
        default="fail",
        help="When the port store cannot be reached at spawn: fail (the spawn fails with a "
        "clear fault) or skip (boot without the cache NIC and log an error).",
    ),
]

ALL_OPTS: list[cfg.Opt] = _network_opts + _store_opts + _dhcp_opts + _libvirt_opts + _nova_opts


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Entry point of oslo-config-generator (namespace ``cachenet``)."""
    return [(GROUP, ALL_OPTS)]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the ``[cachenet]`` group on ``conf`` (cachenet's own or Nova's CONF)."""
    conf.register_opts(ALL_OPTS, group=GROUP)


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


@dataclass(frozen=True)
class Settings:
    """The validated ``[cachenet]`` options (defaults live on the options above)."""

    bridge: str
    bridge_type: str
    uplink: str | None
    mtu: int | None
    vlan: int | None
    datapath_type: str
    ovsdb_connection: str
    mac_prefix: str
    device_prefix: str
    subnet: ipaddress.IPv4Network
    reserved: tuple[AddressRange, ...]
    isolate_ports: bool
    anti_spoofing: bool
    nic_model: str
    database: str
    host: str
    dhcp_interface: str | None
    dhcp_lease_time: int
    dhcp_router: ipaddress.IPv4Address | None
    dhcp_dns_servers: tuple[ipaddress.IPv4Address, ...]
    dhcp_state_dir: Path
    dnsmasq: str
    libvirt_uri: str
    agent_selector: str
    agent_reconcile_interval: int
    flavor_extra_spec: str | None
    image_property: str | None
    exclude_flavors: tuple[str, ...]
    exclude_projects: tuple[str, ...]
    on_store_error: str

    @property
    def excluded_ranges(self) -> tuple[AddressRange, ...]:
        """Reserved ranges plus the network and broadcast addresses, sorted."""
        edges = (
            AddressRange(self.subnet.network_address, self.subnet.network_address),
            AddressRange(self.subnet.broadcast_address, self.subnet.broadcast_address),
        )
        return tuple(sorted(edges + self.reserved, key=lambda r: r.first))

    @property
    def allocatable_count(self) -> int:
        """How many addresses of the subnet can be handed to instances."""
        return self.subnet.num_addresses - _union_size(self.excluded_ranges)

    def public_dict(self) -> dict[str, object]:
        """The settings as plain values, the database password masked."""
        values: dict[str, object] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                value = [str(v) for v in value]
            elif value is not None and not isinstance(value, bool | int | str):
                value = str(value)
            values[field.name] = value
        values["database"] = mask_password(self.database)
        return values


def load_settings(
    config_files: Sequence[str] | None = None, overrides: dict[str, object] | None = None
) -> Settings:
    """Read and validate settings from config files (or none: defaults).

    With ``config_files`` None, ``$CACHENET_CONFIG`` (colon-separated) is used, else
    /etc/cachenet/cachenet.conf if it exists, else the defaults alone.
    ``overrides`` set options by name, as a test or a command-line flag would.
    """
    files = default_config_files() if config_files is None else list(config_files)
    for path in files:
        if not os.path.isfile(path):
            raise ConfigError([f"config file {path} does not exist"])
    conf = cfg.ConfigOpts()
    register_opts(conf)
    try:
        conf(args=[], project="cachenet", default_config_files=files, use_env=False)
    except (cfg.ConfigFilesNotFoundError, cfg.ConfigFileParseError) as exc:
        raise ConfigError([str(exc)]) from exc
    for name, value in (overrides or {}).items():
        conf.set_override(name, value, group=GROUP)
    return settings_from_conf(conf)


def make_settings(**overrides: object) -> Settings:
    """Defaults plus ``overrides``, validated; no config file is read."""
    return load_settings([], overrides)


def default_config_files() -> list[str]:
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return [p for p in from_env.split(":") if p]
    return [DEFAULT_CONFIG_FILE] if os.path.isfile(DEFAULT_CONFIG_FILE) else []


def settings_from_conf(conf: cfg.ConfigOpts) -> Settings:
    """Parse and validate the ``[cachenet]`` group of an oslo.config ``conf``.

    Every problem is collected, so a config with three mistakes gets three
    messages in one ``ConfigError`` rather than one per restart.
    """
    problems: list[str] = []
    group = _read_group(conf, problems)
    if problems:
        raise ConfigError(problems)
    settings = _parse(group, problems)
    if settings is None or problems:
        raise ConfigError(problems)
    return settings


def _read_group(conf: cfg.ConfigOpts, problems: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for opt in ALL_OPTS:
        try:
            values[opt.dest] = conf[GROUP][opt.dest]
        except (cfg.ConfigFileValueError, ValueError) as exc:
            problems.append(f"{opt.dest}: {exc}")
    return values


def _parse(v: dict[str, Any], problems: list[str]) -> Settings | None:
    def check(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    bridge_type = str(v["bridge_type"])
    check(bridge_type in BRIDGE_TYPES, f"bridge_type {bridge_type!r} is not one of {BRIDGE_TYPES}")
    for name in ("bridge", "uplink", "dhcp_interface"):
        if v[name] is not None:
            reason = linux_ifname_problem(str(v[name]))
            check(
                reason is None, f"{name} {v[name]!r} is not a valid Linux interface name: {reason}"
            )
    mac_prefix = _parse_mac_prefix(str(v["mac_prefix"]), problems)
    _check_device_prefix(str(v["device_prefix"]), problems)
    mtu, vlan = v["mtu"], v["vlan"]
    check(mtu is None or 68 <= int(mtu) <= 65535, f"mtu {mtu} is outside 68-65535")
    check(vlan is None or 1 <= int(vlan) <= 4094, f"vlan {vlan} is outside 1-4094")
    check(
        vlan is None or bridge_type != "linuxbridge",
        "vlan is only supported with bridge_type ovs (a Linux bridge has no access ports)",
    )
    check(
        v["datapath_type"] in ("system", "netdev"),
        f"datapath_type {v['datapath_type']!r} is not system or netdev",
    )
    check(
        re.fullmatch(r"[a-z0-9][a-z0-9_-]*", str(v["nic_model"])) is not None,
        f"nic_model {v['nic_model']!r} is not a device model name",
    )
    check(
        v["on_store_error"] in ON_STORE_ERROR,
        f"on_store_error {v['on_store_error']!r} is not one of {ON_STORE_ERROR}",
    )
    check(bool(v["database"]), "database is empty")
    subnet = _parse_subnet(str(v["subnet"]), problems)
    reserved = _parse_reserved(v["reserved"], subnet, problems)
    router = _parse_address("dhcp_router", v["dhcp_router"], subnet, problems)
    dns = tuple(
        _parse_address("dhcp_dns_servers", s, None, problems) for s in v["dhcp_dns_servers"]
    )
    selector = _checked_selector(str(v["agent_selector"]), problems)
    if problems or subnet is None or mac_prefix is None:
        return None
    settings = Settings(
        bridge=str(v["bridge"]),
        bridge_type=bridge_type,
        uplink=v["uplink"],
        mtu=mtu,
        vlan=vlan,
        datapath_type=str(v["datapath_type"]),
        ovsdb_connection=str(v["ovsdb_connection"]),
        mac_prefix=mac_prefix,
        device_prefix=str(v["device_prefix"]),
        subnet=subnet,
        reserved=reserved,
        isolate_ports=bool(v["isolate_ports"]),
        anti_spoofing=bool(v["anti_spoofing"]),
        nic_model=str(v["nic_model"]),
        database=str(v["database"]),
        host=str(v["host"]),
        dhcp_interface=v["dhcp_interface"],
        dhcp_lease_time=int(v["dhcp_lease_time"]),
        dhcp_router=router,
        dhcp_dns_servers=tuple(d for d in dns if d is not None),
        dhcp_state_dir=Path(str(v["dhcp_state_dir"])),
        dnsmasq=str(v["dnsmasq"]),
        libvirt_uri=str(v["libvirt_uri"]),
        agent_selector=selector,
        agent_reconcile_interval=int(v["agent_reconcile_interval"]),
        flavor_extra_spec=v["flavor_extra_spec"],
        image_property=v["image_property"],
        exclude_flavors=tuple(v["exclude_flavors"]),
        exclude_projects=tuple(v["exclude_projects"]),
        on_store_error=str(v["on_store_error"]),
    )
    check(
        settings.allocatable_count > 0,
        f"subnet {subnet} has no address left for instances once the network, broadcast "
        "and reserved addresses are taken out",
    )
    return settings


def linux_ifname_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Linux interface name (the kernel's dev_valid_name), or None."""
    if not name:
        return "empty"
    if len(name) > IFNAMSIZ_MAX:
        return f"{len(name)} characters, at most {IFNAMSIZ_MAX}"
    if name in (".", ".."):
        return "reserved name"
    if re.search(r"[/:\s]", name):
        return "contains '/', ':' or whitespace"
    return None


def _parse_mac_prefix(text: str, problems: list[str]) -> str | None:
    try:
        return parse_mac_prefix(text)
    except IdentityError as exc:
        problems.append(f"mac_prefix: {exc}")
        return None


def _check_device_prefix(prefix: str, problems: list[str]) -> None:
    room = IFNAMSIZ_MAX - len(prefix)
    if room < DEVICE_SUFFIX_MIN:
        problems.append(
            f"device_prefix {prefix!r} is {len(prefix)} characters: device names are at most "
            f"{IFNAMSIZ_MAX} characters and need {DEVICE_SUFFIX_MIN} for the instance, so the "
            f"prefix can have at most {IFNAMSIZ_MAX - DEVICE_SUFFIX_MIN}"
        )
    elif prefix and re.search(r"[/:\s]", prefix):
        problems.append(f"device_prefix {prefix!r} contains '/', ':' or whitespace")


def _parse_subnet(text: str, problems: list[str]) -> ipaddress.IPv4Network | None:
    try:
        subnet = ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        problems.append(f"subnet {text!r} is not an IPv4 network: {exc}")
        return None
    if subnet.prefixlen > 30:
        problems.append(f"subnet {subnet} has no room for instances (use a /30 or larger)")
        return None
    return subnet


def _parse_reserved(
    items: Iterable[str], subnet: ipaddress.IPv4Network | None, problems: list[str]
) -> tuple[AddressRange, ...]:
    ranges = []
    for item in items:
        try:
            r = parse_address_range(item)
        except ValueError as exc:
            problems.append(f"reserved {item!r}: {exc}")
            continue
        if subnet is not None and not (r.first in subnet and r.last in subnet):
            problems.append(f"reserved {item!r} is outside the subnet {subnet}")
            continue
        ranges.append(r)
    return tuple(ranges)


def parse_address_range(text: str) -> AddressRange:
    """``10.0.0.1``, ``10.0.0.1-10.0.0.9`` or ``10.0.0.0/28`` as an ``AddressRange``."""
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


def _parse_address(
    name: str, value: object, subnet: ipaddress.IPv4Network | None, problems: list[str]
) -> ipaddress.IPv4Address | None:
    if value is None:
        return None
    try:
        address = ipaddress.IPv4Address(str(value))
    except ValueError:
        problems.append(f"{name} {value!r} is not an IPv4 address")
        return None
    if subnet is not None and address not in subnet:
        problems.append(f"{name} {address} is outside the subnet {subnet}")
    return address


def _checked_selector(selector: str, problems: list[str]) -> str:
    kind, _, arg = selector.partition(":")
    if not (selector == "all" or (kind in ("name", "metadata") and arg)):
        problems.append(
            f"agent_selector {selector!r} is not 'all', 'name:<glob>' or 'metadata:<URI>'"
        )
    return selector


def _union_size(sorted_ranges: Sequence[AddressRange]) -> int:
    total, covered_to = 0, -1
    for r in sorted_ranges:
        first, last = max(int(r.first), covered_to + 1), int(r.last)
        if last >= first:
            total += last - first + 1
            covered_to = last
    return total


def mask_password(url: str) -> str:
    """A database URL with its password replaced by ***, for messages and output."""
    return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", url)
