"""Host side: the cache bridge, as a Linux bridge (netlink) or an Open vSwitch bridge (OVSDB)."""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cachenet.bridge.base import BridgeBackend, BridgeStatus
from cachenet.port import Port
from cachenet.settings import BridgeSettings, NetworkSettings

if TYPE_CHECKING:
    from cachenet.store import PortStore

# Listing the store and applying the list are one step per process: a list taken
# before another thread allocated a port must not remove that port's new rules.
_SECURING = threading.Lock()


# Every bridge type, by the value of the bridge_type option: the one place a new type
# is registered. Modules are imported when their type is used (each costs some imports).
BRIDGE_TYPES = {
    "linuxbridge": "cachenet.bridge.linuxbridge:LinuxBridge",
    "ovs": "cachenet.bridge.ovs:OvsBridge",
}


def backend_class(bridge_type: str) -> type[BridgeBackend]:
    """The ``BridgeBackend`` subclass registered for ``bridge_type``."""
    module, _, name = BRIDGE_TYPES[bridge_type].partition(":")
    cls: type[BridgeBackend] = getattr(importlib.import_module(module), name)
    return cls


@functools.cache
def backend_for(settings: BridgeSettings, network: NetworkSettings) -> BridgeBackend:
    """The backend of ``settings.bridge_type``, one per bridge settings in a process.

    Kept: an OVS backend holds a connection to OVSDB (and its thread), which a
    daemon calling this every minute must not open again each time.
    """
    return backend_class(settings.bridge_type)(settings, network)


def secure_host_ports(
    settings: BridgeSettings,
    network: NetworkSettings,
    store: PortStore,
    host: str,
    extra: Sequence[Port] = (),
) -> list[str]:
    """Port security for ``host``'s instance ports as the store holds them (and
    ``extra``, e.g. a port migrating in): the changes made (BridgeBackend.secure_ports)."""
    with _SECURING:
        ports = store.list(host)
        known = {port.instance_uuid for port in ports}
        ports += [port for port in extra if port.instance_uuid not in known]
        return backend_for(settings, network).secure_ports(ports)


__all__ = [
    "BRIDGE_TYPES",
    "BridgeBackend",
    "BridgeStatus",
    "backend_class",
    "backend_for",
    "secure_host_ports",
]
