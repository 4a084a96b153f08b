"""Boot and hot-plug latency of a VM on the cache network (real libvirt + QEMU).

    .venv/bin/python bench/boot.py [--runs N]

Builds a Linux bridge cache network with cachenet (as the demonstration
does) and prints the median over N runs of:
- domain start -> the guest holds its cache address (its DHCP lease line);
- ``cachenet attach`` on a running VM -> the guest sees the new NIC;
  and the attach command's own duration.
The guest is the tiny busybox guest under QEMU's software emulation.
"""

from __future__ import annotations

import argparse
import statistics
import time

from cachenet.demo import netns
from cachenet.demo.lab import CacheLab, lease_of
from cachenet.demo.services import ensure_libvirtd


def until(lab: CacheLab, name: str, condition: str) -> float:
    started = time.perf_counter()
    lab.wait_for(lambda: any(condition in line for line in lab.report(name)), condition, 120)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ensure_libvirtd()
    lab = CacheLab(netns.unique_prefix())
    boot, hotplug, attach = [], [], []
    try:
        lab.build()
        for run in range(args.runs):
            domain = lab.define(f"boot{run}")
            lab.cachenet("attach", domain.name(), check=True)
            started = time.perf_counter()
            domain.create()
            lab.wait_for(lambda d=domain: lease_of(lab.report(d.name())) is not None, "lease", 120)
            boot.append(time.perf_counter() - started)

            domain = lab.define(f"plug{run}", wait="120")
            domain.create()
            until(lab, domain.name(), "BOOTED")
            started = time.perf_counter()
            lab.cachenet("attach", domain.name(), check=True)
            attach.append(time.perf_counter() - started)
            lab.wait_for(lambda d=domain: any("HOTPLUG" in x for x in lab.report(d.name())),
                         "hot-plugged NIC", 60)  # fmt: skip
            hotplug.append(time.perf_counter() - started)
    finally:
        lab.close()
    print(f"runs: {args.runs}")
    print(f"  domain start -> cache address held:    median {statistics.median(boot):5.2f} s")
    print(f"  cachenet attach (running VM), command: median {statistics.median(attach):5.2f} s")
    print(f"  cachenet attach -> guest sees the NIC: median {statistics.median(hotplug):5.2f} s")


if __name__ == "__main__":
    main()
