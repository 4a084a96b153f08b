"""The cache bridge as an Open vSwitch bridge, through OVSDB (ovsdbapp).

Everything ``ensure`` changes is one OVSDB transaction: it all happens or
none of it does, so a failure never leaves a half-made bridge.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from pyroute2 import IPRoute

from cachenet.bridge.base import MANAGED_MARK, BridgeBackend, BridgeStatus
from cachenet.errors import BridgeError, PrivilegeError
from cachenet.settings import Settings

with warnings.catch_warnings():
    # ovs.poller imports eventlet only to learn whether it is monkey-patched;
    # eventlet then warns, in eight lines on stderr, that it is deprecated.
    # Its warning class lives in eventlet itself, so match message and module.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated", module=r"ovs\.poller")
    from ovsdbapp.backend.ovs_idl import connection
    from ovsdbapp.schema.open_vswitch import impl_idl

OVSDB_TIMEOUT = 10  # seconds for one OVSDB transaction


class OvsBridge(BridgeBackend):
    """``settings.bridge`` in the local Open vSwitch, with the uplink as a (VLAN access) port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._api: impl_idl.OvsdbIdl | None = None

    @property
    def api(self) -> impl_idl.OvsdbIdl:
        if self._api is None:
            self._api = _connect(self.settings.ovsdb_connection)
        return self._api

    def ensure(self) -> list[str]:
        self._check_preconditions()
        changes = self._planned_changes()
        if not changes:
            return []
        name, uplink = self.settings.bridge, self.settings.uplink
        with self.api.transaction(check_error=True) as txn:
            txn.add(
                self.api.add_br(name, may_exist=True, datapath_type=self.settings.datapath_type)
            )
            txn.add(self.api.db_set("Bridge", name, ("external_ids", {MANAGED_MARK: "true"})))
            if self.settings.mtu:
                txn.add(self.api.db_set("Interface", name, ("mtu_request", self.settings.mtu)))
            if uplink:
                txn.add(self.api.add_port(name, uplink, may_exist=True))
                tag = self.settings.vlan if self.settings.vlan is not None else []
                txn.add(self.api.db_set("Port", uplink, ("tag", tag)))
                if self.settings.mtu:
                    txn.add(
                        self.api.db_set("Interface", uplink, ("mtu_request", self.settings.mtu))
                    )
        return changes

    def _check_preconditions(self) -> None:
        name, uplink = self.settings.bridge, self.settings.uplink
        if not self.api.br_exists(name).execute(check_error=True) and _kernel_kind(name):
            raise BridgeError(
                f"{name} exists as a {_kernel_kind(name)} device, not an Open vSwitch bridge"
            )
        if uplink is None:
            return
        if _kernel_kind(uplink) is None and not self._is_port(uplink):
            raise BridgeError(f"uplink {uplink} does not exist")
        owner = self.api.port_to_br(uplink).execute(check_error=False)
        if owner and owner != name:
            raise BridgeError(f"uplink {uplink} is already a port of OVS bridge {owner}")
        master = _kernel_master(uplink)
        if master:
            raise BridgeError(f"uplink {uplink} is already enslaved to {master}")

    def _planned_changes(self) -> list[str]:
        """What ensure would change; empty when the bridge is already as configured."""
        name, uplink, mtu = self.settings.bridge, self.settings.uplink, self.settings.mtu
        if not self.api.br_exists(name).execute(check_error=True):
            return [f"created OVS bridge {name} (datapath {self.settings.datapath_type})"] + (
                [f"added uplink {uplink} (vlan {self.settings.vlan})"] if uplink else []
            )
        changes = []
        bridge = self._row("Bridge", name)
        if bridge.external_ids.get(MANAGED_MARK) != "true":
            changes.append(f"marked {name} as managed by cachenet")
        if mtu and not _mtu_is(self._row("Interface", name), mtu):
            changes.append(f"set MTU of {name} to {mtu}")
        if uplink:
            if not self._is_port(uplink):
                changes.append(f"added uplink {uplink}")
            elif list(self._row("Port", uplink).tag) != _as_list(self.settings.vlan):
                changes.append(f"set VLAN tag of {uplink} to {self.settings.vlan}")
            uplink_mtu_ok = not self._is_port(uplink) or _mtu_is(
                self._row("Interface", uplink), mtu
            )
            if mtu and not uplink_mtu_ok:
                changes.append(f"set MTU of {uplink} to {mtu}")
        return changes

    def teardown(self, force: bool = False) -> list[str]:
        name = self.settings.bridge
        if not self.api.br_exists(name).execute(check_error=True):
            return []
        if self._row("Bridge", name).external_ids.get(MANAGED_MARK) != "true":
            raise BridgeError(f"{name} was not created by cachenet; not removed")
        ports = self._instance_ports()
        if ports and not force:
            raise BridgeError(
                f"{name} still has instance ports ({', '.join(ports)}); use --force to remove it"
            )
        self.api.del_br(name).execute(check_error=True)
        return [f"removed OVS bridge {name}"]

    def status(self) -> BridgeStatus:
        name, uplink = self.settings.bridge, self.settings.uplink
        exists = self.api.br_exists(name).execute(check_error=True)
        status = BridgeStatus(name, "ovs", exists=exists)
        if not exists:
            return status
        bridge_iface = self._row("Interface", name)
        status.managed = self._row("Bridge", name).external_ids.get(MANAGED_MARK) == "true"
        status.state = _first(bridge_iface.link_state)
        status.mtu = _first(bridge_iface.mtu)
        status.instance_ports = self._instance_ports()
        status.unisolated_ports = self._unprotected(status.instance_ports)
        if uplink and self.api.port_to_br(uplink).execute(check_error=False) == name:
            status.uplink = uplink
            status.uplink_state = _first(self._row("Interface", uplink).link_state)
            status.vlan = _first(self._row("Port", uplink).tag)
        return status

    def isolate_instance_ports(self) -> list[str]:
        """Mark every instance port of the bridge protected; returns the ports changed.

        OVS forwards nothing between two protected ports (Port.protected), so
        instances reach the uplink and the host but not each other: the Linux
        bridge's isolated ports. libvirt creates the port when the domain
        starts and cannot set it, so whoever sees the start calls this.
        """
        if not self.settings.isolate_ports:
            return []
        if not self.api.br_exists(self.settings.bridge).execute(check_error=True):
            return []
        exposed = self._unprotected(self._instance_ports())
        if exposed:
            with self.api.transaction(check_error=True) as txn:
                for port in exposed:
                    txn.add(self.api.db_set("Port", port, ("protected", True)))
        return exposed

    def _unprotected(self, ports: list[str]) -> list[str]:
        return [p for p in ports if self._row("Port", p).protected is not True]

    def _instance_ports(self) -> list[str]:
        ports = self.api.list_ports(self.settings.bridge).execute(check_error=True)
        return sorted(p for p in ports if p.startswith(self.settings.device_prefix))

    def _is_port(self, name: str) -> bool:
        return bool(self.api.db_find("Port", ("name", "=", name)).execute(check_error=True))

    def _row(self, table: str, name: str) -> Any:
        return self.api.lookup(table, name)


def _connect(remote: str) -> impl_idl.OvsdbIdl:
    path = remote.removeprefix("unix:")
    if remote.startswith("unix:") and not os.path.exists(path):
        raise BridgeError(f"Open vSwitch database is not running: no socket at {path}")
    if remote.startswith("unix:") and not os.access(path, os.R_OK | os.W_OK):
        raise PrivilegeError(
            f"this user may not open the Open vSwitch database socket {path}: run as root, or set "
            "ovsdb_connection = tcp:127.0.0.1:6640 (README, 'Running as the nova user')"
        )
    try:
        idl = connection.OvsdbIdl.from_server(remote, "Open_vSwitch")
    except Exception as exc:  # ovsdbapp raises a bare Exception when the server is down
        raise BridgeError(f"cannot reach the Open vSwitch database at {remote}: {exc}") from None
    return impl_idl.OvsdbIdl(connection.Connection(idl=idl, timeout=OVSDB_TIMEOUT))


def _kernel_link(name: str) -> Any:
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        return ipr.get_links(found[0])[0] if found else None


def _kernel_kind(name: str) -> str | None:
    """The kernel device kind of ``name`` ('veth', 'tun', ...; 'device' if plain), or None."""
    link = _kernel_link(name)
    if link is None:
        return None
    info = link.get_attr("IFLA_LINKINFO")
    return (info.get_attr("IFLA_INFO_KIND") if info else None) or "device"


def _kernel_master(name: str) -> str | None:
    """The Linux bridge or bond ``name`` is enslaved to (not OVS's own datapath)."""
    link = _kernel_link(name)
    master = link.get_attr("IFLA_MASTER") if link is not None else None
    if not master:
        return None
    with IPRoute() as ipr:
        owner = ipr.get_links(master)[0]
    info = owner.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else None
    return None if kind == "openvswitch" else owner.get_attr("IFLA_IFNAME")


def _first(values: Any) -> Any:
    values = list(values) if isinstance(values, list | tuple) else [values]
    return values[0] if values else None


def _mtu_is(interface: Any, mtu: int | None) -> bool:
    return list(interface.mtu_request) == _as_list(mtu)


def _as_list(value: int | None) -> list[int]:
    return [] if value is None else [value]
