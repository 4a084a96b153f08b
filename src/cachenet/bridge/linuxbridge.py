"""The cache bridge as a Linux bridge, through netlink (pyroute2); its port security
as one nftables table (nft_rules.py)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cachenet import hostnet
from cachenet.bridge import nft_rules
from cachenet.bridge.base import MANAGED_MARK, BridgeBackend, BridgeStatus, library_errors
from cachenet.bridge.nft_rules import Elements, InstalledTable, RuleOptions
from cachenet.errors import BridgeError, CachenetError, privilege_needed, refused
from cachenet.hostnet import Link
from cachenet.port import Port
from cachenet.settings import BridgeSettings, NetworkSettings

LOG = logging.getLogger(__name__)

# pyroute2 is imported (by hostnet.route) in the operations on the bridge itself: port
# security (secure_ports, run by every attach) needs nftables only, and pyroute2 costs ~0.2 s.
if TYPE_CHECKING:
    from lxml import etree
    from pyroute2 import IPRoute

TABLE_NAME = f"{nft_rules.FAMILY} {nft_rules.TABLE}"
CAP_NET_ADMIN = 12  # linux/capability.h
# nft lives in sbin, which a service's or a user's PATH may lack.
NFT_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
# Creating, changing and removing a bridge: what a non-root user is told.
NEEDS_ROOT_TO_ENSURE = (
    "bridge ensure needs CAP_NET_ADMIN: run it as root (the cachenet-bridge unit does, at boot)"
)
NEEDS_ROOT_TO_TEARDOWN = "bridge teardown needs CAP_NET_ADMIN: run it as root"


class LinuxBridge(BridgeBackend):
    """``settings.name`` as a kernel bridge with ``settings.uplink`` enslaved.

    ``netns`` runs the same work inside a network namespace (tests use it).
    Ownership is marked with the bridge's alias (IFLA_IFALIAS).
    """

    bridge_type = "linuxbridge"

    @classmethod
    def interface_parts(cls, iface: etree._Element, port: Port, settings: BridgeSettings) -> None:
        """Nothing: isolation and anti-spoofing are the host's nftables table
        (nft_rules.py), keyed by the device name, not parts of the domain."""

    def __init__(
        self, settings: BridgeSettings, network: NetworkSettings, netns: str | None = None
    ) -> None:
        super().__init__(settings, network)
        self.netns = netns

    def _ipr(self) -> contextlib.AbstractContextManager[IPRoute]:
        return hostnet.route(self.netns)

    @library_errors("setting up")
    def ensure(self, host_on_bridge: bool = False) -> list[str]:
        with privilege_needed(NEEDS_ROOT_TO_ENSURE), self._ipr() as ipr:
            bridge = hostnet.find_link(ipr, self.settings.name)
            self._check_preconditions(ipr, bridge)
            changes: list[str] = []
            created = bridge is None
            if created:
                _netlink(ipr, "add", ifname=self.settings.name, kind="bridge")
                changes.append(f"created Linux bridge {self.settings.name}")
            try:
                changes += self._configure(ipr, created)
                changes += self.host_stack_off(host_on_bridge, self.netns)
            except Exception as exc:
                if created:  # leave no half-made bridge behind
                    _netlink(ipr, "del", index=_index(ipr, self.settings.name))
                if refused(exc):
                    raise
                raise BridgeError(f"setting up bridge {self.settings.name} failed: {exc}") from exc
        # Default deny for instance devices from boot on; the ports' rules are kept.
        return changes + self._reconcile(wanted=None)

    def _check_preconditions(self, ipr: IPRoute, bridge: Link | None) -> None:
        name, uplink = self.settings.name, self.settings.uplink
        if bridge is not None and bridge.kind != "bridge":
            raise BridgeError(
                f"{name} exists and is a {bridge.kind or 'plain'} device, not a bridge"
            )
        if uplink is None:
            return
        link = hostnet.find_link(ipr, uplink)
        if link is None:
            raise BridgeError(f"uplink {uplink} does not exist")
        if link.kind == "bridge":
            raise BridgeError(f"uplink {uplink} is itself a bridge")
        master = link.master
        if master and (bridge is None or master != bridge.index):
            owner = hostnet.link_at(ipr, master).name
            raise BridgeError(f"uplink {uplink} is already enslaved to {owner}, not {name}")

    def _configure(self, ipr: IPRoute, created: bool) -> list[str]:
        changes: list[str] = []
        index = _index(ipr, self.settings.name)
        if created:
            _netlink(ipr, "set", index=index, ifalias=MANAGED_MARK)
        changes += _set_mtu_and_up(ipr, index, self.settings.name, self.network.mtu)
        uplink = self.settings.uplink
        if uplink:
            up_index = _index(ipr, uplink)
            if hostnet.link_at(ipr, up_index).master != index:
                _netlink(ipr, "set", index=up_index, master=index)
                changes.append(f"enslaved uplink {uplink} to {self.settings.name}")
            changes += _set_mtu_and_up(ipr, up_index, uplink, self.network.mtu)
        return changes

    @library_errors("removing")
    def teardown(self, force: bool = False) -> list[str]:
        with privilege_needed(NEEDS_ROOT_TO_TEARDOWN), self._ipr() as ipr:
            bridge = hostnet.find_link(ipr, self.settings.name)
            if bridge is None:
                return []
            if bridge.alias != MANAGED_MARK:
                raise BridgeError(f"{self.settings.name} was not created by cachenet; not removed")
            ports = self._instance_ports(ipr, bridge.index)
            if ports and not force:
                raise BridgeError(
                    f"{self.settings.name} still has instance ports ({', '.join(ports)}); "
                    "use --force to remove it anyway"
                )
            _netlink(ipr, "del", index=bridge.index)  # the kernel releases the uplink
        changes = [f"removed Linux bridge {self.settings.name}"]
        if self._installed() is not None:
            self._apply(nft_rules.delete_script())
            changes.append(f"removed nftables table {TABLE_NAME}")
        return changes

    @library_errors("reading")
    def status(self) -> BridgeStatus:
        with self._ipr() as ipr:
            bridge = hostnet.find_link(ipr, self.settings.name)
            status = BridgeStatus(self.settings.name, self.bridge_type, exists=bridge is not None)
            if bridge is None or bridge.kind != "bridge":
                return status
            status.managed = bridge.alias == MANAGED_MARK
            status.state = bridge.state
            status.mtu = bridge.mtu
            status.instance_ports = self._instance_ports(ipr, bridge.index)
            uplink = self.settings.uplink
            if uplink:
                link = hostnet.find_link(ipr, uplink)
                if link is not None and link.master == bridge.index:
                    status.uplink = uplink
                    status.uplink_state = link.state
                    status.uplink_mtu = link.mtu
        if status.instance_ports and not self._isolating():
            status.unisolated_ports = list(status.instance_ports)
        return status

    # --- port security: the nftables table -------------------------------------------

    @library_errors("securing the ports of")
    def secure_ports(self, ports: Sequence[Port]) -> list[str]:
        return self._reconcile(wanted=Elements.of(ports, self.network.ipv6_prefixes))

    def _reconcile(self, wanted: Elements | None, attempts: int = 3) -> list[str]:
        """Make the table hold the chains of the settings and ``wanted``'s elements
        (None: the elements it holds). Rewritten whole only when missing or changed."""
        options = _rule_options(self.settings)
        installed = self._installed()
        if not options.enabled:
            if installed is None:
                return []
            self._apply(nft_rules.delete_script())
            return [f"removed nftables table {TABLE_NAME}: isolate_ports and anti_spoofing are off"]
        if installed is None or not _intact(installed, options):
            elements = wanted if wanted is not None else _kept(installed)
            self._apply(nft_rules.table_script(options, elements))
            verb = "created" if installed is None else "restored"
            return [f"{verb} nftables table {TABLE_NAME} ({len(elements)} instance ports)"]
        if wanted is None:
            return []
        script = nft_rules.element_script(installed.elements, wanted)
        if not script:
            return []
        try:
            self._apply(script)
        except BridgeError:
            # Another process changed the sets since they were read (a deleted
            # element is gone twice): read them again.
            if attempts <= 1:
                raise
            return self._reconcile(wanted, attempts - 1)
        return _port_changes(installed.elements, wanted)

    @library_errors("checking the port security of")
    def port_security_drift(self, ports: Sequence[Port]) -> list[str]:
        options = _rule_options(self.settings)
        installed = self._installed()
        if not options.enabled:
            return [] if installed is None else [f"nftables table {TABLE_NAME} is left over"]
        if installed is None:
            return [f"nftables table {TABLE_NAME} is missing (every instance port forwards all)"]
        if not _intact(installed, options):
            return [f"the chains of nftables table {TABLE_NAME} lost or changed rules"]
        wanted = Elements.of(ports, self.network.ipv6_prefixes)
        missing = [d for d in sorted(wanted.ports) if _rules_of(installed.elements, d)
                   != _rules_of(wanted, d)]  # fmt: skip
        return [f"{device}: rules missing or stale in table {TABLE_NAME}" for device in missing] + [
            f"{device}: rules left over (no such port of this host in the store)"
            for device in sorted(installed.elements.ports - wanted.ports)
        ]

    def _isolating(self) -> bool:
        """Whether the table now keeps instance ports from reaching each other."""
        if not self.settings.isolate_ports:
            return False
        try:
            installed = self._installed()
        except CachenetError:  # e.g. run without CAP_NET_ADMIN: cannot tell, so not shown as
            return False
        return installed is not None and _intact(installed, _rule_options(self.settings))

    def _installed(self) -> InstalledTable | None:
        listing = list_nft_table(self.netns)
        return None if listing is None else nft_rules.parse_table(listing)

    def _apply(self, script: str) -> None:
        apply_nft(script, self.netns)

    def _instance_ports(self, ipr: IPRoute, bridge_index: int) -> list[str]:
        prefix = self.settings.device_prefix
        names = [link.name for link in hostnet.ports_of(ipr, bridge_index)]
        return sorted(n for n in names if n.startswith(prefix))


def _rule_options(settings: BridgeSettings) -> RuleOptions:
    return RuleOptions(settings.device_prefix, settings.isolate_ports, settings.anti_spoofing)


def _intact(installed: InstalledTable, options: RuleOptions) -> bool:
    """Whether the table's chains are those of ``options``, none lost."""
    return installed.signature == nft_rules.signature(
        options
    ) and installed.rule_count == nft_rules.rule_count(options)


def _kept(installed: InstalledTable | None) -> Elements:
    return installed.elements if installed is not None else Elements()


def _port_changes(before: Elements, after: Elements) -> list[str]:
    changed = [d for d in sorted(after.ports) if _rules_of(before, d) != _rules_of(after, d)]
    changes = [f"secured {device}" for device in changed]
    changes += [f"removed the rules of {device}" for device in sorted(before.ports - after.ports)]
    return changes


def _rules_of(elements: Elements, device: str) -> tuple[set[str], set[str], set[str]]:
    return (
        {mac for name, mac in elements.macs if name == device},
        {address for name, address in elements.addresses if name == device},
        {address for name, address in elements.addresses6 if name == device},
    )


def apply_nft(script: str, netns: str | None) -> None:
    """Apply an ``nft -f`` script in one transaction (needs CAP_NET_ADMIN)."""
    LOG.debug("nftables: applying%s: %s", f" in netns {netns}" if netns else "", _one_line(script))
    if netns is None and not _has_net_admin():
        from cachenet import privileged  # oslo.privsep: imported only when needed

        privileged.apply_nft(script)
    else:
        _nft(["-f", "-"], script, netns)


def list_nft_table(netns: str | None) -> str | None:
    """``nft -j list table bridge cachenet``, or None when the table does not exist."""
    if netns is None and not _has_net_admin():
        from cachenet import privileged

        return privileged.list_nft_table()
    return _nft(["-j", "list", "table", *TABLE_NAME.split()], None, netns)


def _has_net_admin() -> bool:
    """Whether this process holds CAP_NET_ADMIN (root, or a unit's ambient capability).

    It then runs nft itself: importing the privsep machinery costs more than half
    a second, which every ``cachenet attach`` (a hot-plug) would pay.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << CAP_NET_ADMIN))
    except OSError:
        pass
    return False


def _nft(args: list[str], script: str | None, netns: str | None) -> str | None:
    """``nft ARGS`` (in the network namespace ``netns``, when given); its output, or
    None when the table listed does not exist."""
    command = [shutil.which("nft", path=NFT_PATH) or "nft", *args]
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    try:
        result = subprocess.run(command, input=script, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BridgeError("nft is not installed (Debian package nftables)") from None
    if result.returncode == 0:
        return result.stdout
    error = " ".join(result.stderr.split())
    if "No such file or directory" in error and args[0] == "-j":
        return None
    raise BridgeError(f"nftables refused the rules: {error}")


def _one_line(text: str) -> str:
    """A multi-line script as one log line, its lines separated by " | "."""
    return " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _netlink(ipr: IPRoute, command: str, **attributes: Any) -> None:
    """A netlink link change (``ipr.link``), logged at debug level."""
    LOG.debug("netlink: link %s %s", command,
              " ".join(f"{key}={value}" for key, value in attributes.items()))  # fmt: skip
    ipr.link(command, **attributes)


def _index(ipr: IPRoute, name: str) -> int:
    link = hostnet.find_link(ipr, name)
    if link is None:  # removed by someone else meanwhile
        raise BridgeError(f"{name} disappeared while the bridge was being set up")
    return link.index


def _set_mtu_and_up(ipr: IPRoute, index: int, name: str, mtu: int | None) -> list[str]:
    link = hostnet.link_at(ipr, index)
    changes = []
    if mtu and link.mtu != mtu:
        _netlink(ipr, "set", index=index, mtu=mtu)
        changes.append(f"set MTU of {name} to {mtu}")
    if not link.up:
        _netlink(ipr, "set", index=index, state="up")
        changes.append(f"set {name} up")
    return changes
