"""What a hostile value in the store shows on an operator's terminal: itself, literally.

The values are written straight into the database, as any compute node holding
the shared database's credentials could: the command line must not trust rows.
"""

import json
import sqlite3
import uuid

import pytest

from harness.cli import run_cachenet as run

# Hosts the store accepts, which a terminal library would read as markup.
MARKUP_HOSTS = ["[/x]", "[red]x[/red]", "[bold]b", "[link=http://x]y"]
# Hosts the store refuses when it reads the row: they must not reach the terminal either.
CONTROL_HOSTS = ["\x1b[31mx", "a\x9bb", "bell\x07", "two\nlines"]


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "cachenet.conf"
    path.write_text(f"[cachenet]\ndatabase = sqlite:///{tmp_path}/ports.sqlite\n")
    return path


def port_with_host(conf, host):
    """A port allocated as usual, whose host row is then overwritten with ``host``."""
    instance = str(uuid.uuid4())
    assert run(conf, "ports", "allocate", instance).returncode == 0
    with sqlite3.connect(conf.parent / "ports.sqlite") as db:
        db.execute("UPDATE ports SET host = ? WHERE instance_uuid = ?", (host, instance))
    return instance


def visible(text):
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F else c
                   for c in text)  # fmt: skip


@pytest.mark.parametrize("host", MARKUP_HOSTS)
def test_a_hostile_host_is_printed_literally_in_tables(conf, host):
    instance = port_with_host(conf, host)
    for result in (run(conf, "ports", "show", instance), run(conf, "ports", "list")):
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert instance in result.stdout
        # No control character reaches the terminal, and markup is not interpreted.
        assert visible(result.stdout.replace("\n", "")) == result.stdout.replace("\n", "")
        assert visible(host) in result.stdout


@pytest.mark.parametrize("host", MARKUP_HOSTS)
def test_json_output_is_exact_json_of_the_hostile_host(conf, host):
    instance = port_with_host(conf, host)
    shown = run(conf, "ports", "show", instance, "--json")
    assert json.loads(shown.stdout)["host"] == host
    listed = run(conf, "ports", "list", "--json")
    assert [p["host"] for p in json.loads(listed.stdout)] == [host]


@pytest.mark.parametrize("host", CONTROL_HOSTS)
def test_a_host_with_control_characters_is_refused_and_shown_escaped(conf, host):
    instance = port_with_host(conf, host)
    shown = run(conf, "ports", "show", instance)
    assert shown.returncode == 2 and "Traceback" not in shown.stderr
    assert len(shown.stderr.splitlines()) == 1 and "is not a host name" in shown.stderr
    assert visible(shown.stderr.rstrip("\n")) == shown.stderr.rstrip("\n")
    for as_json in ([], ["--json"]):
        listed = run(conf, "ports", "list", *as_json)
        assert listed.returncode == 0 and instance not in listed.stdout  # skipped, logged
        assert visible(listed.stdout.replace("\n", "")) == listed.stdout.replace("\n", "")
        assert visible(listed.stderr.replace("\n", "")) == listed.stderr.replace("\n", "")


def test_allocate_with_a_markup_host_commits_and_prints_it(conf):
    instance = str(uuid.uuid4())
    allocated = run(conf, "ports", "allocate", instance, "--host", "[/x]")
    assert allocated.returncode == 0 and "Traceback" not in allocated.stderr
    assert "[/x]" in allocated.stdout and "[/x]" in run(conf, "ports", "list").stdout
