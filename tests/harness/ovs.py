"""An Open vSwitch for the tests: ovsdb-server + ovs-vswitchd from Debian's package.

This kernel has no openvswitch module, so bridges use datapath_type=netdev.
The userspace datapath has one "ovs-netdev" device per machine, and libvirt
plugs OVS ports with ovs-vsctl on the default socket, so there is one OVS per
machine at the standard place (/var/run/openvswitch/db.sock): the one
running there is used, else one is started here and left running for the next
test session (it holds no state the tests depend on).

Like Debian's ovs-ctl, ovsdb-server also listens where the Manager table says
(``ovs-vsctl set-manager``, or cachenet's ``bridge ensure`` with a TCP
ovsdb_connection).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from harness.wait import wait_for

STATE = Path("/tmp/cachenet-test-ovs")  # database and logs
RUNDIR = Path("/var/run/openvswitch")  # sockets and pid files, where libvirt looks
SOCKET = RUNDIR / "db.sock"
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
MANAGERS = "db:Open_vSwitch,Open_vSwitch,manager_options"


def _env() -> dict[str, str]:
    dirs = {"OVS_RUNDIR": RUNDIR, "OVS_LOGDIR": STATE, "OVS_DBDIR": STATE, "OVS_SYSCONFDIR": STATE}
    return {**os.environ, **{k: str(v) for k, v in dirs.items()}}


def _alive(name: str) -> bool:
    pidfile = RUNDIR / f"{name}.pid"
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, env=_env())


def ensure_running() -> str:
    """Start the test OVS if needed; returns its OVSDB connection string."""
    STATE.mkdir(parents=True, exist_ok=True)
    RUNDIR.mkdir(parents=True, exist_ok=True)
    if not _alive("ovsdb-server"):
        db = STATE / "conf.db"
        db.unlink(missing_ok=True)
        _run("ovsdb-tool", "create", str(db), str(SCHEMA))
        _run(
            "ovsdb-server",
            str(db),
            f"--remote=punix:{SOCKET}",
            f"--remote={MANAGERS}",
            f"--pidfile={RUNDIR}/ovsdb-server.pid",
            "--detach",
            f"--log-file={STATE}/ovsdb-server.log",
        )
        _run("ovs-vsctl", f"--db=unix:{SOCKET}", "--no-wait", "init")
    _listen_where_managers_say()
    if not _alive("ovs-vswitchd"):
        _start_vswitchd()
    wait_for(SOCKET.exists, f"ovsdb-server's socket {SOCKET}", 10, interval=0.1)
    return f"unix:{SOCKET}"


def _start_vswitchd() -> None:
    _run(
        "ovs-vswitchd",
        f"unix:{SOCKET}",
        f"--pidfile={RUNDIR}/ovs-vswitchd.pid",
        "--detach",
        f"--log-file={STATE}/ovs-vswitchd.log",
    )


def _listen_where_managers_say() -> None:
    """An ovsdb-server started before this option existed gets it at run time."""
    remotes = subprocess.run(
        ["ovs-appctl", "-t", "ovsdb-server", "ovsdb-server/list-remotes"],
        check=True, capture_output=True, text=True, env=_env(),
    ).stdout.split()  # fmt: skip
    if MANAGERS not in remotes:
        _run("ovs-appctl", "-t", "ovsdb-server", "ovsdb-server/add-remote", MANAGERS)


def restart_vswitchd(down_for: float = 0.0) -> None:
    """Stop ovs-vswitchd and start it again (what a package upgrade or a crash does):
    every OpenFlow flow is lost, OVSDB (bridges, ports, fail_mode) is kept.
    ``down_for`` seconds pass between the two."""
    pid = int((RUNDIR / "ovs-vswitchd.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not _alive("ovs-vswitchd"), "ovs-vswitchd to stop", 10)
    time.sleep(down_for)
    _start_vswitchd()


def ofctl(*args: str) -> str:
    """ovs-ofctl as root against the test OVS (the bridge's management socket)."""
    result = subprocess.run(
        ["ovs-ofctl", *args], check=True, capture_output=True, text=True, env=_env()
    )
    return result.stdout


def vsctl(*args: str) -> str:
    """ovs-vsctl against the test OVS, for assertions an operator would make by hand."""
    result = subprocess.run(
        ["ovs-vsctl", f"--db=unix:{SOCKET}", "--timeout=10", *args],
        check=True,
        capture_output=True,
        text=True,
        env=_env(),
    )
    return result.stdout.strip()
