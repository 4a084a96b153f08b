"""``cachenet agent``: gives every selected domain its cache NIC as it is defined.

It follows libvirt's lifecycle events on libvirt's default event loop:
DEFINED adds the cache interface to the persistent config (the port's rules
first), UNDEFINED releases the port, STARTED secures the ports the domain
plugged (see BridgeBackend.secure_ports). On (re)connection, and every
``agent_reconcile_interval`` seconds after, it reconciles: selected domains
that lack the interface get it, ports of this host whose domain no longer
exists are released, and the bridge's port security is made to match the
store's ports (lost rules restored), so an event handled while the store was
down is made up for. It reconnects, with backoff, when libvirtd restarts.
It also answers ``cachenet attach`` and ``cachenet ports allocate`` run with
its configuration (``cachenet.agent.handoff``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import libvirt

from cachenet import metrics
from cachenet.agent.attach import (
    ATTACHED,
    attach,
    libvirt_errors,
    list_domains,
    lookup,
    secure_ports,
)
from cachenet.agent.handoff import AgentUnavailable, Handler, HandoffServer
from cachenet.errors import CachenetError
from cachenet.port import Port
from cachenet.settings import AgentSettings, Settings
from cachenet.store import PortStore

LOG = logging.getLogger(__name__)
GC_GRACE = 60.0  # seconds: a port younger than this may belong to a domain being defined


def selected(agent: AgentSettings, domain: libvirt.virDomain) -> bool:
    """Whether the agent's selector picks ``domain``."""
    kind, _, arg = agent.selector.partition(":")
    if kind == "name":
        return fnmatch.fnmatchcase(domain.name(), arg)
    if kind == "metadata":
        try:
            domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, arg,
                            libvirt.VIR_DOMAIN_AFFECT_CONFIG)  # fmt: skip
        except libvirt.libvirtError:
            return False
        return True
    return True


def reconcile(
    settings: Settings, store: PortStore, conn: libvirt.virConnect, grace: float = GC_GRACE
) -> tuple[list[str], list[Port]]:
    """Attach the interface where it is missing; release ports of vanished domains;
    secure the ports left."""
    changes: list[str] = []
    domains = list_domains(conn)
    for domain in domains:
        if selected(settings.agent, domain):
            changes += _attach_logged(settings, store, domain)
    released = store.gc(settings.store.host, [d.UUIDString() for d in domains], grace)
    changes += _secure_logged(settings, store)
    return changes, released


def _secure_logged(settings: Settings, store: PortStore) -> list[str]:
    return _logged(lambda: secure_ports(settings, store))


def _attach_logged(settings: Settings, store: PortStore, domain: libvirt.virDomain) -> list[str]:
    try:
        return _logged(lambda: attach(settings, store, domain))
    except Exception as exc:  # one domain cachenet cannot handle must not stop the others
        LOG.error("skipped domain %s: %s: %s", domain.name(), type(exc).__name__, exc)
        LOG.debug("skipped domain %s", domain.name(), exc_info=True)
        return []


def _logged(work: Callable[[], list[str]]) -> list[str]:
    """The changes ``work`` made, each logged; an operator's error is logged, not raised."""
    try:
        changes = work()
    except CachenetError as exc:
        LOG.error("%s", exc)
        return []
    for change in changes:
        LOG.info("%s", change)
    return changes


class Agent:
    """The event-driven loop; ``run()`` blocks until ``stop()``."""

    def __init__(
        self, settings: Settings, store: PortStore, config_files: Sequence[str] | None = None
    ) -> None:
        """``config_files``: the files ``settings`` came from, to answer the CLI run
        with them (None: it is not answered)."""
        self.settings = settings
        self.store = store
        self._handoff: HandoffServer | None = None
        if config_files is not None:
            handlers: dict[str, Handler] = {
                "attach": self._attach_for_cli,
                "allocate": self._allocate_for_cli,
            }
            self._handoff = HandoffServer(config_files, handlers)
        self._stop = threading.Event()
        self._disconnected = threading.Event()
        # Events (libvirt's thread) and reconciliations (this one) never work on
        # the same domain at once: both could otherwise add its interface.
        self._lock = threading.Lock()
        self._first_since_connect = True  # always say how the first reconciliation went
        self.conn: libvirt.virConnect | None = None

    def run(self) -> None:
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=self._event_loop, name="libvirt-events", daemon=True).start()
        if self._handoff is not None:
            self._handoff.start()
        try:
            self._run_connected()
        finally:
            if self._handoff is not None:
                self._handoff.stop()

    def _run_connected(self) -> None:
        """Connect (retrying with backoff) and reconcile, until stopped."""
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._connect()
            except CachenetError as exc:
                LOG.error("%s; retrying in %.0f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            self._reconcile_until_disconnected()
            self._close()

    def stop(self) -> None:
        self._stop.set()

    def _event_loop(self) -> None:
        while True:
            libvirt.virEventRunDefaultImpl()

    def _connect(self) -> None:
        with libvirt_errors(f"cannot connect to libvirt at {self.settings.agent.libvirt_uri}"):
            self.conn = libvirt.open(self.settings.agent.libvirt_uri)
            try:
                self.conn.registerCloseCallback(self._on_close, None)
                self.conn.domainEventRegisterAny(
                    None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None
                )
            except libvirt.libvirtError:
                self._close()
                raise
        self._disconnected.clear()
        self._first_since_connect = True
        LOG.info("connected to %s", self.settings.agent.libvirt_uri)

    def _close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                self.conn.close()
            self.conn = None

    def _reconcile_until_disconnected(self) -> None:
        """Reconcile now and every interval, until stopped or libvirt goes away."""
        while not (self._stop.is_set() or self._disconnected.is_set()):
            self._reconcile()
            deadline = time.monotonic() + self.settings.agent.reconcile_interval
            while time.monotonic() < deadline and not self._disconnected.is_set():
                if self._stop.wait(0.5):
                    return

    def _reconcile(self) -> None:
        assert self.conn is not None
        try:
            with self._lock:
                changes, released = reconcile(self.settings, self.store, self.conn)
        except CachenetError as exc:  # the store or libvirt: the next round retries
            LOG.error("reconciling: %s; next try in %d s", exc,
                      self.settings.agent.reconcile_interval)  # fmt: skip
            metrics.reconcile_failed()
            return
        metrics.reconciled(changes, released, ATTACHED)
        for port in released:
            LOG.info("released the port of vanished domain %s (%s)", port.instance_uuid, port.mac)
        added = [change for change in changes if change.startswith(ATTACHED)]
        if changes or released or self._first_since_connect:
            LOG.info("reconciled: %d interfaces added, %d ports released",
                     len(added), len(released))  # fmt: skip
        self._first_since_connect = False

    def _attach_for_cli(self, request: dict[str, Any]) -> dict[str, Any]:
        """``cachenet attach DOMAIN``, as the CLI would do it."""
        conn = self.conn
        if conn is None:
            raise AgentUnavailable("not connected to libvirt")
        domain = _text(request, "domain")
        with self._lock:
            return {"lines": attach(self.settings, self.store, lookup(conn, domain))}

    def _allocate_for_cli(self, request: dict[str, Any]) -> dict[str, Any]:
        """``cachenet ports allocate INSTANCE_UUID [--host H]``, as the CLI would do it."""
        host = request.get("host") or self.settings.store.host
        port = self.store.allocate(_text(request, "instance_uuid"), _text({"host": host}, "host"))
        return {"port": port.as_dict(self.settings.network.ipv6_prefixes)}

    def _on_close(self, _conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        LOG.warning("connection to libvirt closed (reason %d); reconnecting", reason)
        self._disconnected.set()

    def _on_lifecycle(
        self, _conn: libvirt.virConnect, domain: libvirt.virDomain, event: int, _detail: int,
        _opaque: object,
    ) -> None:  # fmt: skip
        try:
            with self._lock:
                defined = event == libvirt.VIR_DOMAIN_EVENT_DEFINED
                if defined and selected(self.settings.agent, domain):
                    _attach_logged(self.settings, self.store, domain)
                elif event == libvirt.VIR_DOMAIN_EVENT_UNDEFINED:
                    self._release(domain.UUIDString(), domain.name())
                elif event == libvirt.VIR_DOMAIN_EVENT_STARTED:  # its ports were just plugged
                    _secure_logged(self.settings, self.store)
        except CachenetError as exc:  # the store is down: the next reconciliation makes up
            LOG.error("handling event %d of %s: %s", event, domain.name(), exc)
        except Exception:  # an event must never kill the event loop
            LOG.exception("handling event %d of %s", event, domain.name())

    def _release(self, uuid: str, name: str) -> None:
        port = self.store.get(uuid)
        # After a migration the port belongs to the destination host: not ours to free.
        if port is not None and port.host == self.settings.store.host:
            self.store.release(uuid)
            LOG.info("released the port of %s (%s, %s)", name, port.mac, port.shown_address)


def _text(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str):
        raise AgentUnavailable(f"the request's {name} is not a string")
    return value
