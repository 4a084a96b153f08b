"""End to end: a stock cloud-init guest (Debian 12) gets its reserved cache address from
what cachenet tells it, with no change to the image.

The guest boots under libvirt with a config drive as Nova writes one: a Neutron NIC
with a static address on a bridge of its own, and the cache NIC ``cachenet attach``
added on the lab's cache bridge. The image has no DHCP client hook, so whatever
address the cache NIC has, cloud-init gave it from the config drive. User data's
runcmd reports the guest's addresses and a ping of the cache node on the serial console.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cachenet.guest.network_data import add_cache_link
from cachenet.guest.vendordata import cloud_config
from cachenet.port import Port
from cachenet.settings import Settings, load_settings
from harness import cloud_guest
from harness.lab import NODE_ADDRESS, CacheLab, outcome

pytestmark = [pytest.mark.root, pytest.mark.slow]

NEUTRON_MAC = "52:54:00:7e:57:01"
NEUTRON_ADDRESS = "10.78.0.5"
NEUTRON_GATEWAY = "10.78.0.1"
BOOT_TIMEOUT = 600  # seconds; systemd and cloud-init under software emulation

# Given the cache port and settings: network_data.json and vendor_data2.json (or None).
DriveContents = Callable[[Port, Settings], tuple[dict[str, Any], dict[str, Any] | None]]


@dataclass(frozen=True)
class Boot:
    report: list[str]
    port: Port


@pytest.fixture(scope="session")
def image(pytestconfig: pytest.Config) -> cloud_guest.CloudImage:
    started = time.monotonic()
    image = cloud_guest.cloud_image()
    _show(pytestconfig, f"guest image {image.disk.parent.name}: built in {image.build_seconds} s, "
                        f"ready in {time.monotonic() - started:.0f} s")  # fmt: skip
    return image


@pytest.fixture
def boot(
    make_lab: Callable[..., CacheLab], image: cloud_guest.CloudImage, pytestconfig: pytest.Config
) -> Iterator[Callable[[DriveContents], Boot]]:
    lab = make_lab("linuxbridge")
    with cloud_guest.plain_bridge(f"{lab.prefix}nb") as neutron_bridge:

        def run(contents: DriveContents) -> Boot:
            name = f"{lab.prefix}-cloud"
            drive = lab.state / f"{name}-config.iso"
            disk = cloud_guest.fresh_disk(image, lab.state / f"{name}.raw")
            xml = cloud_guest.domain_xml(
                name, image, disk, drive, lab.console(name), neutron_bridge, NEUTRON_MAC
            )
            lab.domains.append(name)  # lab.close() destroys and undefines it
            domain = lab.conn.defineXML(xml)
            lab.cachenet("attach", name, check=True)
            port = _port(lab, domain.UUIDString())
            network_data, vendor_data2 = contents(port, load_settings([str(lab.conf)]))
            cloud_guest.write_config_drive(
                drive, cloud_guest.meta_data(domain.UUIDString(), name), network_data,
                cloud_guest.report_user_data(NODE_ADDRESS), vendor_data2,
            )  # fmt: skip
            started = time.monotonic()
            domain.create()
            report = lab.wait_done(name, BOOT_TIMEOUT)
            uptime = " ".join(line for line in report if "UPTIME" in line)
            _show(
                pytestconfig,
                f"{name}: boot to report in {time.monotonic() - started:.0f} s ({uptime})",
            )
            return Boot(report=report, port=port)

        yield run


def _port(lab: CacheLab, instance_uuid: str) -> Port:
    shown = json.loads(lab.cachenet("ports", "show", instance_uuid, "--json", check=True))
    return Port(
        instance_uuid=shown["instance_uuid"], mac=shown["mac"],
        address=ipaddress.IPv4Address(shown["address"]), device=shown["device"],
        host=shown["host"],
    )  # fmt: skip


def _show(pytestconfig: pytest.Config, line: str) -> None:
    """Timings belong in CI's log: written past pytest's output capture."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n[cloud-init guest] {line}")


def neutron_only() -> dict[str, Any]:
    return cloud_guest.neutron_network_data(NEUTRON_MAC, NEUTRON_ADDRESS, NEUTRON_GATEWAY)


def assert_neutron_nic_unchanged(report: list[str]) -> None:
    assert cloud_guest.ipv4_of(report, NEUTRON_MAC) == [f"{NEUTRON_ADDRESS}/24"]


def test_config_drive_gives_the_cache_nic_its_reserved_address(boot):
    booted = boot(
        lambda port, settings: (add_cache_link(neutron_only(), port, settings.network), None)
    )
    assert cloud_guest.ipv4_of(booted.report, booted.port.mac) == [f"{booted.port.address}/24"]
    # cloud-init rendered it, for ifupdown as on Debian 12's cloud images
    assert f"address {booted.port.address}/24" in cloud_guest.rendered_eni(booted.report)
    assert outcome(booted.report, "PING") == "ok"
    assert_neutron_nic_unchanged(booted.report)


def test_without_the_cache_link_the_cache_nic_stays_unconfigured(boot):
    """The control: the same boot, network_data.json as Neutron alone describes it."""
    booted = boot(lambda port, settings: (neutron_only(), None))
    assert cloud_guest.ipv4_of(booted.report, booted.port.mac) == []
    assert outcome(booted.report, "PING") == "fail"
    assert_neutron_nic_unchanged(booted.report)


def test_vendordata_configures_the_cache_nic(boot):
    """What a metadata-service cloud sends (Nova's vendor_data2.json), here on a config
    drive whose network_data.json does not list the cache NIC."""
    booted = boot(
        lambda port, settings: (
            neutron_only(),
            {"cloud-init": cloud_config(port, settings.network)},
        )
    )
    assert cloud_guest.ipv4_of(booted.report, booted.port.mac) == [f"{booted.port.address}/24"]
    assert outcome(booted.report, "PING") == "ok"
    assert_neutron_nic_unchanged(booted.report)
