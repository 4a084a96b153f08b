"""The checks of ``cachenet doctor``, in the order they run and print.

Each reads through the code that does the job elsewhere (the bridge backends'
status and port-security drift, the store's engine, the DHCP server's pid and
reservation files) and changes nothing. What several checks need (the store,
the bridge's status) is read once by ``Host``: the first check to need it
reports its failure, the later ones are skipped naming that check.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from cachenet.doctor.result import FAIL, OK, SKIPPED, WARN, Result
from cachenet.errors import CachenetError, PrivilegeError, StoreUnavailable, refused
from cachenet.settings import DhcpSettings, Settings, StoreSettings, mask_password

if TYPE_CHECKING:
    from cachenet.bridge import BridgeBackend, BridgeStatus
    from cachenet.port import Port
    from cachenet.store import PortStore

CLOCK_SKEW_MAX = 5.0  # seconds between this host's clock and the database server's
POOL_WARN = 0.8  # a pool fuller than this is a warning
RESYNC_WAIT = 1.0  # seconds `dhcp serve` may take to write a change (it polls every 0.2 s)

FIX_BRIDGE = "cachenet bridge ensure"
FIX_PORT_SECURITY = "cachenet bridge secure"
FIX_NTP = "synchronise the clocks of this host and the database server with NTP (chrony)"


class Skipped(Exception):
    """A check that cannot or need not be made here; the message says why."""


class Host:
    """This host as the checks see it: settings, and what they share, read once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: dict[str, tuple[Any, BaseException | None]] = {}

    def shared(self, what: str, owner: str, read: Callable[[], Any]) -> Any:
        """``read()``'s value, computed once. Its error goes to the first caller
        (``owner``, the check reporting it); later callers are skipped."""
        first = what not in self._cache
        if first:
            try:
                self._cache[what] = (read(), None)
            except Exception as exc:
                self._cache[what] = (None, exc)
        value, error = self._cache[what]
        if error is None:
            return value
        if first:
            raise error
        raise Skipped(f"not checked: {owner} could not be checked")

    @property
    def engine(self) -> Engine:
        engine: Engine = self.shared("engine", "store", lambda: _open_engine(self.settings.store))
        return engine

    @property
    def store(self) -> PortStore:
        from cachenet.store import PortStore

        return PortStore(self.engine, self.settings.network, self.settings.bridge)

    @property
    def backend(self) -> BridgeBackend:
        from cachenet.bridge import backend_for

        return backend_for(self.settings.bridge, self.settings.network)

    @property
    def bridge_status(self) -> BridgeStatus:
        status: BridgeStatus = self.shared("bridge", "bridge", self.backend.status)
        if not status.exists:
            raise Skipped(f"not checked: no bridge {self.settings.bridge.name}")
        return status

    @property
    def host_ports(self) -> list[Port]:
        ports: list[Port] = self.shared(
            "ports", "store", lambda: self.store.list(self.settings.store.host)
        )
        return ports


def _open_engine(settings: StoreSettings) -> Engine:
    """An engine on the store, its database reached once; nothing is created (no SQLite
    file, no schema): a doctor only looks. Built with the host's pool options, so a
    host behind PgBouncer (prepared statements off) is checked as it connects."""
    from cachenet.store.engine import make_engine, translate_errors
    from cachenet.store.pooling import PoolOptions

    database = settings.database
    parsed = make_url(database)
    if parsed.get_backend_name() == "sqlite":
        try:
            os.stat(parsed.database or "")  # PermissionError: a directory this user may not enter
        except FileNotFoundError:
            raise StoreUnavailable(
                f"no port store at {parsed.database} (it is created on first use, or by "
                "`cachenet db upgrade`)"
            ) from None
    engine = make_engine(database, pool=PoolOptions.of(settings))
    with translate_errors(engine.url), engine.connect():
        pass
    return engine


# --- the store ---------------------------------------------------------------------


def check_store(host: Host) -> Result:
    try:
        host.engine  # noqa: B018 (connects)
    except StoreUnavailable as exc:
        if isinstance(exc, PrivilegeError):
            raise
        server = make_url(host.settings.store.database).get_backend_name() != "sqlite"
        fix = "start the database server" if server else "cachenet db upgrade (creates it)"
        return Result("store", FAIL, str(exc), f"{fix}, or correct `database`")
    return Result("store", OK, f"{mask_password(host.settings.store.database)} answers")


def check_schema(host: Host) -> Result:
    from cachenet.store.phases import SCHEMA_REVISION, schema_state

    state = schema_state(host.engine)
    if not state.expanded:
        return Result(
            "schema",
            FAIL,
            f"the store's schema is missing or older than revision {SCHEMA_REVISION}",
            "cachenet db upgrade",
        )
    if not state.contracted:
        return Result(
            "schema",
            OK,
            f"expanded (revision {state.main} and {state.expand}); the contract phase is "
            "pending: `cachenet db upgrade` once every host runs this release",
        )
    return Result("schema", OK, f"at revision {SCHEMA_REVISION}")


# The server's clock, in UTC, per backend (SQLite has no server: the file is local).
_SERVER_CLOCK = {
    "postgresql": "SELECT clock_timestamp()",
    "mysql": "SELECT UTC_TIMESTAMP(6)",
    "mariadb": "SELECT UTC_TIMESTAMP(6)",
}


def check_clock(host: Host) -> Result:
    backend = host.engine.dialect.name
    if backend not in _SERVER_CLOCK:
        raise Skipped(f"the {backend} store has no server clock")
    skew, uncertainty = server_clock_skew(host.engine, _SERVER_CLOCK[backend])
    ahead = "ahead of" if skew > 0 else "behind"
    found = f"the database server's clock is {abs(skew):.1f} s {ahead} this host's"
    if abs(skew) - uncertainty > CLOCK_SKEW_MAX:
        return Result("clock", FAIL, f"{found} (more than {CLOCK_SKEW_MAX:g} s)", FIX_NTP)
    return Result("clock", OK, found)


def server_clock_skew(engine: Engine, query: str) -> tuple[float, float]:
    """Seconds the server's clock is ahead of ours, and the half round trip it is
    known within (the server read its clock somewhere between our two readings)."""
    from cachenet.store.engine import run_transaction

    def read(connection: Connection) -> tuple[float, datetime, float]:
        before = time.time()
        value = connection.execute(text(query)).scalar_one()
        return before, value, time.time()

    before, server, after = run_transaction(engine, read)
    if server.tzinfo is None:  # MariaDB's UTC_TIMESTAMP is naive UTC
        server = server.replace(tzinfo=UTC)
    return server.timestamp() - (before + after) / 2, (after - before) / 2


def check_pool(host: Host) -> Result:
    from cachenet.store.usage import pool_usage

    usage = pool_usage(host.store)
    parts = []
    for subnet in usage:
        share = subnet.used / subnet.size if subnet.size else 1.0
        parts.append(f"{subnet.subnet} {subnet.used} of {subnet.size} used ({share:.0%})")
    # Subnets fill in order: a full one is normal while the next has room.
    size, free = sum(u.size for u in usage), sum(u.free for u in usage)
    status = FAIL if free == 0 else WARN if size - free > POOL_WARN * size else OK
    message = "; ".join(parts)
    if status == FAIL:
        return Result(
            "pool", FAIL, f"full, allocations fail: {message}",
            "release the ports of gone instances (cachenet ports gc) or add a subnet to subnet",
        )  # fmt: skip
    if status == WARN:
        return Result(
            "pool", WARN, f"more than {POOL_WARN:.0%} used: {message}",
            "release the ports of gone instances (cachenet ports gc) or add a subnet to subnet",
        )  # fmt: skip
    return Result("pool", OK, message)


# --- the bridge ----------------------------------------------------------------------


def check_bridge(host: Host) -> Result:
    name = host.settings.bridge.name
    status = host.shared("bridge", "bridge", host.backend.status)
    if not status.exists:
        return Result("bridge", FAIL, f"{name} does not exist", FIX_BRIDGE)
    kind = f"{name} ({status.type})"
    if status.type == "ovs":
        # OVS forwards whatever its internal port's state; that port matters only to
        # the host's own traffic (a DHCP node serving on the bridge sets it up itself).
        return Result("bridge", OK, f"{kind} exists (its internal port is {status.state})")
    if not _is_up(status.state):
        if status.uplink and not _is_up(status.uplink_state):
            # Set up, but without a carrier: no port of it has one. The uplink says why.
            reason = f"{kind} is {status.state}: none of its ports has a carrier"
            return Result("bridge", FAIL, reason, "see uplink")
        return Result("bridge", FAIL, f"{kind} is {status.state or 'down'}", FIX_BRIDGE)
    return Result("bridge", OK, f"{kind} is up")


def _is_up(state: str | None) -> bool:
    # A Linux bridge is "UP", or "UNKNOWN" before any port has had a carrier.
    return (state or "").lower() in ("up", "unknown")


def check_mtu(host: Host) -> Result:
    wanted = host.settings.network.mtu
    status = host.bridge_status
    if wanted is None:
        raise Skipped(f"mtu is not set ({status.bridge} has {status.mtu})")
    if status.mtu != wanted:
        return Result(
            "bridge-mtu", FAIL, f"{status.bridge} has MTU {status.mtu}, not {wanted}", FIX_BRIDGE
        )
    # The uplink's own MTU (reset by the host's network configuration, say) drops
    # every larger frame to and from the cache nodes while the bridge looks right.
    if status.uplink is not None and status.uplink_mtu != wanted:
        found = f"{status.uplink}, the uplink of {status.bridge}, has MTU {status.uplink_mtu}"
        return Result("bridge-mtu", FAIL, f"{found}, not {wanted}", FIX_BRIDGE)
    on_uplink = f" as has its uplink {status.uplink}" if status.uplink is not None else ""
    return Result("bridge-mtu", OK, f"{status.bridge} has MTU {wanted}{on_uplink}")


def check_uplink(host: Host) -> Result:
    uplink = host.settings.bridge.uplink
    if uplink is None:
        raise Skipped("uplink is not set")
    status = host.bridge_status
    if status.uplink != uplink:
        return Result(
            "uplink", FAIL, f"{uplink} is not a port of {status.bridge}", FIX_BRIDGE
        )  # fmt: skip
    if (status.uplink_state or "").lower() != "up":
        return Result(
            "uplink", FAIL, f"{uplink} is {status.uplink_state or 'down'}",
            f"{FIX_BRIDGE} (sets it up); if it stays down, check {uplink}'s cable and switch port",
        )  # fmt: skip
    return Result("uplink", OK, f"{uplink} is a port of {status.bridge} and up")


def check_port_security(host: Host) -> Result:
    settings = host.settings
    if not settings.bridge.anti_spoofing and not settings.bridge.isolate_ports:
        raise Skipped("isolate_ports and anti_spoofing are off")
    ports = host.host_ports
    status = host.bridge_status
    drift = host.shared(
        "drift", "port-security", lambda: host.backend.port_security_drift(ports)
    )  # fmt: skip
    if drift:
        return Result("port-security", FAIL, "; ".join(drift), FIX_PORT_SECURITY)
    plugged = len(set(status.instance_ports) & {p.device for p in ports})
    return Result(
        "port-security", OK,
        f"rules of the {len(ports)} ports of {settings.store.host} in place ({plugged} plugged)",
    )  # fmt: skip


def check_isolation(host: Host) -> Result:
    if not host.settings.bridge.isolate_ports:
        raise Skipped("isolate_ports is off")
    status = host.bridge_status
    if host.settings.bridge.bridge_type == "linuxbridge":
        from cachenet.bridge.linuxbridge import list_nft_table

        # Its isolation is a chain of the nftables table, which the status reports as
        # missing when it cannot read it: read it here, so that is an error of its own.
        host.shared("nft", "port-isolation", lambda: list_nft_table(None))
    if status.unisolated_ports:
        listed = ", ".join(status.unisolated_ports)
        return Result(
            "port-isolation", FAIL, f"can reach other instances: {listed}", FIX_PORT_SECURITY
        )
    return Result("port-isolation", OK, f"{len(status.instance_ports)} instance ports isolated")


def check_stray_ports(host: Host) -> Result:
    """Instance ports on the bridge holding no port of this host: the port was moved
    to another host while its instance stayed (or the reverse), or released while
    the domain kept its NIC. This host has no rules for them, and the store would
    hand their address or MAC to another instance."""
    status = host.bridge_status
    mine = {port.device for port in host.host_ports}
    stray = sorted(set(status.instance_ports) - mine)
    if not stray:
        found = f"every instance port on {status.bridge} holds a port of this host"
        return Result("stray-ports", OK, found)
    by_device = {port.device: port for port in host.store.list()}
    found = "; ".join(_stray_port(device, by_device.get(device)) for device in stray)
    fix = (f"if the instance runs here: cachenet ports move INSTANCE {host.settings.store.host}; "
           "if it is gone: detach its interface (virsh detach-interface)")  # fmt: skip
    return Result("stray-ports", WARN, found, fix)


def _stray_port(device: str, owner: Port | None) -> str:
    if owner is None:
        return f"{device} holds no port (released)"
    return f"{device} is instance {owner.instance_uuid}'s port on host {owner.host}"


# --- libvirt, DHCP -------------------------------------------------------------------


def check_libvirt(host: Host) -> Result:
    from cachenet.agent.attach import connect

    uri = host.settings.agent.libvirt_uri
    connection = connect(uri)
    try:
        version = connection.getLibVersion()
    finally:
        connection.close()
    major, minor = divmod(version // 1000, 1000)
    return Result("libvirt", OK, f"{uri} answers (libvirt {major}.{minor})")


def _dhcp_node(dhcp: DhcpSettings) -> None:
    if dhcp.interface is None:
        raise Skipped("not a DHCP node (dhcp_interface is not set)")


def check_dnsmasq(host: Host) -> Result:
    from cachenet.dhcp.server import _running_dnsmasq, pid_file

    _dhcp_node(host.settings.dhcp)
    pid = _running_dnsmasq(host.settings.dhcp)
    if pid is None:
        where = pid_file(host.settings.dhcp)
        return Result(
            "dnsmasq", FAIL, f"dnsmasq is not running (no live process in {where})",
            "systemctl start cachenet-dhcp (it runs `cachenet dhcp serve`)",
        )  # fmt: skip
    return Result("dnsmasq", OK, f"dnsmasq is running (pid {pid})")


def check_reservations(host: Host) -> Result:
    from cachenet.dhcp.server import hosts_dir

    _dhcp_node(host.settings.dhcp)
    directory = hosts_dir(host.settings.dhcp)
    differences = _reservation_differences(host, directory)
    if differences:  # `dhcp serve` may be writing a change this very moment: look again
        time.sleep(RESYNC_WAIT)
        differences = _reservation_differences(host, directory)
    if differences:
        return Result(
            "reservations", FAIL, f"{directory} differs from the store: {differences}",
            "cachenet dhcp sync --once (`cachenet dhcp serve` keeps them in sync while it runs)",
        )  # fmt: skip
    return Result("reservations", OK, f"{directory} holds the store's {len(host.store.list())}")


def _reservation_differences(host: Host, directory: Path) -> str:
    from cachenet.dhcp.leases import reservations_in

    if not directory.is_dir():
        return "no reservation directory"
    served = reservations_in(directory)
    wanted = {port.mac.lower(): str(port.address) for port in host.store.list()}
    missing = sorted(set(wanted) - set(served))
    stale = sorted(set(served) - set(wanted))
    wrong = sorted(m for m in set(wanted) & set(served) if wanted[m] != served[m])
    found = [
        f"{len(macs)} {what} ({', '.join(macs[:3])}{', ...' if len(macs) > 3 else ''})"
        for what, macs in (("missing", missing), ("stale", stale), ("with another address", wrong))
        if macs
    ]
    return ", ".join(found)


# --- running them --------------------------------------------------------------------

CHECKS: dict[str, Callable[[Host], Result]] = {
    "store": check_store,
    "schema": check_schema,
    "clock": check_clock,
    "bridge": check_bridge,
    "bridge-mtu": check_mtu,
    "uplink": check_uplink,
    "port-security": check_port_security,
    "port-isolation": check_isolation,
    "stray-ports": check_stray_ports,
    "libvirt": check_libvirt,
    "dnsmasq": check_dnsmasq,
    "reservations": check_reservations,
    "pool": check_pool,
}
NAMES = ("config", *CHECKS)


def run_checks(settings: Settings, skip: Sequence[str] = ()) -> list[Result]:
    """Every check on this host, ``skip`` left out, in order."""
    host = Host(settings)
    results = [Result("config", OK, "the configuration is valid")]
    for name, check in CHECKS.items():
        if name in skip:
            results.append(Result(name, SKIPPED, "skipped (--skip)"))
        else:
            results.append(_run(name, check, host))
    return results


def _run(name: str, check: Callable[[Host], Result], host: Host) -> Result:
    """The check's result; what it raised as one line."""
    try:
        return check(host)
    except Skipped as exc:
        return Result(name, SKIPPED, str(exc))
    except Exception as exc:
        if isinstance(exc, PrivilegeError) or refused(exc):
            return Result(name, SKIPPED, f"not checked, this user lacks a privilege: {exc}",
                          "run cachenet doctor as root")  # fmt: skip
        if isinstance(exc, CachenetError):
            return Result(name, FAIL, str(exc))
        return Result(name, FAIL, f"unexpected error: {type(exc).__name__}: {exc}")


def config_failed(problem: str) -> list[Result]:
    """The results when the settings cannot be loaded: nothing else can be checked."""
    fix = "correct the options named in the [cachenet] group; `cachenet config show` checks them"
    return [Result("config", FAIL, problem, fix)] + [
        Result(name, SKIPPED, "not checked: no valid configuration") for name in CHECKS
    ]
