"""IPAM benchmark: allocation cost as a /16 fills up, parallel allocators, pooled
connections against a connection per operation, and a storm through PgBouncer.

    .venv/bin/python bench/ipam.py [--processes 16] [--allocations 1000] [--rounds 3]
                                   [--samples 200] [--storm 1000] [--skip-fill]
    .venv/bin/python bench/ipam.py --pool

1. Fills a /16 on SQLite (65,534 ports) and prints allocations per second for
   the first and the last 1,000 allocations and their ratio (the cost must not
   grow with the store), then the same first-1,000 rate on a /8.
2. --processes processes share --allocations allocations on PostgreSQL and
   MariaDB (the servers scripts/start-services.sh starts): seconds from the
   common start to the last allocation, with the store's pooled engine and with
   the anchor, a connection per operation (NullPool, what cachenet did before),
   rounds interleaved; duplicate MACs and addresses. Target: under 2 s pooled.
   Beside them the one-lock floor: the same processes, each "allocation" only
   a counter row locked, updated and a row inserted, committed (the least a
   design serialising every allocation on one row lock held to COMMIT costs
   on this machine; the allocator stripes let allocations run below it).
3. One allocation's latency, pooled against NullPool, samples interleaved.
4. A storm: --storm hosts (threads in 4 processes, each with its own engine,
   as separate compute nodes have) allocate one port each at the same instant
   through a PgBouncer in transaction mode (started here, 20 server
   connections): latency percentiles, successes, failures, duplicates.

--pool: a pool of two /22s. The first 1,000 allocations of the second subnet
(the first subnet full) against the first 1,000 of the first (the anchor), on
SQLite and PostgreSQL, in interleaved blocks of 20 so that the machine's
other load falls on both alike; the ratio of the median blocks must stay <= 1.1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.ports import PortStore
from harness.allocators import SPAWN, SUBNET, storm
from harness.databases import fresh_database
from harness.pgbouncer import pgbouncer

SERVERS = ("postgresql", "mariadb")
ENGINES = ("pooled", "NullPool")


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


def pool_second_subnet() -> None:
    """Second subnet's first 1,000 allocations vs the first subnet's, interleaved."""
    # In memory when it can: the disk's fsync times (other processes' writes) would
    # swamp the figures; what is compared is the allocation's own work.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        _pool_compare("sqlite", f"sqlite:///{tmp}/first.sqlite", f"sqlite:///{tmp}/second.sqlite")
    with fresh_database("postgresql") as first, fresh_database("postgresql") as second:
        _pool_compare("postgresql", first, second)


def _pool_compare(kind: str, first_url: str, second_url: str) -> None:
    # Connections held: the figures are the allocations', not a server's connection set-up.
    first = open_store(make_settings(database=first_url, subnet=POOL), hold_connection=True)
    second = open_store(make_settings(database=second_url, subnet=POOL), hold_connection=True)
    first_subnet = second.pool.spaces[0]
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


def null_pool_engine(url: str) -> Engine:
    """The anchor: what make_engine built before pooling, a connection per operation."""
    timeouts = {"connect_timeout": 5}
    return create_engine(
        url, poolclass=NullPool, isolation_level="READ COMMITTED", connect_args=timeouts
    )


def store_of(url: str, engine_kind: str) -> PortStore:
    settings = make_settings(database=url, subnet=SUBNET)
    store = open_store(settings)
    if engine_kind == "NullPool":
        store.engine.dispose()
        store = PortStore(null_pool_engine(url), settings.network, settings.bridge)
    return store


_started: object = None  # a multiprocessing Barrier: every worker has opened its store


def _join(barrier: object) -> None:
    global _started
    _started = barrier


def _allocator(args: tuple[str, str, int]) -> tuple[float, float, list[tuple[str, str]]]:
    url, engine_kind, count = args
    store = store_of(url, engine_kind)
    _started.wait()  # type: ignore[attr-defined]
    began = time.time()
    ports = [store.allocate(str(uuid.uuid4()), "bench") for _ in range(count)]
    return began, time.time(), [(p.mac, str(p.address)) for p in ports]


def parallel_seconds(url: str, engine_kind: str, processes: int, total: int) -> tuple[float, int]:
    """Seconds for ``processes`` to allocate ``total`` ports in all, and the duplicates."""
    shares = [(url, engine_kind, total // processes + (i < total % processes))
              for i in range(processes)]  # fmt: skip
    barrier = SPAWN.Barrier(processes)
    with SPAWN.Pool(processes, initializer=_join, initargs=(barrier,)) as pool:
        results = pool.map(_allocator, shares, chunksize=1)
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    ports = [p for r in results for p in r[2]]
    macs, addresses = Counter(p[0] for p in ports), Counter(p[1] for p in ports)
    duplicates = sum(n - 1 for n in (*macs.values(), *addresses.values()))
    return elapsed, duplicates


_floor = MetaData()
_COUNTER = Table("bench_floor_counter", _floor, Column("id", Integer, primary_key=True),
                 Column("value", BigInteger, nullable=False))  # fmt: skip
_ROWS = Table("bench_floor_rows", _floor, Column("id", Integer, primary_key=True),
              Column("value", String(36), nullable=False, unique=True))  # fmt: skip


def _floor_worker(args: tuple[str, int]) -> tuple[float, float]:
    """Lock the counter row, update it, insert a row, commit; ``count`` times."""
    url, count = args
    engine = create_engine(url, isolation_level="READ COMMITTED")
    engine.connect().close()  # connected before the start, as the stores are
    _started.wait()  # type: ignore[attr-defined]
    began = time.time()
    for _ in range(count):
        with engine.begin() as conn:
            value = conn.execute(select(_COUNTER.c.value).with_for_update()).scalar_one()
            conn.execute(update(_COUNTER).values(value=value + 1))
            conn.execute(insert(_ROWS).values(value=str(uuid.uuid4())))
    ended = time.time()
    engine.dispose()
    return began, ended


def floor_seconds(url: str, processes: int, total: int) -> float:
    """Seconds for ``processes`` to run ``total`` lock+update+insert+commit in all."""
    engine = create_engine(url)
    _floor.drop_all(engine)
    _floor.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(_COUNTER).values(id=1, value=0))
    engine.dispose()
    shares = [(url, total // processes + (i < total % processes)) for i in range(processes)]
    barrier = SPAWN.Barrier(processes)
    with SPAWN.Pool(processes, initializer=_join, initargs=(barrier,)) as pool:
        results = pool.map(_floor_worker, shares, chunksize=1)
    return max(r[1] for r in results) - min(r[0] for r in results)


def parallel(processes: int, total: int, rounds: int) -> None:
    seconds: dict[tuple[str, str], list[float]] = {}
    duplicates = 0
    with fresh_database("postgresql") as pg, fresh_database("mariadb") as maria:
        urls = {"postgresql": pg, "mariadb": maria}
        for _ in range(rounds):
            for server in SERVERS:
                for engine_kind in ENGINES:
                    took, twice = parallel_seconds(urls[server], engine_kind, processes, total)
                    seconds.setdefault((server, engine_kind), []).append(took)
                    duplicates += twice
                floor = floor_seconds(urls[server], processes, total)
                seconds.setdefault((server, "floor"), []).append(floor)
    print(f"\n{processes} processes, {total} allocations in all (median of {rounds} rounds):")
    print(f"  {'server':<11} {'pooled':>9} {'NullPool':>9} {'floor':>9}  target")
    for server in SERVERS:
        pooled, anchor, floor = (
            statistics.median(seconds[server, kind]) for kind in (*ENGINES, "floor")
        )
        gain = anchor / pooled
        print(f"  {server:<11} {pooled:8.2f}s {anchor:8.2f}s {floor:8.2f}s  "
              f"< 2 s pooled (x{gain:.1f})")  # fmt: skip
    print(f"  duplicate MACs + addresses: {duplicates}")
    print("  floor: one row lock for all, each only that row updated and a row inserted, "
          "committed")  # fmt: skip


def latency(samples: int) -> None:
    print(f"\none allocation, median and p99 of {samples} (pooled and NullPool interleaved):")
    for server in SERVERS:
        with fresh_database(server) as url:
            stores = {kind: store_of(url, kind) for kind in ENGINES}
            taken: dict[str, list[float]] = {kind: [] for kind in ENGINES}
            for _ in range(samples):
                for kind in ENGINES:
                    began = time.perf_counter()
                    stores[kind].allocate(str(uuid.uuid4()), "bench")
                    taken[kind].append(time.perf_counter() - began)
            for store in stores.values():
                store.engine.dispose()
        shown = "   ".join(
            f"{kind} {_ms(sorted(taken[kind]), 0.5)} ms (p99 {_ms(sorted(taken[kind]), 0.99)})"
            for kind in ENGINES
        )
        print(f"  {server:<11} {shown}")


def storm_through_pgbouncer(hosts: int) -> None:
    with fresh_database("postgresql") as url, pgbouncer(url) as bouncer:
        open_store(make_settings(database=url, subnet=SUBNET)).engine.dispose()
        outcome = storm(bouncer, hosts, database_prepared_statements=False)
        latencies = sorted(port[3] for port in outcome.ports)
        print(f"\n{hosts} hosts at the same instant through PgBouncer (transaction mode):")
        if latencies:
            print(f"  allocated: {len(latencies)}, latency p50 {_ms(latencies, 0.5)} ms, "
                  f"p99 {_ms(latencies, 0.99)} ms, max {latencies[-1] * 1000:.0f} ms")  # fmt: skip
        print(f"  failed: {len(outcome.failures)}; duplicate MACs + addresses: "
              f"{outcome.duplicates()}")  # fmt: skip
        for message, count in Counter(outcome.failures).most_common(3):
            print(f"    {count} x {message[:160]}")


def _ms(sorted_values: list[float], quantile: float) -> str:
    return f"{sorted_values[int(quantile * (len(sorted_values) - 1))] * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--allocations", type=int, default=1000, help="in all, shared")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200, help="latency samples per engine")
    parser.add_argument("--storm", type=int, nargs="?", const=1000, default=1000, help="0: none")
    parser.add_argument("--skip-fill", action="store_true", help="skip the SQLite /16 fill")
    parser.add_argument(
        "--pool", action="store_true", help="only the pool: second subnet against the first"
    )
    args = parser.parse_args()
    if args.pool:
        pool_second_subnet()
        return
    if not args.skip_fill:
        fill_slash16()
    parallel(args.processes, args.allocations, args.rounds)
    latency(args.samples)
    if args.storm:
        storm_through_pgbouncer(args.storm)


if __name__ == "__main__":
    main()
