"""Host side: the cache bridge, as a Linux bridge (netlink) or an Open vSwitch bridge (OVSDB)."""

from __future__ import annotations

import functools

from cachenet.bridge.base import BridgeBackend, BridgeStatus
from cachenet.settings import Settings


@functools.cache
def backend_for(settings: Settings) -> BridgeBackend:
    """The backend of ``settings.bridge_type``, one per settings in a process.

    Kept: an OVS backend holds a connection to OVSDB (and its thread), which a
    daemon calling this every minute must not open again each time.
    """
    if settings.bridge_type == "ovs":
        from cachenet.bridge.ovs import OvsBridge

        return OvsBridge(settings)
    from cachenet.bridge.linuxbridge import LinuxBridge

    return LinuxBridge(settings)


__all__ = ["BridgeBackend", "BridgeStatus", "backend_for"]
