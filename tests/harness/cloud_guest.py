"""A stock Debian 12 guest with systemd and cloud-init, and the config drive it boots with.

The root file system is built by debootstrap from Debian's packages, the way a
Debian 12 cloud image is: cloud-init renders its network config for ifupdown
(its ENI renderer). It has no DHCP client hook or udev rule that configures
NICs cloud-init was not told about. The build is an ext4 disk image plus the
kernel and initramfs it installed, cached under /var/cache/cachenet-tests/ by a
hash of the package list and the build script (first build: a few minutes);
a lock file keeps two builds from running at once. A test boots a fresh copy
of the disk, so the cached image stays pristine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree
from pyroute2 import IPRoute

from harness.guest import kernel_domain

CACHE_ROOT = Path("/var/cache/cachenet-tests")
SUITE = "bookworm"
# What a Debian 12 cloud image has for networking and first boot, nothing more.
PACKAGES = (
    "systemd-sysv", "udev", "kmod", "cloud-init", "ifupdown", "iproute2", "iputils-ping",
    "initramfs-tools", "linux-image-cloud-amd64",
    # debootstrap does not resolve virtual packages: python3-cryptography's cffi API.
    "python3-cffi-backend",
)  # fmt: skip
# Run in the new root file system after debootstrap.
CONFIGURE_SCRIPT = r"""set -eu
echo debian > /etc/hostname
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' > /etc/fstab
# As in Debian's cloud images: cloud-init's ENI renderer writes interfaces.d/50-cloud-init.
cat > /etc/network/interfaces <<'EOF'
auto lo
iface lo inet loopback
source /etc/network/interfaces.d/*
EOF
mkdir -p /etc/network/interfaces.d
apt-get clean
rm -rf /var/lib/apt/lists/* /var/log/*.log /tmp/*
"""
IMAGE_HEADROOM_MIB = 256
ENI_FILE = "/etc/network/interfaces.d/50-cloud-init"  # what cloud-init renders on Debian 12
# A rule that DHCPs NICs nobody configured (Debian's cloud images have one, from
# cloud-ifupdown-helper) would make the test prove nothing: the image must have none.
# ifupdown's own hotplug rule only brings up NICs /etc/network/interfaces names.
AUTOCONFIGURING_RULE = re.compile(r"RUN.*(cloud-ifupdown|dhclient|dhcpcd|udhcpc)")


@dataclass(frozen=True)
class CloudImage:
    disk: Path  # raw ext4: boot a copy (fresh_disk), never this file
    kernel: Path
    initrd: Path
    build_seconds: float


def build_key() -> str:
    recipe = json.dumps([SUITE, PACKAGES, CONFIGURE_SCRIPT, IMAGE_HEADROOM_MIB])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def cloud_image(cache_root: Path = CACHE_ROOT) -> CloudImage:
    """The cached image, built first if there is none for this recipe."""
    final = cache_root / f"debian12-cloud-{build_key()}"
    cache_root.mkdir(parents=True, exist_ok=True)
    os.chmod(cache_root, 0o755)  # QEMU reads the kernel and initramfs as its own user
    with _locked(final.with_name(final.name + ".lock")):
        if not (final / "manifest.json").exists():
            _build(final)
    manifest = json.loads((final / "manifest.json").read_text())
    return CloudImage(
        disk=final / "disk.raw", kernel=final / "vmlinuz", initrd=final / "initrd.img",
        build_seconds=manifest["build_seconds"],
    )  # fmt: skip


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second build waits for the first, then reuses it
        yield


def _build(final: Path) -> None:
    """Build into ``<final>.partial`` and rename it: a crashed build leaves no cache entry."""
    started = time.monotonic()
    partial = final.with_name(final.name + ".partial")
    _remove_tree(partial)  # what a killed build left
    partial.mkdir()
    rootfs = partial / "rootfs"
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             SUITE, str(rootfs), debian_mirror()],
            check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        subprocess.run(["chroot", str(rootfs), "/bin/sh", "-c", CONFIGURE_SCRIPT], check=True)
        _check_no_autoconfiguring_rule(rootfs)
        _copy_boot_files(rootfs, partial)
        _make_ext4(rootfs, partial / "disk.raw")
    except subprocess.CalledProcessError as exc:
        log = rootfs / "debootstrap" / "debootstrap.log"
        detail = log.read_text(errors="replace") if log.exists() else exc.stdout or exc.stderr
        raise RuntimeError(f"building the guest image failed: {exc}\n{_tail(detail)}") from exc
    finally:
        _remove_tree(rootfs)
    seconds = round(time.monotonic() - started, 1)
    (partial / "manifest.json").write_text(json.dumps({"build_seconds": seconds}))
    os.chmod(partial, 0o755)
    partial.rename(final)


def _remove_tree(path: Path) -> None:
    # debootstrap mounts /proc and /sys in the new root while it runs: never cross into them.
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def _tail(output: str | bytes | None, lines: int = 30) -> str:
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    return "\n".join((output or "").splitlines()[-lines:])


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (or ``$CACHENET_TEST_DEBIAN_MIRROR``)."""
    if mirror := os.environ.get("CACHENET_TEST_DEBIAN_MIRROR"):
        return mirror
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.MULTILINE))
            if SUITE in fields.get("Suites", "").split():
                return str(fields["URIs"].split()[0])
    sources_list = Path("/etc/apt/sources.list")
    if sources_list.exists():
        for line in sources_list.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["deb"] and SUITE in parts:
                return next(p for p in parts[1:] if "://" in p)
    raise RuntimeError(f"no apt source for {SUITE}: set CACHENET_TEST_DEBIAN_MIRROR")


def _check_no_autoconfiguring_rule(rootfs: Path) -> None:
    for directory in ("etc/udev/rules.d", "usr/lib/udev/rules.d"):
        for rule in sorted((rootfs / directory).glob("*.rules")):
            if AUTOCONFIGURING_RULE.search(rule.read_text(errors="replace")):
                raise RuntimeError(f"the guest image has a NIC-configuring udev rule: {rule.name}")


def _copy_boot_files(rootfs: Path, target: Path) -> None:
    for pattern, name in (("vmlinuz-*", "vmlinuz"), ("initrd.img-*", "initrd.img")):
        found = sorted((rootfs / "boot").glob(pattern))
        if not found:
            raise RuntimeError(f"the guest image has no /boot/{pattern}")
        shutil.copyfile(found[-1], target / name)
        os.chmod(target / name, 0o644)  # Debian installs the kernel 0600


def _make_ext4(rootfs: Path, image: Path) -> None:
    used = subprocess.run(["du", "-s", "--block-size=1M", str(rootfs)], check=True,
                          capture_output=True, text=True).stdout.split()[0]  # fmt: skip
    size_mib = int(used) * 5 // 4 + IMAGE_HEADROOM_MIB
    subprocess.run(["truncate", "-s", f"{size_mib}M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(rootfs), str(image)],
                   check=True, capture_output=True)  # fmt: skip
    os.chmod(image, 0o644)


def fresh_disk(image: CloudImage, target: Path) -> Path:
    """A private copy of the image's disk (sparse: a second or two) for one boot."""
    subprocess.run(["cp", "--sparse=always", str(image.disk), str(target)], check=True)
    return target


# --- the config drive ---------------------------------------------------------------------


def write_config_drive(
    target: Path, meta_data: dict[str, Any], network_data: dict[str, Any],
    user_data: str | None = None, vendor_data2: dict[str, Any] | None = None,
) -> Path:  # fmt: skip
    """An ISO 9660 config drive as Nova writes one (label config-2, openstack/latest/)."""
    with tempfile.TemporaryDirectory() as tmp:
        latest = Path(tmp) / "openstack" / "latest"
        latest.mkdir(parents=True)
        (latest / "meta_data.json").write_text(json.dumps(meta_data))
        (latest / "network_data.json").write_text(json.dumps(network_data))
        (latest / "vendor_data.json").write_text("{}")
        (latest / "vendor_data2.json").write_text(json.dumps(vendor_data2 or {}))
        if user_data is not None:
            (latest / "user_data").write_text(user_data)
        # Nova's own genisoimage options (nova/virt/configdrive.py).
        subprocess.run(
            ["genisoimage", "-o", str(target), "-ldots", "-allow-lowercase", "-allow-multidot",
             "-l", "-quiet", "-J", "-r", "-V", "config-2", tmp],
            check=True, capture_output=True,
        )  # fmt: skip
    os.chmod(target, 0o644)
    return target


def meta_data(instance_uuid: str, name: str) -> dict[str, Any]:
    return {
        "uuid": instance_uuid, "name": name, "hostname": name, "launch_index": 0,
        "availability_zone": "nova", "project_id": "test", "files": [], "meta": {},
        "public_keys": {},
    }  # fmt: skip


def neutron_network_data(mac: str, address: str, gateway: str) -> dict[str, Any]:
    """network_data.json as Nova writes it for one Neutron port with a static IPv4 address."""
    return {
        "links": [{
            "id": "tap0a1b2c3d-4e", "type": "ovs", "ethernet_mac_address": mac, "mtu": 1500,
            "vif_id": "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
        }],
        "networks": [{
            "id": "network0", "type": "ipv4", "link": "tap0a1b2c3d-4e",
            "ip_address": address, "netmask": "255.255.255.0",
            "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": gateway}],
            "network_id": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9",
            "services": [{"type": "dns", "address": gateway}],
        }],
        "services": [{"type": "dns", "address": gateway}],
    }  # fmt: skip


def report_user_data(node: str) -> str:
    """User data whose runcmd prints the guest's addresses and a ping of the cache node
    on the serial console, in CACHENET lines, once cloud-init has configured the network."""
    script = (
        "{ echo; ip -br link | sed 's/^/CACHENET LINK /';"
        " ip -br -4 addr | sed 's/^/CACHENET ADDR /';"
        f" sed 's/^/CACHENET ENI /' {ENI_FILE};"
        f" if ping -c 1 -W 2 {node} >/dev/null || ping -c 3 -W 2 {node} >/dev/null;"
        " then echo 'CACHENET PING ok'; else echo 'CACHENET PING fail'; fi;"
        " echo \"CACHENET UPTIME $(cut -d' ' -f1 /proc/uptime)\"; echo 'CACHENET DONE'; }"
        " > /dev/ttyS0 2>&1"
    )
    return "#cloud-config\n" + json.dumps({"runcmd": [["sh", "-c", script]]}) + "\n"


def rendered_eni(report: list[str]) -> list[str]:
    """The ifupdown config cloud-init rendered in the guest, from its report."""
    return [line.removeprefix("CACHENET ENI ").strip() for line in report
            if line.startswith("CACHENET ENI ")]  # fmt: skip


def ipv4_of(report: list[str], mac: str) -> list[str]:
    """The IPv4 addresses (address/prefix) of the guest's NIC with ``mac``, from its report."""
    names = [line.split()[2] for line in report
             if line.startswith("CACHENET LINK ") and mac in line.split()]  # fmt: skip
    addresses: list[str] = []
    for line in report:
        parts = line.split()
        if parts[:2] == ["CACHENET", "ADDR"] and len(parts) > 2 and parts[2] in names:
            addresses += parts[4:]
    return addresses


# --- the host side ------------------------------------------------------------------------


@contextlib.contextmanager
def plain_bridge(name: str) -> Iterator[str]:
    """A Linux bridge standing in for Neutron's network, removed on exit."""
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="bridge")
        ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
    try:
        yield name
    finally:
        with IPRoute() as ipr:
            if found := ipr.link_lookup(ifname=name):
                ipr.link("del", index=found[0])


def domain_xml(
    name: str, image: CloudImage, disk: Path, config_drive: Path, console: Path,
    bridge: str, mac: str, memory_mib: int = 1024,
) -> str:  # fmt: skip
    """A domain booting the image's kernel with ``disk`` as root, the config drive as a
    second disk, one NIC on ``bridge`` (the Neutron port) and no cache NIC yet."""
    cmdline = "root=/dev/vda rw console=ttyS0 quiet"
    domain, devices = kernel_domain(name, image.kernel, image.initrd, cmdline, console,
                                    memory_mib)  # fmt: skip
    for path, target, readonly in ((disk, "vda", False), (config_drive, "vdb", True)):
        element = etree.SubElement(devices, "disk", type="file", device="disk")
        etree.SubElement(element, "driver", name="qemu", type="raw")
        etree.SubElement(element, "source", file=str(path))
        etree.SubElement(element, "target", dev=target, bus="virtio")
        if readonly:
            etree.SubElement(element, "readonly")
    nic = etree.SubElement(devices, "interface", type="bridge")
    etree.SubElement(nic, "mac", address=mac)
    etree.SubElement(nic, "source", bridge=bridge)
    etree.SubElement(nic, "model", type="virtio")
    return str(etree.tostring(domain, encoding="unicode", pretty_print=True))
