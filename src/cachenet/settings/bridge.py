"""The host side: the cache bridge, its uplink, and the instance NICs plugged into it
(their device names, model and port security). The MTU is the network's (network.py)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from oslo_config import cfg

from cachenet.identity import DEVICE_SUFFIX_MIN, IFNAMSIZ_MAX
from cachenet.settings.reading import (
    Area,
    Values,
    all_read,
    check_ifname,
    shown_value,
)

OPTS: list[cfg.Opt] = [
    cfg.StrOpt("bridge", default="br-cache", help="Name of the cache bridge on each host."),
    cfg.StrOpt(
        "bridge_type",
        default="linuxbridge",
        # One choice per backend registered in cachenet.bridge.BRIDGE_TYPES.
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
        "device_prefix",
        default="cache-",
        help="Prefix of host-side device names (letters, digits, '-'; they are also DHCP "
        "host names); the rest is taken from the instance UUID "
        f"(at least {DEVICE_SUFFIX_MIN} characters, {IFNAMSIZ_MAX} in all).",
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


@dataclass(frozen=True)
class BridgeSettings(Area):
    """The cache bridge of each host and the instance NICs on it."""

    name: str = field(metadata={"option": "bridge"})
    bridge_type: str
    uplink: str | None
    vlan: int | None
    datapath_type: str
    ovsdb_connection: str
    openflow_listen: str
    device_prefix: str
    isolate_ports: bool
    anti_spoofing: bool
    nic_model: str


def parse(v: Values, problems: list[str]) -> BridgeSettings | None:
    """The bridge of the values read, or None with ``problems`` saying why."""
    before = len(problems)
    check_ifname(v, "bridge", problems)
    check_ifname(v, "uplink", problems)
    if v["vlan"] is not None and v["bridge_type"] == "linuxbridge":
        problems.append(
            "vlan is only supported with bridge_type ovs (a Linux bridge has no access ports)"
        )
    if v["ovsdb_connection"] is not None and not re.fullmatch(
        r"unix:\S+|(tcp|ssl):\S+:\d{1,5}", str(v["ovsdb_connection"])
    ):
        problems.append(
            f"ovsdb_connection {shown_value(v['ovsdb_connection'])} is not unix:PATH, "
            "tcp:HOST:PORT or ssl:HOST:PORT"
        )
    if v["openflow_listen"] is not None:
        reason = _loopback_listen_problem(str(v["openflow_listen"]))
        if reason:
            problems.append(f"openflow_listen {shown_value(v['openflow_listen'])} {reason}")
    if v["nic_model"] is not None and not re.fullmatch(
        r"[a-z0-9][a-z0-9_-]{0,63}", str(v["nic_model"])
    ):
        problems.append(f"nic_model {shown_value(v['nic_model'])} is not a device model name")
    if v["device_prefix"] is not None:
        _check_device_prefix(str(v["device_prefix"]), problems)
    if len(problems) > before or not all_read(v, OPTS):
        return None
    return BridgeSettings(
        name=str(v["bridge"]),
        bridge_type=str(v["bridge_type"]),
        uplink=v["uplink"],
        vlan=v["vlan"],
        datapath_type=str(v["datapath_type"]),
        ovsdb_connection=str(v["ovsdb_connection"]),
        openflow_listen=str(v["openflow_listen"]),
        device_prefix=str(v["device_prefix"]),
        isolate_ports=bool(v["isolate_ports"]),
        anti_spoofing=bool(v["anti_spoofing"]),
        nic_model=str(v["nic_model"]),
    )


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


def _check_device_prefix(prefix: str, problems: list[str]) -> None:
    # Device names are also the DHCP host names of the reservations: dnsmasq
    # ignores a host name that is not letters, digits and inner '-'. Not empty:
    # the bridge tells instance ports from its uplink by this prefix.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", prefix):
        problems.append(
            f"device_prefix {shown_value(prefix)} must be ASCII letters, digits and '-' "
            "(not first), at least one: it marks instance ports, and device names are also "
            "DHCP host names"
        )
        return
    room = IFNAMSIZ_MAX - len(prefix)
    if room < DEVICE_SUFFIX_MIN:
        problems.append(
            f"device_prefix {prefix!r} is {len(prefix)} characters: device names are at most "
            f"{IFNAMSIZ_MAX} characters and need {DEVICE_SUFFIX_MIN} for the instance, so the "
            f"prefix can have at most {IFNAMSIZ_MAX - DEVICE_SUFFIX_MIN}"
        )
