"""Allocate-to-served latency of ``cachenet dhcp serve``.

    .venv/bin/python bench/dhcp_latency.py [--runs N]

Runs the DHCP server's reservation sync against a SQLite store (as
``cachenet dhcp serve`` does, same poll interval) in a background thread and
measures, for N allocations, the time from the allocation's commit to its
reservation file being in the hosts directory (dnsmasq reads it from there
through inotify at once). Prints the median and the 95th percentile.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from cachenet.dhcp.hostsdir import HostsDir, reservation_name
from cachenet.dhcp.server import POLL_INTERVAL
from cachenet.dhcp.sync import ReservationSync
from cachenet.settings import make_settings
from cachenet.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(database=f"sqlite:///{tmp}/ports.sqlite")
        store = open_store(settings)
        hosts = Path(tmp) / "hosts"
        sync = ReservationSync(open_store(settings), HostsDir(hosts))
        stop = threading.Event()

        def loop() -> None:
            sync.full()
            while not stop.is_set():
                sync.step()
                time.sleep(POLL_INTERVAL)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        latencies = []
        for _ in range(args.runs):
            port = store.allocate(str(uuid.uuid4()), "bench")
            committed = time.perf_counter()
            while not (hosts / reservation_name(port)).exists():
                time.sleep(0.001)
            latencies.append(time.perf_counter() - committed)
        stop.set()
        thread.join()
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"allocate -> reservation served ({args.runs} runs, poll {POLL_INTERVAL * 1000:.0f} ms):")
    print(f"  median {statistics.median(latencies) * 1000:6.1f} ms")
    print(f"  p95    {p95 * 1000:6.1f} ms")
    print(f"  max    {latencies[-1] * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
