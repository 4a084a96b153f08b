"""Allocators in other processes, as compute nodes are: a steady stream until
told to stop, or a storm of hosts allocating at the same instant."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier, Event

from cachenet.settings import make_settings
from cachenet.store import open_store
from harness.wait import wait_for

SUBNET = "10.0.0.0/8"  # room for any run
SPAWN = multiprocessing.get_context("spawn")  # no engine or thread inherited by a fork


@dataclass
class Acked:
    """Ports whose allocate returned, and the failures, of one or more allocators."""

    ports: list[tuple[str, str, str, float]] = field(default_factory=list)  # uuid, mac, ip, when
    failures: list[str] = field(default_factory=list)

    def duplicates(self) -> int:
        """MACs plus addresses handed out more than once."""
        macs = Counter(p[1] for p in self.ports)
        addresses = Counter(p[2] for p in self.ports)
        return sum(n - 1 for n in macs.values()) + sum(n - 1 for n in addresses.values())


def _allocate_until(
    url: str,
    host: str,
    stop: Event,
    results: multiprocessing.Queue,  # type: ignore[type-arg]
    count: Synchronized,  # type: ignore[type-arg]
) -> None:
    store = open_store(make_settings(database=url, subnet=SUBNET))
    acked = Acked()
    while not stop.is_set():
        try:
            port = store.allocate(str(uuid.uuid4()), host)
        except Exception as exc:  # reported to the test, which shows it
            acked.failures.append(f"{type(exc).__name__}: {exc}")
            continue
        acked.ports.append((port.instance_uuid, port.mac, str(port.address), time.time()))
        with count.get_lock():
            count.value += 1
    results.put(acked)


class Allocators:
    """``count`` processes allocating one port after another until ``stop``."""

    def __init__(self, url: str, count: int) -> None:
        self._stop = SPAWN.Event()
        self._results: multiprocessing.Queue = SPAWN.Queue()  # type: ignore[type-arg]
        self._acked = SPAWN.Value("i", 0)
        self._processes = [
            SPAWN.Process(
                target=_allocate_until,
                args=(url, f"host-{i}", self._stop, self._results, self._acked),
            )
            for i in range(count)
        ]

    def wait_for_more(self, more: int, timeout: float = 120) -> int:
        """Wait until ``more`` further allocations were acknowledged; the total then."""
        target = self._acked.value + more
        wait_for(lambda: self._acked.value >= target, f"{more} more allocations", timeout)
        return int(self._acked.value)

    def __enter__(self) -> Allocators:
        for process in self._processes:
            process.start()
        return self

    def stop(self) -> Acked:
        self._stop.set()
        total = Acked()
        for _ in self._processes:
            part = self._results.get(timeout=120)
            total.ports += part.ports
            total.failures += part.failures
        for process in self._processes:
            process.join(30)
        return total

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for process in self._processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()


_ready: Barrier | None = None  # every storm process, once all its hosts opened their store


def _join_storm(barrier: Barrier) -> None:
    global _ready
    _ready = barrier


def _storm_part(url: str, hosts: int, overrides: dict[str, object]) -> Acked:
    """``hosts`` threads, each a host with its own engine, allocating one port
    once every host of every process has opened its store."""
    settings = make_settings(database=url, subnet=SUBNET, **overrides)
    outcome = Acked()
    lock = threading.Lock()
    go = threading.Event()
    # Opened one after another, long before the storm, as nodes open theirs at
    # start; then idle: at the instant every host connects anew.
    stores = [open_store(settings) for _ in range(hosts)]
    for store in stores:
        store.engine.dispose()

    def host(index: int) -> None:
        go.wait()
        began = time.perf_counter()
        try:
            port = stores[index].allocate(str(uuid.uuid4()), f"host-{index}")
        except Exception as exc:
            with lock:
                outcome.failures.append(f"{type(exc).__name__}: {exc}")
            return
        finally:
            stores[index].engine.dispose()
        with lock:
            outcome.ports.append(
                (port.instance_uuid, port.mac, str(port.address), time.perf_counter() - began)
            )

    threads = [threading.Thread(target=host, args=(i,)) for i in range(hosts)]
    for thread in threads:
        thread.start()
    assert _ready is not None
    _ready.wait()
    go.set()
    for thread in threads:
        thread.join()
    return outcome


def _storm_worker(args: tuple[str, int, dict[str, object]]) -> Acked:
    return _storm_part(*args)


def storm(url: str, hosts: int, processes: int = 4, **overrides: object) -> Acked:
    """``hosts`` hosts allocating one port each at the same instant; the fourth
    field of each port is its allocation's latency in seconds.

    A process per host would take a 2-core machine minutes to start: hosts are
    threads, each with its own engine (its own connection to the server, as a
    separate compute node has), spread over a few processes so that their
    Python work is not serialised by one interpreter lock.
    """
    share = [(url, hosts // processes + (i < hosts % processes), overrides)
             for i in range(processes)]  # fmt: skip
    barrier = SPAWN.Barrier(processes)
    with SPAWN.Pool(processes, initializer=_join_storm, initargs=(barrier,)) as pool:
        parts = pool.map(_storm_worker, share, chunksize=1)
    total = Acked()
    for part in parts:
        total.ports += part.ports
        total.failures += part.failures
    return total
