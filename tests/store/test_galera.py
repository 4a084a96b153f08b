"""The port store on a real three-node MariaDB Galera cluster, writes on every node.

Allocations on different nodes that race for the subnet's allocator row are
certified at commit: the loser gets error 1213 and cachenet retries the whole
allocation. One module-scoped cluster (it takes a while to start on two cores)
serves every test here; the test that kills a node comes last.
"""

import json
import multiprocessing
import random
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from cachenet.cli.ports_cmd import UPGRADE_MESSAGES
from cachenet.errors import CachenetError
from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.engine import is_transient
from cachenet.store.phases import SCHEMA_REVISION
from harness.cli import run_cachenet
from harness.galera import galera_cluster
from harness.vendordata_service import write_config
from harness.wait import wait_for

# What `cachenet db upgrade` may print, one line.
UPGRADE_OUTPUTS = [f"{message}\n" for message in UPGRADE_MESSAGES.values()]
NOTHING_TO_DO = f"{UPGRADE_MESSAGES['nothing to do']}\n"

SUBNET = "10.60.0.0/16"
ALLOCATORS_PER_NODE = 2
BEFORE_KILL = 5  # ports every allocator acknowledges before a node is killed
AFTER_KILL = 10  # ports every allocator on a surviving node acknowledges after
AFTER_KILL_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def galera():
    with galera_cluster() as cluster:
        yield cluster


def test_hosts_on_every_node_create_the_schema_at_once(galera, tmp_path):
    """`cachenet db upgrade` from two hosts per node at the same moment: GET_LOCK
    locks one node only, so hosts on other nodes meet tables being created;
    every one succeeds, and the schema Galera replicates has a primary key on
    every table (Galera replicates rows by key)."""
    database = galera.create_database()
    configs = [
        write_config(tmp_path / f"{node.name}-{n}.conf", node.url(database), subnet=SUBNET)
        for node in galera.nodes
        for n in range(ALLOCATORS_PER_NODE)
    ]
    with multiprocessing.get_context("spawn").Pool(len(configs)) as pool:
        runs = pool.starmap(run_cachenet, [(conf, "db", "upgrade") for conf in configs])
    for done in runs:
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
    # A host on another node may meet the schema half made (GET_LOCK does not reach
    # it) and apply the phase it finds missing: each reports what it applied.
    said = {done.stdout for done in runs}
    assert said <= set(UPGRADE_OUTPUTS)
    assert said - {NOTHING_TO_DO}, "no host applied anything to the empty database"
    again = run_cachenet(configs[-1], "db", "upgrade")
    assert again.stdout == NOTHING_TO_DO, again.stderr
    for node in galera.nodes:
        assert node.sql(f"SELECT version_num FROM {database}.alembic_version") == SCHEMA_REVISION
        without_key = node.sql(
            "SELECT t.table_name FROM information_schema.tables t WHERE t.table_schema = "
            f"'{database}' AND NOT EXISTS (SELECT 1 FROM information_schema.table_constraints c "
            "WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name "
            "AND c.constraint_type = 'PRIMARY KEY')"
        )
        assert without_key == ""


def allocate_until_stopped(url: str, host: str, stop: Path, out: Path) -> None:
    """Allocate ports for new instances until ``stop`` exists; one JSON line per
    acknowledged port or error, written at once (what a caller was told survives)."""
    store = open_store(make_settings(database=url, subnet=SUBNET))
    retried = Counter()

    @event.listens_for(store.engine, "handle_error")
    def _count(context):
        if is_transient(context.sqlalchemy_exception):
            retried[str(context.original_exception.args[0])] += 1

    with out.open("a") as log:
        while not stop.exists():
            try:
                port = store.allocate(str(uuid.uuid4()), host)
            except CachenetError as exc:
                record = {"error": str(exc)}
                time.sleep(0.2)
            else:
                record = {key: str(value) for key, value in port.as_dict().items()}
                # A host allocates when an instance spawns, not in a tight loop: with
                # pooled connections, tight loops on every node keep the allocator row
                # in flight on two nodes at all times and starve one of them through
                # 20 certification failures (that burst is what the README sends to
                # one writer behind a proxy).
                time.sleep(random.uniform(0.02, 0.1))
            log.write(json.dumps({**record, "at": time.time(), "retried": retried}) + "\n")
            log.flush()


def records(out: Path) -> list[dict]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.endswith("}")]


def acknowledged(out: Path) -> list[dict]:
    return [r for r in records(out) if "error" not in r]


def test_allocators_on_every_node_survive_a_node_killed_mid_run(galera, tmp_path):
    """Allocators on all three nodes at once; the third node is SIGKILLed while
    they run. Allocations on the two surviving nodes go on; no address, MAC or
    device is ever handed out twice; every port a caller was given is in the
    surviving nodes' store."""
    database = galera.create_database()
    survivors, victim = galera.nodes[:-1], galera.nodes[-1]
    open_store(make_settings(database=survivors[0].url(database), subnet=SUBNET))
    stop = tmp_path / "stop"
    logs = {
        node.name: [tmp_path / f"{node.name}-{n}.jsonl" for n in range(ALLOCATORS_PER_NODE)]
        for node in galera.nodes
    }
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=allocate_until_stopped, args=(node.url(database), node.name, stop, out)
        )
        for node in galera.nodes
        for out in logs[node.name]
    ]
    every_log = [out for outs in logs.values() for out in outs]
    surviving_logs = [out for node in survivors for out in logs[node.name]]
    for worker in workers:
        worker.start()
    try:
        wait_for(lambda: all(len(acknowledged(o)) >= BEFORE_KILL for o in every_log),
                 "every allocator's first ports", 120, interval=0.2)  # fmt: skip
        started = min(r["at"] for out in every_log for r in records(out))
        killed_at = time.time()
        victim.kill()

        def after_kill(out):
            return [r for r in acknowledged(out) if r["at"] > killed_at]

        wait_for(lambda: all(len(after_kill(o)) >= AFTER_KILL for o in surviving_logs),
                 "allocations on the surviving nodes", AFTER_KILL_TIMEOUT, 0.2)  # fmt: skip
    finally:
        stop.touch()
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
    ended = max(r["at"] for out in every_log for r in records(out))

    for node in survivors:  # the two left still form the primary component
        assert node.status("wsrep_cluster_size") == "2"
        assert node.status("wsrep_cluster_status") == "Primary"

    failed = [r["error"] for out in surviving_logs for r in records(out) if "error" in r]
    assert failed == [], "allocations on a surviving node failed"
    given = [r for out in every_log for r in acknowledged(out)]
    for field in ("instance_uuid", "address", "mac", "device"):
        assert Counter(r[field] for r in given).most_common(1)[0][1] == 1, field

    for node in survivors:
        assert_store_holds_exactly(node.url(database), given)

    # What an operator sees: a host on a surviving node allocates; one on the
    # dead node gets one line naming the store it cannot reach.
    alive_conf = write_config(tmp_path / "alive.conf", survivors[1].url(database), subnet=SUBNET)
    alive = run_cachenet(alive_conf, "ports", "allocate", str(uuid.uuid4()))
    assert (alive.returncode, alive.stderr) == (0, "")
    dead_conf = write_config(tmp_path / "dead.conf", victim.url(database), subnet=SUBNET)
    dead = run_cachenet(dead_conf, "ports", "allocate", str(uuid.uuid4()))
    assert dead.returncode == 2
    assert dead.stderr.startswith("cachenet: error: cannot use the port store at mysql+pymysql")
    assert dead.stderr.count("\n") == 1 and ":***@" in dead.stderr

    report(logs, survivors, started, killed_at, ended, given)


def assert_store_holds_exactly(url, given):
    """Every acknowledged port is in the store, as the caller was told; no value twice."""
    stored = open_store(make_settings(database=url, subnet=SUBNET)).list()
    by_instance = {p.instance_uuid: p for p in stored}
    lost = [r for r in given if r["instance_uuid"] not in by_instance]
    assert lost == [], f"{len(lost)} acknowledged ports missing"
    for r in given:
        port = by_instance[r["instance_uuid"]]
        assert (str(port.address), port.mac, port.device) == (r["address"], r["mac"], r["device"])
    for field in ("address", "mac", "device"):
        assert len({getattr(p, field) for p in stored}) == len(stored), field


def report(logs, survivors, started, killed_at, ended, given):
    """The figures, for the issue's closing note (pytest -s shows them)."""
    resumed = max(
        min(r["at"] for r in acknowledged(out) if r["at"] > killed_at) - killed_at
        for node in survivors
        for out in logs[node.name]
    )
    retried = Counter()
    for outs in logs.values():
        for out in outs:
            retried.update(records(out)[-1]["retried"])
    before = [r for r in given if r["at"] <= killed_at]
    print(
        f"\ngalera: {len(given)} ports acknowledged by {sum(map(len, logs.values()))} "
        f"allocators; {len(before) / (killed_at - started):.1f}/s on 3 nodes, "
        f"{(len(given) - len(before)) / (ended - killed_at):.1f}/s after the kill; "
        f"retried errors {dict(retried)}; first commit on every surviving allocator "
        f"{resumed:.2f} s after the kill"
    )


def test_the_cluster_helper_removes_its_servers():
    """Teardown stops every mariadbd and removes the directory, even when the test fails."""
    try:
        with galera_cluster(size=1) as cluster:
            node = cluster.nodes[0]
            directory = node.directory.parent
            raise RuntimeError("the test failed")
    except RuntimeError:
        pass
    assert not node.alive()
    assert not directory.exists()
    engine = create_engine(node.url("mysql"), poolclass=NullPool)
    with pytest.raises(OperationalError, match="Connection refused"), engine.connect():
        pass
