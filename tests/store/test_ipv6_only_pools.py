"""IPv6-only pools on SQLite, PostgreSQL and MariaDB: a port is a MAC and a device, its
address the EUI-64 of the MAC; the pool's families change without leaving a port addressless."""

import ipaddress
import multiprocessing
import uuid
from collections import Counter

import pytest
from sqlalchemy import select

from cachenet.errors import ConfigError
from cachenet.ipv6 import eui64_address
from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.schema import ports
from cachenet.store.usage import SubnetUsage, pool_usage

PREFIX, OTHER_PREFIX = "fd00:99::/64", "2001:db8:99::/64"
IPV6_ONLY = f"{PREFIX}, {OTHER_PREFIX}"
IPV4 = "10.50.0.0/24"


def new_uuid():
    return str(uuid.uuid4())


def v6_store(db_url, subnet=IPV6_ONLY):
    return open_store(make_settings(database=db_url, subnet=subnet))


def stored_rows(store):
    """instance_uuid -> (ip_address, ipv6_address) as the database holds them."""
    query = select(ports.c.instance_uuid, ports.c.ip_address, ports.c.ipv6_address)
    with store.engine.connect() as conn:
        return {
            row.instance_uuid: (row.ip_address, row.ipv6_address) for row in conn.execute(query)
        }


def eui64(prefix, port):
    return str(eui64_address(ipaddress.IPv6Network(prefix), port.mac))


@pytest.fixture
def stores():
    opened = []
    yield opened
    for store in opened:
        store.engine.dispose()


def test_allocate_list_move_release_without_ipv4(db_url, stores):
    store = v6_store(db_url)
    stores.append(store)
    allocated = [store.allocate(new_uuid(), "h1") for _ in range(3)]
    assert [p.address for p in allocated] == [None, None, None]
    assert [p.mac for p in allocated] == ["fa:17:3e:00:00:00", "fa:17:3e:00:00:01",
                                          "fa:17:3e:00:00:02"]  # fmt: skip
    assert len({p.device for p in allocated}) == 3
    # No IPv4 recorded; the EUI-64 in the first prefix is.
    assert stored_rows(store) == {p.instance_uuid: (None, eui64(PREFIX, p)) for p in allocated}
    assert allocated[0].ipv6_addresses(store.network.ipv6_prefixes) == (
        ipaddress.IPv6Address("fd00:99::f817:3eff:fe00:0"),
        ipaddress.IPv6Address("2001:db8:99:0:f817:3eff:fe00:0"),
    )
    assert store.allocate(allocated[0].instance_uuid, "h1") == allocated[0]  # idempotent
    assert store.list() == allocated  # by MAC, the order of their addresses

    moved = store.move(allocated[1].instance_uuid, "h2")
    assert (moved.host, moved.mac, moved.address) == ("h2", allocated[1].mac, None)
    assert store.list("h2") == [moved]

    assert store.release(allocated[1].instance_uuid) == moved
    assert store.get(allocated[1].instance_uuid) is None
    assert len(stored_rows(store)) == 2
    # Each prefix: a MAC under fa:17:3e gives one address; two ports hold one.
    assert pool_usage(store) == [
        SubnetUsage(ipaddress.IPv6Network(p), size=1 << 24, used=2, free=(1 << 24) - 2)
        for p in (PREFIX, OTHER_PREFIX)
    ]
    # The change log carries the ports as they are, for the DHCP side.
    changes = store.changes_since(0)
    assert {p.instance_uuid for p in changes.upserted} == {allocated[0].instance_uuid,
                                                           allocated[2].instance_uuid}  # fmt: skip
    assert [p.instance_uuid for p in changes.released] == [allocated[1].instance_uuid]


def allocate_many(db_url):
    store = v6_store(db_url)
    allocated = [store.allocate(new_uuid(), "h") for _ in range(30)]
    store.engine.dispose()
    return [(p.mac, p.device, p.address) for p in allocated]


def test_concurrent_allocators_never_share_a_mac_or_device(db_url, stores):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        allocated = [p for part in pool.map(allocate_many, [db_url] * 4) for p in part]
    assert len(allocated) == 120
    assert Counter(mac for mac, _, _ in allocated).most_common(1)[0][1] == 1
    assert Counter(device for _, device, _ in allocated).most_common(1)[0][1] == 1
    assert {address for _, _, address in allocated} == {None}
    store = v6_store(db_url)
    stores.append(store)
    rows = stored_rows(store)
    assert len(rows) == 120 and {ip for ip, _ in rows.values()} == {None}
    assert len({v6 for _, v6 in rows.values()}) == 120


def test_an_ipv4_subnet_added_later_addresses_new_ports_only(db_url, stores):
    before = v6_store(db_url)
    stores.append(before)
    old = before.allocate(new_uuid(), "h")
    after = v6_store(db_url, subnet=f"{IPV4}, {IPV6_ONLY}")  # the change and restart
    stores.append(after)
    new = after.allocate(new_uuid(), "h")
    assert str(new.address) == "10.50.0.1" and new.mac != old.mac
    assert after.get(old.instance_uuid) == old  # still no IPv4: allocated once, kept
    assert after.list() == [new, old]  # ports with IPv4 first
    assert stored_rows(after) == {
        old.instance_uuid: (None, eui64(PREFIX, old)),
        new.instance_uuid: ("10.50.0.1", eui64(PREFIX, new)),
    }
    [ipv4_usage, *_] = pool_usage(after)
    assert ipv4_usage == SubnetUsage(ipaddress.IPv4Network(IPV4), 254, 1, 253)


def test_dropping_the_last_prefix_is_refused_while_a_port_has_no_ipv4(db_url, stores):
    first = v6_store(db_url, subnet=PREFIX)
    stores.append(first)
    old = [first.allocate(new_uuid(), "h") for _ in range(2)]
    dual = v6_store(db_url, subnet=f"{IPV4}, {PREFIX}")
    stores.append(dual)
    new = dual.allocate(new_uuid(), "h")
    with pytest.raises(ConfigError) as refused:
        v6_store(db_url, subnet=IPV4)
    assert refused.value.problems == [
        f"subnet {IPV4} lists no IPv6 prefix, but 2 ports allocated while the pool was "
        f"IPv6-only hold no IPv4 address: keep their prefix ({PREFIX}) in subnet until they "
        "are released"
    ]
    for port in old:
        dual.release(port.instance_uuid)
    ipv4_only = v6_store(db_url, subnet=IPV4)  # every port left has IPv4: it may go
    stores.append(ipv4_only)
    assert ipv4_only.list() == [new]


def test_dropping_the_ipv4_subnet_holding_ports_is_refused_as_any_subnet(db_url, stores):
    dual = v6_store(db_url, subnet=f"{IPV4}, {PREFIX}")
    stores.append(dual)
    dual.allocate(new_uuid(), "h")
    with pytest.raises(ConfigError) as refused:
        v6_store(db_url, subnet=PREFIX)
    assert refused.value.problems == [
        f"subnet {IPV4} still holds 1 port but is no longer in the pool ({PREFIX}): "
        "keep it in subnet until its ports are released"
    ]
