"""Boot and hot-plug latency on the cache network, against a libvirt managed network.

    .venv/bin/python bench/boot.py [--runs N] [--only boot|hot-plug]

Builds a Linux bridge cache network with cachenet (as the demonstration does,
isolation and anti-spoofing on) and, beside it, a libvirt managed network
(``<network>`` with a DHCP host entry per guest, libvirt's own dnsmasq). The
same tiny busybox guest (QEMU software emulation) is measured on both, the
runs interleaved, and the medians printed with their ratios:

- boot: domain start -> the guest holds its address (its DHCP lease line);
  cachenet's NIC is attached (``cachenet attach``) before the start, the
  managed network's interface is in the domain XML;
- hot-plug: ``cachenet attach`` on a running guest -> the guest sees the NIC,
  against ``virsh attach-interface`` -> the guest sees the NIC; both include
  the command's own process start. ``cachenet attach`` is measured twice: on a
  host running ``cachenet agent`` (which answers ``attach`` run with its
  configuration; the agent here selects no domain, so it adds no NIC by
  itself), and alone (the same options in another file, which no agent serves).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import libvirt
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the harness
from harness import netns
from harness.cli import run_cachenet
from harness.guest import domain_xml
from harness.lab import CacheLab, lease_of
from harness.libvirtd import ensure_libvirtd
from harness.wait import wait_for

MANAGED_ADDRESS = "10.78.0.1"
URI = "qemu:///system"


def managed_network(lab: CacheLab, macs: list[str]) -> libvirt.virNetwork:
    """An isolated libvirt network with a DHCP host entry for each of ``macs``.

    STP off, as on cachenet's bridge: libvirt's default (on) holds a new port back.
    """
    hosts = "".join(f"<host mac='{mac}' ip='10.78.0.{10 + n}'/>" for n, mac in enumerate(macs))
    xml = (
        f"<network><name>{lab.prefix}-net</name><bridge name='{lab.prefix}nb' stp='off'/>"
        f"<ip address='{MANAGED_ADDRESS}' netmask='255.255.255.0'><dhcp>"
        f"<range start='10.78.0.200' end='10.78.0.250'/>{hosts}</dhcp></ip></network>"
    )
    network = lab.conn.networkDefineXML(xml)
    network.create()
    return network


def define_on_network(lab: CacheLab, short_name: str, mac: str | None, **options: str) -> str:
    """A guest whose NIC (when ``mac``) is on the managed network; its name."""
    name = f"{lab.prefix}-{short_name}"
    options.setdefault("node", MANAGED_ADDRESS)
    root = etree.fromstring(domain_xml(name, lab.guest, lab.console(name), options).encode())
    if mac:
        iface = etree.SubElement(root.find("devices"), "interface", type="network")
        etree.SubElement(iface, "source", network=f"{lab.prefix}-net")
        etree.SubElement(iface, "mac", address=mac)
        etree.SubElement(iface, "model", type="virtio")
    lab.conn.defineXML(etree.tostring(root, encoding="unicode"))
    lab.domains.append(name)
    return name


def until(lab: CacheLab, name: str, condition: str, timeout: float = 120) -> None:
    wait_for(lambda: any(condition in line for line in lab.report(name)), condition, timeout)


def boot(lab: CacheLab, domain: libvirt.virDomain) -> float:
    started = time.perf_counter()
    domain.create()
    wait_for(lambda: lease_of(lab.report(domain.name())) is not None, "lease", 120)
    return time.perf_counter() - started


def hot_plug(lab: CacheLab, name: str, plug: Callable[[], object]) -> float:
    domain = lab.conn.lookupByName(name)
    domain.create()
    until(lab, name, "CACHENET BOOTED")
    started = time.perf_counter()
    plug()
    until(lab, name, "CACHENET HOTPLUG", 60)
    return time.perf_counter() - started


def agent_and_lone_config(lab: CacheLab) -> Path:
    """Start the lab's agent, selecting no domain; a config file with the same
    options that it does not serve (the CLI alone)."""
    selector = f"agent_selector = name:{lab.prefix}-*"
    lab.conf.write_text(lab.conf.read_text().replace(selector, f"{selector[:-1]}none"))
    lab.start_agent()
    alone = lab.state / "alone.conf"
    alone.write_text(lab.conf.read_text() + "# not the agent's file\n")
    return alone


def attach_alone(conf: Path, name: str) -> None:
    attached = run_cachenet(conf, "attach", name)
    if attached.returncode != 0:
        raise RuntimeError(f"cachenet attach {name} failed: {attached.stderr.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=["boot", "hot-plug"], help="measure only this")
    args = parser.parse_args()
    ensure_libvirtd()
    lab = CacheLab(netns.unique_prefix(), libvirt_uri=URI)
    macs = [f"52:54:00:78:{run:02x}:{kind:02x}" for run in range(args.runs) for kind in (1, 2)]
    kinds = ("boot", "mboot", "plug", "lplug", "mplug")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    network = None
    try:
        lab.build()
        network = managed_network(lab, macs)
        alone = agent_and_lone_config(lab)
        for run in range(args.runs):
            if args.only != "hot-plug":
                domain = lab.define(f"boot{run}")
                lab.cachenet("attach", domain.name(), check=True)
                times["boot"].append(boot(lab, domain))

                name = define_on_network(lab, f"mboot{run}", macs[2 * run])
                times["mboot"].append(boot(lab, lab.conn.lookupByName(name)))
            if args.only == "boot":
                continue

            name = lab.define(f"plug{run}", wait="120").name()
            attach = lambda n=name: lab.cachenet("attach", n, check=True)  # noqa: E731
            times["plug"].append(hot_plug(lab, name, attach))

            name = lab.define(f"lplug{run}", wait="120").name()
            times["lplug"].append(hot_plug(lab, name, functools.partial(attach_alone, alone, name)))

            name = define_on_network(lab, f"mplug{run}", None, wait="120")
            virsh = ["virsh", "-c", URI, "attach-interface", name, "network", f"{lab.prefix}-net",
                     "--mac", macs[2 * run + 1], "--model", "virtio", "--live"]  # fmt: skip
            plug = lambda v=virsh: subprocess.run(v, check=True, capture_output=True)  # noqa: E731
            times["mplug"].append(hot_plug(lab, name, plug))
    finally:
        lab.close()
        if network is not None:
            network.destroy()
            network.undefine()
    median = {k: statistics.median(v) for k, v in times.items() if v}
    print(f"runs: {args.runs} (interleaved), medians; ratio = cachenet / libvirt network")
    for what, ours, theirs, label in (
        ("boot -> lease", "boot", "mboot", "libvirt network"),
        ("hot-plug -> NIC", "plug", "mplug", "virsh attach-interface"),
        ("  (CLI alone)", "lplug", "mplug", "virsh attach-interface"),
    ):
        if ours not in median:
            continue
        ratio = median[ours] / median[theirs]
        print(f"  {what:16} cachenet {median[ours]:5.2f} s   {label} {median[theirs]:5.2f} s   "
              f"ratio {ratio:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
