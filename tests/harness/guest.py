"""A tiny test guest: Debian's cloud kernel plus a busybox initramfs.

The guest loads the virtio network modules, asks DHCP for an address on each
NIC, pings the cache node, and reports on its serial console in lines that
start with ``CACHENET``; then it powers off (``reboot -f`` under
``<on_reboot>destroy</on_reboot>``). Its IPv4 commands touch IPv4 addresses only
(``ip -4``): the kernel's own IPv6 addresses (link-local, SLAAC) stay. Options
come on the kernel command line:

- ``cachenet.node=A``   the cache node to ping
- ``cachenet.node6=A``  the cache node's IPv6 address. After DHCP, wait (up to 20 s)
                        for the kernel's SLAAC address from the router advertisements
                        and report: ``CACHENET SLAAC after T`` (tenths of a second),
                        ``CACHENET IPV6 nic address...`` (``none`` if none came),
                        ``CACHENET DEFAULT6 route`` (``none`` if none was learned),
                        ``CACHENET PING6 ok|fail`` (does A answer)
- ``cachenet.peer=A``   another VM to ping (isolation: must fail)
- ``cachenet.spoof=A``  after DHCP, switch to address A and ping the node again
- ``cachenet.wait=S``   wait up to S seconds for a NIC to be hot-plugged
- ``cachenet.linger=S`` stay up S seconds before powering off
- ``cachenet.behave=B[,B...]`` misbehave, in this order, after the checks above
  (port security tests and the demonstration); each prints one result line:

  ``spoof-ip:A``     switch to address A, ping the node, switch back:
                     ``CACHENET spoof-ip A reach cache-node=yes|no``
  ``spoof-mac:M``    the same with MAC M: ``CACHENET spoof-mac M reach cache-node=yes|no``
  ``spoof-ip6:A[+P...]`` add the IPv6 address A beside the guest's own, ping the node's
                     IPv6 address and each P from it, remove it:
                     ``CACHENET spoof-ip6 A reach cache-node=yes|no`` then
                     ``CACHENET spoof-ip6 A reach P=yes|no`` for each P
  ``reach:A[+A...]`` ping other VMs (IPv4 or IPv6): ``CACHENET reach A=yes|no`` for each
  ``pause:S``        wait S seconds
  ``await:A``        wait (up to 2 minutes) until A (IPv4 or IPv6) answers a ping:
                     the host's signal that it is time to go on (``CacheLab.signal_guests``)
  ``garp:A``         keep claiming address A (gratuitous ARP requests and replies every
                     second until power-off): ``CACHENET garp A claiming``
  ``rogue-dhcp:A``   serve DHCP (busybox udhcpd, a pool from A) on the NIC until
                     power-off: ``CACHENET rogue-dhcp A serving``
  ``rogue-ra:P``     send router advertisements (radvd, every 3-4 s until power-off)
                     offering the prefix P for SLAAC and a default route through the
                     guest: ``CACHENET rogue-ra P announcing``

The well-behaved guest also reports which server gave its lease
(``CACHENET SERVER nic address``) and, before DONE, the MAC its neighbour table
holds for the node (``CACHENET NEIGH node mac``): the traces of a rogue DHCP
server or of ARP poisoning.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cachenet.errors import CachenetError

# Dependency order: each module needs the ones before it.
VIRTIO_NET_MODULES = (
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
    "failover", "net_failover", "virtio_net",
)  # fmt: skip
BUSYBOX = Path("/bin/busybox")
RADVD = Path("/usr/sbin/radvd")  # busybox cannot send a router advertisement
CACHE_DIR = Path("/var/lib/cachenet/guest")

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec >/dev/console 2>&1
for m in __MODULES__; do insmod /lib/modules/$m.ko; done
arg() { sed -n "s/.*cachenet\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
NODE=$(arg node); NODE6=$(arg node6); PEER=$(arg peer); SPOOF=$(arg spoof)
WAIT=$(arg wait); LINGER=$(arg linger)
echo "CACHENET BOOTED"
nics() { ls /sys/class/net | grep -v '^lo$'; }
configure() {
  ip link set "$1" up
  udhcpc -i "$1" -n -q -t 8 -T 1 -A 1 -s /dhcp.sh >/dev/null 2>&1 || echo "CACHENET NOLEASE $1"
}
if [ -n "$WAIT" ] && [ -z "$(nics)" ]; then
  i=0
  while [ -z "$(nics)" ] && [ $i -lt $((WAIT * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  echo "CACHENET HOTPLUG $(nics | head -n 1) after $i"
fi
for nic in $(nics); do configure "$nic"; done
reach() { ping -c 1 -W 1 "$1" >/dev/null 2>&1 || ping -c 3 -W 1 "$1" >/dev/null 2>&1; }
reach_from() {
  ping -c 1 -W 1 -I "$1" "$2" >/dev/null 2>&1 || ping -c 3 -W 1 -I "$1" "$2" >/dev/null 2>&1
}
if [ -n "$NODE" ]; then
  if reach "$NODE"; then echo "CACHENET PING ok"; else echo "CACHENET PING fail"; fi
fi
if [ -n "$PEER" ]; then
  n=0; while [ $n -lt 5 ] && ! reach "$PEER"; do n=$((n + 1)); done
  if [ $n -lt 5 ]; then echo "CACHENET PEER ok"; else echo "CACHENET PEER fail"; fi
fi
if [ -n "$SPOOF" ]; then
  nic=$(nics | head -n 1)
  ip -4 addr flush dev "$nic"
  ip addr add "$SPOOF/${MASK:-24}" dev "$nic"
  if reach "$NODE"; then echo "CACHENET SPOOF ok"; else echo "CACHENET SPOOF fail"; fi
fi
NIC=$(nics | head -n 1)
# The NIC's global IPv6 addresses once duplicate address detection is over.
global6() {
  ip -6 -o addr show dev "$NIC" scope global | grep -v tentative |
    sed -n 's/.* inet6 \([0-9a-f:]*\)\/.*/\1/p'
}
if [ -n "$NODE6" ]; then
  i=0
  while [ -z "$(global6)" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
  found=$(echo $(global6)); route=$(echo $(ip -6 route show default))
  echo "CACHENET SLAAC after $i"
  echo "CACHENET IPV6 $NIC ${found:-none}"
  echo "CACHENET DEFAULT6 ${route:-none}"
  if reach "$NODE6"; then echo "CACHENET PING6 ok"; else echo "CACHENET PING6 fail"; fi
fi
MYMAC=$(cat /sys/class/net/$NIC/address 2>/dev/null)
MYIP=$(ip -4 -o addr show dev "$NIC" 2>/dev/null |
  sed -n 's/.* inet \([0-9.]*\/[0-9]*\).*/\1/p' | head -n 1)
yesno() { if "$@"; then echo yes; else echo no; fi; }
# The neighbour cache is flushed around each identity change: the guest then ARPs
# as its new self, which is what makes the node answer it if nothing blocks it.
set_ip() { ip -4 addr flush dev "$NIC"; ip addr add "$1" dev "$NIC"; ip neigh flush dev "$NIC"; }
set_mac() {
  ip link set "$NIC" down; ip link set "$NIC" address "$1"; ip link set "$NIC" up
  ip neigh flush dev "$NIC"
}
spoof_ip() {
  set_ip "$1/${MYIP#*/}"
  echo "CACHENET spoof-ip $1 reach cache-node=$(yesno reach "$NODE")"
  set_ip "$MYIP"
}
# The forged address goes beside the guest's own and becomes the source at once
# (no duplicate address detection), so the guest speaks and answers neighbour
# solicitations as it.
spoof_ip6() {
  forged=${1%%+*}
  echo 0 >/proc/sys/net/ipv6/conf/$NIC/accept_dad
  ip -6 addr add "$forged/64" dev "$NIC"
  ip -6 neigh flush dev "$NIC"
  echo "CACHENET spoof-ip6 $forged reach cache-node=$(yesno reach_from "$forged" "$NODE6")"
  for a in $(echo "${1#$forged}" | tr '+' ' '); do
    echo "CACHENET spoof-ip6 $forged reach $a=$(yesno reach_from "$forged" "$a")"
  done
  ip -6 addr del "$forged/64" dev "$NIC"
  echo 1 >/proc/sys/net/ipv6/conf/$NIC/accept_dad
}
spoof_mac() {
  set_mac "$1"
  echo "CACHENET spoof-mac $1 reach cache-node=$(yesno reach "$NODE")"
  set_mac "$MYMAC"
}
reach_peers() {
  for a in $(echo "$1" | tr '+' ' '); do echo "CACHENET reach $a=$(yesno reach "$a")"; done
}
garp() {
  # arping binds to the address it claims: allowed without adding it to the NIC (where
  # the guest would keep the claimed address's traffic to itself).
  echo 1 >/proc/sys/net/ipv4/ip_nonlocal_bind
  while :; do arping -U -c 1 -I "$NIC" "$1"; arping -A -c 1 -I "$NIC" "$1"; sleep 1; done \
    >/dev/null 2>&1 &
  echo "CACHENET garp $1 claiming"
}
rogue_dhcp() {
  printf 'interface %s\nstart %s\nend %s.250\noption subnet 255.255.255.0\noption lease 60\n' \
    "$NIC" "$1" "${1%.*}" >/tmp/udhcpd.conf
  printf 'lease_file /tmp/udhcpd.leases\npidfile /tmp/udhcpd.pid\n' >>/tmp/udhcpd.conf
  touch /tmp/udhcpd.leases
  # -a: offer after 0.1 s of ARP probing for the address, not the default 2 s.
  if udhcpd -a 100 /tmp/udhcpd.conf; then
    echo "CACHENET rogue-dhcp $1 serving"
  else
    echo "CACHENET rogue-dhcp $1 failed"
  fi
}
rogue_ra() {
  printf 'interface %s {\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 4;\n' \
    "$NIC" >/tmp/radvd.conf
  printf ' AdvDefaultLifetime 1800;\n prefix %s { };\n};\n' "$1" >>/tmp/radvd.conf
  # radvd refuses a configuration file unless it belongs to root and no one else may
  # write it; it looks root up by name.
  chmod 600 /tmp/radvd.conf
  mkdir -p /etc && echo 'root:x:0:0:root:/:/bin/sh' >/etc/passwd
  # In the foreground (-n) behind the shell: still running a second later, it announces.
  radvd -n -C /tmp/radvd.conf -p /tmp/radvd.pid -m stderr >/tmp/radvd.log 2>&1 &
  sleep 1
  if kill -0 $! 2>/dev/null; then
    echo "CACHENET rogue-ra $1 announcing"
  else
    echo "CACHENET rogue-ra $1 failed"
    sed 's/^/CACHENET radvd: /' /tmp/radvd.log
  fi
}
await() {
  i=0
  until ping -c 1 -W 1 "$1" >/dev/null 2>&1 || [ $i -ge 120 ]; do i=$((i + 1)); done
  echo "CACHENET await $1 after $i"
}
for b in $(arg behave | tr ',' ' '); do
  case "$b" in
    spoof-ip:*) spoof_ip "${b#*:}" ;;
    spoof-ip6:*) spoof_ip6 "${b#*:}" ;;
    spoof-mac:*) spoof_mac "${b#*:}" ;;
    reach:*) reach_peers "${b#*:}" ;;
    pause:*) sleep "${b#*:}" ;;
    await:*) await "${b#*:}" ;;
    garp:*) garp "${b#*:}" ;;
    rogue-dhcp:*) rogue_dhcp "${b#*:}" ;;
    rogue-ra:*) rogue_ra "${b#*:}" ;;
    *) echo "CACHENET unknown behaviour $b" ;;
  esac
done
[ -n "$LINGER" ] && sleep "$LINGER"
if [ -n "$NODE" ]; then
  echo "CACHENET NEIGH $NODE $(ip neigh show "$NODE" | sed -n 's/.* lladdr \([0-9a-f:]*\).*/\1/p')"
fi
echo "CACHENET DONE"
reboot -f
"""

DHCP_SCRIPT = r"""#!/bin/sh
case "$1" in
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    echo "CACHENET LEASE $interface $ip $(cat /sys/class/net/$interface/address)" >/dev/console
    echo "CACHENET SERVER $interface $serverid" >/dev/console
    ;;
esac
"""


@dataclass(frozen=True)
class Guest:
    kernel: Path
    initrd: Path


def find_kernel() -> tuple[Path, Path]:
    """Debian's cloud kernel and its modules directory (linux-image-cloud-amd64)."""
    kernels = sorted(Path("/boot").glob("vmlinuz-*-cloud-amd64"))
    if not kernels:
        raise CachenetError("no /boot/vmlinuz-*-cloud-amd64: install linux-image-cloud-amd64")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    return kernels[-1], Path("/lib/modules") / version


def build_guest(cache_dir: Path = CACHE_DIR) -> Guest:
    """The kernel and an initramfs for it, built once and cached by content."""
    kernel, modules = find_kernel()
    module_files = [_module_file(modules, name) for name in VIRTIO_NET_MODULES]
    init = INIT.replace("__MODULES__", " ".join(VIRTIO_NET_MODULES))
    digest = hashlib.sha256(init.encode() + DHCP_SCRIPT.encode() + str(kernel).encode())
    if not RADVD.exists():
        raise CachenetError(f"no {RADVD}: install radvd (scripts/install.sh does)")
    libraries = shared_libraries(RADVD)
    for path in [BUSYBOX, RADVD, *libraries, *module_files]:
        digest.update(path.read_bytes())
    initrd = cache_dir / f"initrd-{digest.hexdigest()[:16]}.gz"
    if not initrd.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(cache_dir, 0o755)  # QEMU runs as an unprivileged user
        _write_initramfs(initrd, init, module_files, libraries)
    return Guest(kernel=kernel, initrd=initrd)


def _module_file(modules: Path, name: str) -> Path:
    found = list(modules.rglob(f"{name}.ko*"))
    if not found:
        raise CachenetError(f"kernel module {name} not found under {modules}")
    return found[0]


def shared_libraries(program: Path) -> list[Path]:
    """The shared libraries ``program`` loads (ldd), the dynamic loader included."""
    listed = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=True)
    return [Path(p) for p in re.findall(r"(/\S+) \(0x", listed.stdout)]


def _write_initramfs(
    target: Path, init: str, module_files: list[Path], libraries: list[Path]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("bin", "proc", "sys", "dev", "lib/modules", "tmp"):
            (root / d).mkdir(parents=True)
        # The kernel opens /dev/console for init before anything is mounted.
        os.mknod(root / "dev" / "console", 0o600 | stat.S_IFCHR, os.makedev(5, 1))
        shutil.copy(BUSYBOX, root / "bin" / "busybox")
        shutil.copy(RADVD, root / "bin" / "radvd")
        for library in libraries:  # where the dynamic loader looks for them
            (root / library.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(library, root / library.relative_to("/"))
        for path in module_files:
            _copy_module(path, root / "lib" / "modules")
        for name, text in (("init", init), ("dhcp.sh", DHCP_SCRIPT)):
            (root / name).write_text(text)
            (root / name).chmod(0o755)
        files = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True).stdout
        archive = subprocess.run(
            ["cpio", "--quiet", "-o", "-H", "newc"], cwd=root, input=files,
            capture_output=True, check=True,
        ).stdout  # fmt: skip
    partial = target.with_suffix(".partial")
    partial.write_bytes(gzip.compress(archive))
    partial.chmod(0o644)
    partial.replace(target)


def _copy_module(path: Path, directory: Path) -> None:
    name = re.sub(r"\.ko(\..*)?$", ".ko", path.name)
    data = path.read_bytes()
    if path.suffix == ".xz":
        import lzma

        data = lzma.decompress(data)
    elif path.suffix == ".zst":
        raise CachenetError(f"{path}: zstd-compressed modules are not supported")
    (directory / name).write_bytes(data)


def console_lines(path: Path) -> list[str]:
    """The guest's CACHENET report lines so far."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip().startswith("CACHENET")]


def domain_xml(
    name: str, guest: Guest, console: Path, options: dict[str, str], memory_mib: int = 128,
    uuid: str | None = None,
) -> str:  # fmt: skip
    """A domain that boots the guest with ``options`` (cachenet.<key>=<value>) and no NIC.

    ``uuid``: the instance UUID when its port was allocated first (libvirt makes
    one up otherwise).
    """
    from lxml import etree

    # Software emulation: the guest boots in seconds, and nested KVM is not always
    # sound where this runs (seen: a KVM guest hanging before the kernel printed anything).
    domain = etree.Element("domain", type="qemu")
    etree.SubElement(domain, "name").text = name
    if uuid is not None:
        etree.SubElement(domain, "uuid").text = uuid
    etree.SubElement(domain, "memory", unit="MiB").text = str(memory_mib)
    etree.SubElement(domain, "vcpu").text = "1"
    os_element = etree.SubElement(domain, "os")
    etree.SubElement(os_element, "type", arch="x86_64", machine="pc").text = "hvm"
    etree.SubElement(os_element, "kernel").text = str(guest.kernel)
    etree.SubElement(os_element, "initrd").text = str(guest.initrd)
    cmdline = " ".join(["console=ttyS0", "quiet", "panic=-1"] +
                       [f"cachenet.{k}={v}" for k, v in options.items()])  # fmt: skip
    etree.SubElement(os_element, "cmdline").text = cmdline
    features = etree.SubElement(domain, "features")
    etree.SubElement(features, "acpi")  # PCI hot-plug is an ACPI affair
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        etree.SubElement(domain, event).text = "destroy"
    devices = etree.SubElement(domain, "devices")
    serial = etree.SubElement(devices, "serial", type="file")
    etree.SubElement(serial, "source", path=str(console))
    etree.SubElement(serial, "target", port="0")
    return str(etree.tostring(domain, encoding="unicode", pretty_print=True))
