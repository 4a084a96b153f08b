"""A cache network on one machine, built with cachenet's own commands.

- the cache bridge ``<prefix>br`` (Linux bridge or OVS on the netdev datapath),
  built by ``cachenet bridge ensure`` with the uplink ``<prefix>up``;
- a cache node: the network namespace ``<prefix>-node`` holding the uplink's
  peer ``<prefix>cn`` (the first address of each subnet of the pool: 10.77.0.1,
  and fd00:77::1 on a dual-stack pool) and running ``cachenet dhcp serve``;
- tiny VMs under libvirt whose cache NIC ``cachenet attach`` (or the agent) adds.

Every name starts with the prefix and everything is removed by ``close()``.
Traffic stays inside the namespace and the bridge.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid as uuidlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import libvirt

from harness import netns
from harness.cli import run_cachenet, start_cachenet
from harness.guest import Guest, build_guest, console_lines, domain_xml
from harness.wait import WaitTimeout, wait_for

SUBNET = "10.77.0.0/24"
PREFIX6 = "fd00:77::/64"
DUAL_STACK = (SUBNET, PREFIX6)  # a pool (the ``subnet`` option) with both families
NODE_ADDRESS = "10.77.0.1"
GO_ADDRESS = "10.77.0.2"  # guests waiting with ``await:`` go on once it answers
IFA_F_NODAD = 0x02  # the node's IPv6 addresses are usable at once (no one else claims them)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def node_address_in(network: Network) -> Address:
    """The cache node's address in one subnet or prefix of the pool."""
    return network[1]


def go_address_in(network: Network) -> Address:
    """The address ``signal_guests`` adds to the node in a subnet or prefix."""
    return network[2]


class CacheLab:
    def __init__(
        self, prefix: str, bridge_type: str = "linuxbridge", ovsdb: str | None = None,
        libvirt_uri: str = "qemu:///system", echo: Callable[[str], object] | None = None,
        subnets: Sequence[str] = (SUBNET,),
    ) -> None:  # fmt: skip
        """``subnets``: the pool, IPv4 subnets and IPv6 prefixes (``DUAL_STACK``)."""
        self.prefix = prefix
        self.subnets: tuple[Network, ...] = tuple(ipaddress.ip_network(s) for s in subnets)
        self.echo = echo  # shows each cachenet command as it runs (the demo)
        self.bridge_type = bridge_type
        # World-readable: dnsmasq and QEMU read files here as their own users.
        self.state = Path(tempfile.mkdtemp(prefix=f"cachenet-{prefix}-"))
        self.state.chmod(0o755)
        self.node_ns = f"{prefix}-node"
        self.bridge = f"{prefix}br"
        self.uplink = f"{prefix}up"
        self.conf = self.state / "cachenet.conf"
        self.conf.write_text(self._config(ovsdb, libvirt_uri))
        self.conn = libvirt.open(libvirt_uri)
        self.guest: Guest = build_guest()
        self.domains: list[str] = []
        self._servers: list[subprocess.Popen[bytes]] = []
        self._cleanup = contextlib.ExitStack()

    def _config(self, ovsdb: str | None, libvirt_uri: str) -> str:
        lines = [
            "[cachenet]",
            f"bridge = {self.bridge}",
            f"bridge_type = {self.bridge_type}",
            f"uplink = {self.uplink}",
            f"subnet = {', '.join(str(s) for s in self.subnets)}",
            f"database = sqlite:///{self.state}/ports.sqlite",
            f"dhcp_interface = {self.prefix}cn",
            f"dhcp_state_dir = {self.state}/dhcp",
            f"libvirt_uri = {libvirt_uri}",
            f"agent_selector = name:{self.prefix}-*",
        ]
        # The node's and the go addresses, and room for more, are no instance's.
        reserved = [f"{s[1]}-{s[9]}" for s in self.subnets if s.version == 4]
        if reserved:
            lines.append(f"reserved = {', '.join(reserved)}")
        if self.bridge_type == "ovs":
            lines += ["datapath_type = netdev", f"ovsdb_connection = {ovsdb}"]
        return "\n".join(lines) + "\n"

    # --- the network -----------------------------------------------------------

    def build(self) -> None:
        """Cache node namespace, uplink, bridge, DHCP server."""
        self._cleanup.callback(shutil.rmtree, self.state, ignore_errors=True)
        self._cleanup.enter_context(netns.namespace(self.node_ns))
        netns.add_veth(self.uplink, f"{self.prefix}cn", peer_ns=self.node_ns)
        self._cleanup.callback(netns.delete_link, self.uplink)
        for network in self.subnets:
            self._add_node_address(node_address_in(network), network.prefixlen)
        if self.bridge_type == "ovs":
            netns.tx_offload_off(self.uplink)
            netns.tx_offload_off(f"{self.prefix}cn", ns=self.node_ns)
        self._cleanup.callback(self.cachenet, "bridge", "teardown", "--force")
        built = self.cachenet("bridge", "ensure", check=True)
        if self.echo is not None:
            self.echo(built.strip())
        self.start("dhcp", "serve", ns=self.node_ns)
        wait_for(lambda: (self.state / "dhcp" / "dnsmasq.pid").exists(), "dnsmasq", 15)

    def _add_node_address(self, address: Address, prefixlen: int) -> None:
        flags = IFA_F_NODAD if address.version == 6 else 0
        netns.add_address(f"{self.prefix}cn", str(address), prefixlen, ns=self.node_ns,
                          flags=flags)  # fmt: skip

    def node_addresses(self, version: int) -> list[str]:
        """The cache node's addresses of one family (one per subnet or prefix)."""
        return [str(node_address_in(s)) for s in self.subnets if s.version == version]

    def close(self) -> None:
        for name in self.domains:
            self._remove_domain(name)
        for server in self._servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
        self._cleanup.close()
        self.conn.close()

    # --- commands ----------------------------------------------------------------

    def cachenet(self, *args: str, ns: str | None = None, check: bool = False) -> str:
        """Run a cachenet command with the lab's config; its stdout."""
        self._show(args, ns)
        result = run_cachenet(self.conf, *args, ns=ns)
        if check and result.returncode != 0:
            raise RuntimeError(f"cachenet {' '.join(args)} failed: {result.stderr.strip()}")
        return str(result.stdout)

    def start(self, *args: str, ns: str | None = None) -> subprocess.Popen[bytes]:
        """Start a long-running cachenet command (dhcp serve, agent); stopped by close()."""
        self._show(args, ns)
        log = open(self.state / f"{args[0]}.log", "ab")  # noqa: SIM115 - lives with the process
        process = start_cachenet(self.conf, *args, ns=ns, log=log)
        self._servers.append(process)
        return process

    def start_agent(self) -> Path:
        """``cachenet agent``, as a plain libvirt host runs it, once it has reconciled;
        returns its log file."""
        self.start("agent")
        log = self.state / "agent.log"
        wait_for(lambda: "reconciled" in log.read_text(), "the agent", 20)
        return log

    def _show(self, args: tuple[str, ...], ns: str | None) -> None:
        if self.echo is not None:
            where = f"ip netns exec {ns} " if ns else ""
            self.echo(f"[dim]$ {where}cachenet {' '.join(args)}[/]")

    # --- virtual machines ------------------------------------------------------------

    def define(self, short_name: str, uuid: str | None = None, **options: str) -> libvirt.virDomain:
        """Define a VM (no NIC yet) that reports to ``<state>/<name>.console``.

        ``uuid``: an instance whose port is already allocated (``allocate``), so
        that its options can name other VMs' addresses. The guest pings the cache
        node's first address of each family of the pool (``node``, ``node6``).
        """
        name = f"{self.prefix}-{short_name}"
        for option, version in (("node", 4), ("node6", 6)):
            if self.node_addresses(version):
                options.setdefault(option, self.node_addresses(version)[0])
        xml = domain_xml(name, self.guest, self.console(name), options, uuid=uuid)
        domain = self.conn.defineXML(xml)
        self.domains.append(name)
        return domain

    def allocate(self) -> dict[str, Any]:
        """A port for a new instance (``cachenet ports allocate``), before its domain exists."""
        instance = str(uuidlib.uuid4())
        port: dict[str, Any] = json.loads(
            self.cachenet("ports", "allocate", instance, "--json", check=True)
        )
        return port

    def _remove_domain(self, name: str, timeout: float = 10) -> None:
        """Destroy and undefine ``name``, until libvirt no longer knows it.

        A guest that powers itself off can still be shutting down when we look:
        ``destroy`` then fails with "domain is not running" while the domain is
        still active, so each step is retried until the domain is gone.
        """

        def gone() -> bool:
            # Listing rather than looking up: a failed lookup prints libvirt's error.
            found = [d for d in self.conn.listAllDomains() if d.name() == name]
            for domain in found:
                with contextlib.suppress(libvirt.libvirtError):
                    if domain.isActive():
                        domain.destroy()
                with contextlib.suppress(libvirt.libvirtError):
                    if domain.isPersistent():
                        domain.undefine()
            return not found

        try:
            wait_for(gone, f"the domain {name} to go", timeout, interval=0.1)
        except WaitTimeout:
            # Keep cleaning up the rest; the leftover is named for the operator.
            print(f"warning: could not remove the domain {name}", file=sys.stderr)

    # --- what the cache node sees (port security checks) -------------------------------

    def node_mac(self) -> str:
        return self._node_ip("-o", "link", "show", f"{self.prefix}cn").split("link/ether ")[1][:17]

    def node_neighbour(self, address: str) -> str | None:
        """The MAC the cache node would send ``address``'s traffic to, if it has one."""
        found = re.search(r"lladdr (\S+)", self._node_ip("neigh", "show", address))
        return found.group(1) if found else None

    def node_ipv6_default_route(self) -> str:
        """The cache node's IPv6 default route ("" for none): a router advertisement's trace."""
        return self._node_ip("-6", "route", "show", "default").strip()

    def node_addresses_in(self, prefix: str) -> list[str]:
        """The node's addresses in ``prefix``: SLAAC from someone's router advertisement."""
        shown = self._node_ip("-6", "-o", "addr", "show", "dev", f"{self.prefix}cn")
        found = (ipaddress.IPv6Address(a) for a in re.findall(r"inet6 ([0-9a-f:]+)/", shown))
        return [str(a) for a in found if a in ipaddress.IPv6Network(prefix)]

    def host_ipv6_addresses(self) -> dict[str, list[str]]:
        """The compute host's own IPv6 addresses on its bridge and uplink (link-local
        included): addresses an instance could reach the host at."""
        from cachenet import hostnet

        with hostnet.route() as ipr:
            return {
                device: [str(a) for a in hostnet.ipv6_addresses(ipr, link.index)]
                for device in (self.bridge, self.uplink)
                if (link := hostnet.find_link(ipr, device)) is not None
            }

    def seed_node_neighbour(self, address: str, mac: str) -> None:
        """A stale entry, as if the node had talked to ``address``: ARP may override it."""
        self._node_ip("neigh", "replace", address, "lladdr", mac, "dev", f"{self.prefix}cn",
                      "nud", "stale")  # fmt: skip

    def dhcp_offer_to_node(self, seconds: int = 4) -> str | None:
        """Ask for an address as a DHCP client on the cache node's NIC.

        The node's own dnsmasq serves reservations only (and does not see what its
        NIC sends), so any lease is a rogue server's: "<address> from <server>".
        """
        script = self.state / "probe-dhcp.sh"
        script.write_text('#!/bin/sh\n[ "$1" = bound ] && echo "$ip from $serverid"\nexit 0\n')
        script.chmod(0o755)
        result = subprocess.run(
            ["ip", "netns", "exec", self.node_ns, "busybox", "udhcpc", "-i", f"{self.prefix}cn",
             "-n", "-q", "-f", "-t", str(seconds), "-T", "1", "-A", "1", "-s", str(script)],
            capture_output=True, text=True, check=False, timeout=seconds + 10,
        )  # fmt: skip
        lines = [line for line in result.stdout.splitlines() if " from " in line]
        return lines[0].strip() if lines else None

    def go_address(self) -> str:
        """The address for guests to ``await:`` (in the pool's first subnet or prefix)."""
        return str(go_address_in(self.subnets[0]))

    def signal_guests(self) -> None:
        """Let guests waiting with ``behave=await:A`` go on: the node answers A, the go
        address of each subnet or prefix (``GO_ADDRESS`` in ``SUBNET``)."""
        for network in self.subnets:
            self._add_node_address(go_address_in(network), network.max_prefixlen)

    def _node_ip(self, *args: str) -> str:
        return subprocess.run(["ip", "-n", self.node_ns, *args], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip

    def console(self, name: str) -> Path:
        return self.state / f"{name}.console"

    def report(self, name: str) -> list[str]:
        return console_lines(self.console(name))

    def wait_done(self, name: str, timeout: float = 120) -> list[str]:
        """The guest's report once it printed DONE (it powers off right after)."""
        wait_for(lambda: "CACHENET DONE" in self.report(name), f"{name} to finish", timeout)
        return self.report(name)


def lease_of(report: list[str]) -> tuple[str, str] | None:
    """(address, mac) from a guest report's LEASE line."""
    for line in report:
        parts = line.split()
        if parts[:2] == ["CACHENET", "LEASE"] and len(parts) >= 5:
            return parts[3], parts[4]
    return None


def server_of(report: list[str]) -> str | None:
    """The DHCP server that gave the guest its lease (its SERVER line)."""
    return _field(report, "SERVER", 3)


def node_neighbour_of(report: list[str]) -> str | None:
    """The MAC the guest held for the cache node as it finished (its NEIGH line)."""
    return _field(report, "NEIGH", 3)


def behaviour(report: list[str], name: str) -> str | None:
    """The result of a misbehaviour (``cachenet.behave``): the last word of its line.

    "yes"/"no" for spoof-ip and spoof-mac (did the node answer), "claiming" for
    garp, "serving" for rogue-dhcp; None when the guest did not report it.
    """
    for line in report:
        parts = line.split()
        if len(parts) >= 3 and parts[1] == name:
            return parts[-1].rsplit("=", 1)[-1]
    return None


def reached(report: list[str]) -> dict[str, bool]:
    """Per address pinged with ``reach:``: whether it answered."""
    found = {}
    for line in report:
        parts = line.split()
        if parts[:2] == ["CACHENET", "reach"] and len(parts) == 3 and "=" in parts[2]:
            address, answer = parts[2].split("=", 1)
            found[address] = answer == "yes"
    return found


def ipv6_addresses_of(report: list[str]) -> list[str] | None:
    """The global IPv6 addresses the guest's NIC held (its IPV6 line; [] for none)."""
    for line in report:
        parts = line.split()
        if parts[:2] == ["CACHENET", "IPV6"]:
            return [] if parts[3:] == ["none"] else parts[3:]
    return None


def ipv6_default_route_of(report: list[str]) -> str | None:
    """The IPv6 default route the guest learned ("none" for none; its DEFAULT6 line)."""
    for line in report:
        if line.startswith("CACHENET DEFAULT6 "):
            return line.removeprefix("CACHENET DEFAULT6 ")
    return None


def reached_from(report: list[str], name: str, address: str) -> dict[str, bool]:
    """Per target pinged from the forged ``address`` (``spoof-ip6:address+...``):
    whether it answered ("cache-node" for the node)."""
    found = {}
    for line in report:
        parts = line.split()
        if parts[1:4] == [name, address, "reach"] and len(parts) == 5 and "=" in parts[4]:
            target, answer = parts[4].split("=", 1)
            found[target] = answer == "yes"
    return found


def _field(report: list[str], tag: str, index: int) -> str | None:
    for line in report:
        parts = line.split()
        if parts[:2] == ["CACHENET", tag] and len(parts) > index:
            return parts[index]
    return None


def outcome(report: list[str], check: str) -> str | None:
    """'ok' or 'fail' for PING, PING6, PEER or SPOOF in a guest report."""
    for line in report:
        parts = line.split()
        if parts[:2] == ["CACHENET", check] and len(parts) >= 3:
            return parts[2]
    return None
