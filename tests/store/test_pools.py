"""Pools of several subnets on SQLite, PostgreSQL and MariaDB: filled in order, grown by
a configuration change, a subnet holding ports never silently dropped."""

import ipaddress
import json
import multiprocessing
import uuid
from collections import Counter

import pytest

from cachenet.errors import ConfigError, SubnetExhausted
from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.usage import SubnetUsage, pool_usage
from harness.cli import run_cachenet

FIRST, SECOND = "10.30.0.0/29", "10.31.0.0/30"  # 5 and 2 allocatable (10.30.0.1 reserved)


def new_uuid():
    return str(uuid.uuid4())


def pool_store(db_url, subnet=f"{FIRST},{SECOND}", **overrides):
    overrides.setdefault("reserved", ["10.30.0.1"])
    return open_store(make_settings(database=db_url, subnet=subnet, **overrides))


def test_the_first_subnet_fills_then_the_second_then_the_pool_is_full(db_url):
    store = pool_store(db_url)
    ports = [store.allocate(new_uuid(), "h") for _ in range(7)]
    assert [str(p.address) for p in ports] == [
        "10.30.0.2", "10.30.0.3", "10.30.0.4", "10.30.0.5", "10.30.0.6",
        "10.31.0.1", "10.31.0.2",
    ]  # fmt: skip
    assert len({p.mac for p in ports}) == 7 and len({p.device for p in ports}) == 7
    with pytest.raises(SubnetExhausted, match=r"pool 10\.30\.0\.0/29, 10\.31\.0\.0/30 is full"):
        store.allocate(new_uuid(), "h")
    # Released addresses come back once no fresh one is left, whichever subnet they are in.
    store.release(ports[5].instance_uuid)
    assert store.allocate(new_uuid(), "h").address == ports[5].address
    assert pool_usage(store) == [
        SubnetUsage(ipaddress.IPv4Network(FIRST), size=5, used=5, free=0),
        SubnetUsage(ipaddress.IPv4Network(SECOND), size=2, used=2, free=0),
    ]


def test_adding_a_subnet_keeps_every_port_and_extends_the_pool(db_url):
    before = pool_store(db_url, subnet=FIRST)
    ports = [before.allocate(new_uuid(), "h") for _ in range(5)]
    with pytest.raises(SubnetExhausted, match=r"subnet 10\.30\.0\.0/29 is full"):
        before.allocate(new_uuid(), "h")
    before.engine.dispose()

    after = pool_store(db_url)  # the configuration change and restart
    assert [after.get(p.instance_uuid) for p in ports] == ports
    assert sorted(after.list(), key=lambda p: p.address) == ports
    grown = after.allocate(new_uuid(), "h")
    assert str(grown.address) == "10.31.0.1"
    assert grown.mac not in {p.mac for p in ports}


def test_hosts_on_the_old_and_the_new_pool_share_one_store(db_url):
    # During the rolling restart, some hosts still allocate from the first subnet only.
    old, new = pool_store(db_url, subnet=FIRST), pool_store(db_url)
    ports = [(old if i % 2 else new).allocate(new_uuid(), "h") for i in range(5)]
    ports.append(new.allocate(new_uuid(), "h"))
    with pytest.raises(SubnetExhausted):
        old.allocate(new_uuid(), "h")
    assert str(ports[-1].address) == "10.31.0.1"
    assert len({p.address for p in ports}) == len({p.mac for p in ports}) == 6


CROSSING_POOL = "10.40.0.0/25,10.41.0.0/25"  # 126 + 126 addresses for 6 x 40 allocations


def allocate_across_the_pool(db_url):
    store = open_store(make_settings(database=db_url, subnet=CROSSING_POOL))
    ports = [store.allocate(new_uuid(), "h") for _ in range(40)]
    store.engine.dispose()
    return [(p.mac, str(p.address)) for p in ports]


def test_concurrent_allocators_cross_into_the_second_subnet_without_a_duplicate(db_url):
    # They meet the second subnet's allocator row missing, and race to create it.
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        ports = [p for part in pool.map(allocate_across_the_pool, [db_url] * 6) for p in part]
    assert Counter(mac for mac, _ in ports).most_common(1)[0][1] == 1
    assert Counter(address for _, address in ports).most_common(1)[0][1] == 1
    by_subnet = Counter(address.rsplit(".", 2)[0] for _, address in ports)
    assert by_subnet == {"10.40": 126, "10.41": 240 - 126}


def test_removing_a_subnet_that_holds_ports_is_refused_with_the_count(db_url):
    store = pool_store(db_url)
    ports = [store.allocate(new_uuid(), "h") for _ in range(7)]
    with pytest.raises(ConfigError) as refused:
        pool_store(db_url, subnet=FIRST)
    assert refused.value.problems == [
        "subnet 10.31.0.0/30 still holds 2 ports but is no longer in the pool "
        "(10.30.0.0/29): keep it in subnet until its ports are released"
    ]
    for port in ports[5:]:
        store.release(port.instance_uuid)
    smaller = pool_store(db_url, subnet=FIRST)  # empty now: it may go
    assert len(smaller.list()) == 5
    # A subnet swapped for a larger one that holds it is no removal.
    assert len(pool_store(db_url, subnet="10.30.0.0/24", reserved=[]).list()) == 5


def test_usage_counts_a_port_on_an_address_reserved_later_as_used_not_as_free(db_url):
    store = pool_store(db_url)
    ports = [store.allocate(new_uuid(), "h") for _ in range(3)]
    assert str(ports[2].address) == "10.30.0.4"
    later = pool_store(db_url, reserved=["10.30.0.1", "10.30.0.4"])
    assert pool_usage(later)[0] == SubnetUsage(ipaddress.IPv4Network(FIRST), 4, 3, 2)
    assert later.allocate(new_uuid(), "h").address not in {p.address for p in ports}


def test_pool_show_and_a_refused_removal_from_the_command_line(tmp_path):
    conf = tmp_path / "cachenet.conf"
    database = f"sqlite:///{tmp_path}/ports.sqlite"

    def configure(subnet):
        conf.write_text(f"[cachenet]\nsubnet = {subnet}\nreserved = 10.30.0.1\n"
                        f"database = {database}\n")  # fmt: skip

    configure(f"{FIRST}, {SECOND}")
    for _ in range(6):
        assert run_cachenet(conf, "ports", "allocate", new_uuid()).returncode == 0
    shown = json.loads(run_cachenet(conf, "pool", "show", "--json").stdout)
    assert shown == {
        "subnets": [
            {"subnet": FIRST, "size": 5, "used": 5, "free": 0},
            {"subnet": SECOND, "size": 2, "used": 1, "free": 1},
        ],
        "total": {"size": 7, "used": 6, "free": 1},
    }
    table = run_cachenet(conf, "pool", "show").stdout
    assert "10.31.0.0/30" in table and "total" in table

    configure(FIRST)
    refused = run_cachenet(conf, "ports", "list")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "subnet 10.31.0.0/30 still holds 1 port but is no longer in the pool" in refused.stderr
