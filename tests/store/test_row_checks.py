"""What the store reads is checked before use; what it is given is checked before storing.

Any host holding the shared database's credentials can write rows: a hostile
row must never reach a file name, a reservation line or an interface name.
"""

import json
import logging
import uuid
from datetime import datetime

import pytest
from sqlalchemy import func, insert, select

from cachenet.errors import IdentityError, StoreError
from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.schema import port_events, ports
from harness.cli import run_cachenet

SUBNET = {"subnet": "10.20.0.0/24", "reserved": ["10.20.0.1-10.20.0.9"]}
GOOD_ROW = {"mac": "fa:17:3e:00:0f:01", "ip_address": "10.20.0.100",
            "device": "cache-hostile00", "host": "compute-9"}  # fmt: skip
HOSTILE = {
    "path in the UUID": {"instance_uuid": "../../outside/pwned"},
    "newline in the device": {"device": "x\n1,10.20.0.9"},
    "non-canonical MAC": {"mac": "FA:17:3E:00:0F:03"},
    "multicast MAC": {"mac": "fb:17:3e:00:0f:04"},
    "address outside the subnet": {"ip_address": "10.21.0.5"},
    "address not written canonically": {"ip_address": "10.20.0.0120"},
    "not an address": {"ip_address": "cache\n10.20.0.9"},
    "control character in the host": {"host": "h\x1b[31m"},
    "comma in the device": {"device": "a,b"},
}


def store_for(db_url):
    return open_store(make_settings(database=db_url, **SUBNET))


def insert_hostile_rows(store):
    """One row (and its change-log event) per hostile value, the rest of each row valid."""
    uuids = {}
    with store.engine.begin() as conn:
        for n, (what, values) in enumerate(HOSTILE.items()):
            row = {**GOOD_ROW, "instance_uuid": str(uuid.uuid4()),
                   "mac": f"fa:17:3e:00:0e:{n:02x}", "ip_address": f"10.20.0.{100 + n}",
                   "device": f"cache-hostile{n:02d}", **values}  # fmt: skip
            now = datetime(2024, 1, 1)
            conn.execute(insert(ports).values(**row, created_at=now, updated_at=now))
            conn.execute(insert(port_events).values(**row, kind="upsert", created_at=now))
            uuids[what] = row["instance_uuid"]
    return uuids


def test_invalid_rows_are_skipped_with_a_warning_and_the_rest_served(db_url, caplog):
    store = store_for(db_url)
    good = store.allocate(str(uuid.uuid4()), "compute-1")
    insert_hostile_rows(store)
    with caplog.at_level(logging.WARNING, logger="cachenet.store.ports"):
        assert store.list() == [good]
        assert store.list("compute-9") == []
        assert store.snapshot().upserted == [good]
        changes = store.changes_since(0)
        assert [p.instance_uuid for p in changes.upserted] == [good.instance_uuid]
        assert changes.released == []
        assert store.list() == [good]  # warned once per row, not per call
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 * len(HOSTILE)  # each ports row and each event row
    assert all("\n" not in w and "\x1b" not in w for w in warnings)
    assert any("'../../outside/pwned'" in w and "not a UUID" in w for w in warnings)
    assert any(r"device name 'x\n1,10.20.0.9'" in w for w in warnings)


@pytest.mark.parametrize("what", ["newline in the device", "non-canonical MAC"])
def test_getting_an_invalid_row_is_a_one_line_error(db_url, what):
    store = store_for(db_url)
    instance = insert_hostile_rows(store)[what]
    for operation in (store.get, lambda u: store.allocate(u, "compute-1"), store.release):
        with pytest.raises(StoreError, match=r"ports row \d+ .* is invalid") as caught:
            operation(instance)
        assert "\n" not in str(caught.value)


HOSTILE_HOSTS = ["x" * 256, "", "compute\n1", "a\x1b[2Jb", "nul\x00", "tab\there"]


def test_hostile_host_names_are_refused_and_nothing_is_stored(db_url):
    store = store_for(db_url)
    moved = str(uuid.uuid4())
    store.allocate(moved, "compute-1")
    for host in HOSTILE_HOSTS:
        with pytest.raises(IdentityError, match="is not a host name") as caught:
            store.allocate(str(uuid.uuid4()), host)
        assert "\n" not in str(caught.value) and len(str(caught.value)) < 200
        with pytest.raises(IdentityError, match="is not a host name"):
            store.move(moved, host)
    assert [p.host for p in store.list()] == ["compute-1"]
    with store.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(port_events)).scalar() == 1
    assert store.allocate(str(uuid.uuid4()), "h" * 255).host == "h" * 255
    assert store.move(moved, "compute-2.rack7").host == "compute-2.rack7"


def cachenet(tmp_path, db_url, *args):
    conf = tmp_path / "cachenet.conf"
    conf.write_text(f"[cachenet]\ndatabase = {db_url}\nhost = compute-1\n")
    return run_cachenet(conf, *args)


def test_hostile_hosts_on_the_command_line_are_one_line_errors(db_url, tmp_path):
    instance = str(uuid.uuid4())
    assert cachenet(tmp_path, db_url, "ports", "allocate", instance).returncode == 0
    for args in (("ports", "allocate", str(uuid.uuid4()), "--host", "x" * 300),
                 ("ports", "move", instance, "compute\x1b[2J2")):  # fmt: skip
        result = cachenet(tmp_path, db_url, *args)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("cachenet: error: host ")
        assert "\x1b" not in result.stderr
    listed = json.loads(cachenet(tmp_path, db_url, "ports", "list", "--json").stdout)
    assert [(p["instance_uuid"], p["host"]) for p in listed] == [(instance, "compute-1")]
