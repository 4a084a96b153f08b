"""How ``cachenet dhcp serve`` restarts a dnsmasq that keeps dying, with real dnsmasq."""

import os
import signal
import time

import pytest

from harness.cli import start_cachenet
from harness.wait import wait_for

pytestmark = pytest.mark.root

# ``cachenet dhcp serve`` with the stable-run threshold shrunk from 30 s to 1 s.
SHORT_STABLE_RUN = "import cachenet.dhcp.server as server; server.STABLE_RUN = 1.0"


def kill_dnsmasq(network):
    """SIGKILL the running dnsmasq; returns its pid and when it was killed."""
    pid = network.dnsmasq_pid()
    os.kill(pid, signal.SIGKILL)
    return pid, time.monotonic()


def wait_for_restart(network, old_pid, timeout=15):
    wait_for(lambda: network.dnsmasq_pid() not in (None, old_pid), "a new dnsmasq", timeout)


def crash_loop(network, deaths):
    """Kill dnsmasq ``deaths`` times, each right after it was restarted."""
    for _ in range(deaths):
        pid, _killed = kill_dnsmasq(network)
        wait_for_restart(network, pid)


def test_sigterm_during_the_restart_backoff_stops_at_once(cache_network):
    cache_network.start_server()
    crash_loop(cache_network, 3)  # backoffs 0.5, 1 and 2 s: the next one is 4 s
    kill_dnsmasq(cache_network)
    log = cache_network.tmp_path / "serve.log"
    wait_for(lambda: log.read_text().count("dnsmasq exited") == 4, "the 4th death")
    started = time.monotonic()
    cache_network.server.send_signal(signal.SIGTERM)
    assert cache_network.server.wait(timeout=10) == 0
    assert time.monotonic() - started < 1.5
    assert "dnsmasq started" not in log.read_text().split("dnsmasq exited")[-1]  # no 5th start


def test_the_backoff_starts_over_after_dnsmasq_ran_stably(cache_network):
    log = open(cache_network.tmp_path / "serve.log", "w")  # noqa: SIM115 - closed with the process
    cache_network.server = start_cachenet(cache_network.conf, "dhcp", "serve",
                                          ns=cache_network.server_ns, log=log,
                                          patch=SHORT_STABLE_RUN)  # fmt: skip
    wait_for(lambda: cache_network.dnsmasq_pid() is not None, "dnsmasq to start")
    crash_loop(cache_network, 3)  # without the reset, the next backoff would be 4 s
    time.sleep(1.5)  # longer than the (shrunk) stable run
    pid, killed = kill_dnsmasq(cache_network)
    wait_for_restart(cache_network, pid)
    assert time.monotonic() - killed < 2.5  # the minimum backoff, 0.5 s, and the start
