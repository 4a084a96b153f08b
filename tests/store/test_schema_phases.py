"""Expand, then contract: the previous release (main at harness.previous_release.PREVIOUS)
and this one share a database while hosts are upgraded one at a time.

The previous release runs as its own ``cachenet`` processes with its own
configuration; this one in the test's process (and as processes for its CLI).
"""

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, inspect, select, text

from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.phases import (
    EXPAND_REVISION,
    EXPANDED_REVISION,
    SCHEMA_REVISION,
    read_state,
)
from cachenet.store.schema import ports
from harness.cli import run_cachenet
from harness.previous_release import extract_previous_release
from harness.vendordata_service import write_config

SUBNET = "10.60.0.0/27"  # 30 addresses: the side-by-side test reuses released ones
IDENTITY = ("instance_uuid", "mac", "address", "device", "host", "created_at")
CONTRACTED = "applied the contract phase; the port store schema is up to date\n"


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    return extract_previous_release(tmp_path_factory.mktemp("previous"))


class Lab:
    """Hosts of either release on one database, each with its own configuration."""

    def __init__(self, tmp_path, db_url, previous):
        self.tmp_path, self.db_url, self.previous = tmp_path, db_url, previous
        self.stores = []
        self._configs = {}
        self._configs_lock = threading.Lock()

    def conf(self, host):
        """``host``'s configuration file, written once: processes of that host start
        from several threads at once."""
        with self._configs_lock:
            if host not in self._configs:
                state = self.tmp_path / host
                state.mkdir(exist_ok=True)
                self._configs[host] = write_config(
                    state / "cachenet.conf", self.db_url, subnet=SUBNET, host=host,
                    dhcp_state_dir=str(state / "dhcp"))  # fmt: skip
            return self._configs[host]

    def old(self, host, *args):
        """``cachenet ARGS`` of the previous release on ``host``; its JSON answer."""
        return answer(run_cachenet(self.conf(host), *args, source=self.previous))

    def new(self, host, *args):
        return run_cachenet(self.conf(host), *args)

    def store(self, host):
        store = open_store(make_settings(database=self.db_url, subnet=SUBNET, host=host))
        self.stores.append(store)
        return store

    def versions(self):
        """(alembic_version, the expand chain's version)."""
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                state = read_state(conn)
                return state.main, state.expand
        finally:
            engine.dispose()

    def columns(self, table):
        engine = create_engine(self.db_url)
        try:
            return {c["name"] for c in inspect(engine).get_columns(table)}
        finally:
            engine.dispose()

    def reservations(self, host):
        """The dhcp-hostsdir files ``dhcp sync --once`` wrote on ``host``: name -> line."""
        hosts_dir = self.tmp_path / host / "dhcp" / "hosts"
        return {f.name: f.read_text() for f in hosts_dir.iterdir()}


def answer(done):
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return json.loads(done.stdout) if done.stdout.startswith(("{", "[")) else done.stdout


def seen(port):
    """What a port is, as either release shows it (the previous one adds its bridge)."""
    return tuple(port[name] for name in IDENTITY)


@pytest.fixture
def lab(tmp_path, db_url, previous):
    lab = Lab(tmp_path, db_url, previous)
    yield lab
    for store in lab.stores:
        store.engine.dispose()


def test_the_upgrade_keeps_every_port_the_previous_release_created(lab):
    instances = [str(uuid.uuid4()) for _ in range(24)]
    with ThreadPoolExecutor(4) as pool:  # two hosts allocating at once
        list(pool.map(lambda n: lab.old(f"old-{n % 2 + 1}", "ports", "allocate", instances[n],
                                        "--json"), range(len(instances))))  # fmt: skip
    lab.old("old-1", "ports", "move", instances[0], "old-2", "--json")
    for instance in instances[-4:]:
        lab.old("old-1", "ports", "release", instance, "--json")
    before = [seen(p) for p in lab.old("old-1", "ports", "list", "--json")]
    assert len(before) == 20 and lab.versions() == (EXPANDED_REVISION, None)

    store = lab.store("new-1")  # expands
    assert lab.versions() == (EXPANDED_REVISION, EXPAND_REVISION)
    assert [seen(p.as_dict()) for p in store.list()] == before
    assert {p.instance_uuid for p in store.changes_since(0).released} == set(instances[-4:])

    done = lab.new("new-1", "db", "upgrade", "--upgraded-host", "old-1", "--upgraded-host", "old-2")
    assert (done.returncode, done.stdout) == (0, CONTRACTED), done.stderr
    assert lab.versions() == (SCHEMA_REVISION, EXPAND_REVISION)
    for table in ("ports", "port_events"):
        assert {"address", "bridge"}.isdisjoint(lab.columns(table))
    assert [seen(p.as_dict()) for p in lab.store("new-2").list()] == before
    assert [seen(p.as_dict()) for p in store.list()] == before  # opened before the contract
    assert {p.instance_uuid for p in store.changes_since(0).released} == set(instances[-4:])


def test_both_releases_allocate_and_release_side_by_side_without_a_duplicate(lab):
    """Each cycle allocates two ports and releases the first: 32 allocations from a
    30-address subnet, so released addresses are handed out again, by either release."""
    lab.old("old-1", "db", "upgrade")  # the previous release's schema (0002)
    store = lab.store("new-1")  # expands

    def old_cycle(_):
        first, second = (lab.old("old-1", "ports", "allocate", str(uuid.uuid4()), "--json")
                         for _ in range(2))  # fmt: skip
        lab.old("old-1", "ports", "release", first["instance_uuid"], "--json")
        return [first, second]

    def new_cycle(_):
        first, second = (store.allocate(str(uuid.uuid4()), "new-1").as_dict() for _ in range(2))
        store.release(first["instance_uuid"])
        return [first, second]

    with ThreadPoolExecutor(5) as pool:  # three previous-release processes, two threads
        old_runs = pool.map(old_cycle, range(8))
        new_runs = pool.map(new_cycle, range(8))
        cycles = [*old_runs, *new_runs]
    assert lab.versions() == (EXPANDED_REVISION, EXPAND_REVISION)

    live = sorted(seen(second) for _first, second in cycles)
    addresses = [port[2] for port in live]
    assert len(set(addresses)) == len(addresses) == 16
    handed_out = {first["address"] for first, _ in cycles} | set(addresses)
    assert len(handed_out) == 30  # every address used, released ones again
    by_address = sorted(live, key=lambda port: tuple(int(o) for o in port[2].split(".")))
    assert [seen(p) for p in lab.old("old-1", "ports", "list", "--json")] == by_address
    assert [seen(p.as_dict()) for p in store.list()] == by_address
    old_port, new_port = cycles[0][1], cycles[-1][1]
    assert seen(lab.old("old-1", "ports", "show", new_port["instance_uuid"], "--json")) == seen(
        new_port
    )
    assert seen(store.get(old_port["instance_uuid"]).as_dict()) == seen(old_port)

    # What `dhcp serve` reads, through `dhcp sync --once` of either release.
    lab.old("dhcp-old", "dhcp", "sync", "--once")
    assert answer(lab.new("dhcp-new", "dhcp", "sync", "--once")).startswith("16 reservations")
    expected = {f"{port[0]}.conf": f"{port[1]},{port[2]},{port[3]}\n" for port in live}
    assert lab.reservations("dhcp-old") == lab.reservations("dhcp-new") == expected


def test_the_contract_waits_for_hosts_of_the_previous_release_which_then_refuses(lab):
    for host in ("old-1", "old-2", "old-3"):
        lab.old(host, "ports", "allocate", str(uuid.uuid4()), "--json")
    store = lab.store("new-1")  # expands
    store.allocate(str(uuid.uuid4()), "new-1")

    refused = lab.new("new-1", "db", "upgrade")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "contract phase waits for 3 hosts" in refused.stderr
    assert ": old-1, old-2, old-3 (" in refused.stderr
    assert lab.versions() == (EXPANDED_REVISION, EXPAND_REVISION)

    answer(lab.new("old-1", "ports", "list", "--json"))  # old-1 now runs this release
    refused = lab.new("new-1", "db", "upgrade", "--upgraded-host", "old-3")  # old-3 is gone
    assert refused.returncode == 2 and ": old-2 (" in refused.stderr, refused.stderr
    # Refused for old-2 alone: old-3's mark stays, the next run need not repeat it.
    refused = lab.new("new-1", "db", "upgrade")
    assert refused.returncode == 2 and "waits for 1 host still seen" in refused.stderr
    assert ": old-2 (" in refused.stderr, refused.stderr
    assert lab.versions() == (EXPANDED_REVISION, EXPAND_REVISION)

    done = lab.new("new-1", "db", "upgrade", "--upgraded-host", "old-2")  # old-2 is gone
    assert (done.returncode, done.stdout) == (0, CONTRACTED), done.stderr
    assert lab.versions() == (SCHEMA_REVISION, EXPAND_REVISION)
    again = lab.new("new-1", "db", "upgrade")
    assert again.stdout == "nothing to do: the port store schema is up to date\n"

    # This release works on, the store opened before the contract too.
    added = store.allocate(str(uuid.uuid4()), "new-1")
    listed = store.list()
    assert len(listed) == 5 and added in listed
    assert len({p.address for p in listed}) == 5
    assert answer(lab.new("new-2", "ports", "list", "--json")) == [p.as_dict() for p in listed]
    for port in listed:
        assert store.release(port.instance_uuid) == port
    # The previous release refuses the contracted database.
    old = run_cachenet(lab.conf("old-1"), "ports", "list", source=lab.previous)
    assert old.returncode != 0 and SCHEMA_REVISION in old.stderr


def test_addresses_are_stored_as_canonical_text_with_the_slaac_address_beside(lab):
    store = open_store(make_settings(database=lab.db_url, subnet=f"{SUBNET}, fd00:99::/64"))
    lab.stores.append(store)
    port = store.allocate(str(uuid.uuid4()), "new-1")
    assert port.mac == "fa:17:3e:00:00:00"
    with store.engine.connect() as conn:
        row = conn.execute(select(ports).where(ports.c.instance_uuid == port.instance_uuid)).one()
    # Modified EUI-64 of fa:17:3e:00:00:00 (U/L bit flipped, ff:fe in the middle).
    assert (row.ip_address, row.ipv6_address) == ("10.60.0.1", "fd00:99::f817:3eff:fe00:0")


@pytest.mark.parametrize("db_url", ["postgresql", "mariadb"], indirect=True)
def test_a_contract_that_stopped_half_way_is_completed(lab):
    """MariaDB commits each ALTER at once: a contract killed after dropping ``address``
    left ``bridge`` behind (made by hand here, on PostgreSQL too). The next upgrade
    completes it, and this release allocates on the result."""
    lab.old("old-1", "ports", "allocate", str(uuid.uuid4()), "--json")
    store = lab.store("new-1")  # expands
    kept = store.allocate(str(uuid.uuid4()), "new-1")
    engine = create_engine(lab.db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE ports SET ip_address = '10.60.0.1' WHERE ip_address IS NULL"))
            conn.execute(
                text("UPDATE port_events SET ip_address = '10.60.0.1' WHERE ip_address IS NULL")
            )
            for table in ("ports", "port_events"):
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN address"))
    finally:
        engine.dispose()
    assert "bridge" in lab.columns("ports")

    done = lab.new("new-1", "db", "upgrade", "--upgraded-host", "old-1")
    assert (done.returncode, done.stdout) == (0, CONTRACTED), done.stderr
    for table in ("ports", "port_events"):
        assert {"address", "bridge"}.isdisjoint(lab.columns(table))
    added = lab.store("new-2").allocate(str(uuid.uuid4()), "new-2")
    listed = answer(lab.new("new-2", "ports", "list", "--json"))
    assert {p["address"] for p in listed} == {"10.60.0.1", str(kept.address), str(added.address)}
