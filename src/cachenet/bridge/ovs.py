"""The cache bridge as an Open vSwitch bridge, through OVSDB (ovsdbapp) and OpenFlow.

Everything ``ensure`` changes in OVSDB is one transaction: it all happens or
none of it does, so a failure never leaves a half-made bridge. The bridge runs
with ``fail_mode=secure`` and forwards only by cachenet's flows
(``ovs_flows``), installed with ``ovs-ofctl --bundle`` (one atomic OpenFlow
transaction; OVSDB has no API for flows).

Without root: OVSDB over ``tcp:127.0.0.1:6640`` and OpenFlow over the
bridge's local listener (``openflow_listen``), both added by ``ensure`` run
as root (os-vif's and Neutron's pattern).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cachenet import hostnet, ipv6
from cachenet.bridge import ovs_flows
from cachenet.bridge.base import MANAGED_MARK, BridgeBackend, BridgeStatus, library_errors
from cachenet.bridge.ovs_flows import FlowGroup, Layout, Plan, SwitchPort
from cachenet.errors import BridgeError, PrivilegeError, privilege_needed
from cachenet.port import Port
from cachenet.settings import BridgeSettings, NetworkSettings

LOG = logging.getLogger(__name__)

# ovsdbapp (with ovs and eventlet, ~0.3 s) is imported on the first connection: the
# domain XML of an OVS port (interface_parts) is built by Nova and the CLI without it.
if TYPE_CHECKING:
    from lxml import etree
    from ovsdbapp.schema.open_vswitch import impl_idl

OVSDB_TIMEOUT = 10  # seconds for one OVSDB transaction
OFCTL_TIMEOUT = 10  # seconds for one ovs-ofctl command
OFPORT_WAIT = 10  # seconds ovs-vswitchd may take to number a new port
# Where Open vSwitch keeps its sockets (its tools read OVS_RUNDIR too).
OVS_RUNDIR = Path(os.environ.get("OVS_RUNDIR", "/var/run/openvswitch"))
LOCAL_OFPORT = 65534
ALL_KINDS = {ovs_flows.KIND_BASE, ovs_flows.KIND_CANARY, ovs_flows.KIND_PORT, ovs_flows.KIND_FLOOD}
BASE_KINDS = {ovs_flows.KIND_BASE, ovs_flows.KIND_CANARY}


# Turning the host's IPv6 off on the bridge is a sysctl, root's alone.
NEEDS_ROOT_FOR_HOST_STACK = (
    "bridge ensure needs root to turn IPv6 off on the bridge: run it as root"
)


class OvsBridge(BridgeBackend):
    """``settings.name`` in the local Open vSwitch, with the uplink as a (VLAN access) port."""

    bridge_type = "ovs"

    @classmethod
    def interface_parts(cls, iface: etree._Element, port: Port, settings: BridgeSettings) -> None:
        from lxml import etree

        virtualport = etree.SubElement(iface, "virtualport", type="openvswitch")
        # libvirt invents a random interfaceid otherwise; the instance UUID makes the
        # OVS port findable (external_ids:iface-id) and stable across reboots.
        etree.SubElement(virtualport, "parameters", interfaceid=port.instance_uuid)
        if settings.vlan is not None:
            vlan = etree.SubElement(iface, "vlan")
            etree.SubElement(vlan, "tag", id=str(settings.vlan))

    def __init__(
        self,
        settings: BridgeSettings,
        network: NetworkSettings,
        openflow_listen: str | None = None,
    ) -> None:
        super().__init__(settings, network)
        self.openflow_listen = openflow_listen or settings.openflow_listen
        self._api: impl_idl.OvsdbIdl | None = None

    @property
    def api(self) -> impl_idl.OvsdbIdl:
        if self._api is None:
            self._api = _connect(self.settings.ovsdb_connection)
        return self._api

    @property
    def _controller(self) -> str:
        """The bridge's passive OpenFlow listener, reachable without root."""
        host, _, port = self.openflow_listen.rpartition(":")
        return f"ptcp:{port}:{host}"

    @property
    def _manager(self) -> str | None:
        """The OVSDB listener ``ovsdb_connection`` needs, when it is a local TCP one."""
        scheme, _, rest = self.settings.ovsdb_connection.partition(":")
        host, _, port = rest.rpartition(":")
        return f"ptcp:{port}:{host}" if scheme == "tcp" and _is_loopback(host) else None

    @library_errors("setting up")
    def ensure(self, host_on_bridge: bool = False) -> list[str]:
        self._connect_for_ensure()
        self._check_preconditions()
        changes = self._planned_changes()
        if changes:
            self._apply_ovsdb_changes()
            # ovs-vswitchd makes the bridge's internal device after the commit.
            _wait_for_kernel_device(self.settings.name)
        with privilege_needed(NEEDS_ROOT_FOR_HOST_STACK):
            changes += self.host_stack_off(host_on_bridge)
        return changes + self._ensure_base_flows()

    def _connect_for_ensure(self) -> None:
        """Connect; as root, through the default socket while the TCP manager is not there yet."""
        try:
            self.api  # noqa: B018 (connects)
        except BridgeError:
            fallback = OVS_RUNDIR / "db.sock"
            if self._manager is None or not os.access(fallback, os.W_OK):
                raise
            self._api = _connect(f"unix:{fallback}")

    def _apply_ovsdb_changes(self) -> None:
        name, uplink = self.settings.name, self.settings.uplink
        with self.api.transaction(check_error=True) as txn:
            txn.add(
                self.api.add_br(name, may_exist=True, datapath_type=self.settings.datapath_type)
            )
            txn.add(self.api.db_set("Bridge", name, ("external_ids", {MANAGED_MARK: "true"})))
            # Secure: after a restart, until cachenet's flows are back, forward nothing.
            txn.add(self.api.set_fail_mode(name, "secure"))
            # In-band control would add hidden flows letting traffic to the host through.
            txn.add(self.api.db_set("Bridge", name, ("other_config", {"disable-in-band": "true"})))
            txn.add(self.api.set_controller(name, [self._controller]))
            if self._manager and self._manager not in self._managers():
                txn.add(self.api.add_manager(self._manager))
            if self.network.mtu:
                txn.add(self.api.db_set("Interface", name, ("mtu_request", self.network.mtu)))
            if uplink:
                txn.add(self.api.add_port(name, uplink, may_exist=True))
                tag: int | list[int] = self.settings.vlan if self.settings.vlan is not None else []
                txn.add(self.api.db_set("Port", uplink, ("tag", tag)))
                if self.network.mtu:
                    txn.add(self.api.db_set("Interface", uplink, ("mtu_request", self.network.mtu)))
            _log_transaction(txn)

    def _check_preconditions(self) -> None:
        name, uplink = self.settings.name, self.settings.uplink
        if not self.api.br_exists(name).execute(check_error=True) and _kernel_kind(name):
            raise BridgeError(
                f"{name} exists as a {_kernel_kind(name)} device, not an Open vSwitch bridge"
            )
        if uplink is None:
            return
        if _kernel_kind(uplink) is None and not self._is_port(uplink):
            raise BridgeError(f"uplink {uplink} does not exist")
        owner = self._bridge_of(uplink)
        if owner and owner != name:
            raise BridgeError(f"uplink {uplink} is already a port of OVS bridge {owner}")
        master = _kernel_master(uplink)
        if master:
            raise BridgeError(f"uplink {uplink} is already enslaved to {master}")

    def _planned_changes(self) -> list[str]:
        """What ensure would change in OVSDB; empty when the bridge is already as configured."""
        name, uplink, mtu = self.settings.name, self.settings.uplink, self.network.mtu
        manager = (
            [f"added OVSDB listener {self._manager}"]
            if self._manager and self._manager not in self._managers()
            else []
        )
        if not self.api.br_exists(name).execute(check_error=True):
            return (
                [f"created OVS bridge {name} (datapath {self.settings.datapath_type})"]
                + ([f"added uplink {uplink} (vlan {self.settings.vlan})"] if uplink else [])
                + [f"set fail_mode secure and OpenFlow listener {self._controller} on {name}"]
                + manager
            )
        changes = []
        bridge = self._row("Bridge", name)
        if bridge.external_ids.get(MANAGED_MARK) != "true":
            changes.append(f"marked {name} as managed by cachenet")
        if _first(bridge.fail_mode) != "secure":
            changes.append(f"set fail_mode secure on {name} (fails closed)")
        controllers = [c.target for c in bridge.controller]
        if controllers != [self._controller] or bridge.other_config.get("disable-in-band") != (
            "true"
        ):
            changes.append(f"set OpenFlow listener {self._controller} on {name}")
        changes += manager
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

    def _managers(self) -> list[str]:
        return list(self.api.get_manager().execute(check_error=True))

    @library_errors("removing")
    def teardown(self, force: bool = False) -> list[str]:
        name = self.settings.name
        if not self.api.br_exists(name).execute(check_error=True):
            return []
        if self._row("Bridge", name).external_ids.get(MANAGED_MARK) != "true":
            raise BridgeError(f"{name} was not created by cachenet; not removed")
        ports = self._instance_ports()
        if ports and not force:
            raise BridgeError(
                f"{name} still has instance ports ({', '.join(ports)}); use --force to remove it"
            )
        LOG.debug("OVSDB: deleting bridge %s", name)
        self.api.del_br(name).execute(check_error=True)
        return [f"removed OVS bridge {name}"]

    @library_errors("reading")
    def status(self) -> BridgeStatus:
        name, uplink = self.settings.name, self.settings.uplink
        exists = self.api.br_exists(name).execute(check_error=True)
        status = BridgeStatus(name, self.bridge_type, exists=exists)
        if not exists:
            return status
        bridge_iface = self._row("Interface", name)
        status.managed = self._row("Bridge", name).external_ids.get(MANAGED_MARK) == "true"
        status.state = _first(bridge_iface.link_state)
        status.mtu = _first(bridge_iface.mtu)
        status.instance_ports = self._instance_ports()
        status.unisolated_ports = self._unprotected(status.instance_ports)
        status.unsecured_ports = self._unsecured(status.instance_ports)
        if uplink and self._bridge_of(uplink) == name:
            status.uplink = uplink
            uplink_iface = self._row("Interface", uplink)
            status.uplink_state = _first(uplink_iface.link_state)
            status.uplink_mtu = _first(uplink_iface.mtu)
            status.vlan = _first(self._row("Port", uplink).tag)
        return status

    def _unsecured(self, ports: list[str]) -> list[str]:
        """Instance ports the switch numbered that have no flows of their own (they forward
        nothing: default deny) or whose bridge lost its flows."""
        present = self._present_flows()
        if _canary(self._layout()).cookie not in present:
            return [p for p in ports if self._ofport(p)]
        secured = {
            ovs_flows.cookie_ofport(c)
            for c in present
            if ovs_flows.cookie_kind(c) == ovs_flows.KIND_PORT
        }
        return [p for p in ports if self._ofport(p) and self._ofport(p) not in secured]

    @library_errors("securing the ports of")
    def secure_ports(self, ports: Sequence[Port]) -> list[str]:
        """Install the flows of ``ports`` that are plugged into the bridge (see ovs_flows);
        remove those of any other port. A port not plugged yet has no OpenFlow number:
        it gets its flows at the next call, and forwards nothing until then."""
        if not self.api.br_exists(self.settings.name).execute(check_error=True):
            return []
        layout, wanted, devices = self._wanted_flows(ports)
        changes = self._reconcile(layout, wanted, ALL_KINDS, devices)
        # A second layer: protected ports cannot reach each other should NORMAL ever forward.
        return changes + [f"marked {p} protected" for p in self.isolate_instance_ports()]

    @library_errors("checking the port security of")
    def port_security_drift(self, ports: Sequence[Port]) -> list[str]:
        name = self.settings.name
        if not self.api.br_exists(name).execute(check_error=True):
            return []
        layout, wanted, devices = self._wanted_flows(ports)
        present = self._present_flows()
        if _canary(layout).cookie not in present:
            return [f"the flows of {name} are gone (ovs-vswitchd restarted or they were deleted)"]
        plan = ovs_flows.plan(wanted, present, ALL_KINDS)
        added = {g.ofport for g in plan.add if g.kind == ovs_flows.KIND_PORT}
        drift = [f"{devices[ofport]}: flows missing or incomplete on {name}" for ofport in added]
        drift += [
            f"OpenFlow port {ovs_flows.cookie_ofport(c)}: flows left over (no such instance port)"
            for c in plan.delete
            if ovs_flows.cookie_kind(c) == ovs_flows.KIND_PORT
            and ovs_flows.cookie_ofport(c) not in added
        ]
        bridge_wide = any(g.kind != ovs_flows.KIND_PORT for g in plan.add) or any(
            ovs_flows.cookie_kind(c) != ovs_flows.KIND_PORT for c in plan.delete
        )
        return drift + ([f"bridge-wide flows of {name} missing or changed"] if bridge_wide else [])

    def _wanted_flows(
        self, ports: Sequence[Port]
    ) -> tuple[Layout, list[FlowGroup], dict[int, str]]:
        """The flows ``ports`` need (those plugged into the bridge), and their devices by
        OpenFlow port."""
        layout = self._layout()
        plugged = set(self._instance_ports())
        switch_ports = [
            SwitchPort(
                p.device,
                ofport,
                p.mac,
                ipaddress.IPv4Address(p.address),
                ipv6.allowed_sources(p.mac, self.network.ipv6_prefixes),
            )
            for p in ports
            if p.device in plugged and (ofport := self._ofport(p.device))
        ]
        wanted = ovs_flows.base_groups(layout) + ovs_flows.port_groups(layout, switch_ports)
        return layout, wanted, {p.ofport: p.device for p in switch_ports}

    def _ensure_base_flows(self) -> list[str]:
        """Default deny and the uplink's and host's forwarding; instance ports are left
        to secure_ports (this needs no port store)."""
        self._wait_for_ofport(self.settings.name)
        if self.settings.uplink:
            self._wait_for_ofport(self.settings.uplink)
        layout = self._layout()
        return self._reconcile(layout, ovs_flows.base_groups(layout), BASE_KINDS, {})

    def _reconcile(
        self, layout: Layout, wanted: list[FlowGroup], kinds: set[int], devices: dict[int, str]
    ) -> list[str]:
        """Make the flows of ``kinds`` those of ``wanted`` in one atomic bundle."""
        present = self._present_flows()
        name = self.settings.name
        if _canary(layout).cookie not in present:
            # First run, or ovs-vswitchd restarted: clear whatever is there (fail-open NORMAL
            # flows of a former standalone bridge included) and install everything.
            self._ofctl("add-flows", "-", stdin=Plan([], wanted).bundle(wipe=True))
            return [f"installed the flows of {name} (default deny)"] + [
                f"secured {devices[g.ofport]}" for g in wanted if g.kind == ovs_flows.KIND_PORT
            ]
        plan = ovs_flows.plan(wanted, present, kinds)
        if not plan:
            return []
        self._ofctl("add-flows", "-", stdin=plan.bundle())
        return _describe(plan, devices, name)

    def _present_flows(self) -> Any:
        mark = f"cookie={ovs_flows.COOKIE_MARK:#x}/{ovs_flows.COOKIE_MARK_MASK:#x}"
        return ovs_flows.present_cookies(self._ofctl("dump-flows", mark))

    def _ofctl(self, command: str, *args: str, stdin: str | None = None) -> str:
        """``ovs-ofctl COMMAND TARGET ARGS`` (as a bundle when it changes flows)."""
        target = self._openflow_target()
        bundle = ["--bundle"] if command == "add-flows" else []
        if stdin is not None:
            flows = " | ".join(line for line in stdin.splitlines() if line.strip())
            LOG.debug("OpenFlow: ovs-ofctl %s on %s: %s", command, target, flows)
        argv = ["ovs-ofctl", f"--timeout={OFCTL_TIMEOUT}", *bundle, command, target, *args]
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise BridgeError(
                "ovs-ofctl not found: install Open vSwitch's tools (openvswitch-common)"
            ) from None
        if done.returncode == 0:
            return done.stdout
        detail = _last_line(done.stderr).removeprefix("ovs-ofctl: ")
        if target.startswith("tcp:") and ("refused" in detail or "failed to connect" in detail):
            raise BridgeError(
                f"cannot reach the OpenFlow listener of {self.settings.name} at {target} "
                f"(connection refused): run `cachenet bridge ensure` as root, which adds "
                f"{self._controller} (openflow_listen)"
            )
        raise BridgeError(f"ovs-ofctl {command} on {self.settings.name} failed: {detail}")

    def _openflow_target(self) -> str:
        """The bridge's management socket when this process may use it (root), else the
        local listener ``ensure`` set up for unprivileged services."""
        mgmt = OVS_RUNDIR / f"{self.settings.name}.mgmt"
        if os.access(mgmt, os.R_OK | os.W_OK):
            return f"unix:{mgmt}"
        return f"tcp:{self.openflow_listen}"

    def _layout(self) -> Layout:
        uplink = self.settings.uplink
        on_bridge = uplink and self._bridge_of(uplink) == self.settings.name
        return Layout(
            uplink_ofport=self._ofport(uplink) if uplink and on_bridge else None,
            isolate=self.settings.isolate_ports,
            anti_spoofing=self.settings.anti_spoofing,
            vlan=self.settings.vlan,
        )

    def _ofport(self, device: str) -> int | None:
        """The OpenFlow port number of ``device``; None until ovs-vswitchd has it (or failed)."""
        rows = self.api.db_find("Interface", ("name", "=", device), columns=["ofport"])
        values = rows.execute(check_error=True)
        ofport = _first(values[0]["ofport"]) if values else None
        return ofport if isinstance(ofport, int) and ofport > 0 else None

    def _wait_for_ofport(self, device: str) -> None:
        """ovs-vswitchd numbers a new port (and opens a new bridge) a moment after OVSDB has it."""
        deadline = time.monotonic() + OFPORT_WAIT
        while self._ofport(device) is None and time.monotonic() < deadline:
            time.sleep(0.05)

    @library_errors("isolating the ports of")
    def isolate_instance_ports(self) -> list[str]:
        """Mark every instance port of the bridge protected; returns the ports changed.

        OVS forwards nothing between two protected ports (Port.protected), so
        instances reach the uplink and the host but not each other: the Linux
        bridge's isolated ports. libvirt creates the port when the domain
        starts and cannot set it, so whoever sees the start calls this.
        """
        if not self.settings.isolate_ports:
            return []
        if not self.api.br_exists(self.settings.name).execute(check_error=True):
            return []
        exposed = self._unprotected(self._instance_ports())
        if exposed:
            with self.api.transaction(check_error=True) as txn:
                for port in exposed:
                    txn.add(self.api.db_set("Port", port, ("protected", True)))
                _log_transaction(txn)
        return exposed

    def _unprotected(self, ports: list[str]) -> list[str]:
        return [p for p in ports if self._row("Port", p).protected is not True]

    def _instance_ports(self) -> list[str]:
        ports = self.api.list_ports(self.settings.name).execute(check_error=True)
        return sorted(p for p in ports if p.startswith(self.settings.device_prefix))

    def _bridge_of(self, port: str) -> str | None:
        """The bridge ``port`` is on; None if it is on none (no error logged for that)."""
        command = self.api.port_to_br(port)
        return command.execute(check_error=False, log_errors=False)  # type: ignore[no-any-return]

    def _is_port(self, name: str) -> bool:
        return bool(self.api.db_find("Port", ("name", "=", name)).execute(check_error=True))

    def _row(self, table: str, name: str) -> Any:
        return self.api.lookup(table, name)


def _canary(layout: Layout) -> FlowGroup:
    return next(g for g in ovs_flows.base_groups(layout) if g.kind == ovs_flows.KIND_CANARY)


def _describe(plan: Plan, devices: dict[int, str], bridge: str) -> list[str]:
    """One line per port whose rules changed, one for the bridge-wide flows."""
    added = {g.ofport for g in plan.add if g.kind == ovs_flows.KIND_PORT}
    changes = [f"secured {devices[ofport]}" for ofport in sorted(added)]
    for cookie in plan.delete:
        ofport = ovs_flows.cookie_ofport(cookie)
        if ovs_flows.cookie_kind(cookie) == ovs_flows.KIND_PORT and ofport not in added:
            changes.append(f"removed the rules of OpenFlow port {ofport} (no such instance port)")
    others = any(g.kind != ovs_flows.KIND_PORT for g in plan.add) or any(
        ovs_flows.cookie_kind(c) != ovs_flows.KIND_PORT for c in plan.delete
    )
    if others:
        changes.append(f"updated the bridge-wide flows of {bridge}")
    return changes


def _log_transaction(txn: Any) -> None:
    """Each command of an OVSDB transaction, at debug level (as it commits)."""
    for command in txn.commands:
        LOG.debug("OVSDB: %s", command)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _connect(remote: str) -> impl_idl.OvsdbIdl:
    with warnings.catch_warnings():
        # ovs.poller imports eventlet only to learn whether it is monkey-patched;
        # eventlet then warns, in eight lines on stderr, that it is deprecated.
        # Its warning class lives in eventlet itself, so match message and module.
        warnings.filterwarnings(
            "ignore", message=r"\s*Eventlet is deprecated", module=r"ovs\.poller"
        )
        from ovsdbapp.backend.ovs_idl import connection
        from ovsdbapp.schema.open_vswitch import impl_idl
    path = remote.removeprefix("unix:")
    if remote.startswith("unix:") and not os.path.exists(path):
        raise BridgeError(f"Open vSwitch database is not running: no socket at {path}")
    if remote.startswith("unix:") and not os.access(path, os.R_OK | os.W_OK):
        raise PrivilegeError(
            f"this user may not open the Open vSwitch database socket {path} (root only): set "
            "ovsdb_connection = tcp:127.0.0.1:6640, the listener `cachenet bridge ensure` run as "
            "root adds (README, 'Running as the nova user')"
        )
    if remote.startswith("tcp:"):
        _check_reachable(remote)
    try:
        idl = connection.OvsdbIdl.from_server(remote, "Open_vSwitch")
    except Exception as exc:  # ovsdbapp raises a bare Exception when the server is down
        raise BridgeError(f"cannot reach the Open vSwitch database at {remote}: {exc}") from None
    return impl_idl.OvsdbIdl(connection.Connection(idl=idl, timeout=OVSDB_TIMEOUT))


def _check_reachable(remote: str) -> None:
    """Fail at once on a TCP remote nobody listens on (the IDL would retry until its timeout)."""
    host, _, port = remote.removeprefix("tcp:").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BridgeError(
            f"cannot reach the Open vSwitch database at {remote} ({reason}): "
            "`cachenet bridge ensure` run as root adds a local TCP listener"
        ) from None


def _wait_for_kernel_device(name: str, timeout: float = 5.0) -> None:
    """Until ``name`` exists as a kernel device, ``timeout`` seconds at most (a
    bridge of a datapath without kernel devices, DPDK's, never gets one)."""
    deadline = time.monotonic() + timeout
    while _kernel_kind(name) is None and time.monotonic() < deadline:
        time.sleep(0.05)


def _kernel_kind(name: str) -> str | None:
    """The kernel device kind of ``name`` ('veth', 'tun', ...; 'device' if plain), or None."""
    link = hostnet.lookup_link(name)
    return None if link is None else link.kind or "device"


def _kernel_master(name: str) -> str | None:
    """The Linux bridge or bond ``name`` is enslaved to (not OVS's own datapath)."""
    link = hostnet.lookup_link(name)
    owner = hostnet.master_of(link) if link is not None else None
    return None if owner is None or owner.kind == "openvswitch" else owner.name


def _first(values: Any) -> Any:
    values = list(values) if isinstance(values, list | tuple) else [values]
    return values[0] if values else None


def _mtu_is(interface: Any, mtu: int | None) -> bool:
    return list(interface.mtu_request) == _as_list(mtu)


def _as_list(value: int | None) -> list[int]:
    return [] if value is None else [value]
