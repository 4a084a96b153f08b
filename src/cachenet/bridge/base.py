"""The bridge backend interface: what a bridge type does on the host (ensure, teardown,
status, port security) and what it adds to the domain's interface (os-vif style)."""

from __future__ import annotations

import abc
import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, ClassVar, Concatenate, ParamSpec, TypeVar

from cachenet import hostnet
from cachenet.errors import BridgeError, CachenetError, PrivilegeError, refused
from cachenet.port import Port

if TYPE_CHECKING:
    from lxml import etree

    from cachenet.settings import BridgeSettings, NetworkSettings

# Marks what cachenet created, so teardown never removes a bridge an operator made.
MANAGED_MARK = "cachenet"


@dataclass
class BridgeStatus:
    """What an operator checks on a compute node's cache bridge."""

    bridge: str
    type: str
    exists: bool
    managed: bool = False
    state: str | None = None
    mtu: int | None = None
    uplink: str | None = None
    uplink_state: str | None = None
    uplink_mtu: int | None = None
    vlan: int | None = None
    instance_ports: list[str] = field(default_factory=list)
    # Instance ports that can reach other instance ports (isolate_ports not applied).
    unisolated_ports: list[str] = field(default_factory=list)
    # Instance ports plugged in without their port-security rules (secure_ports not run
    # since they were plugged, or the switch lost its rules).
    unsecured_ports: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class BridgeBackend(abc.ABC):
    """Sets up the cache bridge of one host. Every method is safe to repeat.

    A new bridge type subclasses this in its own module and is registered in
    ``cachenet.bridge.BRIDGE_TYPES``; its library's errors leave it as
    ``BridgeError`` (``PrivilegeError`` when the kernel or a socket refuses).
    """

    # The value of the bridge_type option that selects this backend.
    bridge_type: ClassVar[str]

    def __init__(self, settings: BridgeSettings, network: NetworkSettings) -> None:
        self.settings = settings
        self.network = network  # the MTU of the bridge and its uplink is the network's

    @classmethod
    @abc.abstractmethod
    def interface_parts(cls, iface: etree._Element, port: Port, settings: BridgeSettings) -> None:
        """Add what this bridge type needs to ``port``'s domain ``<interface>`` element,
        beyond the MAC, source bridge, device, model and MTU every type has.

        Pure (domxml calls it in Nova and in the CLI): no host access, no import of the
        library the backend drives.
        """

    @abc.abstractmethod
    def ensure(self, host_on_bridge: bool = False) -> list[str]:
        """Create or fix the bridge and its uplink; returns the changes made (none: empty).

        The host's own IP stack is turned off on the bridge and the uplink (no
        link-local or SLAAC address an instance could reach the host at), as
        Neutron's Linux bridge agent does, unless ``host_on_bridge``: this host
        serves the cache network on the bridge (``dhcp_interface`` is the bridge).
        """

    def host_stack_off(self, host_on_bridge: bool, netns: str | None = None) -> list[str]:
        """IPv6 off on the bridge (unless ``host_on_bridge``) and on the uplink: see ensure."""
        devices = ([] if host_on_bridge else [self.settings.name]) + [
            name for name in (self.settings.uplink,) if name
        ]
        return [
            f"turned IPv6 off on {name} (instances cannot reach this host through it)"
            for name in devices
            if hostnet.disable_ipv6(name, netns)
        ]

    @abc.abstractmethod
    def teardown(self, force: bool = False) -> list[str]:
        """Remove the bridge if cachenet made it; refuses while instance ports remain."""

    @abc.abstractmethod
    def status(self) -> BridgeStatus:
        """The bridge as it is now."""

    @abc.abstractmethod
    def secure_ports(self, ports: Sequence[Port]) -> list[str]:
        """Make the bridge enforce port security for ``ports``, this host's instance ports
        as the store holds them: isolation (``isolate_ports``) and anti-spoofing
        (``anti_spoofing``), the same rules on every bridge type (README, "Port security").

        A reconciliation: rules of new ports added, of ports not listed removed, rules
        lost (a switch restart, a flush) restored. Safe to call before a port's device
        exists (rules keyed by device name) and again after libvirt plugged it.
        Returns the changes made.
        """

    @abc.abstractmethod
    def port_security_drift(self, ports: Sequence[Port]) -> list[str]:
        """What ``secure_ports(ports)`` would change, changing nothing: one line per port
        (or bridge-wide rule set) whose rules are missing, stale or left over; empty when
        every rule is in place. ``cachenet doctor`` reports it."""


P = ParamSpec("P")
R = TypeVar("R")
B = TypeVar("B", bound=BridgeBackend)


def library_errors(
    action: str,
) -> Callable[[Callable[Concatenate[B, P], R]], Callable[Concatenate[B, P], R]]:
    """Decorates a backend method: what its library raises leaves it as cachenet's error
    (``translated``), saying ``action`` on the backend's bridge failed."""

    def decorate(method: Callable[Concatenate[B, P], R]) -> Callable[Concatenate[B, P], R]:
        @functools.wraps(method)
        def translating(backend: B, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with translated(f"{action} bridge {backend.settings.name}"):
                return method(backend, *args, **kwargs)

        return translating

    return decorate


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Turns an error of a library a backend drives (pyroute2's NetlinkError, ovsdbapp's
    RuntimeErrors) into ``BridgeError`` ("WHAT failed: ..."), or ``PrivilegeError`` when
    the kernel refused this process. cachenet's own errors and anything else pass."""
    try:
        yield
    except CachenetError:
        raise
    except Exception as exc:
        if not _from_library(exc):
            raise
        detail = " ".join(str(exc.args[-1] if _from_pyroute2(exc) and exc.args else exc).split())
        if refused(exc):
            raise PrivilegeError(f"{what}: the kernel refused it ({detail}); run as root") from None
        raise BridgeError(f"{what} failed: {detail}") from None


def _from_library(exc: Exception) -> bool:
    # ovsdbapp reports OVSDB's errors as RuntimeError (its own exceptions subclass it).
    return _from_pyroute2(exc) or isinstance(exc, RuntimeError)


def _from_pyroute2(exc: Exception) -> bool:
    # Matched by module, not by class: importing pyroute2 to name NetlinkError would cost
    # port security (run by every attach, no netlink) ~0.2 s.
    return type(exc).__module__.split(".")[0] == "pyroute2"
