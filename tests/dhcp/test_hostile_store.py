"""`dhcp sync --once` against hostile store rows and a hosts directory it does not own.

Any compute node with the shared database's credentials can write rows; what the
sync writes as root must never leave <dhcp_state_dir>/hosts nor add a reservation
the store does not hold, and it replaces or deletes only files it names.
"""

import json
import uuid
from datetime import datetime

import pytest
from sqlalchemy import create_engine, insert

from cachenet.store.schema import ports

pytestmark = pytest.mark.root


def allocate(network):
    result = network.cachenet("ports", "allocate", str(uuid.uuid4()), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def insert_rows(network, *rows):
    engine = create_engine(network.options["database"])
    now = datetime(2024, 1, 1)
    with engine.begin() as conn:
        for n, values in enumerate(rows):
            row = {"instance_uuid": str(uuid.uuid4()), "mac": f"fa:17:3e:66:00:{n:02x}",
                   "ip_address": f"10.77.0.{100 + n}",
                   "device": f"cache-hostile{n:02d}", "host": "compute-1",
                   "created_at": now, "updated_at": now, **values}  # fmt: skip
            conn.execute(insert(ports).values(**row))
    engine.dispose()


def sync(network):
    return network.cachenet("dhcp", "sync", "--once")


def test_hostile_rows_are_skipped_and_the_good_ones_served(cache_network):
    state = cache_network.state_dir / "dhcp"
    outside = cache_network.state_dir / "outside"
    outside.mkdir()
    cache_network.configure(dhcp_state_dir=state)
    good = [allocate(cache_network) for _ in range(2)]
    insert_rows(
        cache_network,
        {"instance_uuid": "../../outside/pwned"},
        {"device": "x\nfa:17:3e:66:66:66,10.77.0.66,evil"},
        {"mac": "FA:17:3E:66:00:77"},
    )
    result = sync(cache_network)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("2 reservations")
    assert list(outside.iterdir()) == []
    hosts = state / "hosts"
    assert sorted(f.name for f in hosts.iterdir()) == sorted(
        f"{p['instance_uuid']}.conf" for p in good
    )
    lines = [line for f in hosts.iterdir() for line in f.read_text().splitlines()]
    assert sorted(lines) == sorted(f"{p['mac']},{p['address']},{p['device']}" for p in good)
    assert "'../../outside/pwned' is not a UUID" in result.stderr
    listed = cache_network.cachenet("ports", "list", "--json")
    assert sorted(p["instance_uuid"] for p in json.loads(listed.stdout)) == sorted(
        p["instance_uuid"] for p in good
    )


def test_files_cachenet_did_not_name_are_left_alone(cache_network):
    port = allocate(cache_network)
    hosts = cache_network.state_dir / "hosts"
    hosts.mkdir()
    foreign = {
        "static.conf": "fa:16:3e:00:00:01,10.77.0.200\n",
        "README": "mine\n",
        "ABCDEF01-0000-4000-8000-000000000000.conf": "fa:16:3e:00:00:02,10.77.0.201\n",
    }
    for name, content in foreign.items():
        (hosts / name).write_text(content)
    stale = cache_network.reservation(str(uuid.uuid4()))
    stale.write_text("fa:17:3e:00:00:99,10.77.0.99,cache-stale\n")  # a port released since

    result = sync(cache_network)
    assert result.returncode == 0, result.stderr
    assert {name: (hosts / name).read_text() for name in foreign} == foreign
    assert not stale.exists()
    assert cache_network.reservation(port["instance_uuid"]).exists()
    assert result.stderr.count("files cachenet did not name, left alone") == 1


@pytest.mark.parametrize("linked", ["hosts", "state"])
def test_a_symlinked_hosts_or_state_directory_is_refused(cache_network, tmp_path, linked):
    allocate(cache_network)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious.conf").write_text("keep me\n")
    if linked == "hosts":
        (cache_network.state_dir / "hosts").symlink_to(target)
        link = cache_network.state_dir / "hosts"
    else:
        link = cache_network.state_dir / "linked-state"
        link.symlink_to(target)
        cache_network.configure(dhcp_state_dir=link)
    result = sync(cache_network)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"cachenet: error: {link} is a symbolic link: refusing to write reservations"
    ]
    # Nothing is created or removed where the link points.
    assert sorted(p.name for p in target.iterdir()) == ["precious.conf"]
    assert (target / "precious.conf").read_text() == "keep me\n"
