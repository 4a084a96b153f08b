"""What cachenet adds to Nova's domain rendering (``_get_guest_xml``).

    .venv/bin/python bench/nova_spawn.py [--runs N]

Boots one server in Nova's own functional environment (API, conductor,
scheduler and compute running for real over Nova's fake libvirt) with
cachenet's driver and a SQLite store, records the exact ``_get_guest_xml``
call that spawn made, then replays it, interleaved, N times each through:
- Nova's LibvirtDriver._get_guest_xml alone (the baseline);
- cachenet's override, port already in the store (hard reboot, rescue, ...);
- cachenet's override, port allocated by that call (the first spawn).
and prints the medians, the added cost in ms and the ratio to the baseline.
"""

# Nova's functional test package patches eventlet in: it must come first.
import nova.tests.functional  # noqa: F401, I001

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import unittest
from collections.abc import Callable
from typing import Any

from nova.tests.functional.libvirt import base
from nova.virt.libvirt import driver as nova_libvirt_driver

from cachenet.nova import compute as cachenet_compute
from cachenet.nova import driver as cachenet_driver


class SpawnCost(base.ServersTestBase):  # type: ignore[misc]  # Nova is untyped
    ADMIN_API = True
    runs = 200  # set from --runs
    microversion = "latest"

    def setUp(self) -> None:
        api_paste = os.path.join(sys.prefix, "etc", "nova", "api-paste.ini")
        cachenet_driver.CONF.set_override("api_paste_config", api_paste, group="wsgi")
        self.state = tempfile.mkdtemp(prefix="cachenet-bench-")
        super().setUp()
        self.flags(database=f"sqlite:///{self.state}/ports.sqlite", group="cachenet")
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        original = cachenet_driver.LibvirtDriver._get_guest_xml

        def record(driver: Any, *args: Any, **kwargs: Any) -> str:
            self.calls.append((args, kwargs))
            return original(driver, *args, **kwargs)

        self.stub_out("cachenet.nova.driver.LibvirtDriver._get_guest_xml", record)
        self.start_compute("compute1")

    def _setup_compute_service(self) -> None:
        cachenet_compute.register_driver_module()
        self.flags(compute_driver="cachenet.LibvirtDriver")

    def test_measure(self) -> None:
        self._create_server(networks=[{"port": self.neutron.port_1["id"]}])
        args, kwargs = self.calls[-1]
        instance = args[1]
        driver = self.computes["compute1"].driver
        cachenet_render = cachenet_driver.LibvirtDriver.__dict__["_get_guest_xml"]
        store = driver.cachenet_store

        def baseline() -> None:
            nova_libvirt_driver.LibvirtDriver._get_guest_xml(driver, *args, **kwargs)

        def with_port() -> None:
            cachenet_render(driver, *args, **kwargs)

        def first_render() -> float:
            store.release(instance.uuid)
            started = time.perf_counter()
            cachenet_render(driver, *args, **kwargs)
            return time.perf_counter() - started

        times: dict[str, list[float]] = {"nova": [], "port": [], "first": []}
        for _ in range(self.runs):
            times["nova"].append(timed(baseline))
            times["port"].append(timed(with_port))
            times["first"].append(first_render())
        report(times, self.runs)
        # Nova's fixtures log their thread pools' shutdown after the figures.
        logging.disable(logging.INFO)


def timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def report(times: dict[str, list[float]], runs: int) -> None:
    nova = statistics.median(times["nova"]) * 1000
    print(f"\n_get_guest_xml, median of {runs} runs each (SQLite store)")
    print(f"  Nova's LibvirtDriver alone:           {nova:6.2f} ms")
    for key, label in (("port", "port already in the store"), ("first", "port allocated")):
        ms = statistics.median(times[key]) * 1000
        print(f"  cachenet, {label + ':':27} {ms:6.2f} ms  (+{ms - nova:5.2f} ms, "
              f"x{ms / nova:4.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=SpawnCost.runs)
    SpawnCost.runs = parser.parse_args().runs
    suite = unittest.TestLoader().loadTestsFromTestCase(SpawnCost)
    result = unittest.TextTestRunner(verbosity=0).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
