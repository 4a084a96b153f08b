"""Keeps the hostsdir equal to the store: follows the store's change log, and
resyncs in full now and then (a change committed out of order is caught there)."""

from __future__ import annotations

import time

from cachenet.dhcp.hostsdir import HostsDir
from cachenet.port import Port
from cachenet.store import PortStore

FULL_SYNC_EVERY = 60.0  # seconds
# The change log is kept this long, far beyond FULL_SYNC_EVERY: every follower
# has read an event long before it goes, and the table does not grow forever.
EVENT_RETENTION = 3600.0  # seconds


def _reserved(ports: list[Port]) -> list[Port]:
    """The ports DHCPv4 serves: those with an IPv4 address (none on an IPv6-only pool,
    whose guests take their address by SLAAC from the router advertisements)."""
    return [port for port in ports if port.address is not None]


class ReservationSync:
    def __init__(self, store: PortStore, hostsdir: HostsDir) -> None:
        self.store = store
        self.hostsdir = hostsdir
        self.cursor = 0
        self._last_full = 0.0

    def step(self) -> bool:
        """Apply what changed since the last step; True when dnsmasq must reload (SIGHUP).

        New reservations need no reload: dnsmasq picks up new files itself.
        """
        if time.monotonic() - self._last_full >= FULL_SYNC_EVERY:
            return self.full()
        changes = self.store.changes_since(self.cursor)
        self.cursor = changes.cursor
        reload = False
        for port in changes.released:
            reload |= self.hostsdir.remove(port)
        for port in _reserved(changes.upserted):
            existed = self.hostsdir.holds(port)
            reload |= self.hostsdir.write(port) and existed
        return reload

    def full(self) -> bool:
        """Rewrite the directory from every live port of the store."""
        snapshot = self.store.snapshot()
        self.cursor = snapshot.cursor
        self._last_full = time.monotonic()
        reload = self.hostsdir.replace_all(_reserved(snapshot.upserted))
        self.store.prune_events(EVENT_RETENTION)
        return reload
