"""``python -m cachenet.demo``: two tiny VMs on a cache network, on this machine.

Builds a Linux bridge cache network with ``cachenet bridge ensure``, a cache
node (a network namespace) running ``cachenet dhcp serve``, boots two VMs
whose cache NIC ``cachenet attach`` added, prints what each got, and removes
everything again. The store is SQLite in a temporary directory.
"""

from __future__ import annotations

import json
import sys
import time

from rich.console import Console
from rich.table import Table

from cachenet.demo import netns
from cachenet.demo.lab import NODE_ADDRESS, CacheLab, lease_of, outcome
from cachenet.demo.services import ensure_libvirtd

VMS = ("vm1", "vm2")


def main() -> int:
    console = Console(width=None if sys.stdout.isatty() else 120)
    ensure_libvirtd()
    lab = CacheLab("cndemo" + netns.unique_prefix()[2:], echo=console.print)
    try:
        console.print(f"[bold]cache network[/] {lab.bridge}, cache node {NODE_ADDRESS} in "
                      f"namespace {lab.node_ns}, settings in {lab.conf}")  # fmt: skip
        lab.build()
        domains = [lab.define(name) for name in VMS]
        for domain in domains:
            console.print(lab.cachenet("attach", domain.name(), check=True).strip())
        started = time.monotonic()
        for domain in domains:
            domain.create()
        rows = [_row(lab, domain, started) for domain in domains]
        sys.stdout.write(lab.cachenet("ports", "list"))
    finally:
        lab.close()
    table = Table(title="VMs on the cache network")
    for column in ("VM", "MAC", "reserved address", "DHCP gave", "reached cache node", "seconds"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    ok = all(row[2] == row[3] and row[4] == "yes" for row in rows)
    if ok:
        console.print("[green]both VMs got their reserved address and reached the cache node[/]")
    else:
        console.print("[red]a VM did not get its reserved address or reach the cache node[/]")
    return 0 if ok else 1


def _row(lab: CacheLab, domain: object, started: float) -> tuple[str, ...]:
    name = domain.name()  # type: ignore[attr-defined]
    port = json.loads(lab.cachenet("ports", "show", domain.UUIDString(), "--json", check=True))  # type: ignore[attr-defined]
    report = lab.wait_done(name)
    lease = lease_of(report)
    return (
        name,
        port["mac"],
        port["address"],
        lease[0] if lease else "-",
        "yes" if outcome(report, "PING") == "ok" else "no",
        f"{time.monotonic() - started:.1f}",
    )


if __name__ == "__main__":
    sys.exit(main())
