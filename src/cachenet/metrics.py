"""Prometheus metrics of the long-running services; every metric cachenet exposes is here.

``dhcp serve``, ``agent`` and nova-compute (cachenet's driver) call ``serve``
when ``metrics_listen`` is set: the metrics are then created in a registry of
their own (never prometheus_client's global one) and served over HTTP on a
thread. Until then every recording function below does nothing, so a one-shot
command such as ``cachenet ports allocate`` neither imports prometheus_client
(60 ms) nor keeps figures nobody reads.

Conventions (prometheus.io/docs/practices/naming): a ``cachenet_`` prefix,
base units (seconds), ``_total`` only on counters (prometheus_client appends
it), labels with a small fixed set of values and none naming the instance.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from cachenet.errors import CachenetError, ConfigError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer as Listener

    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from cachenet.store.ports import PortStore

LOG = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

# Allocation latency: milliseconds when the store is quiet, up to the ~15 s of
# run_transaction's retries when hosts contend or the server is saturated.
ALLOCATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 30)
# Values of the ``change`` label of cachenet_agent_reconcile_changes_total.
INTERFACE_ADDED, PORT_RELEASED, PORT_SECURITY = "interface_added", "port_released", "port_security"


class _PortMetrics:
    """What every service does to the store: allocations, releases, errors, retries."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Histogram

        self.allocations = Counter(
            "cachenet_port_allocations",
            "New ports allocated (an address and a MAC taken).",
            registry=registry,
        )
        self.releases = Counter(
            "cachenet_port_releases", "Ports released (address and MAC freed).", registry=registry
        )
        self.errors = Counter(
            "cachenet_port_errors",
            "Allocate and release requests that failed, by operation and error class.",
            ["operation", "kind"],
            registry=registry,
        )
        self.allocation_seconds = Histogram(
            "cachenet_port_allocation_duration_seconds",
            "Time to answer an allocate request with a port (new or the instance's own), "
            "store retries included; failed requests: cachenet_port_errors_total.",
            buckets=ALLOCATION_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "cachenet_store_retries",
            "Store transactions retried: conflict (another host won a unique-constraint race) "
            "or transient (deadlock, busy lock, server out of connections).",
            ["reason"],
            registry=registry,
        )
        # Every series of a fixed label value from the start, at 0: an alert on
        # increase() then sees the first event, not a series appearing.
        for reason in ("conflict", "transient"):
            self.retries.labels(reason)


class _DhcpMetrics:
    """``dhcp serve``: reservations and dnsmasq."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge

        self.reservations = Gauge(
            "cachenet_dhcp_reservations",
            "Reservations dnsmasq serves (files in the hosts directory).",
            registry=registry,
        )
        self.reservations_written = Counter(
            "cachenet_dhcp_reservations_written",
            "DHCP reservation files written (new or changed).",
            registry=registry,
        )
        self.reservations_removed = Counter(
            "cachenet_dhcp_reservations_removed",
            "DHCP reservation files removed (ports released).",
            registry=registry,
        )
        self.last_sync = Gauge(
            "cachenet_dhcp_last_sync_timestamp_seconds",
            "When the reservations were last brought in line with the store (Unix time).",
            registry=registry,
        )
        self.dnsmasq_restarts = Counter(
            "cachenet_dnsmasq_restarts",
            "dnsmasq restarts: exited (it died) or reseed (leases of new reservations).",
            ["reason"],
            registry=registry,
        )
        for reason in ("exited", "reseed"):
            self.dnsmasq_restarts.labels(reason)


class _AgentMetrics:
    """``agent``: its reconciliations."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge

        self.reconciliations = Counter(
            "cachenet_agent_reconciliations",
            "Agent reconciliations, by result (success, failure: store or libvirt error).",
            ["result"],
            registry=registry,
        )
        self.reconcile_changes = Counter(
            "cachenet_agent_reconcile_changes",
            "Changes made by agent reconciliations: interface_added, port_released, "
            "port_security (rules or flows installed or removed).",
            ["change"],
            registry=registry,
        )
        self.last_reconcile = Gauge(
            "cachenet_agent_last_reconcile_timestamp_seconds",
            "When the agent last completed a reconciliation (Unix time).",
            registry=registry,
        )
        for result in ("success", "failure"):
            self.reconciliations.labels(result)
        for change in (INTERFACE_ADDED, PORT_RELEASED, PORT_SECURITY):
            self.reconcile_changes.labels(change)


class PoolCollector:
    """The pool's figures, read from the store at each scrape.

    A store that cannot be read makes cachenet_store_up 0 and leaves the pool
    figures out: a scrape never fails, and the service goes on.
    """

    def __init__(self, store: PortStore) -> None:
        self.store = store
        self.up = True  # as of the last scrape

    def describe(self) -> list[Metric]:
        return []  # no store query when the registry is built

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        from cachenet.store.usage import pool_usage

        labels = ["subnet"]
        families = {
            "size": GaugeMetricFamily(
                "cachenet_pool_addresses",
                "Addresses of the subnet that can be handed to instances.",
                labels=labels,
            ),
            "used": GaugeMetricFamily(
                "cachenet_pool_allocated_addresses", "Addresses allocated to ports.", labels=labels
            ),
            "free": GaugeMetricFamily(
                "cachenet_pool_free_addresses", "Addresses left to allocate.", labels=labels
            ),
        }
        try:
            usage = pool_usage(self.store)
        except CachenetError as exc:
            if self.up:  # once per outage: a scrape comes every few seconds
                LOG.warning("metrics: cannot read the pool's figures: %s", exc)
            usage, self.up = [], False
        else:
            self.up = True
        for subnet in usage:
            for field, family in families.items():
                family.add_metric([str(subnet.subnet)], getattr(subnet, field))
        yield from families.values()
        yield GaugeMetricFamily(
            "cachenet_store_up", "Whether the port store answered at this scrape (1) or not (0).",
            value=int(self.up),
        )  # fmt: skip


Service = Literal["dhcp", "agent", "nova"]  # nova: the port and pool metrics only
_ports: _PortMetrics | None = None
_dhcp: _DhcpMetrics | None = None
_agent: _AgentMetrics | None = None


def enable(service: Service, store: PortStore | None = None) -> CollectorRegistry:
    """Create the metrics of ``service`` (dhcp, agent, nova) and the store's in a new registry
    (with the pool's figures when ``store``); from now on this process records them."""
    global _ports, _dhcp, _agent
    from prometheus_client import CollectorRegistry, disable_created_metrics

    # No *_created series beside each counter: in the text format Prometheus stores
    # them as gauges of their own, a series per counter nobody queries.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=True)
    _ports = _PortMetrics(registry)
    _dhcp = _DhcpMetrics(registry) if service == "dhcp" else None
    _agent = _AgentMetrics(registry) if service == "agent" else None
    if store is not None:
        registry.register(PoolCollector(store))
    return registry


def serve(service: Service, listen: str | None, store: PortStore) -> Listener | None:
    """Serve ``service``'s ``/metrics`` on ``listen`` (ADDRESS:PORT) on a thread;
    nothing when None. Returns the listener (its ``shutdown()`` stops it)."""
    if listen is None:
        return None
    from prometheus_client import start_http_server

    from cachenet.settings.metrics import split_listen

    address, port = split_listen(listen)
    registry = enable(service, store)
    try:
        listener, _thread = start_http_server(port, address, registry=registry)
    except OSError as exc:
        raise ConfigError([f"metrics_listen {listen}: cannot listen: {exc.strerror}"]) from None
    LOG.info("serving metrics on http://%s/metrics", listen)
    return listener


def error_kind(exc: BaseException) -> str:
    """The ``kind`` label of an error: cachenet's error class, else "unexpected"."""
    return type(exc).__name__ if isinstance(exc, CachenetError) else "unexpected"


def port_operation(operation: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorates PortStore.allocate or .release: counts its errors by kind, times an
    allocate request (one for an instance that has its port too), counts a release
    that freed a port (new ports: ``port_allocated``)."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            metrics = _ports
            if metrics is None:
                return func(*args, **kwargs)
            started = time.perf_counter()
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                metrics.errors.labels(operation, error_kind(exc)).inc()
                raise
            if operation == "allocate":
                metrics.allocation_seconds.observe(time.perf_counter() - started)
            elif result is not None:
                metrics.releases.inc()
            return result

        return counted

    return decorate


def port_allocated() -> None:
    """A new port's row is written (the transaction's last statement)."""
    if _ports is not None:
        _ports.allocations.inc()


def store_retried(reason: str) -> None:
    """A store transaction is retried: ``reason`` conflict or transient."""
    if _ports is not None:
        _ports.retries.labels(reason).inc()


def reservation_written() -> None:
    if _dhcp is not None:
        _dhcp.reservations_written.inc()


def reservation_removed() -> None:
    if _dhcp is not None:
        _dhcp.reservations_removed.inc()


def dhcp_synced(reservations: int) -> None:
    """The reservations equal the store's as of now; dnsmasq serves ``reservations``."""
    if _dhcp is not None:
        _dhcp.last_sync.set_to_current_time()
        _dhcp.reservations.set(reservations)


def dnsmasq_restarted(reason: str) -> None:
    """dnsmasq is started again: ``reason`` exited or reseed."""
    if _dhcp is not None:
        _dhcp.dnsmasq_restarts.labels(reason).inc()


def reconciled(changes: Sequence[str], released: Sequence[Any], attached_prefix: str) -> None:
    """A reconciliation completed: its changes (attach()'s lines, those beginning with
    ``attached_prefix`` added an interface) and the ports it released."""
    if _agent is None:
        return
    added = sum(1 for change in changes if change.startswith(attached_prefix))
    _agent.reconciliations.labels("success").inc()
    _agent.reconcile_changes.labels(INTERFACE_ADDED).inc(added)
    _agent.reconcile_changes.labels(PORT_SECURITY).inc(len(changes) - added)
    _agent.reconcile_changes.labels(PORT_RELEASED).inc(len(released))
    _agent.last_reconcile.set_to_current_time()


def reconcile_failed() -> None:
    if _agent is not None:
        _agent.reconciliations.labels("failure").inc()
