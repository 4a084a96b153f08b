"""``cachenet doctor`` on the port store, against SQLite and the real PostgreSQL and
MariaDB servers: reachable, schema current, clock agreeing, pool not filling up."""

import socket
import uuid
from pathlib import Path

import pytest
from alembic import command

from cachenet.doctor.checks import CHECKS
from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.engine import make_engine
from cachenet.store.phases import alembic_config
from harness.cli import run_cachenet
from harness.doctor import cachenet, run_doctor, write_conf

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
# The host checks are another file's business: here they only slow the run down.
ELSEWHERE = ("--skip", "libvirt")


def conf_for(tmp_path, database, **options):
    # A bridge no test makes: the bridge checks fail and the store's go on.
    return write_conf(tmp_path / "cachenet.conf", database=database, host="compute-1",
                      bridge=f"cn{uuid.uuid4().hex[:6]}br", **options)  # fmt: skip


def test_a_current_store_is_healthy(tmp_path, db_url):
    conf = conf_for(tmp_path, db_url)
    cachenet(conf, "db", "upgrade")
    found = run_doctor(conf, *ELSEWHERE)
    assert found.status_of("store") == "ok"
    assert found.status_of("schema") == "ok"
    server = not db_url.startswith("sqlite")
    assert found.status_of("clock") == ("ok" if server else "skipped"), found.message("clock")
    assert found.status_of("pool") == "ok"
    assert "cachenet:cachenet@" not in str(found.results)  # the password is masked


def test_an_outdated_schema_is_named_and_its_fix_works(tmp_path, db_url):
    engine = make_engine(db_url)
    config = alembic_config("versions")
    with engine.begin() as connection:  # the store as the previous release left it
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()
    conf = conf_for(tmp_path, db_url)
    found = run_doctor(conf, *ELSEWHERE)
    assert found.status == 1
    assert found.status_of("schema") == "fail"
    assert found.fix("schema") == "cachenet db upgrade"
    cachenet(conf, "db", "upgrade")
    assert run_doctor(conf, *ELSEWHERE).status_of("schema") == "ok"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_store_that_is_down_is_one_line_and_the_other_checks_still_run(tmp_path):
    url = f"postgresql+psycopg://cachenet:s3cret-pw@127.0.0.1:{closed_port()}/cachenet"
    found = run_doctor(conf_for(tmp_path, url))
    assert found.status == 1
    assert found.status_of("store") == "fail"
    assert "127.0.0.1" in found.message("store") and "\n" not in found.message("store")
    assert "start the database server" in found.fix("store")
    for name in ("schema", "clock", "port-security", "pool"):
        assert found.status_of(name) == "skipped"
        assert "store" in found.message(name)
    assert found.status_of("config") == "ok"
    assert found.status_of("bridge") == "fail"  # checked all the same
    assert found.status_of("libvirt") in ("ok", "fail")
    assert "s3cret-pw" not in str(found.results) + found.stderr


def test_a_missing_sqlite_store_is_named_not_created(tmp_path):
    path = tmp_path / "nothing-here" / "ports.sqlite"
    found = run_doctor(conf_for(tmp_path, f"sqlite:///{path}"), *ELSEWHERE)
    assert found.status_of("store") == "fail"
    assert str(path) in found.message("store")
    assert not path.parent.exists()  # a doctor only looks


def test_a_pool_filling_up_warns_then_fails(tmp_path):
    # 10.77.0.0/28 with .1-.4 reserved: 10 addresses for instances.
    database = f"sqlite:///{tmp_path}/ports.sqlite"
    options = {"subnet": "10.77.0.0/28", "reserved": "10.77.0.1-10.77.0.4"}
    conf = conf_for(tmp_path, database, **options)
    store = open_store(make_settings(database=database, **options))
    instances = [str(uuid.uuid4()) for _ in range(10)]
    for instance in instances[:8]:
        store.allocate(instance, "compute-1")
    found = run_doctor(conf, *ELSEWHERE)
    assert (found.status_of("pool"), found.message("pool")) == (
        "ok",
        "10.77.0.0/28 8 of 10 used (80%)",
    )
    store.allocate(instances[8], "compute-1")
    found = run_doctor(conf, *ELSEWHERE)
    assert found.status_of("pool") == "warn", found.message("pool")
    assert "9 of 10 used" in found.message("pool")
    assert "cachenet ports gc" in found.fix("pool")
    store.allocate(instances[9], "compute-1")
    found = run_doctor(conf, *ELSEWHERE)
    assert (found.status_of("pool"), found.status) == ("fail", 1)
    assert "full" in found.message("pool")
    store.release(instances[0])
    store.release(instances[1])
    assert run_doctor(conf, *ELSEWHERE).status_of("pool") == "ok"


@pytest.mark.skipif(not FAKETIME.exists(), reason="libfaketime (Debian package faketime)")
@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_clock_off_from_the_database_servers_is_named(tmp_path, kind):
    from harness.databases import fresh_database

    with fresh_database(kind) as url:
        conf = conf_for(tmp_path, url)
        cachenet(conf, "db", "upgrade")
        # This host's clock two minutes ahead (libfaketime); the server's is the real one.
        skewed = {"LD_PRELOAD": str(FAKETIME), "FAKETIME": "+120s", "DONT_FAKE_MONOTONIC": "1"}
        found = run_doctor(conf, *ELSEWHERE, env=skewed)
        assert found.status_of("clock") == "fail", found.message("clock")
        assert "behind this host's" in found.message("clock")
        assert "NTP" in found.fix("clock")
        assert run_doctor(conf, *ELSEWHERE).status_of("clock") == "ok"


def test_a_bad_configuration_is_its_line_and_exit_status_2(tmp_path):
    conf = conf_for(tmp_path, f"sqlite:///{tmp_path}/ports.sqlite", subnet="10.77.0.0/33")
    done = run_cachenet(conf, "doctor")
    assert (done.returncode, done.stderr) == (2, "")
    first, *rest = done.stdout.splitlines()
    assert first.startswith("FAIL    config          invalid configuration: subnet '10.77.0.0/33'")
    assert "; fix: correct the options named" in first
    assert all(line.startswith("SKIPPED") for line in rest) and len(rest) == len(CHECKS)


def test_a_full_first_subnet_is_fine_while_the_next_has_room(tmp_path):
    # Subnets fill in order: 10 + 14 addresses, the first full, the pool at 42 %.
    database = f"sqlite:///{tmp_path}/ports.sqlite"
    options = {"subnet": "10.77.0.0/28, 10.78.0.0/28", "reserved": "10.77.0.1-10.77.0.4"}
    conf = conf_for(tmp_path, database, **options)
    store = open_store(make_settings(database=database, **options))
    for _ in range(10):
        store.allocate(str(uuid.uuid4()), "compute-1")
    found = run_doctor(conf, *ELSEWHERE)
    assert (found.status_of("pool"), found.message("pool")) == (
        "ok",
        "10.77.0.0/28 10 of 10 used (100%); 10.78.0.0/28 0 of 14 used (0%)",
    )
