import ipaddress
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from lxml import etree

from cachenet import domxml
from cachenet.errors import DomainXMLError
from cachenet.port import Port
from cachenet.settings import make_settings

DATA = Path(__file__).parent / "data"
NOVA_XML = (DATA / "nova-domain.xml").read_text()
BARE_XML = (DATA / "no-interface.xml").read_text()
UUID = "2a9f4c4e-5a0e-4d47-9c39-8e6a4d1f0b7a"


def cache_nic(**options):
    """The areas the domain XML takes: the cache bridge and the cache network."""
    settings = make_settings(**options)
    return settings.bridge, settings.network


LB = cache_nic()
OVS = cache_nic(bridge_type="ovs", vlan=42, mtu=9000)


def make_port(mac="fa:17:3e:00:00:07", address="10.99.0.7"):
    return Port(UUID, mac, ipaddress.IPv4Address(address), "cache-2a9f4c4e5", "h1")


def c14n(xml):
    return etree.tostring(etree.fromstring(xml.encode()), method="c14n")


def without_layout(xml):
    parser = etree.XMLParser(remove_blank_text=True)
    return etree.tostring(etree.fromstring(xml.encode(), parser), method="c14n")


def device_tags(xml):
    return [c.tag for c in etree.fromstring(xml.encode()).find("devices") if isinstance(c.tag, str)]


def cache_interfaces(xml, settings=LB):
    devices = etree.fromstring(xml.encode()).find("devices")
    return [i for i in devices.iter("interface") if domxml._is_cache_interface(i, settings[1])]


def test_linuxbridge_interface_leaves_port_security_to_the_hosts_nftables_table():
    iface = etree.fromstring(domxml.interface_xml(make_port(), *LB))
    assert iface.get("type") == "bridge"
    assert iface.find("mac").get("address") == "fa:17:3e:00:00:07"
    assert iface.find("source").get("bridge") == "br-cache"
    assert iface.find("target").get("dev") == "cache-2a9f4c4e5"
    assert iface.find("model").get("type") == "virtio"
    # No nwfilter (about 1 s per domain start and hot-plug) and no per-port flag:
    # the rules are keyed by the device name in nft_rules' table.
    assert iface.find("filterref") is None and iface.find("port") is None
    assert iface.find("virtualport") is None


def test_linuxbridge_interface_without_isolation_or_anti_spoofing():
    settings = cache_nic(isolate_ports=False, anti_spoofing=False, nic_model="e1000")
    iface = etree.fromstring(domxml.interface_xml(make_port(), *settings))
    assert iface.find("port") is None and iface.find("filterref") is None
    assert iface.find("model").get("type") == "e1000"


def test_ovs_interface_has_virtualport_vlan_and_mtu():
    iface = etree.fromstring(domxml.interface_xml(make_port(), *OVS))
    assert iface.find("virtualport").get("type") == "openvswitch"
    assert iface.find("virtualport/parameters").get("interfaceid") == UUID
    assert iface.find("vlan/tag").get("id") == "42"
    assert iface.find("mtu").get("size") == "9000"
    # nwfilter and port isolation are Linux bridge features
    assert iface.find("filterref") is None and iface.find("port") is None


def test_add_goes_after_the_last_interface_and_keeps_nova_metadata():
    out = domxml.add_cache_interface(NOVA_XML, make_port(), *LB)
    tags = device_tags(out)
    assert tags.count("interface") == 4
    assert tags.index("serial") == 5  # disk, 3 Nova interfaces, cache interface, serial
    root = etree.fromstring(out.encode())
    assert root.find("devices/interface[4]/mac").get("address") == "fa:17:3e:00:00:07"
    nova_ns = "http://openstack.org/xmlns/libvirt/nova/1.1"
    assert root.find(f"metadata/{{{nova_ns}}}instance/{{{nova_ns}}}name").text == "web-1"
    assert 'xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1"' in out


def test_add_with_no_interface_goes_before_the_serial_port():
    out = domxml.add_cache_interface(BARE_XML, make_port(), *LB)
    assert device_tags(out) == ["disk", "interface", "serial", "console"]


def test_add_to_a_domain_with_only_a_disk_appends():
    xml = "<domain type='qemu'><name>x</name><devices><disk type='file'/></devices></domain>"
    assert device_tags(domxml.add_cache_interface(xml, make_port(), *LB)) == ["disk", "interface"]


def test_add_to_empty_devices():
    xml = "<domain type='qemu'><name>x</name><devices/></domain>"
    assert device_tags(domxml.add_cache_interface(xml, make_port(), *LB)) == ["interface"]


def test_add_is_idempotent_and_replaces_in_place():
    once = domxml.add_cache_interface(NOVA_XML, make_port(), *LB)
    assert domxml.add_cache_interface(once, make_port(), *LB) == once
    other = domxml.add_cache_interface(once, make_port("fa:17:3e:00:00:08", "10.99.0.8"), *LB)
    found = cache_interfaces(other)
    assert len(found) == 1
    assert found[0].find("mac").get("address") == "fa:17:3e:00:00:08"


def test_replacing_keeps_the_guest_pci_address():
    once = domxml.add_cache_interface(NOVA_XML, make_port(), *LB)
    root = etree.fromstring(once.encode())
    live = next(i for i in root.iter("interface") if domxml._is_cache_interface(i, LB[1]))
    etree.SubElement(live, "address", type="pci", domain="0x0000", bus="0x00", slot="0x07")
    again = domxml.add_cache_interface(etree.tostring(root), make_port(), *LB)
    assert cache_interfaces(again)[0].find("address").get("slot") == "0x07"


def test_two_stray_cache_interfaces_become_one():
    twice = NOVA_XML.replace(
        "</devices>",
        "<interface type='bridge'><mac address='fa:17:3e:00:00:01'/>"
        "<source bridge='br-cache'/></interface>"
        "<interface type='bridge'><mac address='fa:17:3e:00:00:02'/>"
        "<source bridge='br-cache'/></interface></devices>",
    )
    out = domxml.add_cache_interface(twice, make_port(), *LB)
    assert [i.find("mac").get("address") for i in cache_interfaces(out)] == ["fa:17:3e:00:00:07"]


def test_an_interface_under_another_mac_prefix_is_not_the_cache_interface():
    xml = NOVA_XML.replace(
        "</devices>",
        "<interface type='bridge'><mac address='fa:16:3e:00:00:01'/>"
        "<source bridge='br-cache'/></interface></devices>",
    )
    assert domxml.find_cache_interface(xml, *LB) is None
    assert c14n(domxml.remove_cache_interface(xml, *LB)) == c14n(xml)


def test_the_cache_interface_is_recognised_by_its_mac_after_the_bridge_is_renamed():
    """The MAC is the port's identity: an interface added before the bridge was
    renamed is found, and replaced in place (guest PCI slot kept), not added beside."""
    added = domxml.add_cache_interface(NOVA_XML, make_port(), *LB)
    added = added.replace("<target dev=", "<address type='pci' slot='0x07'/><target dev=")
    renamed = cache_nic(bridge="br-cache2")
    found = domxml.find_cache_interface(added, *renamed)
    assert (found.mac, found.bridge) == ("fa:17:3e:00:00:07", "br-cache")
    again = domxml.add_cache_interface(added, make_port(), *renamed)
    assert [i.find("source").get("bridge") for i in cache_interfaces(again)] == ["br-cache2"]
    assert cache_interfaces(again)[0].find("address").get("slot") == "0x07"


def test_remove_restores_the_original_document():
    added = domxml.add_cache_interface(NOVA_XML, make_port(), *LB)
    assert domxml.remove_cache_interface(added, *LB) == NOVA_XML.rstrip("\n")
    added = domxml.add_cache_interface(BARE_XML, make_port(), *OVS)
    assert domxml.remove_cache_interface(added, *OVS) == BARE_XML.rstrip("\n")


def test_find_describes_the_cache_interface():
    added = domxml.add_cache_interface(NOVA_XML, make_port(), *LB)
    found = domxml.find_cache_interface(added, *LB)
    assert found.as_dict() == {
        "mac": "fa:17:3e:00:00:07",
        "bridge": "br-cache",
        "device": "cache-2a9f4c4e5",
        "model": "virtio",
        "address": None,  # only interfaces with libvirt's clean-traffic filter carry it
    }
    assert domxml.find_cache_interface(NOVA_XML, *LB) is None


def test_comments_and_processing_instructions_survive():
    xml = "<!-- made by hand --><domain type='qemu'><name>x</name><devices/></domain>"
    assert domxml.add_cache_interface(xml, make_port(), *LB).startswith("<!-- made by hand -->")


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<domain><devices>", "malformed domain XML"),
        ("", "malformed domain XML"),
        ("<network><name>x</name></network>", "root is <network>"),
        ("<domain type='kvm'><name>x</name></domain>", "no <devices>"),
    ],
)
def test_bad_documents_get_a_clear_error(xml, message):
    for call in (
        lambda: domxml.add_cache_interface(xml, make_port(), *LB),
        lambda: domxml.remove_cache_interface(xml, *LB),
        lambda: domxml.find_cache_interface(xml, *LB),
    ):
        with pytest.raises(DomainXMLError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)


def test_external_entities_are_not_resolved(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("TOPSECRET")
    xml = (
        f'<!DOCTYPE domain [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<domain type='qemu'><name>&x;</name><devices/></domain>"
    )
    assert "TOPSECRET" not in domxml.add_cache_interface(xml, make_port(), *LB)


# --- schema validation with libvirt's own virt-xml-validate ---------------------

needs_validator = pytest.mark.skipif(
    shutil.which("virt-xml-validate") is None, reason="virt-xml-validate (libvirt-clients) missing"
)


def validates(xml, tmp_path, name="domain.xml"):
    path = tmp_path / name
    path.write_text(xml)
    result = subprocess.run(
        ["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, check=False
    )
    return result.returncode == 0, result.stderr


@needs_validator
@pytest.mark.parametrize("source", [NOVA_XML, BARE_XML], ids=["nova", "no-interface"])
@pytest.mark.parametrize(
    "settings", [LB, OVS, cache_nic(bridge_type="ovs")], ids=["lb", "ovs-vlan", "ovs"]
)
def test_output_is_valid_for_libvirts_schema(tmp_path, source, settings):
    assert validates(source, tmp_path, "in.xml")[0]
    added = domxml.add_cache_interface(source, make_port(), *settings)
    ok, err = validates(added, tmp_path)
    assert ok, err
    ok, err = validates(domxml.remove_cache_interface(added, *settings), tmp_path, "removed.xml")
    assert ok, err


# --- properties: add/remove never lose or duplicate anything else ---------------

OTHER_DEVICES = ["disk", "controller", "interface", "serial", "console", "input", "graphics",
                 "video", "hostdev", "memballoon", "rng", "watchdog", "channel"]  # fmt: skip


@st.composite
def domains(draw):
    tags = draw(st.lists(st.sampled_from(OTHER_DEVICES), max_size=12))
    parts = []
    for n, tag in enumerate(tags):
        if tag == "interface":
            # Other NICs: MACs under other prefixes, on any bridge (the cache one too).
            mac = draw(st.sampled_from(["fa:16:3e", "52:54:00"])) + f":00:00:{n:02x}"
            bridge = draw(st.sampled_from(["br-int", "virbr0", "br-cache"]))
            parts.append(f"<interface type='bridge'><mac address='{mac}'/>"
                         f"<source bridge='{bridge}'/></interface>")  # fmt: skip
        else:
            parts.append(f"<{tag} id='{n}'/>")
    indent = draw(st.sampled_from(["", "\n    "]))
    body = "".join(indent + p for p in parts) + ("\n  " if indent else "")
    return f"<domain type='kvm'><name>d</name><devices>{body}</devices></domain>"


def element_counts(xml):
    devices = etree.fromstring(xml.encode()).find("devices")
    return Counter(etree.tostring(c, with_tail=False) for c in devices if isinstance(c.tag, str))


@given(domains())
@hsettings(max_examples=200, deadline=None)
def test_add_then_remove_keeps_every_other_element(xml):
    added = domxml.add_cache_interface(xml, make_port(), *LB)
    assert len(cache_interfaces(added)) == 1
    before = element_counts(xml)
    after = element_counts(added)
    assert sum(after.values()) == sum(before.values()) + 1
    assert before - after == Counter()  # nothing lost
    removed = domxml.remove_cache_interface(added, *LB)
    assert element_counts(removed) == before
    assert domxml.add_cache_interface(added, make_port(), *LB) == added


def test_set_aside_and_restore_keep_the_cache_interface_as_it_was():
    added = domxml.add_cache_interface(NOVA_XML, make_port(), *LB)
    root = etree.fromstring(added.encode())
    live = next(i for i in root.iter("interface") if domxml._is_cache_interface(i, LB[1]))
    etree.SubElement(live, "address", type="pci", domain="0x0000", bus="0x00", slot="0x07")
    etree.SubElement(live, "alias", name="net3")
    live_xml = etree.tostring(root, encoding="unicode")
    without, aside = domxml.set_aside_cache_interfaces(live_xml, *LB)
    assert domxml.find_cache_interface(without, *LB) is None
    assert device_tags(without).count("interface") == 3
    restored = domxml.restore_cache_interfaces(without, aside)
    assert without_layout(restored) == without_layout(live_xml)


def test_restore_into_a_domain_whose_interfaces_changed_still_adds_it_once():
    added = domxml.add_cache_interface(NOVA_XML, make_port(), *LB)
    _without, aside = domxml.set_aside_cache_interfaces(added, *LB)
    restored = domxml.restore_cache_interfaces(BARE_XML, aside)
    assert device_tags(restored) == ["disk", "interface", "serial", "console"]


ANY_IP_INTERFACE = (
    "<interface type='bridge'><mac address='fa:17:3e:00:00:09'/><source bridge='br-cache'/>"
    "<filterref filter='clean-traffic'><parameter name='IP' value='any'/></filterref>"
    "</interface></devices>"
)


def test_an_ip_parameter_that_is_not_an_address_is_reported_as_written():
    xml = NOVA_XML.replace("</devices>", ANY_IP_INTERFACE)
    found = domxml.find_cache_interface(xml, *LB)
    assert (found.mac, found.address) == ("fa:17:3e:00:00:09", "any")
    assert domxml.find_cache_interface(domxml.remove_cache_interface(xml, *LB), *LB) is None
    replaced = domxml.find_cache_interface(domxml.add_cache_interface(xml, make_port(), *LB), *LB)
    # Re-adding an interface made before port security moved to nftables drops its filter.
    assert replaced.address is None and "filterref" not in replaced.xml


def deep(depth):
    return "<domain><devices>" + "<a>" * depth + "</a>" * depth + "</devices></domain>"


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<domain>\0<devices/></domain>", "Char 0x0 out of allowed range"),
        (b"<domain>\0<devices/></domain>", "Char 0x0 out of allowed range"),
        ("<domain><devices/></domain>".encode("cp037"), "Start tag expected"),
        (
            '<?xml version="1.0" encoding="IBM037"?><domain><devices/></domain>'.encode("cp037"),
            "EBCDIC",
        ),
        (b"<domain><devices>\xff\xfe</devices></domain>", "Invalid bytes"),
        ("<domain>\udcff<devices/></domain>", "not valid text"),
        ("<domain><devices><" + "a" * 60000 + "/></devices></domain>", "Name too long"),
        (deep(300), "Excessive depth"),
        (b"<domain><devices>" + b"x" * (4 * 1024 * 1024) + b"</devices></domain>", "4 MiB"),
    ],
    ids=[
        "nul",
        "nul-bytes",
        "ebcdic",
        "ebcdic-declared",
        "not-utf8",
        "surrogate",
        "long-name",
        "deep",
        "over-4MiB",
    ],
)
def test_unusable_input_is_one_line(xml, message):
    with pytest.raises(DomainXMLError, match=message) as caught:
        domxml.find_cache_interface(xml, *LB)
    assert "\n" not in str(caught.value)


def test_a_domain_of_exactly_4_mib_is_accepted():
    bare = "<domain><devices/><description></description></domain>"
    pad = domxml.MAX_DOMAIN_XML_BYTES - len(bare)
    xml = bare.replace("</description>", "x" * pad + "</description>")
    assert len(xml) == domxml.MAX_DOMAIN_XML_BYTES
    assert domxml.find_cache_interface(xml, *LB) is None
    with pytest.raises(DomainXMLError, match="larger than 4 MiB"):
        domxml.find_cache_interface(xml.replace("<domain>", "<domain> "), *LB)
