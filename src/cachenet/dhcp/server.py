"""``cachenet dhcp serve``: dnsmasq answering only for reserved MACs, supervised.

dnsmasq runs with no config file of its own, DNS off, bound to one interface,
in static-only mode: a client gets an address only if the store gave its MAC
one. This process restarts dnsmasq when it dies, reloads it (SIGHUP) when a
reservation is removed or changed, and stops it on SIGTERM or SIGINT.

When the store cannot be reached, dnsmasq goes on serving the reservations
already written (instances keep renewing their leases) while the sync retries;
once the store answers again, the directory is resynced in full.

On PostgreSQL the store announces each change as it commits (LISTEN/NOTIFY,
``cachenet.store.notify``): a reservation is written as soon as its port is
allocated, and the store is polled only every POLL_WHILE_LISTENING as a safety
net. Elsewhere, or while the listening session is lost, it is polled every
POLL_INTERVAL.

Several nodes may serve one cache network (``dhcp_authoritative`` false, the
default): each dnsmasq starts with a lease file seeded with every reservation
(see ``cachenet.dhcp.leases``), so it ACKs the rebind of a client another
server leased to, once that server is gone.

With IPv6 prefixes in the pool, dnsmasq also sends router advertisements
(``cachenet.dhcp.router_adverts``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from cachenet import hostnet, metrics
from cachenet.dhcp import router_adverts
from cachenet.dhcp.hostsdir import HostsDir, refuse_symlinks
from cachenet.dhcp.leases import reservations_in, seed_lease_file
from cachenet.dhcp.sync import ReservationSync
from cachenet.errors import DhcpError, PrivilegeError, StoreError, refused
from cachenet.settings import DhcpSettings, NetworkSettings
from cachenet.store import PortStore
from cachenet.store.addresses import AddressPool
from cachenet.store.notify import ChangeListener

LOG = logging.getLogger(__name__)
POLL_INTERVAL = 0.2  # seconds between looks at the store: a change is served well within 1 s
# ... while PostgreSQL announces every change: only a safety net then.
POLL_WHILE_LISTENING = 2.0  # seconds
RESTART_BACKOFF_MIN = 0.5  # seconds before restarting a dnsmasq that died
RESTART_BACKOFF_MAX = 10.0  # ... doubling while it keeps dying, up to this
STABLE_RUN = 30.0  # seconds: a dnsmasq that ran this long is restarted after the minimum again
STORE_DOWN_LOG_EVERY = 60.0  # seconds between repeats of "the store is still down"
# dnsmasq reads its lease file only when it starts, and a non-authoritative
# dnsmasq ignores a REBIND it holds no lease for (rfc2131.c: "A client rebinding
# will broadcast the request [...] Just ignore it"; measured with 2.90: the client
# of a port allocated after this server started, leased by another server that
# then died, is not answered and loses its address). SIGHUP does not reread the
# lease file, and the other ways in (DBus AddDhcpLease, a --leasefile-ro script's
# "init") also need a running bus or a restart. So new reservations are seeded by
# restarting dnsmasq, batched: at most once per RESEED_DELAY. The new client is
# served at once (the hostsdir is read through inotify); its seed is needed only
# when it rebinds, no sooner than 7/8 of a lease (>= 105 s) after it was leased.
# A restart leaves dnsmasq deaf for about 40 ms (measured); clients retransmit.
RESEED_DELAY = 5.0  # seconds


def hosts_dir(dhcp: DhcpSettings) -> Path:
    return dhcp.state_dir / "hosts"


def lease_file(dhcp: DhcpSettings) -> Path:
    return dhcp.state_dir / "leases"


def pid_file(dhcp: DhcpSettings) -> Path:
    return dhcp.state_dir / "dnsmasq.pid"


def dnsmasq_command(dhcp: DhcpSettings, network: NetworkSettings, executable: str) -> list[str]:
    """dnsmasq's command line serving ``network`` as ``dhcp`` says (pure).

    One static range per subnet of the pool, each tagged: a client gets its
    own subnet's netmask (dnsmasq answers from the range its address is in),
    and the router only if it lies in that subnet (a router elsewhere would
    not be on-link). An IPv6-only pool has no range nor DHCPv4 option: dnsmasq
    then only sends router advertisements (and opens no DHCPv4 socket).
    """
    command = [
        executable,
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--port=0",  # DNS off
        "--no-resolv",
        "--no-hosts",
        f"--interface={dhcp.interface}",
        "--bind-interfaces",
        *(
            f"--dhcp-range=set:{_range_tag(i)},{subnet.network_address},static,"
            f"{subnet.netmask},{dhcp.lease_time}s"
            for i, subnet in enumerate(network.subnets)
        ),
        f"--dhcp-hostsdir={hosts_dir(dhcp)}",
        f"--dhcp-leasefile={lease_file(dhcp)}",
        f"--pid-file={pid_file(dhcp)}",
        "--log-facility=-",
        "--log-dhcp",
    ]
    if network.subnets:
        command += _dhcpv4_options(dhcp, network)
    return command + router_adverts.dnsmasq_options(dhcp, network)


def _dhcpv4_options(dhcp: DhcpSettings, network: NetworkSettings) -> list[str]:
    """What DHCPv4 clients get beside their address (the pool's IPv4 subnets)."""
    command = []
    if dhcp.authoritative:  # a single server: several would NAK each other's clients
        command.append("--dhcp-authoritative")
    command.append("--dhcp-option=3")  # no router, unless the client's range has one:
    router = dhcp.router
    for i, subnet in enumerate(network.subnets):
        if router is not None and router in subnet:  # a tagged option beats the untagged one
            command.append(f"--dhcp-option=tag:{_range_tag(i)},option:router,{router}")
    dns = ",".join(str(d) for d in dhcp.dns_servers)
    command.append(f"--dhcp-option=option:dns-server,{dns}" if dns else "--dhcp-option=6")
    if network.mtu:
        command.append(f"--dhcp-option=option:mtu,{network.mtu}")
    return command


def preflight(dhcp: DhcpSettings, network: NetworkSettings) -> str:
    """Check what dnsmasq needs before starting it; returns the dnsmasq executable."""
    if os.geteuid() != 0:  # not a failure to retry forever: dnsmasq would exit at once
        raise PrivilegeError(
            "dhcp serve needs root: dnsmasq binds the DHCP port and then drops to its own "
            "user; run it as root (the cachenet-dhcp unit does)"
        )
    executable = shutil.which(dhcp.dnsmasq)
    if executable is None:
        raise DhcpError(f"dnsmasq not found ({dhcp.dnsmasq!r}); install dnsmasq-base")
    interface = dhcp.interface
    if not interface:
        raise DhcpError("dhcp_interface is not set: name the interface on the cache network")
    own, own6 = _interface_addresses(interface)
    _check_own_addresses(interface, own, network)
    router_adverts.check_own_addresses(interface, own6, network)
    _check_writable(dhcp.state_dir)
    _check_readable_by_dnsmasq(hosts_dir(dhcp))
    return executable


def _range_tag(index: int) -> str:
    """dnsmasq's tag of the ``index``-th subnet's range."""
    return f"cachenet{index}"


def _check_own_addresses(
    interface: str, own: list[ipaddress.IPv4Address], network: NetworkSettings
) -> None:
    """dnsmasq answers on a subnet only through an address of its own in it; and no
    address of this server may be one the store hands to an instance."""
    for subnet in network.subnets:
        if not any(a in subnet for a in own):
            raise DhcpError(f"interface {interface} has no address in the cache subnet {subnet}")
    pool = AddressPool.from_settings(network)
    allocatable = [a for a in own if pool.is_allocatable(a)]
    if allocatable:
        raise DhcpError(
            f"this server's address {allocatable[0]} could be handed to an instance: "
            "add it to reserved"
        )


def _interface_addresses(
    interface: str,
) -> tuple[list[ipaddress.IPv4Address], list[ipaddress.IPv6Address]]:
    # pyroute2 is loaded (by hostnet.route) only by serve: `dhcp sync --once` and
    # `dhcp leases` need no netlink.
    with hostnet.route() as ipr:
        link = hostnet.find_link(ipr, interface)
        if link is None:
            raise DhcpError(f"interface {interface} does not exist")
        return hostnet.ipv4_addresses(ipr, link.index), hostnet.ipv6_addresses(ipr, link.index)


def _check_readable_by_dnsmasq(directory: Path) -> None:
    """dnsmasq drops root for its own user, which must still reach the reservations."""
    for path in [directory, *directory.parents]:
        if not path.stat().st_mode & stat.S_IXOTH:
            raise DhcpError(
                f"dnsmasq's unprivileged user cannot reach {directory}: {path} is not "
                "searchable by others (chmod o+x)"
            )


def _check_writable(state_dir: Path) -> None:
    hosts = state_dir / "hosts"
    try:
        refuse_symlinks(hosts)  # before mkdir: nothing is created where a link points
        hosts.mkdir(parents=True, exist_ok=True)
        probe = hosts / ".probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        if refused(exc):
            raise PrivilegeError(
                f"this user may not write reservations under dhcp_state_dir {state_dir}: "
                "run it as root (the cachenet-dhcp unit does) or as the directory's owner"
            ) from None
        raise DhcpError(f"cannot write reservations under {state_dir}: {exc.strerror}") from None


class DhcpServer:
    """dnsmasq plus the reservation sync, until ``stop()`` or a signal."""

    def __init__(
        self,
        dhcp: DhcpSettings,
        network: NetworkSettings,
        store: PortStore,
        poll_while_listening: float = POLL_WHILE_LISTENING,
    ) -> None:
        self.dhcp = dhcp
        self.network = network
        self.executable = preflight(dhcp, network)
        self.sync = ReservationSync(store, HostsDir(hosts_dir(dhcp)))
        self.listener = ChangeListener.for_engine(store.engine)
        self.poll_while_listening = poll_while_listening
        self._announced = False  # a change was announced since the last look
        self._looked_at = 0.0
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._backoff = RESTART_BACKOFF_MIN
        self._started_at = 0.0
        self._store_down_since: float | None = None
        self._store_down_logged = -STORE_DOWN_LOG_EVERY
        self._seeded: set[str] = set()  # reservation files the lease file was seeded from
        self._unseeded_since: float | None = None

    def serve(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        # Listening before the first read: nothing committed in between is missed.
        if self.listener is not None:
            self.listener.start()
        # Reservations first, so the first client is answered right; with the
        # store down, those written before are served until it is back.
        self._sync(self.sync.full)
        self._looked_at = time.monotonic()
        self._start()
        try:
            while not self._stopping:
                self._tick()
                self._await_change()
        finally:
            if self.listener is not None:
                self.listener.close()
            self._stop_dnsmasq()

    def stop(self) -> None:
        self._stopping = True

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.stop()

    def _await_change(self) -> None:
        """Wait one POLL_INTERVAL, ending at once when the store announces a change."""
        if self.listener is None:
            time.sleep(POLL_INTERVAL)
        else:
            self._announced = self.listener.wait(POLL_INTERVAL)

    def _store_due(self) -> bool:
        """Whether to read the store now: a change was announced, or the poll is due."""
        listening = self.listener is not None and self.listener.listening
        interval = self.poll_while_listening if listening else POLL_INTERVAL
        now = time.monotonic()
        if not self._announced and now - self._looked_at < interval:
            return False
        self._announced = False
        self._looked_at = now
        return True

    def _tick(self) -> None:
        # Back from an outage: resync in full, the change log may have gaps.
        step = self.sync.full if self._store_down_since is not None else self.sync.step
        if self._store_due() and self._sync(step) and self.process is not None:
            self.process.send_signal(signal.SIGHUP)
        if self.process is not None and self.process.poll() is not None:
            self._restart_dnsmasq(self.process.returncode)
        elif self._reseed_due():
            LOG.info("restarting dnsmasq to seed the leases of %d new reservations",
                     len(self.sync.hostsdir.names() - self._seeded))  # fmt: skip
            self._stop_dnsmasq()
            metrics.dnsmasq_restarted("reseed")
            self._start()

    def _reseed_due(self) -> bool:
        """Whether new reservations have waited RESEED_DELAY for their seed."""
        if self.dhcp.authoritative:  # an authoritative server ACKs rebinds unseeded
            return False
        if self.sync.hostsdir.names() <= self._seeded:
            self._unseeded_since = None
            return False
        now = time.monotonic()
        if self._unseeded_since is None:
            self._unseeded_since = now
        return now - self._unseeded_since >= RESEED_DELAY

    def _restart_dnsmasq(self, status: int) -> None:
        """Restart a dnsmasq that died, after a backoff that a stable run resets."""
        ran = time.monotonic() - self._started_at
        if ran >= STABLE_RUN:  # not a crash loop: this death is news
            self._backoff = RESTART_BACKOFF_MIN
        LOG.error("dnsmasq exited with status %s after %.0f s; restarting in %.1f s",
                  status, ran, self._backoff)  # fmt: skip
        self._pause(self._backoff)
        self._backoff = min(self._backoff * 2, RESTART_BACKOFF_MAX)
        if not self._stopping:
            metrics.dnsmasq_restarted("exited")
            self._start()

    def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, ending at once (within a poll interval) when stopped.

        Slices of sleep, not an Event: the signal handler that stops us must
        take no lock, or it could deadlock the wait it interrupts.
        """
        deadline = time.monotonic() + seconds
        while not self._stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, POLL_INTERVAL))

    def _sync(self, step: Callable[[], bool]) -> bool:
        """Run a sync step; a store error is logged (once a minute) and changes nothing."""
        try:
            reload = step()
        except StoreError as exc:
            now = time.monotonic()
            if self._store_down_since is None:
                self._store_down_since = now
            if now - self._store_down_logged >= STORE_DOWN_LOG_EVERY:
                self._store_down_logged = now
                LOG.error("%s; serving the %d reservations written before, retrying",
                          exc, len(self.sync.hostsdir.names()))  # fmt: skip
            return False
        metrics.dhcp_synced(len(self.sync.hostsdir.names()))
        if self._store_down_since is not None:
            LOG.info("port store reachable again after %.0f s; reservations resynced",
                     time.monotonic() - self._store_down_since)  # fmt: skip
            self._store_down_since = None
            self._store_down_logged = -STORE_DOWN_LOG_EVERY
        return reload

    def _start(self) -> None:
        self._seed_leases()
        self.process = subprocess.Popen(dnsmasq_command(self.dhcp, self.network, self.executable))
        self._started_at = time.monotonic()
        LOG.info("dnsmasq started (pid %s)", self.process.pid)

    def _seed_leases(self) -> None:
        """Seed the lease file from the reservations served (dnsmasq not running)."""
        self._seeded = self.sync.hostsdir.names()
        self._unseeded_since = None
        seed_lease_file(lease_file(self.dhcp), reservations_in(hosts_dir(self.dhcp)))

    def _stop_dnsmasq(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        pid_file(self.dhcp).unlink(missing_ok=True)


def sync_once(dhcp: DhcpSettings, store: PortStore) -> int:
    """Write the hostsdir from the store once; returns the number of reservations."""
    _check_writable(dhcp.state_dir)
    hostsdir = HostsDir(hosts_dir(dhcp))
    ReservationSync(store, hostsdir).full()
    pid = _running_dnsmasq(dhcp)
    if pid:  # a running server forgets removed reservations only on SIGHUP
        os.kill(pid, signal.SIGHUP)
    return len(hostsdir.names())


def _running_dnsmasq(dhcp: DhcpSettings) -> int | None:
    try:
        pid = int(pid_file(dhcp).read_text().strip())
        os.kill(pid, 0)
    except PermissionError:  # alive, and another user's (root's): `cachenet doctor` as nobody
        return pid
    except (OSError, ValueError):
        return None
    return pid
