"""``cachenet ports gc`` refuses what looks like a mistake rather than instances gone."""

import sys
import uuid

import pytest

from cachenet.settings import make_settings
from cachenet.store import open_store
from harness.cli import run_cachenet

HOST = "compute-1"


def run(conf, *args, stdin=None):
    return run_cachenet(conf, *args, stdin=stdin, text=False)


@pytest.fixture
def host(tmp_path, db_url):
    """A config for ``db_url`` and the store behind it."""
    conf = tmp_path / "cachenet.conf"
    conf.write_text(f"[cachenet]\ndatabase = {db_url}\nhost = {HOST}\n")
    store = open_store(make_settings(database=db_url, host=HOST))
    yield conf, store
    store.engine.dispose()


def allocate(store, count):
    return [store.allocate(str(uuid.uuid4()), HOST).instance_uuid for _ in range(count)]


def one_line_error(result, *words):
    assert result.returncode == 2 and result.stdout == b""
    assert "Traceback" not in result.stderr.decode()
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), result.stderr


def test_an_empty_live_list_is_refused_unless_yes(host):
    conf, store = host
    allocate(store, 2)
    refused = run(conf, "ports", "gc", "--live", "/dev/null", "--grace", "0")
    one_line_error(refused, "live instance list is empty", "--yes")
    assert len(store.list(HOST)) == 2
    done = run(conf, "ports", "gc", "--live", "/dev/null", "--grace", "0", "--yes")
    assert done.returncode == 0, done.stderr
    assert store.list(HOST) == []


def test_releasing_more_than_ten_and_more_than_half_of_the_ports_needs_yes(host):
    conf, store = host
    instances = allocate(store, 22)
    # 11 of 22 may go: not more than half.
    half = run(conf, "ports", "gc", "--live", "-", "--grace", "0",
               stdin="\n".join(instances[:11]).encode())  # fmt: skip
    assert half.returncode == 0, half.stderr
    assert len(store.list(HOST)) == 11
    # 10 of 11 may go: not more than ten. 11 of 12 may not.
    instances = instances[:11] + allocate(store, 1)
    refused = run(conf, "ports", "gc", "--live", "-", "--grace", "0",
                  stdin=instances[0].encode())  # fmt: skip
    one_line_error(refused, "up to 11 of the 12 ports of compute-1", "--yes")
    assert len(store.list(HOST)) == 12
    ten = run(conf, "ports", "gc", "--live", "-", "--grace", "0",
              stdin="\n".join(instances[:2]).encode())  # fmt: skip
    assert ten.returncode == 0, ten.stderr
    assert len(store.list(HOST)) == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("grace", ["nan", "NaN", "inf", "-inf", "1e308", "-1e308", "-1", "x"])
def test_a_grace_that_is_not_a_sane_number_of_seconds_is_refused(host, grace):
    conf, store = host
    allocate(store, 1)
    result = run(conf, "ports", "gc", "--live", "-", f"--grace={grace}", stdin=b"")
    assert result.returncode == 2 and result.stdout == b""
    assert b"Invalid value for '--grace'" in result.stderr and b"Traceback" not in result.stderr
    assert len(store.list(HOST)) == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_live_line_must_be_a_uuid_and_the_bad_one_is_named(host, tmp_path):
    conf, store = host
    instances = allocate(store, 2)
    binary = run(conf, "ports", "gc", "--live", sys.executable, "--grace", "0")
    one_line_error(binary, f"--live {sys.executable}: line 1 is not an instance UUID")
    listed = tmp_path / "live"
    listed.write_text(f"{instances[0]}\n\n{instances[1].upper()}\nnot-a-uuid\n")
    bad_line = run(conf, "ports", "gc", "--live", str(listed), "--grace", "0")
    one_line_error(bad_line, f"--live {listed}: line 4 is not an instance UUID: b'not-a-uuid'")
    endless = run(conf, "ports", "gc", "--live", "/dev/zero", "--grace", "0")
    one_line_error(endless, "--live /dev/zero: line 1 is not an instance UUID")
    assert len(store.list(HOST)) == 2
