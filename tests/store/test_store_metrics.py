"""The store's metrics in-process, against real databases: errors by kind, retries while
SQLite is locked by another writer, and a scrape while the server is not there."""

import contextlib
import socket
import uuid

import pytest
from prometheus_client import generate_latest

from cachenet import metrics
from cachenet.errors import SubnetExhausted
from cachenet.settings import make_settings
from cachenet.store import PortStore, open_store
from cachenet.store import engine as store_engine
from cachenet.store.engine import make_engine
from harness.metrics import Scrape
from harness.sqlite_lock import HeldWriteLock


def scraped(registry):
    return Scrape(generate_latest(registry).decode())


@pytest.fixture
def store(db_url):
    # A /29: 6 host addresses, 4 reserved, so 2 to hand out.
    settings = make_settings(database=db_url, subnet="10.66.0.0/29", reserved="10.66.0.1-10.66.0.4")
    store = open_store(settings)
    yield store
    store.engine.dispose()


def test_allocations_releases_and_a_full_subnet_by_kind(store):
    registry = metrics.enable("agent", store)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    store.allocate(first, "compute-1")
    store.allocate(first, "compute-1")  # the instance's own port again: not a new one
    store.allocate(second, "compute-1")
    with pytest.raises(SubnetExhausted):
        store.allocate(str(uuid.uuid4()), "compute-1")
    full = scraped(registry)
    assert full["cachenet_port_allocations_total"] == 2
    assert full["cachenet_port_allocation_duration_seconds_count"] == 3  # those answered
    errors = "cachenet_port_errors_total"
    assert full[errors, {"operation": "allocate", "kind": "SubnetExhausted"}] == 1
    subnet = {"subnet": "10.66.0.0/29"}
    assert full["cachenet_pool_addresses", subnet] == 2
    assert full["cachenet_pool_allocated_addresses", subnet] == 2
    assert full["cachenet_pool_free_addresses", subnet] == 0

    store.release(first)
    assert store.release(first) is None  # nothing left to free: not a release
    after = scraped(registry)
    assert after["cachenet_port_releases_total"] == 1
    assert after["cachenet_pool_free_addresses", subnet] == 1


def test_a_store_down_at_scrape_time_reads_as_store_up_0(tmp_path):
    with socket_closed() as port:
        url = f"postgresql+psycopg://cachenet:S3cret@127.0.0.1:{port}/cachenet"
        settings = make_settings(database=f"sqlite:///{tmp_path}/unused.sqlite")
        registry = metrics.enable(
            "dhcp", PortStore(make_engine(url), settings.network, settings.bridge)
        )
        down = scraped(registry)  # does not raise
    assert down["cachenet_store_up"] == 0
    assert "cachenet_pool_allocated_addresses{" not in down.text
    assert "cachenet_dnsmasq_restarts_total" in down.text


def test_retries_while_sqlite_is_locked_by_another_writer(tmp_path, monkeypatch):
    path = tmp_path / "ports.sqlite"
    monkeypatch.setattr(store_engine, "SQLITE_BUSY_TIMEOUT", 0.05)
    store = open_store(make_settings(database=f"sqlite:///{path}"))
    registry = metrics.enable("agent", store)
    with HeldWriteLock(path, seconds=1.0):
        store.allocate(str(uuid.uuid4()), "compute-1")
    after = scraped(registry)
    assert after["cachenet_store_retries_total", {"reason": "transient"}] >= 1
    assert after["cachenet_port_allocations_total"] == 1
    assert after["cachenet_port_allocation_duration_seconds_sum"] >= 0.9  # waited for the lock
    store.engine.dispose()


@contextlib.contextmanager
def socket_closed():
    """A loopback port nothing listens on (bound, never listening, while in use)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_an_ipv6_only_pool_reports_each_prefix_by_the_macs_left(db_url):
    # mac_prefix fa:17:3e:00:00: 256 MACs, so 256 addresses in each prefix.
    settings = make_settings(database=db_url, subnet="fd00:66::/64, 2001:db8:66::/64",
                             mac_prefix="fa:17:3e:00:00")  # fmt: skip
    store = open_store(settings)
    try:
        registry = metrics.enable("agent", store)
        for _ in range(3):
            store.allocate(str(uuid.uuid4()), "compute-1")
        scrape = scraped(registry)
        for prefix in ("fd00:66::/64", "2001:db8:66::/64"):
            subnet = {"subnet": prefix}
            assert scrape["cachenet_pool_addresses", subnet] == 256
            assert scrape["cachenet_pool_allocated_addresses", subnet] == 3
            assert scrape["cachenet_pool_free_addresses", subnet] == 253
        assert scrape["cachenet_port_allocations_total"] == 3
    finally:
        store.engine.dispose()
