"""Add or remove a domain's cache interface through libvirt (persistent, and live if running)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import libvirt

from cachenet import domxml
from cachenet.bridge import secure_host_ports
from cachenet.errors import DomainXMLError, LibvirtError, PrivilegeError
from cachenet.settings import Settings
from cachenet.store import PortStore

# libvirt prints every error to stderr by default; cachenet reports them itself.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

AFFECT_CONFIG = libvirt.VIR_DOMAIN_AFFECT_CONFIG
AFFECT_LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
ATTACHED = "attached"  # how attach()'s changes that added an interface begin


@contextlib.contextmanager
def libvirt_errors(what: str) -> Iterator[None]:
    """libvirt's errors as one line naming what was being done."""
    try:
        yield
    except libvirt.libvirtError as exc:
        if _access_denied(exc):
            raise PrivilegeError(
                f"{what}: {exc.get_error_message()}: this user may not manage libvirt's "
                "domains; run it as root or as a member of the libvirt group"
            ) from None
        raise LibvirtError(f"{what}: {exc.get_error_message()}") from None


_ACCESS_CODES = frozenset(
    {
        libvirt.VIR_ERR_AUTH_FAILED,
        libvirt.VIR_ERR_AUTH_CANCELLED,
        libvirt.VIR_ERR_AUTH_UNAVAILABLE,
        libvirt.VIR_ERR_ACCESS_DENIED,
    }
)


def _access_denied(exc: libvirt.libvirtError) -> bool:
    """Whether libvirt refused this user rather than failed: polkit or its socket said no."""
    message = exc.get_error_message() or ""
    if exc.get_error_code() in _ACCESS_CODES or "Permission denied" in message:
        return True
    # Only a user other than root is checked by polkit, which needs the system bus.
    return os.geteuid() != 0 and "system bus" in message


def connect(uri: str) -> libvirt.virConnect:
    with libvirt_errors(f"cannot connect to libvirt at {uri}"):
        return libvirt.open(uri)


def list_domains(conn: libvirt.virConnect) -> list[libvirt.virDomain]:
    """Every domain libvirt knows: defined, running or both."""
    with libvirt_errors("listing domains"):
        return list(conn.listAllDomains())


def lookup(conn: libvirt.virConnect, name_or_uuid: str) -> libvirt.virDomain:
    """A domain by UUID or by name."""
    with contextlib.suppress(libvirt.libvirtError):
        return conn.lookupByUUIDString(name_or_uuid)
    with libvirt_errors(f"no domain {name_or_uuid!r}"):
        return conn.lookupByName(name_or_uuid)


def attach(settings: Settings, store: PortStore, domain: libvirt.virDomain) -> list[str]:
    """Give ``domain`` its cache interface; returns what changed (nothing: already there)."""
    name = domain.name()
    # The XML first: a domain whose XML cannot be used gets no port.
    with libvirt_errors(f"reading the XML of {name}"):
        targets = [(flag, where, _find(domain, flag, settings)) for flag, where in _targets(domain)]
    port = store.allocate(domain.UUIDString(), settings.store.host)
    if port.host != settings.store.host:  # the domain moved here (migration)
        port = store.move(port.instance_uuid, settings.store.host)
    wanted = domxml.interface_xml(port, settings.bridge, settings.network)
    missing = [(flag, where, found) for flag, where, found in targets
               if found is None or found.mac != port.mac]  # fmt: skip
    if not missing:
        return []
    # The port's rules before libvirt creates its device (a Linux bridge's table
    # is keyed by device name; a device without rules forwards nothing).
    changes = secure_ports(settings, store)
    hot_plugged = False
    with libvirt_errors(f"attaching the cache interface to {name}"):
        for flag, where, found in missing:
            if found is not None:  # a stale interface with another MAC
                domain.detachDeviceFlags(found.xml, flag)
            domain.attachDeviceFlags(wanted, flag)
            changes.append(f"{ATTACHED} {port.mac} ({port.shown_address}) to {name} ({where})")
            hot_plugged |= flag == AFFECT_LIVE
    if hot_plugged:  # a new port on the bridge: what needs the device (OVS) now
        changes += secure_ports(settings, store)
    return changes


def secure_ports(settings: Settings, store: PortStore) -> list[str]:
    """Port security for this host's ports as the store holds them (BridgeBackend.secure_ports)."""
    return secure_host_ports(settings.bridge, settings.network, store, settings.store.host)


def detach(
    settings: Settings, store: PortStore, domain: libvirt.virDomain, release: bool = False
) -> list[str]:
    """Remove ``domain``'s cache interface; with ``release`` free its port too."""
    name = domain.name()
    changes = []
    with libvirt_errors(f"detaching the cache interface from {name}"):
        for flag, where in _targets(domain):
            found = _find(domain, flag, settings)
            if found is not None:
                domain.detachDeviceFlags(found.xml, flag)
                changes.append(f"detached {found.mac} from {name} ({where})")
    if release and store.release(domain.UUIDString()) is not None:
        changes.append(f"released the port of {name}")
    return changes


def _targets(domain: libvirt.virDomain) -> list[tuple[int, str]]:
    """The domain's running and persistent definitions, live first: a hot-plugged
    guest sees its NIC before libvirt rewrites the persistent config."""
    targets = []
    if domain.isActive():
        targets.append((AFFECT_LIVE, "live"))
    if domain.isPersistent():
        targets.append((AFFECT_CONFIG, "persistent"))
    return targets


def _find(domain: libvirt.virDomain, flag: int, settings: Settings) -> domxml.CacheInterface | None:
    """The cache interface of the domain's persistent or live XML; errors name the domain."""
    xml = str(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if flag == AFFECT_CONFIG else 0))
    try:
        return domxml.find_cache_interface(xml, settings.bridge, settings.network)
    except DomainXMLError as exc:
        raise DomainXMLError(f"domain {domain.name()}: {exc}") from None
