"""Changing `reserved` or the subnet between allocations and releases never corrupts
the free lists: every release succeeds, no value is free and in use, none is free twice."""

import ipaddress
import random
import uuid

from sqlalchemy import select

from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.schema import free_addresses, free_macs, ports


def store_for(db_url, **overrides):
    return open_store(make_settings(database=db_url, **overrides))


def assert_free_lists_sound(store):
    with store.engine.begin() as conn:
        held = [(row.mac, int(ipaddress.IPv4Address(row.ip_address)))
                for row in conn.execute(select(ports.c.mac, ports.c.ip_address))]  # fmt: skip
        in_use = {
            free_addresses.c.address: {address for _, address in held},
            free_macs.c.mac: {mac for mac, _ in held},
        }
        for free, values in in_use.items():
            listed = list(conn.execute(select(free)).scalars())
            assert not set(listed) & values, f"a free {free.name} is in use"
            assert len(set(listed)) == len(listed), f"a {free.name} is free twice"


def test_a_release_after_reserved_shrank_succeeds(db_url):
    """The reproduction of the report: the ninth allocation gets .11 fresh, while .11
    sits in the free list since its first release."""
    wide = store_for(db_url, subnet="10.69.0.0/24", reserved=["10.69.0.1-10.69.0.10"])
    first = wide.allocate(str(uuid.uuid4()), "h")
    assert str(first.address) == "10.69.0.11"
    wide.release(first.instance_uuid)
    narrow = store_for(db_url, subnet="10.69.0.0/24", reserved=["10.69.0.1"])
    ninth = [narrow.allocate(str(uuid.uuid4()), "h") for _ in range(9)][-1]
    assert str(ninth.address) == "10.69.0.11"
    assert narrow.release(ninth.instance_uuid) == ninth
    assert_free_lists_sound(narrow)


POOLS = [
    {"subnet": "10.69.0.0/27", "reserved": ["10.69.0.1-10.69.0.10"]},
    {"subnet": "10.69.0.0/27", "reserved": ["10.69.0.1"]},
    {"subnet": "10.69.0.0/27", "reserved": ["10.69.0.1-10.69.0.4", "10.69.0.20-10.69.0.25"]},
    {"subnet": "10.69.0.0/28", "reserved": ["10.69.0.1"]},
    {"subnet": "10.69.0.0/26", "reserved": ["10.69.0.1-10.69.0.30"]},
]


def test_changing_reserved_and_the_subnet_between_operations_keeps_every_release_working(
    db_url,
):
    rng = random.Random(14)
    stores = [store_for(db_url, mac_prefix="fa:17:3e:00:00", **pool) for pool in POOLS]
    live = []
    for _ in range(120):
        store = rng.choice(stores)
        if live and (rng.random() < 0.45 or len(live) > 12):
            instance = live.pop(rng.randrange(len(live)))
            released = store.release(instance)
            assert released is not None and released.instance_uuid == instance
        else:
            instance = str(uuid.uuid4())
            store.allocate(instance, "h")
            live.append(instance)
        assert_free_lists_sound(store)
    for instance in live:
        assert stores[0].release(instance) is not None
    assert_free_lists_sound(stores[0])
