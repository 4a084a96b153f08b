"""No database password reaches stdout or stderr, whatever the command and the URL's form.

Every command that opens the store runs as a process against URLs of every
form the README shows (PostgreSQL and MariaDB, passwords holding '/', '@',
':' raw or percent-encoded, a password query parameter, no user, a server
that is not there, a wrong password against the real servers, a value that is
no URL, an SQLite file that cannot be created). The store cannot be used with
any of them: each command must fail with exit status 2 and one line on
stderr, and no form of the password may appear anywhere.
"""

import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

from harness.cli import run_cachenet
from harness.databases import server_or_skip

NOVA_XML = (Path(__file__).parents[1] / "unit" / "data" / "nova-domain.xml").read_text()
INSTANCE = str(uuid.uuid4())
SERVERS = {
    "postgresql": ("postgresql+psycopg", 5432),
    "mariadb": ("mysql+pymysql", 3306),
}


def unused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def url_forms(kind):
    """(id, URL, password) of every form, the role cachenet with a wrong password."""
    scheme, port = SERVERS[kind]
    up, down = f"127.0.0.1:{port}", f"127.0.0.1:{unused_port()}"
    forms = [  # (id, password's start, how the URL holds the password)
        ("slash", "S3cr/et", "cachenet:{raw}@{up}/cachenet"),
        ("raw-at", "S3cr@et", "cachenet:{raw}@{up}/cachenet"),
        ("at", "S3cr@et", "cachenet:{quoted}@{up}/cachenet"),
        ("colon", "S3cr:et", "cachenet:{raw}@{up}/cachenet"),
        ("pct2F", "S3cr/et", "cachenet:{quoted}@{up}/cachenet"),
        ("query", "S3cr/et", "{up}/cachenet?user=cachenet&password={quoted}"),
        ("no-user", "S3cret", ":{raw}@{up}/cachenet"),
        ("unreachable", "S3cret", "cachenet:{raw}@{down}/cachenet"),
    ]
    cases = []
    for i, (form, start, template) in enumerate(forms):
        password = f"{start}{kind[:2].upper()}{i}"  # one per case: a leak names its case
        held = template.format(raw=password, quoted=quote(password, safe=""), up=up, down=down)
        cases.append((form, f"{scheme}://{held}", password))
    return cases


CASES = [
    pytest.param(kind, form, url, password, id=f"{kind}-{form}")
    for kind in SERVERS
    for form, url, password in url_forms(kind)
] + [
    pytest.param(None, "non-url", "S3cretNONURL is my password", "S3cretNONURL", id="non-url"),
    pytest.param(
        None, "sqlite", "sqlite:////proc/cachenet-no-such-dir/ports.sqlite", None, id="sqlite"
    ),
]

COMMANDS = [
    ["config", "show"],
    ["config", "show", "--json"],
    ["ports", "allocate", INSTANCE],
    ["ports", "show", INSTANCE],
    ["ports", "list"],
    ["ports", "release", INSTANCE],
    ["ports", "move", INSTANCE, "compute-2"],
    ["ports", "gc", "--live", "LIVE", "--grace", "0"],
    ["db", "upgrade"],
    ["dhcp", "sync", "--once"],
    ["dhcp", "serve"],
    ["xml", "add", INSTANCE],
    ["agent", "--once"],
]


def run(conf, args):
    return run_cachenet(conf, *args, stdin=NOVA_XML)


def spellings(password):
    """Every way the password could be printed: raw, percent-encoded, and its halves."""
    found = {password, quote(password, safe=""), quote(password, safe="/:@")}
    return found | {password[: len(password) // 2 + 1], password[len(password) // 2 :]}


def config_loads(url):
    """Whether the URL passes validation (then ``config show`` prints it, masked)."""
    return "S3cretNONURL" not in url and url.count("@") <= 1


@pytest.mark.parametrize(("kind", "form", "url", "password"), CASES)
def test_no_command_prints_the_password(tmp_path, kind, form, url, password):
    if kind is not None and form != "unreachable":
        server_or_skip(kind).dispose()  # a wrong password needs the real server
    live = tmp_path / "live"
    live.write_text(f"{uuid.uuid4()}\n")
    conf = tmp_path / "cachenet.conf"
    conf.write_text(
        f"[cachenet]\ndatabase = {url}\ndhcp_state_dir = {tmp_path}/dhcp\n"
        f"dhcp_interface = lo\nlibvirt_uri = test:///default\n"
    )
    commands = [[str(live) if a == "LIVE" else a for a in args] for args in COMMANDS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda args: (args, run(conf, args)), commands))
    problems = {}
    for args, result in results:
        name = " ".join(args[:3])
        output = result.stdout + result.stderr
        if password and any(s in output for s in spellings(password)):
            problems[name] = f"password printed: {output.strip()[-300:]!r}"
            continue
        expected = 0 if args[0] == "config" and config_loads(url) else 2
        lines = result.stderr.strip().splitlines()
        if result.returncode != expected or len(lines) != (expected == 2):
            problems[name] = f"exit {result.returncode}, stderr {result.stderr.strip()[-300:]!r}"
        elif expected == 0 and password and "***" not in result.stdout:
            problems[name] = f"no masked URL in {result.stdout!r}"
    assert not problems, problems
