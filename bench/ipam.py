"""IPAM benchmark: allocation cost as a /16 fills up, and parallel allocators.

    .venv/bin/python bench/ipam.py [--parallel N] [--per-process M] [--storm H] [--postgres URL]
    .venv/bin/python bench/ipam.py --pool [--postgres URL]

1. Fills a /16 on SQLite (65,534 ports) and prints allocations per second for
   the first and the last 1,000 allocations and their ratio (the cost must not
   grow with the store), then the same first-1,000 rate on a /8.
2. Runs N processes allocating at once against PostgreSQL (the server
   scripts/start-services.sh starts) and prints total allocations per second
   and how many MACs and addresses were handed out twice.
3. A storm: --storm hosts (threads in 4 processes, each with its own
   connections, as nova-compute has) allocate one port each at the same
   instant; prints latency percentiles, failures by reason and duplicates.
   On one small machine the hosts' own CPU and the server's connection
   set-up (a fork and a password exchange each) dominate.

--pool: a pool of two /22s. The first 1,000 allocations of the second subnet
(the first subnet full) against the first 1,000 of the first (the anchor), on
SQLite and PostgreSQL, in interleaved blocks of 20 so that the machine's
other load falls on both alike; the ratio of the median blocks must stay <= 1.1.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cachenet.settings import make_settings
from cachenet.store import PortStore, open_store
from cachenet.store.addresses import AddressPool

POSTGRES = "postgresql+psycopg://cachenet:cachenet@127.0.0.1:5432/postgres"


def rate(store: PortStore, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        store.allocate(str(uuid.uuid4()), "bench")
    return count / (time.perf_counter() - started)


def fill_slash16() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(make_settings(database=f"sqlite:///{tmp}/ports.sqlite"))
        total = store.pool.size
        first = rate(store, 1000)
        rate(store, total - 2000)
        last = rate(store, 1000)
        print(f"sqlite /16: {total} ports allocated")
        print(f"  first 1,000: {first:8.0f} allocations/s")
        print(f"  last 1,000:  {last:8.0f} allocations/s")
        print(f"  cost ratio last/first: {first / last:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(
            make_settings(database=f"sqlite:///{tmp}/ports.sqlite", subnet="10.0.0.0/8")
        )
        print(f"sqlite /8, first 1,000: {rate(store, 1000):8.0f} allocations/s")


POOL = "10.0.0.0/22,10.1.0.0/22"  # 1,022 addresses each


def pool_second_subnet(postgres_url: str) -> None:
    """Second subnet's first 1,000 allocations vs the first subnet's, interleaved."""
    # In memory when it can: the disk's fsync times (other processes' writes) would
    # swamp the figures; what is compared is the allocation's own work.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        _pool_compare("sqlite", f"sqlite:///{tmp}/first.sqlite", f"sqlite:///{tmp}/second.sqlite")
    with scratch_database(postgres_url) as first, scratch_database(postgres_url) as second:
        _pool_compare("postgresql", first, second)


def _pool_compare(kind: str, first_url: str, second_url: str) -> None:
    # Connections held: the figures are the allocations', not a server's connection set-up.
    first = open_store(make_settings(database=first_url, subnet=POOL), hold_connection=True)
    second = open_store(make_settings(database=second_url, subnet=POOL), hold_connection=True)
    first_subnet = AddressPool.from_settings(second.settings).spaces[0]
    for _ in range(first_subnet.size):  # fill the first subnet of this store
        second.allocate(str(uuid.uuid4()), "bench")
    anchor: list[float] = []  # seconds per block of 20, alternating
    beside: list[float] = []
    for round_ in range(50):  # ABBA: a slow drift of the machine's load favours neither
        order = [(first, anchor), (second, beside)]
        for store, times in order if round_ % 2 == 0 else reversed(order):
            times.append(20 / rate(store, 20))
    last = second.allocate(str(uuid.uuid4()), "bench").address
    assert last not in first_subnet.subnet, "the second store did not reach its second subnet"
    print(f"{kind}, pool {POOL} ({first_subnet.size} addresses each):")
    print(f"  first 1,000 of the first subnet:  {1000 / sum(anchor):8.0f} allocations/s")
    print(f"  first 1,000 of the second subnet: {1000 / sum(beside):8.0f} allocations/s")
    # The median block: a burst of the machine's other load falls on a few blocks only.
    ratio = statistics.median(beside) / statistics.median(anchor)
    print(f"  cost ratio second/first (median block of 20): {ratio:.2f} (target <= 1.10)")
    first.engine.dispose()
    second.engine.dispose()


def _worker(args: tuple[str, int]) -> list[tuple[str, str, str]]:
    url, count = args
    store = open_store(make_settings(database=url, subnet="10.0.0.0/8"))
    ports = [store.allocate(str(uuid.uuid4()), "bench") for _ in range(count)]
    return [(p.instance_uuid, p.mac, str(p.address)) for p in ports]


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new database with the store's schema, dropped afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"cn_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        open_store(make_settings(database=url, subnet="10.0.0.0/8")).engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def parallel(admin_url: str, processes: int, per_process: int) -> None:
    with scratch_database(admin_url) as url:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            started = time.perf_counter()
            results = pool.map(_worker, [(url, per_process)] * processes)
            elapsed = time.perf_counter() - started
        ports = [p for r in results for p in r]
        duplicates = sum(n - 1 for n in Counter(p[1] for p in ports).values()) + sum(
            n - 1 for n in Counter(p[2] for p in ports).values()
        )
        print(f"postgresql, {processes} processes x {per_process} allocations:")
        print(f"  {len(ports) / elapsed:8.0f} allocations/s in total")
        print(f"  duplicate MACs + addresses: {duplicates}")


def _storm_worker(args: tuple[str, int, float]) -> list[tuple[float, str]]:
    """``threads`` hosts in this process, each allocating one port at ``start``."""
    url, threads, start = args
    store = open_store(make_settings(database=url, subnet="10.0.0.0/8"))
    results: list[tuple[float, str]] = []

    def host(index: int) -> None:
        time.sleep(max(0.0, start - time.time()))
        began = time.perf_counter()
        try:
            port = store.allocate(str(uuid.uuid4()), f"host-{index}")
            outcome = f"{port.mac} {port.address}"
        except Exception as exc:  # counted and shown below
            outcome = f"ERROR {type(exc).__name__}: {exc}"
        results.append((time.perf_counter() - began, outcome))

    workers = [threading.Thread(target=host, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def storm(admin_url: str, hosts: int, processes: int = 4) -> None:
    """``hosts`` compute nodes allocating one port each at the same instant."""
    with scratch_database(admin_url) as url:
        start = time.time() + 3.0  # every process and thread is up by then
        share = [(url, hosts // processes, start)] * processes
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            results = [r for part in pool.map(_storm_worker, share) for r in part]
        latencies = sorted(t for t, outcome in results if not outcome.startswith("ERROR"))
        errors = Counter(o for _, o in results if o.startswith("ERROR"))
        ok = [o for _, o in results if not o.startswith("ERROR")]
        duplicates = len(ok) - len(set(ok))
        print(f"postgresql, {len(results)} hosts allocating at the same instant:")
        if latencies:
            print(f"  allocated: {len(latencies)}, latency p50 {_ms(latencies, 0.5)} ms, "
                  f"p99 {_ms(latencies, 0.99)} ms, max {latencies[-1] * 1000:.0f} ms")  # fmt: skip
        print(f"  failed: {sum(errors.values())}; duplicate MACs or addresses: {duplicates}")
        for message, count in errors.most_common(3):
            print(f"    {count} x {message[:160]}")


def _ms(sorted_values: list[float], quantile: float) -> str:
    return f"{sorted_values[int(quantile * (len(sorted_values) - 1))] * 1000:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--per-process", type=int, default=500)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--storm", type=int, default=1000, help="hosts allocating at once")
    parser.add_argument(
        "--pool", action="store_true", help="only the pool: second subnet against the first"
    )
    args = parser.parse_args()
    if args.pool:
        pool_second_subnet(args.postgres)
        return
    fill_slash16()
    parallel(args.postgres, args.parallel, args.per_process)
    storm(args.postgres, args.storm)


if __name__ == "__main__":
    main()
