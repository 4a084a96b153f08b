"""Galera benchmark: one writer node (the anchor) against writes on every node.

    .venv/bin/python bench/galera.py [--processes N] [--per-process M] [--rounds R]

Starts a three-node MariaDB Galera cluster on loopback (tests/harness/galera.py),
then, interleaved in each round, N processes allocate M ports each into a fresh
database: all through the first node ("one writer", as behind a proxy), and
spread over the three nodes ("every node"). Prints allocations per second and
the retried errors (1213: a certification conflict or a deadlock) side by side.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.engine import is_transient
from harness.galera import Cluster, galera_cluster

SUBNET = "10.61.0.0/16"


def allocate(url: str, count: int, start_at: float) -> Counter[str]:
    """``count`` allocations from ``start_at`` on; the transient errors retried."""
    store = open_store(make_settings(database=url, subnet=SUBNET))
    retried: Counter[str] = Counter()

    @event.listens_for(store.engine, "handle_error")
    def _count(context: Any) -> None:
        if is_transient(context.sqlalchemy_exception):
            retried[str(context.original_exception.args[0])] += 1

    time.sleep(max(0.0, start_at - time.time()))
    for _ in range(count):
        store.allocate(str(uuid.uuid4()), "bench")
    return retried


def run(cluster: Cluster, spread: bool, processes: int, per_process: int) -> tuple[float, int]:
    """(allocations per second, retried errors) of one run into a fresh database."""
    database = cluster.create_database()
    urls = [node.url(database) for node in cluster.nodes]
    open_store(make_settings(database=urls[0], subnet=SUBNET)).engine.dispose()
    targets = [urls[n % len(urls)] if spread else urls[0] for n in range(processes)]
    start_at = time.time() + 3.0  # every process has opened its store by then
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(allocate, [(url, per_process, start_at) for url in targets])
    elapsed = time.time() - start_at
    stored = len(open_store(make_settings(database=urls[0], subnet=SUBNET)).list())
    assert stored == processes * per_process, (stored, processes * per_process)
    return stored / elapsed, sum(sum(r.values()) for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=6)
    parser.add_argument("--per-process", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures: dict[bool, list[tuple[float, int]]] = {False: [], True: []}
    with galera_cluster() as cluster:
        for round_ in range(1, args.rounds + 1):
            for spread in (False, True):  # interleaved: both see the same machine load
                figures[spread].append(run(cluster, spread, args.processes, args.per_process))
            one, every = figures[False][-1], figures[True][-1]
            print(f"round {round_}: one writer {one[0]:6.1f}/s ({one[1]} retried)   "
                  f"every node {every[0]:6.1f}/s ({every[1]} retried)")  # fmt: skip
    total = args.processes * args.per_process
    print(f"{args.processes} processes x {args.per_process} allocations ({total}) per run, "
          "median of the rounds:")  # fmt: skip
    for spread, label in ((False, "one writer (anchor)"), (True, "every node")):
        rate = statistics.median(f[0] for f in figures[spread])
        retried = statistics.median(f[1] for f in figures[spread])
        print(f"  {label:20} {rate:6.1f} allocations/s  {retried:5.0f} retried errors")


if __name__ == "__main__":
    main()
