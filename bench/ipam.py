"""IPAM benchmark: allocation cost as a /16 fills up, and parallel allocators.

    .venv/bin/python bench/ipam.py [--parallel N] [--per-process M] [--postgres URL]

1. Fills a /16 on SQLite (65,534 ports) and prints allocations per second for
   the first and the last 1,000 allocations and their ratio (the cost must not
   grow with the store), then the same first-1,000 rate on a /8.
2. Runs N processes allocating at once against PostgreSQL (the server
   scripts/start-services.sh starts) and prints total allocations per second
   and how many MACs and addresses were handed out twice.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from collections import Counter

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cachenet.settings import make_settings
from cachenet.store import open_store

POSTGRES = "postgresql+psycopg://cachenet:cachenet@127.0.0.1:5432/postgres"


def rate(store, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        store.allocate(str(uuid.uuid4()), "bench")
    return count / (time.perf_counter() - started)


def fill_slash16() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(make_settings(database=f"sqlite:///{tmp}/ports.sqlite"))
        total = store.settings.allocatable_count
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


def _worker(args: tuple[str, int]) -> list[tuple[str, str, str]]:
    url, count = args
    store = open_store(make_settings(database=url, subnet="10.0.0.0/8"))
    ports = [store.allocate(str(uuid.uuid4()), "bench") for _ in range(count)]
    return [(p.instance_uuid, p.mac, str(p.address)) for p in ports]


def parallel(admin_url: str, processes: int, per_process: int) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"cn_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        open_store(make_settings(database=url, subnet="10.0.0.0/8")).engine.dispose()
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
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--per-process", type=int, default=500)
    parser.add_argument("--postgres", default=POSTGRES)
    args = parser.parse_args()
    fill_slash16()
    parallel(args.postgres, args.parallel, args.per_process)


if __name__ == "__main__":
    main()
