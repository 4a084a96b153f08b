"""The cache bridge as a Linux bridge, through netlink (pyroute2)."""

from __future__ import annotations

from typing import Any

from pyroute2 import IPRoute, NetNS

from cachenet.bridge.base import MANAGED_MARK, BridgeBackend, BridgeStatus
from cachenet.errors import BridgeError, privilege_needed, refused
from cachenet.settings import Settings

# Creating, changing and removing a bridge: what a non-root user is told.
NEEDS_ROOT_TO_ENSURE = (
    "bridge ensure needs CAP_NET_ADMIN: run it as root (the cachenet-bridge unit does, at boot)"
)
NEEDS_ROOT_TO_TEARDOWN = "bridge teardown needs CAP_NET_ADMIN: run it as root"


class LinuxBridge(BridgeBackend):
    """``settings.bridge`` as a kernel bridge with ``settings.uplink`` enslaved.

    ``netns`` runs the same work inside a network namespace (tests use it).
    Ownership is marked with the bridge's alias (IFLA_IFALIAS).
    """

    def __init__(self, settings: Settings, netns: str | None = None) -> None:
        self.settings = settings
        self.netns = netns

    def _ipr(self) -> IPRoute:
        return NetNS(self.netns) if self.netns else IPRoute()

    def ensure(self) -> list[str]:
        with privilege_needed(NEEDS_ROOT_TO_ENSURE), self._ipr() as ipr:
            bridge = _link(ipr, self.settings.bridge)
            self._check_preconditions(ipr, bridge)
            changes: list[str] = []
            created = bridge is None
            if created:
                ipr.link("add", ifname=self.settings.bridge, kind="bridge")
                changes.append(f"created Linux bridge {self.settings.bridge}")
            try:
                changes += self._configure(ipr, created)
            except Exception as exc:
                if created:  # leave no half-made bridge behind
                    ipr.link("del", index=_index(ipr, self.settings.bridge))
                if refused(exc):
                    raise
                raise BridgeError(
                    f"setting up bridge {self.settings.bridge} failed: {exc}"
                ) from exc
            return changes

    def _check_preconditions(self, ipr: IPRoute, bridge: Any) -> None:
        name, uplink = self.settings.bridge, self.settings.uplink
        if bridge is not None and _kind(bridge) != "bridge":
            raise BridgeError(
                f"{name} exists and is a {_kind(bridge) or 'plain'} device, not a bridge"
            )
        if uplink is None:
            return
        link = _link(ipr, uplink)
        if link is None:
            raise BridgeError(f"uplink {uplink} does not exist")
        if _kind(link) == "bridge":
            raise BridgeError(f"uplink {uplink} is itself a bridge")
        master = link.get_attr("IFLA_MASTER")
        if master and (bridge is None or master != bridge["index"]):
            raise BridgeError(
                f"uplink {uplink} is already enslaved to {_name_of(ipr, master)}, not {name}"
            )

    def _configure(self, ipr: IPRoute, created: bool) -> list[str]:
        changes: list[str] = []
        index = _index(ipr, self.settings.bridge)
        if created:
            ipr.link("set", index=index, ifalias=MANAGED_MARK)
        changes += _set_mtu_and_up(ipr, index, self.settings.bridge, self.settings.mtu)
        uplink = self.settings.uplink
        if uplink:
            up_index = _index(ipr, uplink)
            if ipr.get_links(up_index)[0].get_attr("IFLA_MASTER") != index:
                ipr.link("set", index=up_index, master=index)
                changes.append(f"enslaved uplink {uplink} to {self.settings.bridge}")
            changes += _set_mtu_and_up(ipr, up_index, uplink, self.settings.mtu)
        return changes

    def teardown(self, force: bool = False) -> list[str]:
        with privilege_needed(NEEDS_ROOT_TO_TEARDOWN), self._ipr() as ipr:
            bridge = _link(ipr, self.settings.bridge)
            if bridge is None:
                return []
            if bridge.get_attr("IFLA_IFALIAS") != MANAGED_MARK:
                raise BridgeError(
                    f"{self.settings.bridge} was not created by cachenet; not removed"
                )
            ports = self._instance_ports(ipr, bridge["index"])
            if ports and not force:
                raise BridgeError(
                    f"{self.settings.bridge} still has instance ports ({', '.join(ports)}); "
                    "use --force to remove it anyway"
                )
            ipr.link("del", index=bridge["index"])  # the kernel releases the uplink
            return [f"removed Linux bridge {self.settings.bridge}"]

    def status(self) -> BridgeStatus:
        with self._ipr() as ipr:
            bridge = _link(ipr, self.settings.bridge)
            status = BridgeStatus(self.settings.bridge, "linuxbridge", exists=bridge is not None)
            if bridge is None or _kind(bridge) != "bridge":
                return status
            status.managed = bridge.get_attr("IFLA_IFALIAS") == MANAGED_MARK
            status.state = bridge.get_attr("IFLA_OPERSTATE")
            status.mtu = bridge.get_attr("IFLA_MTU")
            status.instance_ports = self._instance_ports(ipr, bridge["index"])
            status.unisolated_ports = [p for p in status.instance_ports if not _isolated(ipr, p)]
            uplink = self.settings.uplink
            if uplink:
                link = _link(ipr, uplink)
                if link is not None and link.get_attr("IFLA_MASTER") == bridge["index"]:
                    status.uplink = uplink
                    status.uplink_state = link.get_attr("IFLA_OPERSTATE")
            return status

    def isolate_instance_ports(self) -> list[str]:
        # libvirt isolates each port as it plugs it (<port isolated="yes"/>).
        return []

    def _instance_ports(self, ipr: IPRoute, bridge_index: int) -> list[str]:
        prefix = self.settings.device_prefix
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links(master=bridge_index)]
        return sorted(n for n in names if n.startswith(prefix))


def _isolated(ipr: IPRoute, port: str) -> bool:
    """Whether the bridge port forwards only to non-isolated ports (IFLA_BRPORT_ISOLATED)."""
    for message in ipr.brport("show", index=_index(ipr, port)):
        info = message.get_attr("IFLA_PROTINFO")
        if info is not None and info.get_attr("IFLA_BRPORT_ISOLATED"):
            return True
    return False


def _link(ipr: IPRoute, name: str) -> Any:
    found = ipr.link_lookup(ifname=name)
    return ipr.get_links(found[0])[0] if found else None


def _index(ipr: IPRoute, name: str) -> int:
    return int(ipr.link_lookup(ifname=name)[0])


def _kind(link: Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info else None


def _name_of(ipr: IPRoute, index: int) -> str:
    return str(ipr.get_links(index)[0].get_attr("IFLA_IFNAME"))


def _set_mtu_and_up(ipr: IPRoute, index: int, name: str, mtu: int | None) -> list[str]:
    link = ipr.get_links(index)[0]
    changes = []
    if mtu and link.get_attr("IFLA_MTU") != mtu:
        ipr.link("set", index=index, mtu=mtu)
        changes.append(f"set MTU of {name} to {mtu}")
    if not link["flags"] & 1:  # IFF_UP
        ipr.link("set", index=index, state="up")
        changes.append(f"set {name} up")
    return changes
