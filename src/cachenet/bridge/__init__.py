"""Host side: the cache bridge, as a Linux bridge (netlink) or an Open vSwitch bridge (OVSDB)."""

from __future__ import annotations

from cachenet.bridge.base import BridgeBackend, BridgeStatus
from cachenet.settings import Settings


def backend_for(settings: Settings) -> BridgeBackend:
    """The backend of ``settings.bridge_type``."""
    if settings.bridge_type == "ovs":
        from cachenet.bridge.ovs import OvsBridge

        return OvsBridge(settings)
    from cachenet.bridge.linuxbridge import LinuxBridge

    return LinuxBridge(settings)


__all__ = ["BridgeBackend", "BridgeStatus", "backend_for"]
