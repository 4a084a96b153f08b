"""The port store: one port per instance, unique across every host sharing the database.

Allocation cost does not depend on how many ports exist or on the size of the
pool: it reads the instance's row, locks one allocator stripe of the first
subnet of the pool with fresh addresses left (store/stripes.py: concurrent
allocations lock different stripes; while the schema is expanded, the previous
release's rows, store/single_counter.py), takes its next address and MAC (or,
once those run out, the oldest released ones) and inserts. Each operation is
one transaction, retried a bounded number of times on deadlocks,
unique-constraint races and a server out of connection slots
(engine.run_transaction).
"""

from __future__ import annotations

import builtins
import ipaddress
import itertools
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Engine,
    Insert,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError

from cachenet import ipv6, metrics
from cachenet.errors import IdentityError, StoreError, SubnetExhausted
from cachenet.identity import (
    canonical_uuid,
    check_device,
    check_host,
    check_stored_mac,
    check_stored_uuid,
    device_name,
    device_names,
    mac_from_suffix,
    shown,
    suffix_bits,
)
from cachenet.port import Port
from cachenet.settings import BridgeSettings, NetworkSettings, Settings
from cachenet.store import ipv6_only, phases, single_counter, stripes
from cachenet.store.addresses import AddressPool
from cachenet.store.engine import make_engine, run_transaction
from cachenet.store.notify import announce_change
from cachenet.store.pooling import PoolOptions
from cachenet.store.schema import (
    expanded_port_events,
    expanded_ports,
    free_addresses,
    free_macs,
    port_events,
    ports,
)
from cachenet.store.usage import refuse_removed_subnets

T = TypeVar("T")
AfterCommit = Callable[[Connection], None]
LOG = logging.getLogger(__name__)

# Events re-read below the caller's cursor: a transaction that took an event id
# before a newer one committed becomes visible late; re-reading a window (and
# the DHCP side's periodic full resync) catches it. Applying an event twice is harmless.
EVENT_LOOKBACK = 256
# Device names tried for an instance before giving up: the first is the
# instance's own, the others hash-derived, so more than two are taken only by chance.
DEVICE_NAME_TRIES = 16


# Statements of the allocation path, built once: building them per call cost
# more than running them.
_MAC_IN_USE = select(ports.c.id).where(ports.c.mac == bindparam("mac")).limit(1)
_DEVICE_IN_USE = select(ports.c.id).where(ports.c.device == bindparam("device")).limit(1)
_UNFREE_ADDRESS = delete(free_addresses).where(free_addresses.c.address == bindparam("address"))
_UNFREE_MAC = delete(free_macs).where(free_macs.c.mac == bindparam("mac"))
_NEWEST_EVENT = select(func.max(port_events.c.id))


def _oldest_released(table: Table, column: Any) -> stripes.Picks:
    """The oldest value of a free list, locked (a concurrent reuse takes the next)."""
    query = select(column).order_by(table.c.released_at).limit(1)
    return stripes.first_row_locked(query, table, f"ix_{table.name}_released_at")


_OLDEST_FREE_ADDRESS = _oldest_released(free_addresses, free_addresses.c.address)
_OLDEST_FREE_MAC = _oldest_released(free_macs, free_macs.c.mac)


@dataclass(frozen=True)
class _Layout:
    """The port tables of one schema phase (see store/phases.py), and statements over them."""

    contracted: bool
    ports: Table
    events: Table
    select_port: Select[Any]
    # The instance's port, and the port holding a device name: one round trip.
    port_or_device_holder: CompoundSelect[Any]
    address_in_use: Select[Any]
    where_candidates_are: Select[Any]
    # The previous release's rows while it may be allocating from them, else the stripes.
    allocator: stripes.Allocator
    insert_port: Insert
    insert_event: Insert


def _layout_of(contracted: bool) -> _Layout:
    table, events = (ports, port_events) if contracted else (expanded_ports, expanded_port_events)
    # While expanded, every writer fills the integer column (the previous release
    # only that one): it alone tells whether an address is taken.
    taken = table.c.ip_address if contracted else table.c.address
    address_in_use = select(table.c.id).where(taken == bindparam("address")).limit(1)
    return _Layout(
        contracted=contracted,
        ports=table,
        events=events,
        select_port=select(table).where(table.c.instance_uuid == bindparam("uuid")),
        port_or_device_holder=union_all(
            select(table).where(table.c.instance_uuid == bindparam("uuid")),
            select(table).where(table.c.device == bindparam("device")),
        ),
        address_in_use=address_in_use,
        where_candidates_are=_where_candidates_are(address_in_use),
        allocator=stripes if contracted else single_counter,
        insert_port=insert(table),
        insert_event=insert(events),
    )


def _where_candidates_are(address_in_use: Select[Any]) -> Select[Any]:
    """Whether a new port's candidate address and MAC are in use or in a free list, in
    one round trip (a None candidate is nowhere): normally nowhere."""
    return select(
        address_in_use.exists().label("address_in_use"),
        _MAC_IN_USE.exists().label("mac_in_use"),
        select(free_addresses.c.address)
        .where(free_addresses.c.address == bindparam("address_number"))
        .exists()
        .label("address_released"),
        select(free_macs.c.mac)
        .where(free_macs.c.mac == bindparam("mac"))
        .exists()
        .label("mac_released"),
    )


_LAYOUTS = {contracted: _layout_of(contracted) for contracted in (False, True)}


@dataclass(frozen=True)
class Changes:
    """What happened since a cursor: ports to serve and ports to stop serving."""

    cursor: int
    upserted: list[Port]
    released: list[Port]


class PortStore:
    """IPAM over SQLAlchemy: allocate, get, list, release, move, gc; the change log."""

    def __init__(
        self,
        engine: Engine,
        network: NetworkSettings,
        bridge: BridgeSettings,
        contracted: bool | None = None,
    ) -> None:
        """``contracted``: whether the schema's contract phase is done (read on first use
        when not given: making a store touches no database)."""
        self.engine = engine
        self.network = network
        self.pool = AddressPool.from_settings(network)
        self.mac_prefix = network.mac_prefix
        self.bridge = bridge  # its device prefix; its name for the expanded schema's rows
        self._phase = None if contracted is None else _LAYOUTS[contracted]
        self._mac_space = 1 << suffix_bits(network.mac_prefix)
        # Subnets whose stripes have no fresh address left (they never get one back
        # under this configuration): allocations start at the next subnet.
        self._full_subnets: set[str] = set()
        # The allocator rows counting MACs: the subnets', or on an IPv6-only pool the
        # first prefix's (its address index unused).
        self._mac_rows = [str(space.subnet) for space in self.pool.spaces] or [
            str(network.ipv6_prefixes[0])
        ]
        self._warned: set[str] = set()  # invalid rows already logged

    # --- operations --------------------------------------------------------

    @metrics.port_operation("allocate")
    def allocate(self, instance_uuid: str, host: str) -> Port:
        """The instance's port, created on first call (idempotent)."""
        uuid = canonical_uuid(instance_uuid)
        check_host(host)
        return self._write(lambda conn: self._allocate(conn, uuid, host))

    def address_numbers(self) -> builtins.list[int]:
        """Every port's IPv4 address as a number, sorted: what counting by range needs
        (``store.usage``). The one column read; a row whose text is no address is left out."""
        return sorted(self._transaction(self._address_numbers))

    def get(self, instance_uuid: str) -> Port | None:
        uuid = canonical_uuid(instance_uuid)
        return self._transaction(lambda conn: self._get(conn, uuid))

    # Below this method, annotations in the class say builtins.list: `list` names it.
    def list(self, host: str | None = None) -> list[Port]:
        """Ports (of ``host``), by address."""

        def work(conn: Connection) -> builtins.list[Port]:
            table = self._layout.ports
            query = select(table) if host is None else select(table).where(table.c.host == host)
            return self._valid_ports(conn.execute(query))

        # Sorted here: text addresses do not sort as numbers do. Ports without IPv4
        # (an IPv6-only pool) come last, by MAC: the order of their EUI-64 addresses.
        return sorted(self._transaction(work), key=_by_address)

    @metrics.port_operation("release")
    def release(self, instance_uuid: str) -> Port | None:
        """Free the instance's address and MAC; None when it had no port."""
        uuid = canonical_uuid(instance_uuid)
        return self._write(lambda conn: self._release(conn, uuid))

    def move(self, instance_uuid: str, new_host: str) -> Port:
        """Record that the instance now runs on ``new_host``; MAC and address stay."""
        uuid = canonical_uuid(instance_uuid)
        check_host(new_host)
        return self._write(lambda conn: self._move(conn, uuid, new_host))

    def gc(
        self, host: str, live_instance_uuids: Iterable[str], grace_seconds: float
    ) -> builtins.list[Port]:
        """Release ports of ``host`` whose instance is not live and older than the grace."""
        live = {canonical_uuid(u) for u in live_instance_uuids}
        cutoff = _utcnow() - timedelta(seconds=grace_seconds)
        candidates = [
            p
            for p in self.list(host)
            if p.instance_uuid not in live and p.created_at is not None and p.created_at <= cutoff
        ]
        released = [self.release(p.instance_uuid) for p in candidates]
        return [p for p in released if p is not None]

    def snapshot(self) -> Changes:
        """Every live port, and the cursor to follow the change log from."""
        return self._transaction(self._snapshot)

    def changes_since(self, cursor: int) -> Changes:
        """Ports upserted and released after ``cursor`` (from ``snapshot`` or a previous call)."""
        return self._transaction(lambda conn: self._changes_since(conn, cursor))

    def prune_events(self, older_than_seconds: float) -> int:
        """Delete change-log events older than that; returns how many.

        The newest event always stays, so event ids never go back (SQLite
        would otherwise reuse them once the table is empty). A follower that
        fell further behind than this resyncs from ``snapshot``.
        """
        cutoff = _utcnow() - timedelta(seconds=older_than_seconds)
        return self._transaction(lambda conn: self._prune_events(conn, cutoff))

    # --- transactions ------------------------------------------------------

    @property
    def _layout(self) -> _Layout:
        assert self._phase is not None, "read in _transaction, before any statement"
        return self._phase

    def _transaction(
        self, work: Callable[[Connection], T], after_commit: AfterCommit | None = None
    ) -> T:
        if self._phase is None:
            self._phase = _LAYOUTS[phases.schema_state(self.engine).contracted]
        try:
            return run_transaction(self.engine, work, after_commit)
        except (StoreError, DBAPIError):
            # Contracted since this store was opened (a long-running process):
            # the old columns are gone. Once more with the new columns only.
            if self._layout.contracted or not self._contracted_meanwhile():
                raise
            self._phase = _LAYOUTS[True]
            return run_transaction(self.engine, work, after_commit)

    def _write(self, work: Callable[[Connection], T]) -> T:
        """``work``, which may change ports, in a transaction; then listeners told."""
        return self._transaction(work, after_commit=announce_change)

    def _contracted_meanwhile(self) -> bool:
        try:
            return phases.schema_state(self.engine).contracted
        except (StoreError, DBAPIError):
            return False  # the store's own failure is the one to report

    def _get(self, conn: Connection, uuid: str, anywhere: bool = False) -> Port | None:
        row = conn.execute(self._layout.select_port, {"uuid": uuid}).first()
        return None if row is None else self._stored_port(row, anywhere)

    def _stored_port(self, row: Row[Any], anywhere: bool = False) -> Port:
        """The row's Port; StoreError when it is invalid."""
        try:
            return self._port(row, anywhere)
        except IdentityError as exc:
            raise StoreError(f"the port store's {_row_label(row)} is invalid: {exc}") from None

    def _port(self, row: Row[Any], anywhere: bool = False) -> Port:
        """A Port from a row of ``ports`` or ``port_events``, every value checked.

        Rows come from a database that every host with its credentials can
        write, and their values end up in file names, dnsmasq's reservations
        and interface names: nothing is used unchecked. Raises IdentityError.
        ``anywhere``: the address may lie outside the pool (a port to release
        after its subnet left the pool).
        """
        address = _stored_address(row)
        if address is not None and not anywhere and not self.pool.is_host(address):
            raise IdentityError(f"address {address} is not a host address of the {self.pool}")
        return Port(
            instance_uuid=check_stored_uuid(row.instance_uuid),
            mac=check_stored_mac(row.mac),
            address=address,
            device=check_device(row.device),
            host=check_host(row.host),
            created_at=getattr(row, "created_at", None),
        )

    def _valid_ports(self, rows: Iterable[Row[Any]]) -> builtins.list[Port]:
        """The rows as Ports; an invalid row is skipped and logged (once per row)."""
        valid = []
        for row in rows:
            try:
                valid.append(self._port(row))
            except IdentityError as exc:
                label = _row_label(row)
                if label not in self._warned:
                    self._warned.add(label)
                    LOG.warning("skipping the port store's %s: %s", label, exc)
        return valid

    def _allocate(self, conn: Connection, uuid: str, host: str) -> Port:
        # The instance's port, and whether its own device name is taken, in one query.
        # (The unique index on ports.device refuses a name another allocation takes
        # meanwhile, and the retry picks the next.)
        device = device_name(self.bridge.device_prefix, uuid)
        held = {"uuid": uuid, "device": device}
        rows = conn.execute(self._layout.port_or_device_holder, held).all()
        existing = next((row for row in rows if row.instance_uuid == uuid), None)
        if existing is not None:
            return self._stored_port(existing)
        if rows:
            device = self._free_device(conn, uuid)
        if self.pool.spaces:
            address, mac = self._take_address_and_mac(conn)
        else:  # an IPv6-only pool: no IPv4 address, the MAC gives the port its IPv6 one
            address, mac = None, self._mac_elsewhere(conn)
        now = _utcnow()
        port = Port(
            instance_uuid=uuid,
            mac=mac,
            address=address,
            device=device,
            host=host,
            created_at=now,
        )
        conn.execute(
            self._layout.insert_port, {**self._row(port), "created_at": now, "updated_at": now}
        )
        self._log(conn, "upsert", port)
        metrics.port_allocated()  # after the last statement: a retry comes before it
        return port

    def _free_device(self, conn: Connection, uuid: str) -> str:
        """The instance's device name, or its first alternative no other port holds.

        Two UUIDs may share their leading digits (UUIDv7s made seconds apart
        do); the unique index on ports.device refuses what this misses.
        """
        names = device_names(self.bridge.device_prefix, uuid)
        for name in itertools.islice(names, DEVICE_NAME_TRIES):
            if not _in_use(conn, _DEVICE_IN_USE, device=name):
                return name
        raise StoreError(f"the first {DEVICE_NAME_TRIES} device names of {uuid} are all taken")

    def _take_address_and_mac(self, conn: Connection) -> tuple[ipaddress.IPv4Address, str]:
        """A fresh address and MAC of one locked stripe, else of another; the oldest
        released ones once no stripe has a fresh one left."""
        stripe = self._lock_for_address(conn)
        if stripe is None:  # the pool has no fresh address left
            reused = self._reused_address(conn)
            return reused, self._mac_elsewhere(conn)
        address, mac = self._fresh_pair(conn, stripe, want_mac=True)
        if address is None:  # the stripe's last ones were in use
            address = self._address_elsewhere(conn)
        return address, mac if mac is not None else self._mac_elsewhere(conn)

    def _lock_for_address(self, conn: Connection) -> stripes.Counters | None:
        return self._layout.allocator.lock_for_address(conn, self.pool, self._full_subnets)

    def _lock_for_mac(self, conn: Connection) -> stripes.Counters | None:
        return self._layout.allocator.lock_for_mac(conn, self._mac_rows, self._mac_space)

    def _fresh_pair(
        self, conn: Connection, stripe: stripes.Counters, want_mac: bool
    ) -> tuple[ipaddress.IPv4Address | None, str | None]:
        """The stripe's next address and MAC no port holds (None: it has none left);
        the stripe's row written back.

        A fresh value is in use only if the reserved ranges or the MAC prefix
        changed since it was handed out, or the previous release's counter took it
        (it is skipped); it is in a free list only if it was released under other
        ones (it leaves the list). Both are looked up in one query.
        """
        address = stripe.take_address()
        mac = self._fresh_mac(stripe) if want_mac else None
        while address is not None or mac is not None:
            found = conn.execute(
                self._layout.where_candidates_are, self._candidates(address, mac)
            ).one()
            if not (found.address_in_use or found.mac_in_use):
                self._unfree(conn, address if found.address_released else None,
                             mac if found.mac_released else None)  # fmt: skip
                break
            if found.address_in_use:
                address = stripe.take_address()
            if found.mac_in_use:
                mac = self._fresh_mac(stripe)
        stripe.save(conn)
        return address, mac

    def _fresh_mac(self, stripe: stripes.Counters) -> str | None:
        suffix = stripe.take_mac_suffix(self._mac_space)
        return None if suffix is None else mac_from_suffix(self.mac_prefix, suffix)

    def _candidates(self, address: ipaddress.IPv4Address | None, mac: str | None) -> dict[str, Any]:
        if address is None:
            return {"address": None, "address_number": None, "mac": mac}
        taken = str(address) if self._layout.contracted else int(address)
        return {"address": taken, "address_number": int(address), "mac": mac}

    def _unfree(
        self, conn: Connection, address: ipaddress.IPv4Address | None, mac: str | None
    ) -> None:
        """Take fresh values out of the free lists they were left in (released under
        other reserved ranges or another prefix): not free any more."""
        if address is not None:
            conn.execute(_UNFREE_ADDRESS, {"address": int(address)})
        if mac is not None:
            conn.execute(_UNFREE_MAC, {"mac": mac})

    def _address_elsewhere(self, conn: Connection) -> ipaddress.IPv4Address:
        """A fresh address of another stripe, else the oldest released one."""
        while (stripe := self._lock_for_address(conn)) is not None:
            address, _ = self._fresh_pair(conn, stripe, want_mac=False)
            if address is not None:
                return address
        return self._reused_address(conn)

    def _mac_elsewhere(self, conn: Connection) -> str:
        """A fresh MAC of another stripe, else the oldest released one."""
        while (stripe := self._lock_for_mac(conn)) is not None:
            _, mac = self._fresh_pair(conn, stripe, want_mac=True)
            if mac is not None:
                return mac
        return self._reused_mac(conn)

    def _reused_address(self, conn: Connection) -> ipaddress.IPv4Address:
        """The oldest released address still allocatable and unused."""
        while True:
            row = stripes.first_unlocked(conn, _OLDEST_FREE_ADDRESS, {})
            if row is None:
                raise SubnetExhausted(
                    f"{self.pool} is full: all {self.pool.size} allocatable addresses are in use"
                )
            conn.execute(_UNFREE_ADDRESS, {"address": row.address})
            address = ipaddress.IPv4Address(row.address)
            if self.pool.is_allocatable(address) and not self._address_in_use(conn, address):
                return address

    def _reused_mac(self, conn: Connection) -> str:
        """The oldest released MAC still under the prefix and unused."""
        prefix = self.mac_prefix
        while True:
            row = stripes.first_unlocked(conn, _OLDEST_FREE_MAC, {})
            if row is None:
                raise StoreError(f"every MAC address under {prefix} is in use")
            conn.execute(_UNFREE_MAC, {"mac": row.mac})
            if row.mac.startswith(prefix) and not _in_use(conn, _MAC_IN_USE, mac=row.mac):
                return str(row.mac)

    def _release(self, conn: Connection, uuid: str) -> Port | None:
        port = self._get(conn, uuid, anywhere=True)
        if port is None:
            return None
        if not conn.execute(delete(ports).where(ports.c.instance_uuid == uuid)).rowcount:
            return None  # a concurrent release of the same instance won
        # Delete, then insert: a value is never twice in a free list, whatever
        # was released before under other reserved ranges or another prefix.
        now = _utcnow()
        if port.address is not None:
            conn.execute(_UNFREE_ADDRESS, {"address": int(port.address)})
            conn.execute(insert(free_addresses).values(address=int(port.address), released_at=now))
        conn.execute(_UNFREE_MAC, {"mac": port.mac})
        conn.execute(insert(free_macs).values(mac=port.mac, released_at=now))
        self._log(conn, "release", port)
        return port

    def _move(self, conn: Connection, uuid: str, new_host: str) -> Port:
        port = self._get(conn, uuid)
        if port is None:
            raise StoreError(f"instance {uuid} has no port to move")
        if port.host != new_host:
            conn.execute(
                update(ports)
                .where(ports.c.instance_uuid == uuid)
                .values(host=new_host, updated_at=_utcnow())
            )
            port = self._get(conn, uuid)
            assert port is not None
            self._log(conn, "upsert", port)
        return port

    def _snapshot(self, conn: Connection) -> Changes:
        newest = conn.execute(_NEWEST_EVENT).scalar() or 0
        live = self._valid_ports(conn.execute(select(self._layout.ports)))
        return Changes(cursor=newest, upserted=live, released=[])

    def _changes_since(self, conn: Connection, cursor: int) -> Changes:
        newest = max(cursor, conn.execute(_NEWEST_EVENT).scalar() or 0)
        events = self._layout.events
        rows = conn.execute(
            select(events)
            .where(events.c.id > max(cursor - EVENT_LOOKBACK, 0))
            .order_by(events.c.id)
        )
        last: dict[str, Row[Any]] = {}
        for row in rows:
            last[row.instance_uuid] = row  # the newest event per instance wins
        upserted = self._valid_ports(r for r in last.values() if r.kind == "upsert")
        released = self._valid_ports(r for r in last.values() if r.kind == "release")
        return Changes(cursor=newest, upserted=upserted, released=released)

    def _prune_events(self, conn: Connection, cutoff: datetime) -> int:
        newest = conn.execute(_NEWEST_EVENT).scalar() or 0
        old = delete(port_events).where(
            port_events.c.created_at < cutoff, port_events.c.id < newest
        )
        return int(conn.execute(old).rowcount)

    # --- columns -----------------------------------------------------------

    def _address_numbers(self, conn: Connection) -> builtins.list[int]:
        table = self._layout.ports
        columns = [table.c.ip_address] + ([] if self._layout.contracted else [table.c.address])
        found: builtins.list[int] = []
        for row in conn.execute(select(*columns)):
            if row[0] is None:  # the previous release's row while expanded, or no IPv4
                found.extend(int(legacy) for legacy in row[1:] if legacy is not None)
                continue
            try:  # inet_pton: a tenth of IPv4Address's cost, for a scrape of every port
                found.append(int.from_bytes(socket.inet_pton(socket.AF_INET, row[0]), "big"))
            except OSError:
                continue  # not IPv4: list() logs it
        return found

    def _address_in_use(self, conn: Connection, address: ipaddress.IPv4Address) -> bool:
        value = str(address) if self._layout.contracted else int(address)
        return _in_use(conn, self._layout.address_in_use, address=value)

    def _row(self, port: Port) -> dict[str, object]:
        """The columns a port is written to (ports and port_events alike)."""
        slaac = ipv6.stored_address(port.mac, self.network.ipv6_prefixes)
        row: dict[str, object] = {
            "instance_uuid": port.instance_uuid,
            "mac": port.mac,
            "ip_address": None if port.address is None else str(port.address),
            "ipv6_address": None if slaac is None else str(slaac),
            "device": port.device,
            "host": port.host,
        }
        if not self._layout.contracted:
            # The previous release's columns, for hosts still running it (it
            # reads only these, and checks the bridge is an interface name).
            # Every port has an IPv4 address then: open_store refuses an IPv6-only pool.
            assert port.address is not None, "an IPv6-only pool needs the contracted schema"
            row.update(address=int(port.address), bridge=self.bridge.name)
        return row

    def _log(self, conn: Connection, kind: str, port: Port) -> None:
        """Record the change for the DHCP side (told of it once committed: ``_write``)."""
        conn.execute(
            self._layout.insert_event, {"kind": kind, "created_at": _utcnow(), **self._row(port)}
        )


def open_store(settings: Settings, hold_connection: bool = False) -> PortStore:
    """The store of ``settings.store.database`` for the network's pool, its schema created or
    upgraded if needed.

    Refused (ConfigError) while a subnet that left the pool still holds ports.

    ``hold_connection``: keep a connection to a database server between
    operations, for a process that polls the store (see ``make_engine``).

    Applies the schema's expand phase when missing, never its contract
    (store/phases.py), and records that this host runs this release.
    """
    store_settings = settings.store
    engine = make_engine(store_settings.database, hold_connection, PoolOptions.of(store_settings))
    state = phases.schema_state(engine)
    if not state.expanded:
        state = phases.expand(engine)
    phases.record_host(engine, store_settings.host)
    store = PortStore(engine, settings.network, settings.bridge, contracted=state.contracted)
    try:
        ipv6_only.refuse_while_expanded(store, state.contracted)
        refuse_removed_subnets(store)
    except Exception:
        engine.dispose()
        raise
    return store


def _in_use(conn: Connection, query: object, **params: object) -> bool:
    return conn.execute(query, params).first() is not None  # type: ignore[call-overload]


def _stored_address(row: Row[Any]) -> ipaddress.IPv4Address | None:
    """The row's address: its canonical text, or the integer the previous release
    alone writes (NULL text) while the schema is expanded; None for a port without
    IPv4 (an IPv6-only pool). Raises IdentityError."""
    stored = row.ip_address if row.ip_address is not None else getattr(row, "address", None)
    if stored is None:
        return None
    try:
        address = ipaddress.IPv4Address(stored)
    except ValueError:
        raise IdentityError(f"address {shown(stored)} is not an IPv4 address") from None
    if isinstance(stored, str) and str(address) != stored:  # the unique index needs one spelling
        raise IdentityError(f"address {shown(stored)} is not written canonically")
    return address


def _by_address(port: Port) -> tuple[int, int]:
    """Ports by IPv4 address; those without one after them, by MAC."""
    if port.address is None:
        return (1, int(port.mac.replace(":", ""), 16))
    return (0, int(port.address))


def _row_label(row: Row[Any]) -> str:
    """Which row, for messages: its table, id and instance (an event row has a kind)."""
    table = "port_events" if "kind" in row._fields else "ports"
    return f"{table} row {row.id} (instance {shown(row.instance_uuid)})"


def _utcnow() -> datetime:
    """Naive UTC, as stored in the DateTime columns on every backend."""
    return datetime.now(UTC).replace(tzinfo=None)
