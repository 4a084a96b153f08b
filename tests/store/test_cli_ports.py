"""``cachenet ports`` and ``cachenet xml add`` with the store, as a user runs them."""

import json
import uuid
from pathlib import Path

from harness.cli import run_cachenet

NOVA_XML = (Path(__file__).parents[1] / "unit" / "data" / "nova-domain.xml").read_text()


def run(conf, *args, stdin=""):
    return run_cachenet(conf, *args, stdin=stdin)


def write_conf(tmp_path, **options):
    options.setdefault("database", f"sqlite:///{tmp_path}/state/ports.sqlite")
    conf = tmp_path / "cachenet.conf"
    conf.write_text("[cachenet]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()))
    return conf


def test_ports_lifecycle_from_the_command_line(tmp_path):
    conf = write_conf(tmp_path, host="compute-1", subnet="10.40.0.0/24", reserved="10.40.0.1")
    instance = str(uuid.uuid4())
    allocated = json.loads(run(conf, "ports", "allocate", instance, "--json").stdout)
    assert allocated["address"] == "10.40.0.2" and allocated["host"] == "compute-1"
    assert json.loads(run(conf, "ports", "show", instance, "--json").stdout) == allocated
    listed = json.loads(run(conf, "ports", "list", "--host", "compute-1", "--json").stdout)
    assert [p["instance_uuid"] for p in listed] == [instance]
    moved = json.loads(run(conf, "ports", "move", instance, "compute-2", "--json").stdout)
    assert moved["host"] == "compute-2" and moved["mac"] == allocated["mac"]
    assert "10.40.0.2" in run(conf, "ports", "list").stdout  # the table
    assert run(conf, "ports", "release", instance).returncode == 0
    missing = run(conf, "ports", "show", instance)
    assert missing.returncode == 2 and "has no port" in missing.stderr


def test_xml_add_takes_the_port_from_the_store(tmp_path):
    conf = write_conf(tmp_path, subnet="10.40.0.0/24")
    instance = str(uuid.uuid4())
    added = run(conf, "xml", "add", instance, stdin=NOVA_XML)
    assert added.returncode == 0, added.stderr
    port = json.loads(run(conf, "ports", "show", instance, "--json").stdout)
    shown = json.loads(run(conf, "xml", "show", "--json", stdin=added.stdout).stdout)
    assert (shown["mac"], shown["device"]) == (port["mac"], port["device"])
    again = run(conf, "xml", "add", instance, stdin=added.stdout)
    assert again.stdout == added.stdout


def test_gc_from_the_command_line(tmp_path):
    conf = write_conf(tmp_path, host="compute-1")
    alive, dead = str(uuid.uuid4()), str(uuid.uuid4())
    for instance in (alive, dead):
        run(conf, "ports", "allocate", instance)
    result = run(conf, "ports", "gc", "--live", "-", "--grace", "0", "--json", stdin=alive + "\n")
    assert [p["instance_uuid"] for p in json.loads(result.stdout)] == [dead]


def test_full_subnet_and_unreachable_database_are_one_line_errors(tmp_path):
    conf = write_conf(tmp_path, subnet="10.40.0.0/30")
    assert run(conf, "ports", "allocate", str(uuid.uuid4())).returncode == 0
    assert run(conf, "ports", "allocate", str(uuid.uuid4())).returncode == 0
    full = run(conf, "ports", "allocate", str(uuid.uuid4()))
    assert full.returncode == 2
    assert full.stderr.strip() == (
        "cachenet: error: subnet 10.40.0.0/30 is full: all 2 allocatable addresses are in use"
    )
    down = write_conf(tmp_path, database="mysql+pymysql://cachenet:pw@127.0.0.1:9/x")
    result = run(down, "ports", "list")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "cachenet:***@127.0.0.1:9" in result.stderr and ":pw@" not in result.stderr
