"""``python -m harness.demo`` (``scripts/demo.sh``): three tiny VMs on a cache network, on
this machine.

Builds a Linux bridge cache network with ``cachenet bridge ensure``, a cache
node (a network namespace) running ``cachenet dhcp serve``, boots three VMs
whose cache NIC ``cachenet attach`` added, and prints what each got: its
reserved address by DHCP, the cache node reached, the other VMs not (isolation);
the third VM also forges the first one's address, which gets it nowhere
(anti-spoofing). Then it removes everything again. The store is SQLite in a
temporary directory.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from harness import netns
from harness.lab import (
    GO_ADDRESS,
    NODE_ADDRESS,
    CacheLab,
    behaviour,
    lease_of,
    outcome,
    reached,
)
from harness.libvirtd import ensure_libvirtd
from harness.wait import wait_for

VMS = ("vm1", "vm2", "vm3")
SPOOFER, SPOOFED = "vm3", "vm1"  # vm3 forges vm1's address
# After the pings, a VM stays up long enough for the others to try it.
LINGER_SECONDS = "6"


@dataclass
class Vm:
    name: str
    port: dict[str, str]
    leased_after: float | None = None


def main() -> int:
    console = Console(width=None if sys.stdout.isatty() else 180)
    ensure_libvirtd()
    lab = CacheLab("cndemo" + netns.unique_prefix()[2:], echo=console.print)
    try:
        console.print(f"[bold]cache network[/] {lab.bridge}, cache node {NODE_ADDRESS} in "
                      f"namespace {lab.node_ns}, settings in {lab.conf}")  # fmt: skip
        lab.build()
        vms = _define(lab, console)
        started = time.monotonic()
        for vm in vms:
            lab.conn.lookupByName(vm.name).create()
        _wait_for_leases(lab, vms, started)
        # Every VM is up: now they try each other (and vm3 forges an address).
        lab.signal_guests()
        reports = {vm.name: lab.wait_done(vm.name) for vm in vms}
        sys.stdout.write(lab.cachenet("ports", "list"))
    finally:
        lab.close()
    return _show(console, vms, reports)


def _define(lab: CacheLab, console: Console) -> list[Vm]:
    """Ports first (so each VM can be told the others' addresses), then the domains."""
    ports = {short: lab.allocate() for short in VMS}
    vms = []
    for short, port in ports.items():
        others = "+".join(p["address"] for other, p in ports.items() if other != short)
        misbehaviour = [f"spoof-ip:{ports[SPOOFED]['address']}"] if short == SPOOFER else []
        behave = ",".join([f"await:{GO_ADDRESS}", f"reach:{others}", *misbehaviour])
        domain = lab.define(short, uuid=port["instance_uuid"], behave=behave,
                            linger=LINGER_SECONDS)  # fmt: skip
        console.print(lab.cachenet("attach", domain.name(), check=True).strip())
        vms.append(Vm(domain.name(), port))
    return vms


def _wait_for_leases(lab: CacheLab, vms: list[Vm], started: float) -> None:
    def all_leased() -> bool:
        for vm in vms:
            if vm.leased_after is None and lease_of(lab.report(vm.name)) is not None:
                vm.leased_after = time.monotonic() - started
        return all(vm.leased_after is not None for vm in vms)

    wait_for(all_leased, "every VM's DHCP lease", 120)


def _show(console: Console, vms: list[Vm], reports: dict[str, list[str]]) -> int:
    table = Table(title="VMs on the cache network")
    for column in ("VM", "MAC", "reserved address", "DHCP gave", "reached cache node",
                   "reached other VMs", "forged address", "lease after (s)"):  # fmt: skip
        table.add_column(column)
    problems = []
    for vm in vms:
        report = reports[vm.name]
        lease = lease_of(report)
        if lease is None or lease[0] != vm.port["address"]:
            problems.append(f"{vm.name} did not get its reserved address")
        node = outcome(report, "PING") == "ok"
        if not node:
            problems.append(f"{vm.name} did not reach the cache node")
        peers = reached(report)
        if len(peers) != len(vms) - 1 or any(peers.values()):
            problems.append(f"{vm.name} reached another VM")
        forged, blocked = _forged(vm, report, vms)
        if not blocked:
            problems.append(f"{vm.name}'s forged address was not blocked")
        table.add_row(
            vm.name, vm.port["mac"], vm.port["address"], lease[0] if lease else "-",
            "yes" if node else "no", "yes" if any(peers.values()) else "no (blocked)",
            forged, f"{vm.leased_after:.1f}",
        )  # fmt: skip
    console.print(table)
    if problems:
        for problem in problems:
            console.print(f"[red]{problem}[/]")
        return 1
    console.print("[green]every VM got its reserved address and reached the cache node; none "
                  "reached another VM, and the forged address got nowhere[/]")  # fmt: skip
    return 0


def _forged(vm: Vm, report: list[str], vms: list[Vm]) -> tuple[str, bool]:
    """The table cell for what a VM's forged address achieved, and whether it was blocked."""
    if not vm.name.endswith(f"-{SPOOFER}"):
        return "-", True
    victim = next(v for v in vms if v.name.endswith(f"-{SPOOFED}"))
    claim = f"{SPOOFED}'s {victim.port['address']}"
    answer = behaviour(report, "spoof-ip")
    if answer == "no":
        return f"{claim}: blocked", True
    if answer == "yes":
        return f"{claim}: reached cache node", False
    return f"{claim}: no report", False


if __name__ == "__main__":
    sys.exit(main())
