"""--debug and --log-file, on commands and daemons run as processes: the store's retries
are logged, the log goes where it is told, and no database password is ever in it."""

import contextlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from harness import netns
from harness.cli import run_cachenet, start_cachenet
from harness.databases import _as_mariadb, fresh_database
from harness.loopback import free_port
from harness.sqlite_lock import HeldWriteLock
from harness.wait import wait_for

# cachenet with SQLite's busy wait shrunk from 30 s to 50 ms: a lock held for a
# second is then seen as "database is locked" and retried.
SHORT_BUSY_WAIT = "import cachenet.store.engine as engine; engine.SQLITE_BUSY_TIMEOUT = 0.05"
RETRY_LINE = "DEBUG store transaction attempt 1 of 20 failed (transient: database is locked); "


@pytest.fixture
def store_conf(tmp_path):
    conf = tmp_path / "cachenet.conf"
    conf.write_text(f"[cachenet]\ndatabase = sqlite:///{tmp_path}/ports.sqlite\n")
    assert run_cachenet(conf, "ports", "list").returncode == 0  # the schema, before locking
    return conf


def allocate_while_locked(conf, *options):
    """``cachenet OPTIONS ports allocate`` while another writer holds the store: released
    half a second after the command opened it, scores of 50 ms waits later."""
    store = conf.parent / "ports.sqlite"
    with HeldWriteLock(store) as lock:
        process = start_cachenet(conf, *options, "ports", "allocate", str(uuid.uuid4()),
                                 patch=SHORT_BUSY_WAIT, log=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
        wait_for(lambda: has_open(process.pid, store) or process.poll() is not None,
                 "the command to open the store", 30, interval=0.02)  # fmt: skip
        time.sleep(0.5)
        lock.release()
        out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def has_open(pid, path):
    """Whether process ``pid`` has ``path`` open."""
    fds = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    return False


def test_debug_logs_each_retry_of_a_locked_store(store_conf):
    result = allocate_while_locked(store_conf, "--debug")
    assert result.returncode == 0, result.stderr
    retries = [line for line in result.stderr.splitlines() if " DEBUG store transaction " in line]
    assert retries and RETRY_LINE in retries[0], result.stderr
    assert "10.99.0.1" in result.stdout  # and the allocation went through


def test_without_debug_a_retry_is_silent(store_conf):
    result = allocate_while_locked(store_conf)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_log_file_takes_the_log_instead_of_stderr(store_conf, tmp_path):
    log = tmp_path / "cachenet.log"
    result = allocate_while_locked(store_conf, "--debug", "--log-file", str(log))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert RETRY_LINE in log.read_text()


def test_an_unwritable_log_file_is_one_line(store_conf, tmp_path):
    missing = tmp_path / "no-such-dir" / "cachenet.log"
    result = run_cachenet(store_conf, "--log-file", str(missing), "ports", "list")
    assert result.returncode == 2
    assert result.stderr == (
        f"cachenet: error: cannot write the log file {missing}: No such file or directory\n"
    )


@pytest.fixture
def secret_store():
    """A MariaDB database whose user has a password unlike anything else in the URL;
    reached through the server's Unix socket, so from a network namespace too."""
    password = f"S3cr/et@{uuid.uuid4().hex[:8]}"
    user = f"cn_pw_{uuid.uuid4().hex[:8]}"
    with fresh_database("mariadb") as url:
        database = url.rsplit("/", 1)[1]
        _as_mariadb(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'; "
                    f"GRANT ALL ON {database}.* TO '{user}'@'localhost';")  # fmt: skip
        try:
            yield (
                f"mysql+pymysql://{user}:{quote(password, safe='')}@localhost/{database}"
                "?unix_socket=/run/mysqld/mysqld.sock",
                password,
            )
        finally:
            _as_mariadb(f"DROP USER '{user}'@'localhost';")


def run_daemon(conf, args, log, started, ns=None):
    """Run a daemon until ``started`` is in its log file; returns its stdout and stderr."""
    daemon = start_cachenet(conf, *args, ns=ns, log=subprocess.PIPE, text=True)

    def has_started():
        assert daemon.poll() is None, daemon.communicate()
        return log.exists() and started in log.read_text()

    try:
        wait_for(has_started, lambda: f"{started!r} in {log}: "
                 + (log.read_text() if log.exists() else "no log"), 30, interval=0.1)  # fmt: skip
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=15)
    return out


@pytest.mark.root
def test_no_password_in_any_log_line_of_the_daemons(secret_store, tmp_path):
    url, password = secret_store
    node = tmp_path / "node.xml"
    node.write_text(
        f"<node><domain type='test'><name>plain</name><uuid>{uuid.uuid4()}</uuid>"
        "<memory>1024</memory><os><type>hvm</type></os><devices/></domain></node>"
    )
    conf = tmp_path / "cachenet.conf"
    conf.write_text(
        f"[cachenet]\ndatabase = {url}\nlibvirt_uri = test://{node}\nhost = compute-1\n"
        f"vendordata_port = {free_port()}\n"
    )
    logs = {name: tmp_path / f"{name}.log" for name in ("agent", "vendordata")}
    prefix = netns.unique_prefix()
    with netns.namespace(f"{prefix}-agent") as ns:  # its port security rules stay there
        printed = run_daemon(
            conf, ["--debug", "--log-file", str(logs["agent"]), "agent"], logs["agent"],
            "reconciled", ns=ns,
        )  # fmt: skip
    printed += run_daemon(
        conf, ["--debug", "--log-file", str(logs["vendordata"]), "vendordata", "serve"],
        logs["vendordata"], "vendordata serve starting",
    )  # fmt: skip
    agent_log, vendordata_log = logs["agent"].read_text(), logs["vendordata"].read_text()
    assert " DEBUG nftables: applying: " in agent_log  # --debug reached the daemon
    for text in (agent_log, vendordata_log):
        [start] = [line for line in text.splitlines() if " starting: " in line]
        assert f"database={url.split(':')[0]}:" in start and ":***@localhost/" in start
    everything = agent_log + vendordata_log + printed
    for form in {password, quote(password, safe=""), quote(password)}:
        assert form not in everything
