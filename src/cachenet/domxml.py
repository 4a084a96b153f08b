"""Add, find and remove the cache interface of a libvirt domain XML (pure, lxml).

The cache interface is recognised by what it is, not where it is: an
``<interface>`` whose MAC is under the cache MAC prefix. The MAC is the port's
stable identity; the bridge it names is the host's configured one when it was
added, so a renamed bridge leaves it recognised (and replaced, not re-added).
Adding is idempotent (an existing cache interface is replaced in place, keeping
its guest PCI address so the guest's NIC name does not change), and nothing
else of the document is touched:
Nova's ``<metadata>`` and its namespaces survive a round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from cachenet.bridge import backend_class
from cachenet.errors import DomainXMLError
from cachenet.identity import has_mac_prefix
from cachenet.port import Port
from cachenet.settings import BridgeSettings, NetworkSettings

# Devices libvirt formats after <interface> elements (virDomainDefFormatInternal
# order); with no interface yet, the cache NIC goes before the first of these.
DEVICES_AFTER_INTERFACES = frozenset(
    {
        "smartcard", "serial", "parallel", "console", "channel", "input", "tpm",
        "graphics", "sound", "audio", "video", "hostdev", "redirdev", "redirfilter",
        "hub", "watchdog", "memballoon", "rng", "panic", "shmem", "memory", "iommu",
        "vsock", "crypto", "pstore",
    }
)  # fmt: skip
# Children libvirt assigns to a NIC that must survive a re-add: the guest PCI
# slot decides the guest's interface name (ens3, ens4, ...).
KEPT_ON_REPLACE = ("address", "alias", "rom", "boot")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
# The largest domain XML accepted: libvirt's own RPC string limit
# (VIR_NET_MESSAGE_STRING_MAX), so no domain libvirt hands out is larger.
MAX_DOMAIN_XML_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class CacheInterface:
    """What a domain's cache interface says."""

    mac: str
    bridge: str
    device: str | None
    model: str | None
    # The IP parameter of libvirt's clean-traffic filter, which interfaces added
    # before port security moved to nftables carry, as written: libvirt takes
    # values that are not addresses ('any', a variable) too. None otherwise.
    address: str | None
    xml: str

    def as_dict(self) -> dict[str, str | None]:
        return {
            "mac": self.mac,
            "bridge": self.bridge,
            "device": self.device,
            "model": self.model,
            "address": self.address,
        }


def interface_element(
    port: Port, bridge: BridgeSettings, network: NetworkSettings
) -> etree._Element:
    """The ``<interface>`` element of ``port`` on the cache ``bridge``."""
    iface = etree.Element("interface", type="bridge")
    etree.SubElement(iface, "mac", address=port.mac)
    etree.SubElement(iface, "source", bridge=bridge.name)  # the host's, not the port's
    etree.SubElement(iface, "target", dev=port.device)
    etree.SubElement(iface, "model", type=bridge.nic_model)
    if network.mtu:
        etree.SubElement(iface, "mtu", size=str(network.mtu))
    # What differs per bridge type (OVS: virtualport, VLAN tag) is the type's own.
    backend_class(bridge.bridge_type).interface_parts(iface, port, bridge)
    return iface


def interface_xml(port: Port, bridge: BridgeSettings, network: NetworkSettings) -> str:
    """The cache interface alone, as libvirt's attachDeviceFlags takes it."""
    element = interface_element(port, bridge, network)
    return str(etree.tostring(element, encoding="unicode", pretty_print=True))


def add_cache_interface(
    domain_xml: str | bytes, port: Port, bridge: BridgeSettings, network: NetworkSettings
) -> str:
    """``domain_xml`` with exactly one cache interface, for ``port``."""
    root = parse_domain(domain_xml)
    devices = _devices(root)
    new = interface_element(port, bridge, network)
    existing = _cache_interfaces(devices, network)
    if existing:
        _replace(existing[0], new)
        for extra in existing[1:]:
            _remove(extra)
    else:
        _insert(devices, new)
    return _serialize(root)


def remove_cache_interface(
    domain_xml: str | bytes, bridge: BridgeSettings, network: NetworkSettings
) -> str:
    """``domain_xml`` without any cache interface (unchanged when there is none)."""
    root = parse_domain(domain_xml)
    for iface in _cache_interfaces(_devices(root), network):
        _remove(iface)
    return _serialize(root)


def find_cache_interface(
    domain_xml: str | bytes, bridge: BridgeSettings, network: NetworkSettings
) -> CacheInterface | None:
    """The domain's cache interface, or None."""
    found = _cache_interfaces(_devices(parse_domain(domain_xml)), network)
    return _describe(found[0]) if found else None


@dataclass(frozen=True)
class SetAside:
    """A cache interface taken out of a domain: where it was and what it said."""

    interfaces_before: int  # how many other <interface> elements preceded it
    xml: str  # the element as it was (guest PCI address and alias included)


def set_aside_cache_interfaces(
    domain_xml: str | bytes, bridge: BridgeSettings, network: NetworkSettings
) -> tuple[str, list[SetAside]]:
    """The domain without its cache interfaces, and what ``restore_cache_interfaces`` needs.

    Live migration hands the domain XML to code that only knows Nova's own
    NICs; the cache NIC is set aside meanwhile and put back, unchanged, after.
    """
    root = parse_domain(domain_xml)
    devices = _devices(root)
    aside = []
    for iface in _cache_interfaces(devices, network):
        before = sum(1 for i in iface.itersiblings("interface", preceding=True)
                     if not _is_cache_interface(i, network))  # fmt: skip
        aside.append(SetAside(before, etree.tostring(iface, encoding="unicode", with_tail=False)))
        _remove(iface)
    return _serialize(root), aside


def restore_cache_interfaces(domain_xml: str | bytes, aside: list[SetAside]) -> str:
    """Put set-aside cache interfaces back where they were, among the other interfaces."""
    root = parse_domain(domain_xml)
    devices = _devices(root)
    for item in aside:
        element = etree.fromstring(item.xml, _PARSER)
        others = list(devices.iterchildren("interface"))
        if item.interfaces_before and others:
            _insert_after(others[min(item.interfaces_before, len(others)) - 1], element)
        elif others:
            _insert_before(others[0], element)
        else:
            _insert(devices, element)
    return _serialize(root)


def parse_domain(domain_xml: str | bytes) -> etree._Element:
    """Parse a libvirt domain document; a clear one-line ``DomainXMLError`` otherwise."""
    try:
        data = domain_xml.encode("utf-8") if isinstance(domain_xml, str) else domain_xml
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise DomainXMLError(f"domain XML is not valid text: {exc.reason}") from None
    check_size(len(data))
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        # libxml2's messages may hold a newline; the error stays one line.
        raise DomainXMLError(f"malformed domain XML: {' '.join(str(exc).split())}") from None
    if root.tag != "domain":
        raise DomainXMLError(f"not a libvirt domain: the document's root is <{root.tag}>")
    return root


def check_domain(domain_xml: str | bytes) -> None:
    """Raise the ``DomainXMLError`` adding or removing the cache interface would raise."""
    _devices(parse_domain(domain_xml))


def check_size(size: int) -> None:
    """Refuse a domain XML of ``size`` bytes when it is over ``MAX_DOMAIN_XML_BYTES``."""
    if size > MAX_DOMAIN_XML_BYTES:
        raise DomainXMLError(
            f"domain XML is larger than {MAX_DOMAIN_XML_BYTES // (1024 * 1024)} MiB, "
            "libvirt's own limit"
        )


def _devices(root: etree._Element) -> etree._Element:
    devices = root.find("devices")
    if devices is None:
        raise DomainXMLError("the domain has no <devices> element")
    return devices


def _cache_interfaces(devices: etree._Element, network: NetworkSettings) -> list[etree._Element]:
    return [i for i in devices.iterchildren("interface") if _is_cache_interface(i, network)]


def _is_cache_interface(iface: etree._Element, network: NetworkSettings) -> bool:
    """A MAC under the network's prefix: the port's stable identity, whatever bridge it names."""
    mac = iface.find("mac")
    return mac is not None and has_mac_prefix(mac.get("address", ""), network.mac_prefix)


def _describe(iface: etree._Element) -> CacheInterface:
    def attr(path: str, name: str) -> str | None:
        element = iface.find(path)
        return element.get(name) if element is not None else None

    return CacheInterface(
        mac=attr("mac", "address") or "",
        bridge=attr("source", "bridge") or "",
        device=attr("target", "dev"),
        model=attr("model", "type"),
        address=attr("filterref/parameter[@name='IP']", "value"),
        xml=etree.tostring(iface, encoding="unicode", with_tail=False),
    )


def _insert(devices: etree._Element, new: etree._Element) -> None:
    """After the last interface; else before the first device libvirt orders later."""
    interfaces = list(devices.iterchildren("interface"))
    if interfaces:
        _insert_after(interfaces[-1], new)
        return
    for child in devices:
        if isinstance(child.tag, str) and child.tag in DEVICES_AFTER_INTERFACES:
            _insert_before(child, new)
            return
    children = [c for c in devices if isinstance(c.tag, str)]
    if children:
        _insert_after(children[-1], new)
    else:
        _append_to_empty(devices, new)


def _insert_after(ref: etree._Element, new: etree._Element) -> None:
    indent = _leading_whitespace(ref)
    new.tail, ref.tail = ref.tail, indent
    _indent(new, indent)
    ref.addnext(new)


def _insert_before(ref: etree._Element, new: etree._Element) -> None:
    indent = _leading_whitespace(ref)
    new.tail = indent
    _indent(new, indent)
    ref.addprevious(new)


def _append_to_empty(devices: etree._Element, new: etree._Element) -> None:
    closing = devices.text
    if closing is not None and "\n" in closing and closing.strip() == "":
        devices.text = closing + "  "
        new.tail = closing
        _indent(new, devices.text)
    devices.append(new)


def _replace(old: etree._Element, new: etree._Element) -> None:
    for tag in KEPT_ON_REPLACE:
        kept = old.find(tag)
        if kept is not None:
            new.append(kept)
    new.tail = old.tail
    _indent(new, _leading_whitespace(old))
    old.getparent().replace(old, new)


def _remove(element: etree._Element) -> None:
    """Remove ``element``, handing its tail to what came before so layout stays tidy."""
    parent = element.getparent()
    previous = element.getprevious()
    if previous is not None:
        previous.tail = element.tail
    else:
        parent.text = element.tail
    parent.remove(element)


def _leading_whitespace(element: etree._Element) -> str | None:
    """The whitespace that precedes ``element`` (its indentation), if any."""
    previous = element.getprevious()
    text = previous.tail if previous is not None else element.getparent().text
    return text if text is not None and text.strip() == "" else None


def _indent(element: etree._Element, leading: str | None) -> None:
    """Pretty-print ``element``'s children one level deeper than ``leading`` says."""
    if not leading or "\n" not in leading:
        return
    level = leading.rsplit("\n", 1)[1]
    step = "  "
    children = list(element)
    if not children:
        return
    element.text = "\n" + level + step
    for child in children:
        child.tail = "\n" + level + step
        _indent(child, "\n" + level + step)
    children[-1].tail = "\n" + level


def _serialize(root: etree._Element) -> str:
    # The tree, not the root, so comments and processing instructions around it survive.
    return str(etree.tostring(root.getroottree(), encoding="unicode"))
