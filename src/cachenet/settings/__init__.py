"""cachenet's options, in the ``[cachenet]`` group, validated at load, one value per area.

Options are oslo.config options so that they can live in nova.conf beside
Nova's own, or in /etc/cachenet/cachenet.conf for plain libvirt hosts. Each
area (a module of this package) declares its options with oslo.config's types
and parses them into a small frozen value; the rest of cachenet never reads
oslo.config and each module is handed the area values it needs. A bad value is
reported once, at start: every problem of every area in one ``ConfigError``.

| area | module | value | read by |
|---|---|---|---|
| network | ``network.py`` | ``NetworkSettings`` | the store (IPAM), bridge, XML, DHCP, guest |
| bridge | ``bridge.py`` | ``BridgeSettings`` | bridge backends, domain XML, the store, doctor |
| store | ``store.py`` | ``StoreSettings`` | ``open_store``; every process (``host``) |
| DHCP | ``dhcp.py`` | ``DhcpSettings`` | ``dhcp serve`` |
| agent | ``agent.py`` | ``AgentSettings`` | ``agent``, ``ports gc``, doctor, nova-compute |
| vendordata | ``vendordata.py`` | ``VendordataSettings`` | ``vendordata serve`` |
| metrics | ``metrics.py`` | ``MetricsSettings`` | ``dhcp serve``, ``agent``, nova-compute |

Nova's own options (which instances get a cache NIC) are in ``cachenet.nova.options``,
registered only by cachenet's Nova driver. Checks that span areas are in
``_check_across_areas`` below.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields

from oslo_config import cfg

from cachenet.config_files import config_files_of
from cachenet.errors import ConfigError
from cachenet.identity import linux_ifname_problem
from cachenet.settings import agent, bridge, dhcp, metrics, network, store, vendordata
from cachenet.settings.agent import AgentSettings
from cachenet.settings.bridge import BridgeSettings
from cachenet.settings.dhcp import DhcpSettings
from cachenet.settings.metrics import MetricsSettings, split_listen
from cachenet.settings.network import NetworkSettings
from cachenet.settings.reading import (
    GROUP,
    Area,
    Values,
    read_options,
    shown_value,
)
from cachenet.settings.store import (
    StoreSettings,
    database_problem,
    database_secrets,
    mask_password,
)
from cachenet.settings.vendordata import VendordataSettings
from cachenet.store.addresses import AddressPool

# Every option of the ``cachenet`` command, the agent and ``dhcp serve`` (Nova's: nova/options.py).
ALL_OPTS: list[cfg.Opt] = (
    network.OPTS
    + bridge.OPTS
    + store.OPTS
    + dhcp.OPTS
    + agent.OPTS
    + vendordata.OPTS
    + metrics.OPTS
)


@dataclass(frozen=True)
class Settings:
    """Every area's validated value, for the processes that need several of them."""

    network: NetworkSettings
    bridge: BridgeSettings
    store: StoreSettings
    dhcp: DhcpSettings
    agent: AgentSettings
    vendordata: VendordataSettings
    metrics: MetricsSettings

    def public_dict(self) -> dict[str, object]:
        """Every option and its value as plain values, the database password masked."""
        areas: list[Area] = [getattr(self, f.name) for f in fields(self)]
        return {name: value for area in areas for name, value in area.public_items()}


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Entry point of oslo-config-generator (namespace ``cachenet``)."""
    return [(GROUP, ALL_OPTS)]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the ``[cachenet]`` group on ``conf`` (cachenet's own or Nova's CONF)."""
    conf.register_opts(ALL_OPTS, group=GROUP)


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
            problems.append(f"{name} {shown_value(value)} is not valid: {exc}")
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
    settings = parse_settings(conf, problems)
    if settings is None or problems:
        raise ConfigError(problems)
    return settings


def parse_settings(conf: cfg.ConfigOpts, problems: list[str]) -> Settings | None:
    """Every area of ``conf``'s ``[cachenet]`` group, or None with ``problems`` saying
    why; for callers adding areas of their own to the same one message (Nova's)."""
    v = read_options(conf, ALL_OPTS, problems)
    net, host_bridge = network.parse(v, problems), bridge.parse(v, problems)
    port_store, dhcp_node = store.parse(v, problems), dhcp.parse(v, problems)
    libvirt_agent, vendor = agent.parse(v, problems), vendordata.parse(v, problems)
    metrics_listener = metrics.parse(v, problems)
    _check_across_areas(v, net, problems)
    if not (
        net and host_bridge and port_store and dhcp_node and libvirt_agent and vendor
        and metrics_listener
    ):  # fmt: skip
        return None
    return Settings(
        net, host_bridge, port_store, dhcp_node, libvirt_agent, vendor, metrics_listener
    )


def _check_across_areas(v: Values, net: NetworkSettings | None, problems: list[str]) -> None:
    """What an area cannot check alone: the router and DNS servers DHCP hands out,
    against the pool of addresses the store hands out."""
    if net is None:
        return
    address_pool = AddressPool.from_settings(net)
    for name, address in dhcp.handed_addresses(v):
        holder = address_pool.space_of(address)
        if holder is None:
            if name == "dhcp_router":
                problems.append(f"dhcp_router {address} is outside the {address_pool}")
            continue  # a DNS server outside the pool: routed, nothing the store hands out
        if not holder.is_host(address):
            problems.append(
                f"{name} {address} is the network or broadcast address of {holder.subnet}"
            )
        elif not any(address in r for r in net.reserved):
            # The store would hand it to an instance too.
            problems.append(
                f"{name} {address} is an address the store hands to instances: "
                f"add it to reserved (or use one outside the {address_pool})"
            )


__all__ = [
    "ALL_OPTS",
    "GROUP",
    "AgentSettings",
    "BridgeSettings",
    "DhcpSettings",
    "MetricsSettings",
    "NetworkSettings",
    "Settings",
    "StoreSettings",
    "VendordataSettings",
    "database_problem",
    "database_secrets",
    "linux_ifname_problem",
    "load_settings",
    "make_settings",
    "mask_password",
    "parse_settings",
    "register_opts",
    "settings_from_conf",
    "split_listen",
]
