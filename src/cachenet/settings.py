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

from oslo_config import cfg, types
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from cachenet import ipv6
from cachenet.config_files import config_files_of
from cachenet.errors import ConfigError, IdentityError
from cachenet.identity import (
    DEVICE_SUFFIX_MIN,
    HOST_MAX,
    IFNAMSIZ_MAX,
    host_name_problem,
    parse_mac_prefix,
    shown,
    suffix_bits,
)

GROUP = "cachenet"
BRIDGE_TYPES = ("linuxbridge", "ovs")
ON_STORE_ERROR = ("fail", "skip")
DATABASE_BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb")
TEXT_MAX = 4096  # any string option (PATH_MAX); longer is a pasting accident
UNPARSEABLE_URL = "<unparseable URL>"
# Query parameters psycopg and PyMySQL take a password from.
_SECRET_QUERY_KEYS = ("password", "passwd", "pwd")
_MASK_TOKEN = "cachenetmasked"
# Address space no cache subnet may touch: only unicast, routable-in-a-site ranges work.
_UNUSABLE_NETWORKS = {
    ipaddress.IPv4Network("0.0.0.0/8"): "'this network'",
    ipaddress.IPv4Network("127.0.0.0/8"): "loopback",
    ipaddress.IPv4Network("169.254.0.0/16"): "link-local",
    ipaddress.IPv4Network("224.0.0.0/4"): "multicast",
    ipaddress.IPv4Network("240.0.0.0/4"): "reserved (and broadcast)",
}

_network_opts = [
    cfg.StrOpt("bridge", default="br-cache", help="Name of the cache bridge on each host."),
    cfg.StrOpt(
        "bridge_type",
        default="linuxbridge",
        choices=[
            ("linuxbridge", "a Linux bridge, set up over netlink"),
            ("ovs", "an Open vSwitch bridge, set up over OVSDB"),
        ],
        help="Kind of cache bridge: linuxbridge (netlink) or ovs (Open vSwitch).",
    ),
    cfg.StrOpt(
        "uplink",
        help="Host interface that faces the cache nodes; enslaved to the bridge. "
        "Unset: the bridge has no uplink.",
    ),
    cfg.IntOpt(
        "mtu",
        min=68,
        max=65535,
        help="MTU of the bridge, its uplink and the instances' cache NICs.",
    ),
    cfg.IntOpt(
        "vlan", min=1, max=4094, help="VLAN tag of the cache network (ovs only): access ports."
    ),
    cfg.StrOpt(
        "datapath_type",
        default="system",
        choices=[("system", "the kernel datapath"), ("netdev", "the userspace datapath")],
        help="OVS datapath of the bridge: system (kernel) or netdev (userspace).",
    ),
    cfg.StrOpt(
        "ovsdb_connection",
        default="unix:/var/run/openvswitch/db.sock",
        help="OVSDB server of the local Open vSwitch.",
    ),
    cfg.StrOpt(
        "openflow_listen",
        default="127.0.0.1:6634",
        help="Loopback ADDRESS:PORT of the OVS cache bridge's OpenFlow listener, which "
        "'cachenet bridge ensure' sets (the bridge's controller ptcp:PORT:ADDRESS); through it "
        "nova-compute and the agent manage the port-security flows without root. Not 6633, "
        "where Neutron's OVS agent listens (ovs only).",
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
        help="Prefix of host-side device names (letters, digits, '-'; they are also DHCP "
        "host names); the rest is taken from the instance UUID "
        f"(at least {DEVICE_SUFFIX_MIN} characters, {IFNAMSIZ_MAX} in all).",
    ),
    cfg.ListOpt(
        "subnet",
        default=["10.99.0.0/16"],
        help="The cache pool: one or more IPv4 subnets (CIDRs, comma-separated, not "
        "overlapping), filled in this order. Private or global unicast, not loopback, "
        "link-local, multicast or 0.0.0.0/8. A subnet is added by appending it and "
        "restarting; one still holding ports cannot be removed. IPv6 /64 prefixes may "
        "stand beside them (dual stack): each port's IPv6 address is the EUI-64 of its MAC.",
    ),
    cfg.ListOpt(
        "reserved",
        default=[],
        help="Addresses of the pool never handed to an instance: gateways, DHCP servers, "
        "cache nodes. Single addresses, ranges (a-b) or CIDRs, each inside one subnet. "
        "The network and broadcast addresses are always excluded.",
    ),
    cfg.BoolOpt(
        "isolate_ports",
        default=True,
        help="Instances reach the uplink (cache nodes) but not each other.",
    ),
    cfg.BoolOpt(
        "anti_spoofing",
        default=True,
        help="Drop traffic from an instance that does not use its own MAC and address "
        "(linuxbridge: an nftables table; ovs: OpenFlow rules).",
    ),
    cfg.StrOpt("nic_model", default="virtio", help="Device model of the cache NIC."),
]

_store_opts = [
    cfg.StrOpt(
        "database",
        default="sqlite:////var/lib/cachenet/cachenet.sqlite",
        secret=True,
        help="SQLAlchemy URL of the port store: sqlite:////ABSOLUTE/PATH (one host), "
        "postgresql+psycopg://... or mysql+pymysql://... (shared by many hosts). "
        "Write '@', '/' or ':' in a password as %40, %2F, %3A.",
    ),
    cfg.StrOpt(
        "host",
        default=socket.gethostname(),
        sample_default="<hostname>",
        help=f"Name of this host in the port store (at most {HOST_MAX} characters, no whitespace).",
    ),
    # Connections to a database server (SQLite has no pool): kept for a burst, closed when idle.
    cfg.IntOpt(
        "pool_size",
        default=2,
        min=1,
        max=100,
        help="Connections a process keeps open to the database server during a burst.",
    ),
    cfg.IntOpt(
        "pool_max_overflow",
        default=4,
        min=0,
        max=100,
        help="Connections a process may open beyond pool_size while they are all in use.",
    ),
    cfg.IntOpt(
        "pool_idle_timeout",
        default=10,
        min=1,
        max=3600,
        help="Seconds without a store operation after which a process closes its "
        "connections (a host holds no session between bursts).",
    ),
    cfg.IntOpt(
        "pool_recycle",
        default=600,
        min=10,
        max=86400,
        help="Seconds after which a connection is replaced by a new one at its next use "
        "(a long-running poller reconnects, e.g. to a new primary behind a proxy).",
    ),
    cfg.IntOpt(
        "pool_timeout",
        default=30,
        min=1,
        max=3600,
        help="Seconds an operation waits for a connection when all pool_size + "
        "pool_max_overflow are in use.",
    ),
    cfg.BoolOpt(
        "database_prepared_statements",
        default=True,
        help="Let psycopg prepare statements it runs often (PostgreSQL). Set false behind "
        "PgBouncer in transaction mode (before 1.21), which cannot keep them.",
    ),
]

_dhcp_opts = [
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
        max=86400,
        help="Seconds between the agent's reconciliations (interfaces missing, ports of "
        "vanished domains); also how soon an event missed while the store was down is made up, "
        "and how soon the agent or nova-compute restores lost port security rules.",
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
        choices=[
            ("fail", "the spawn fails with a clear fault"),
            ("skip", "the instance boots without a cache NIC; an error is logged"),
        ],
        help="When the port store cannot be reached at spawn: fail (the spawn fails with a "
        "clear fault) or skip (boot without the cache NIC and log an error).",
    ),
]

_vendordata_opts = [
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

_metrics_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "metrics_listen",
        help="ADDRESS:PORT (IPv6: [ADDRESS]:PORT) on which `cachenet dhcp serve`, "
        "`cachenet agent` and nova-compute (cachenet's driver) serve Prometheus metrics at "
        "/metrics (e.g. 127.0.0.1:9464). Unset: no metrics.",
    ),
]

ALL_OPTS: list[cfg.Opt] = (
    _network_opts
    + _store_opts
    + _dhcp_opts
    + _libvirt_opts
    + _nova_opts
    + _vendordata_opts
    + _metrics_opts
)


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
    openflow_listen: str
    mac_prefix: str
    device_prefix: str
    subnets: tuple[ipaddress.IPv4Network, ...]  # the pool, in filling order
    reserved: tuple[AddressRange, ...]
    isolate_ports: bool
    anti_spoofing: bool
    nic_model: str
    database: str
    host: str
    pool_size: int
    pool_max_overflow: int
    pool_idle_timeout: int
    pool_recycle: int
    pool_timeout: int
    database_prepared_statements: bool
    dhcp_interface: str | None
    dhcp_lease_time: int
    dhcp_router: ipaddress.IPv4Address | None
    dhcp_dns_servers: tuple[ipaddress.IPv4Address, ...]
    dhcp_state_dir: Path
    dnsmasq: str
    dhcp_authoritative: bool
    libvirt_uri: str
    agent_selector: str
    agent_reconcile_interval: int
    flavor_extra_spec: str | None
    image_property: str | None
    exclude_flavors: tuple[str, ...]
    exclude_projects: tuple[str, ...]
    on_store_error: str
    vendordata_listen: ipaddress.IPv4Address | ipaddress.IPv6Address
    vendordata_port: int
    vendordata_allowed_sources: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    metrics_listen: str | None
    # The IPv6 /64 prefixes of ``subnet`` (dual stack); addresses come from MACs (cachenet.ipv6).
    ipv6_prefixes: tuple[ipaddress.IPv6Network, ...] = ()

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
        # Under the option's name and as the option is written, as before pools.
        del values["subnets"], values["ipv6_prefixes"]
        values["subnet"] = ",".join(str(s) for s in self.subnets + self.ipv6_prefixes)
        return values


def load_settings(
    config_files: Sequence[str] | None = None, overrides: dict[str, object] | None = None
) -> Settings:
    """Read and validate settings from config files (or none: defaults).

    With ``config_files`` None, ``$CACHENET_CONFIG`` (colon-separated) is used, else
    /etc/cachenet/cachenet.conf if it exists, else the defaults alone.
    ``overrides`` set options by name, as a test or a command-line flag would.
    """
    files = config_files_of(config_files)
    for path in files:
        if not os.path.isfile(path):
            raise ConfigError([f"config file {path} does not exist"])
    conf = cfg.ConfigOpts()
    register_opts(conf)
    try:
        conf(args=[], project="cachenet", default_config_files=files, use_env=False)
    except (cfg.ConfigFilesNotFoundError, cfg.ConfigFileParseError) as exc:
        raise ConfigError([str(exc)]) from exc
    problems: list[str] = []
    for name, value in (overrides or {}).items():
        try:
            conf.set_override(name, value, group=GROUP)
        except ValueError as exc:  # oslo.config checks an override's type as it is set
            problems.append(f"{name} {_shown(value)} is not valid: {exc}")
    if problems:
        raise ConfigError(problems)
    return settings_from_conf(conf)


def make_settings(**overrides: object) -> Settings:
    """Defaults plus ``overrides``, validated; no config file is read."""
    return load_settings([], overrides)


def settings_from_conf(conf: cfg.ConfigOpts) -> Settings:
    """Parse and validate the ``[cachenet]`` group of an oslo.config ``conf``.

    Every problem is collected, so a config with three mistakes gets three
    messages in one ``ConfigError`` rather than one per restart. Each message
    starts with the option's name.
    """
    problems: list[str] = []
    group = _read_group(conf, problems)
    settings = _parse(group, problems)
    if settings is None or problems:
        raise ConfigError(problems)
    return settings


def _read_group(conf: cfg.ConfigOpts, problems: list[str]) -> dict[str, Any]:
    """Every option's value as oslo.config types it; None where that failed (a problem)."""
    values: dict[str, Any] = {}
    for opt in ALL_OPTS:
        try:
            value = conf[GROUP][opt.dest]
        except (cfg.ConfigFileValueError, ValueError) as exc:
            problems.append(_typed_value_problem(conf, opt, exc))
            values[opt.dest] = None
            continue
        problem = _untyped_value_problem(conf, opt, value)
        if problem:
            problems.append(problem)
            value = None
        values[opt.dest] = value
    return values


def _typed_value_problem(conf: cfg.ConfigOpts, opt: cfg.Opt, exc: Exception) -> str:
    """One line naming ``opt`` and the value oslo.config's type refused."""
    reason = str(exc).rpartition(" is not valid: ")[2]  # drop oslo's file location preamble
    low, high = getattr(opt.type, "min", None), getattr(opt.type, "max", None)
    choices = getattr(opt.type, "choices", None)
    if choices:
        reason = "is not one of " + ", ".join(map(str, choices))
    elif reason.startswith("Should be") and low is not None and high is not None:
        reason = f"is outside {low}-{high}"
    else:
        reason = f"is not valid: {reason}"
    raw = None if opt.secret else _raw_value(conf, opt)
    if raw is None:
        return f"{opt.dest} {reason}"
    shown = raw if re.fullmatch(r"-?\d{1,30}", raw) else _shown(raw)  # numbers unquoted
    return f"{opt.dest} {shown} {reason}"


def _raw_value(conf: cfg.ConfigOpts, opt: cfg.Opt) -> str | None:
    """The text a config file gave ``opt``, to show it in a message; None if unknown."""
    try:  # oslo.config has no public accessor for a value its type refuses
        namespace = conf._namespace
        if namespace is None:  # no config file parsed
            return None
        raw, _location = opt._get_from_namespace(namespace, GROUP)
    except Exception:
        return None
    return raw if isinstance(raw, str) else None


def _untyped_value_problem(conf: cfg.ConfigOpts, opt: cfg.Opt, value: object) -> str | None:
    """What oslo.config lets through: an empty number, control characters, huge text."""
    if value is None:
        location = conf.get_location(opt.dest, GROUP)
        set_by_user = getattr(getattr(location, "location", None), "is_user_controlled", False)
        if set_by_user and isinstance(opt.type, types.Integer):
            # ``mtu =`` reads as None, not as "unset": say so rather than fail later.
            return f"{opt.dest} is empty: give a number or leave the option out"
        return None
    for text in value if isinstance(value, list) else [value]:
        if not isinstance(text, str):
            continue
        shown = "" if opt.secret else f" {_shown(text)}"
        if len(text) > TEXT_MAX:
            return f"{opt.dest} is {len(text)} characters long, at most {TEXT_MAX}"
        if any(not ch.isprintable() for ch in text):
            return f"{opt.dest}{shown} contains control characters"
        if isinstance(value, list) and not text.strip():
            return f"{opt.dest} has an empty item (a stray ',')"
    return None


def _shown(value: object) -> str:
    return shown(value, limit=60)


def _parse(v: dict[str, Any], problems: list[str]) -> Settings | None:
    """The ``Settings`` of the values read, or None with ``problems`` saying why."""
    mac_prefix = _check_network(v, problems)
    subnets = _parse_subnets(v["subnet"], problems)
    ipv6_prefixes = _parse_ipv6_prefixes(v["subnet"] or [], problems)
    reserved = _parse_reserved(v["reserved"] or [], subnets, problems)
    _check_store(v, problems)
    _check_dhcp(v, problems)
    _check_agent_and_nova(v, problems)
    _check_vendordata_listen(v["vendordata_listen"], problems)
    _check_metrics_listen(v["metrics_listen"], problems)
    sources = _parse_sources(v["vendordata_allowed_sources"], problems)
    if subnets:
        _check_address_plan(v, subnets, reserved, mac_prefix, problems)
    if problems or not subnets or mac_prefix is None:
        return None
    return _settings(v, mac_prefix, subnets, reserved, sources, ipv6_prefixes)


def _settings(
    v: dict[str, Any],
    mac_prefix: str,
    subnets: tuple[ipaddress.IPv4Network, ...],
    reserved: tuple[AddressRange, ...],
    sources: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    ipv6_prefixes: tuple[ipaddress.IPv6Network, ...],
) -> Settings:
    return Settings(
        bridge=str(v["bridge"]),
        bridge_type=str(v["bridge_type"]),
        uplink=v["uplink"],
        mtu=v["mtu"],
        vlan=v["vlan"],
        datapath_type=str(v["datapath_type"]),
        ovsdb_connection=str(v["ovsdb_connection"]),
        openflow_listen=str(v["openflow_listen"]),
        mac_prefix=mac_prefix,
        device_prefix=str(v["device_prefix"]),
        subnets=subnets,
        reserved=reserved,
        isolate_ports=bool(v["isolate_ports"]),
        anti_spoofing=bool(v["anti_spoofing"]),
        nic_model=str(v["nic_model"]),
        database=str(v["database"]),
        host=str(v["host"]),
        pool_size=int(v["pool_size"]),
        pool_max_overflow=int(v["pool_max_overflow"]),
        pool_idle_timeout=int(v["pool_idle_timeout"]),
        pool_recycle=int(v["pool_recycle"]),
        pool_timeout=int(v["pool_timeout"]),
        database_prepared_statements=bool(v["database_prepared_statements"]),
        dhcp_interface=v["dhcp_interface"],
        dhcp_lease_time=int(v["dhcp_lease_time"]),
        dhcp_router=_address(v["dhcp_router"]),
        dhcp_dns_servers=tuple(ipaddress.IPv4Address(s) for s in v["dhcp_dns_servers"]),
        dhcp_state_dir=Path(str(v["dhcp_state_dir"])),
        dnsmasq=str(v["dnsmasq"]),
        dhcp_authoritative=bool(v["dhcp_authoritative"]),
        libvirt_uri=str(v["libvirt_uri"]),
        agent_selector=str(v["agent_selector"]),
        agent_reconcile_interval=int(v["agent_reconcile_interval"]),
        flavor_extra_spec=v["flavor_extra_spec"],
        image_property=v["image_property"],
        exclude_flavors=tuple(v["exclude_flavors"]),
        exclude_projects=tuple(v["exclude_projects"]),
        on_store_error=str(v["on_store_error"]),
        vendordata_listen=ipaddress.ip_address(str(v["vendordata_listen"])),
        vendordata_port=int(v["vendordata_port"]),
        vendordata_allowed_sources=sources,
        metrics_listen=v["metrics_listen"],
        ipv6_prefixes=ipv6_prefixes,
    )


def _check_network(v: dict[str, Any], problems: list[str]) -> str | None:
    """Bridge, interfaces, OVS and NIC options; returns the canonical MAC prefix."""
    for name in ("bridge", "uplink", "dhcp_interface"):
        if v[name] is not None:
            reason = linux_ifname_problem(str(v[name]))
            if reason:
                problems.append(
                    f"{name} {_shown(v[name])} is not a valid Linux interface name: {reason}"
                )
    if v["vlan"] is not None and v["bridge_type"] == "linuxbridge":
        problems.append(
            "vlan is only supported with bridge_type ovs (a Linux bridge has no access ports)"
        )
    if v["ovsdb_connection"] is not None and not re.fullmatch(
        r"unix:\S+|(tcp|ssl):\S+:\d{1,5}", str(v["ovsdb_connection"])
    ):
        problems.append(
            f"ovsdb_connection {_shown(v['ovsdb_connection'])} is not unix:PATH, "
            "tcp:HOST:PORT or ssl:HOST:PORT"
        )
    if v["openflow_listen"] is not None:
        reason = _loopback_listen_problem(str(v["openflow_listen"]))
        if reason:
            problems.append(f"openflow_listen {_shown(v['openflow_listen'])} {reason}")
    if v["nic_model"] is not None and not re.fullmatch(
        r"[a-z0-9][a-z0-9_-]{0,63}", str(v["nic_model"])
    ):
        problems.append(f"nic_model {_shown(v['nic_model'])} is not a device model name")
    if v["device_prefix"] is not None:
        _check_device_prefix(str(v["device_prefix"]), problems)
    return None if v["mac_prefix"] is None else _parse_mac_prefix(v["mac_prefix"], problems)


def _check_store(v: dict[str, Any], problems: list[str]) -> None:
    if v["database"] is not None:
        problem = database_problem(str(v["database"]))
        if problem:
            problems.append(problem)
    if v["host"] is not None:
        reason = host_name_problem(str(v["host"]))
        if reason:
            problems.append(f"host {_shown(v['host'])} is not a host name: {reason}")


def _check_dhcp(v: dict[str, Any], problems: list[str]) -> None:
    state_dir = v["dhcp_state_dir"]
    if state_dir is not None and not os.path.isabs(str(state_dir)):
        problems.append(
            f"dhcp_state_dir {_shown(state_dir)} is not an absolute path "
            "(a relative one would follow each process's working directory)"
        )
    if v["dnsmasq"] is not None and not str(v["dnsmasq"]).strip():
        problems.append("dnsmasq is empty: give the dnsmasq executable or leave the option out")


def _check_agent_and_nova(v: dict[str, Any], problems: list[str]) -> None:
    uri = v["libvirt_uri"]
    if uri is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S*", str(uri)):
        problems.append(f"libvirt_uri {_shown(uri)} is not a libvirt URI (e.g. qemu:///system)")
    if v["agent_selector"] is not None:
        _checked_selector(str(v["agent_selector"]), problems)
    for name in ("flavor_extra_spec", "image_property"):
        key = v[name]
        if key is not None and not re.fullmatch(r"\S{1,255}", str(key)):
            problems.append(
                f"{name} {_shown(key)} is not a key (1 to 255 characters, no whitespace); "
                "leave the option out for no condition"
            )


def _check_address_plan(
    v: dict[str, Any],
    subnets: tuple[ipaddress.IPv4Network, ...],
    reserved: tuple[AddressRange, ...],
    mac_prefix: str | None,
    problems: list[str],
) -> None:
    """What needs the pool with reserved, the router, DNS servers or the MAC prefix."""
    # The IPAM layer does the range arithmetic; it imports this module, hence here.
    from cachenet.store.addresses import AddressPool

    pool = AddressPool.of(subnets, reserved)
    for space in pool.spaces:
        if space.size <= 0:
            problems.append(
                f"subnet {space.subnet} has no address left for instances once the network, "
                "broadcast and reserved addresses are taken out"
            )
    router = _address(v["dhcp_router"])
    if router is not None and pool.space_of(router) is None:
        problems.append(f"dhcp_router {router} is outside the {pool}")
    servers = [("dhcp_dns_servers", _address(a)) for a in v["dhcp_dns_servers"] or []]
    for name, address in ([("dhcp_router", router)] if router else []) + servers:
        holder = None if address is None else pool.space_of(address)
        if holder is None or address is None:
            continue  # outside the pool: a routed server, nothing the store hands out
        if not holder.is_host(address):
            problems.append(
                f"{name} {address} is the network or broadcast address of {holder.subnet}"
            )
        elif not any(address in r for r in reserved):
            # The store would hand it to an instance too.
            problems.append(
                f"{name} {address} is an address the store hands to instances: "
                f"add it to reserved (or use one outside the {pool})"
            )
    mac_space = 0 if mac_prefix is None else 1 << suffix_bits(mac_prefix)
    if 0 < mac_space < pool.size:
        problems.append(
            f"mac_prefix {mac_prefix} leaves {mac_space} MAC addresses for the "
            f"{pool.size} instance addresses of the {pool}: use a shorter "
            "prefix or fewer addresses"
        )


def linux_ifname_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Linux interface name (the kernel's dev_valid_name), or None.

    The kernel counts bytes, not characters; anything but printable ASCII is
    refused too, as the tools around a bridge (dnsmasq, libvirt, OVS) are not
    all safe with it.
    """
    if not name:
        return "empty"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > IFNAMSIZ_MAX:
        return f"{size} bytes, at most {IFNAMSIZ_MAX}"
    if not (name.isascii() and name.isprintable()):
        return "only printable ASCII characters are allowed"
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


def _loopback_listen_problem(text: str) -> str | None:
    """Why ``text`` is not a loopback ADDRESS:PORT, or None: an OpenFlow listener takes
    commands from whoever connects, so it must never be reachable from another host."""
    host, _, port = text.rpartition(":")
    try:
        if not ipaddress.ip_address(host.strip("[]")).is_loopback:
            return "is not on a loopback address (anyone reaching it could change the flows)"
    except ValueError:
        return "is not ADDRESS:PORT"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return "has no port between 1 and 65535"
    return None


def split_listen(text: str) -> tuple[str, int]:
    """ADDRESS:PORT (an IPv6 address in brackets) as (address, port); ValueError if not."""
    host, _, port = text.rpartition(":")
    address = ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    if isinstance(address, ipaddress.IPv6Address) != host.startswith("["):
        raise ValueError(f"{text} is not ADDRESS:PORT")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text} has no port between 1 and 65535")
    return str(address), int(port)


def _check_metrics_listen(value: object, problems: list[str]) -> None:
    if value is None:
        return
    try:
        split_listen(str(value))
    except ValueError:
        problems.append(
            f"metrics_listen {_shown(value)} is not ADDRESS:PORT ([ADDRESS]:PORT for IPv6) "
            "with a port between 1 and 65535"
        )


def _check_device_prefix(prefix: str, problems: list[str]) -> None:
    # Device names are also the DHCP host names of the reservations: dnsmasq
    # ignores a host name that is not letters, digits and inner '-'. Not empty:
    # the bridge tells instance ports from its uplink by this prefix.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", prefix):
        problems.append(
            f"device_prefix {_shown(prefix)} must be ASCII letters, digits and '-' (not first), "
            "at least one: it marks instance ports, and device names are also DHCP host names"
        )
        return
    room = IFNAMSIZ_MAX - len(prefix)
    if room < DEVICE_SUFFIX_MIN:
        problems.append(
            f"device_prefix {prefix!r} is {len(prefix)} characters: device names are at most "
            f"{IFNAMSIZ_MAX} characters and need {DEVICE_SUFFIX_MIN} for the instance, so the "
            f"prefix can have at most {IFNAMSIZ_MAX - DEVICE_SUFFIX_MIN}"
        )


def _check_vendordata_listen(value: object, problems: list[str]) -> None:
    if value is not None and ipaddress.ip_address(str(value)).is_link_local:
        problems.append(
            f"vendordata_listen {value} is link-local: it needs an interface to bind "
            "to; use a global or loopback address"
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
            problems.append(f"vendordata_allowed_sources {_shown(item)} is not a network: {exc}")
    if not items:
        problems.append(
            "vendordata_allowed_sources is empty: no host could ask for vendor data "
            "(give the CIDRs of the nova-api and nova-compute hosts)"
        )
    return tuple(networks)


def _parse_subnets(
    items: Sequence[str] | None, problems: list[str]
) -> tuple[ipaddress.IPv4Network, ...]:
    """The pool; empty when the option is unset or any subnet is invalid (a problem)."""
    if items is None:
        return ()
    if not items:
        problems.append("subnet is empty: give at least one IPv4 subnet (CIDR)")
        return ()
    items = [item for item in items if not _is_ipv6(item)]
    if not items:  # the port store's rows and the Port need an IPv4 address today
        problems.append(
            "subnet holds IPv6 prefixes only: an IPv6-only pool is not supported yet; "
            "list an IPv4 subnet beside them (dual stack)"
        )
        return ()
    subnets = [_parse_subnet(item, problems) for item in items]
    valid = [s for s in subnets if s is not None]
    for i, subnet in enumerate(valid):
        for other in valid[:i]:
            if subnet.overlaps(other):
                problems.append(
                    f"subnet {subnet} overlaps {other}: the subnets of the pool must be disjoint"
                )
    return tuple(valid) if len(valid) == len(subnets) else ()


def _is_ipv6(text: str) -> bool:
    return ":" in text


def _parse_ipv6_prefixes(
    items: Sequence[str], problems: list[str]
) -> tuple[ipaddress.IPv6Network, ...]:
    """The IPv6 prefixes of the ``subnet`` list (each a /64, distinct)."""
    prefixes: list[ipaddress.IPv6Network] = []
    for item in filter(_is_ipv6, items):
        try:
            prefix = ipaddress.IPv6Network(item.strip(), strict=True)
        except ValueError as exc:
            problems.append(f"subnet {_shown(item)} is not an IPv6 prefix: {exc}")
            continue
        problem = ipv6.prefix_problem(prefix)
        if problem is None and prefix in prefixes:
            problem = f"subnet {prefix} is listed twice: the prefixes of the pool must differ"
        if problem:
            problems.append(problem)
        else:
            prefixes.append(prefix)
    return tuple(prefixes)


def _parse_subnet(text: str, problems: list[str]) -> ipaddress.IPv4Network | None:
    try:
        subnet = ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError as exc:
        problems.append(f"subnet {_shown(text)} is not an IPv4 network: {exc}")
        return None
    if subnet.prefixlen > 30:
        problems.append(f"subnet {subnet} has no room for instances (use a /30 or larger)")
        return None
    for unusable, kind in _UNUSABLE_NETWORKS.items():
        if subnet.overlaps(unusable):
            problems.append(
                f"subnet {subnet} overlaps the {kind} range {unusable}: use a private "
                "(10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) or global unicast range"
            )
            return None
    return subnet


def _parse_reserved(
    items: Iterable[str], subnets: tuple[ipaddress.IPv4Network, ...], problems: list[str]
) -> tuple[AddressRange, ...]:
    ranges = []
    for item in items:
        try:
            r = parse_address_range(item)
        except ValueError as exc:
            problems.append(f"reserved {_shown(item)}: {exc}")
            continue
        if subnets and not any(r.first in s and r.last in s for s in subnets):
            where = "the subnet" if len(subnets) == 1 else "every subnet of the pool"
            problems.append(
                f"reserved {_shown(item)} is outside {where} "
                f"{', '.join(map(str, subnets))} (a range lies inside one subnet)"
            )
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


def _address(value: object) -> ipaddress.IPv4Address | None:
    """An address oslo.config's IPOpt already checked, as an ``IPv4Address``."""
    return None if value is None else ipaddress.IPv4Address(str(value))


def _checked_selector(selector: str, problems: list[str]) -> str:
    kind, _, arg = selector.partition(":")
    if not (selector == "all" or (kind in ("name", "metadata") and arg)):
        problems.append(
            f"agent_selector {_shown(selector)} is not 'all', 'name:<glob>' or 'metadata:<URI>'"
        )
    return selector


def parse_database_url(url: str) -> URL | None:
    """``url`` parsed by SQLAlchemy, or None when it is not a URL with unambiguous parts.

    An '@' left in the host means the password held a raw '@', so where the
    password ends (and what of it would be shown as the host) is a guess.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return None
    if parsed.host and re.search(r"[@/\s]", parsed.host):
        return None
    return parsed


def mask_password(url: str) -> str:
    """A database URL fit for messages, logs and output: no password anywhere in it.

    The password and any ``password`` query parameter become ***; a value that
    does not parse as a URL is shown as nothing of itself.
    """
    parsed = parse_database_url(url)
    if parsed is None:
        return UNPARSEABLE_URL
    secret = {key: _MASK_TOKEN for key in parsed.query if key.lower() in _SECRET_QUERY_KEYS}
    if secret:  # a token URL quoting leaves alone, so the query reads password=***
        parsed = parsed.update_query_dict(secret)
    return parsed.render_as_string(hide_password=True).replace(_MASK_TOKEN, "***")


def database_secrets(url: str) -> list[str]:
    """The passwords ``url`` holds (user part and query), to scrub from a driver's message."""
    parsed = parse_database_url(url)
    if parsed is None:
        return []
    found = [parsed.password] + [
        value for key, value in parsed.query.items() if key.lower() in _SECRET_QUERY_KEYS
    ]
    flat = [v for item in found for v in ([item] if isinstance(item, str) else item or [])]
    return [v for v in flat if v]


def database_problem(url: str) -> str | None:
    """Why ``url`` cannot be the port store (one line, no secret in it), or None."""
    if not url.strip():
        return "database is empty"
    parsed = parse_database_url(url)
    if parsed is None:
        return (
            "database is not a SQLAlchemy URL (driver://user:password@host/name; "
            "write '@', '/' or ':' in the password as %40, %2F, %3A)"
        )
    backend = parsed.get_backend_name()
    if backend not in DATABASE_BACKENDS:
        return f"database backend {backend!r} is not sqlite, postgresql or mysql"
    if backend != "sqlite":
        return _multi_host_problem(url, parsed)
    path = parsed.database or ""
    if path in ("", ":memory:") or parsed.query.get("mode") == "memory":
        return (
            f"database {mask_password(url)} is an in-memory SQLite store: every process "
            "would get its own; use sqlite:////ABSOLUTE/PATH"
        )
    if not os.path.isabs(path):
        return (
            f"database {mask_password(url)} has a relative path: every process would find "
            "its own store from its working directory; use sqlite:////ABSOLUTE/PATH"
        )
    return None


def _multi_host_problem(url: str, parsed: URL) -> str | None:
    """libpq splits host= at commas but takes "db1:5432" as a host name."""
    hosts = parsed.query.get("host", ())
    for host in [hosts] if isinstance(hosts, str) else hosts:
        if "," in host and ":" in host:
            return (
                f"database {mask_password(url)} gives several host:port in one host=; "
                "write one per server: ?host=db1:5432&host=db2:5432"
            )
    return None
