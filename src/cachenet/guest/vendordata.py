"""Vendor data that makes cloud-init configure the cache NIC (metadata-service clouds).

Why a script and not network config: cloud-init applies network config only
from the datasource (network_data.json); "vendor-data cannot change network
configuration". So the cloud-config carries one ``bootcmd`` script that finds
the NIC by its MAC and configures it.

Why ``bootcmd``:
- it runs at every boot, early (cloud-init.service, before sysinit.target), so
  the cache NIC is up before the user's own ``runcmd``, and a boot where the
  image's network manager ignored the NIC still ends with the address;
- user-data overrides vendor-data key by key (cloud-init merges user-data's
  cloud-config over vendor-data's), and ``bootcmd`` is the command key users set
  least; ``write_files``/``runcmd`` in user-data would silently drop ours.

What the script does, and why that way:
- it writes a persistent configuration for the manager the image uses, matched
  by MAC so a renamed NIC still matches: netplan (Ubuntu; Debian images that
  ship it) -> /etc/netplan/90-cachenet.yaml + ``netplan generate``;
  NetworkManager (RHEL family) -> a keyfile profile; systemd-networkd -> a
  .network file; ifupdown (Debian 12 cloud images) -> an
  /etc/network/interfaces.d stanza for the NIC's current name. Later boots are
  the manager's job, like any of its NICs;
- it then configures the address now with ``ip``: at bootcmd time D-Bus is not
  up yet (cloud-init.service runs before sysinit.target), so ``netplan apply``,
  ``networkctl reload`` or ``nmcli`` cannot be relied on, and starting systemd
  jobs from there can deadlock the boot. ``ip addr replace`` is idempotent.
It never sets a default route or DNS servers on the NIC: the cache network is
for the cache nodes only. IPv6 only on a pool with prefixes (on an IPv6-only
pool, no IPv4 at all: ``$interface`` is the first IPv6 address): the port's EUI-64
address in each prefix, fixed like the IPv4 one, with router advertisements and
temporary (privacy) addresses off and the link-local address formed from the
MAC, since port security lets only those addresses through.
"""

from __future__ import annotations

import textwrap

from cachenet.port import Port
from cachenet.settings import NetworkSettings
from cachenet.store.addresses import subnet_of

NETPLAN_FILE = "/etc/netplan/90-cachenet.yaml"
NETWORKD_FILE = "/etc/systemd/network/10-cachenet.network"
NM_KEYFILE = "/etc/NetworkManager/system-connections/cachenet.nmconnection"
IFUPDOWN_FILE = "/etc/network/interfaces.d/60-cachenet"
CONNECTION_NAME = "cachenet"

# POSIX sh (dash on Debian/Ubuntu). Filled with validated values only: a
# canonical MAC, IPv4 and IPv6 interfaces and an integer MTU; no quoting is needed.
_SCRIPT = """\
# cachenet: configure the cache NIC (MAC {mac}) with {interface}.
mac={mac} interface={interface}
dev=''
for path in /sys/class/net/*; do
  # A physical NIC only: a bridge or VLAN on top of it carries the same MAC.
  if [ -e "$path/device" ] && [ "$(cat "$path/address")" = "$mac" ]; then dev=${{path##*/}}; fi
done
if [ -z "$dev" ]; then echo "cachenet: no NIC with MAC $mac" >&2; exit 1; fi
# put PATH MODE: stdin becomes PATH unless PATH holds it already; true if written.
put() {{
  mkdir -p "${{1%/*}}"
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  chmod "$2" "$tmp" && mv -f "$tmp" "$1"
}}
enabled() {{ systemctl is-enabled --quiet "$1" 2>/dev/null; }}
if command -v netplan >/dev/null 2>&1; then
  if put {netplan_file} 600 <<'EOF'
{netplan}EOF
  then netplan generate; fi
elif command -v nmcli >/dev/null 2>&1 && enabled NetworkManager; then
  put {nm_keyfile} 600 <<'EOF' || true
{nm}EOF
elif enabled systemd-networkd; then
  put {networkd_file} 644 <<'EOF' || true
{networkd}EOF
elif [ -f /etc/network/interfaces ] && command -v ifup >/dev/null 2>&1; then
  # A second stanza for a NIC ifupdown knows (cloud-init's from a config drive,
  # the image's hotplug DHCP) would be a duplicate: leave that one in charge.
  if [ -f {ifupdown_file} ] || ! ifquery "$dev" >/dev/null 2>&1; then
    put {ifupdown_file} 644 <<EOF || true
{ifupdown}EOF
    grep -qs '^source.*/etc/network/interfaces.d/' /etc/network/interfaces ||
      echo 'source /etc/network/interfaces.d/*' >>/etc/network/interfaces
  fi
fi
{mtu_command}{ipv6_sysctls}ip link set dev "$dev" up
ip addr replace "$interface" dev "$dev"
{ipv6_commands}"""

# Before the link comes up: a link-local address from the MAC (addr_gen_mode 0,
# EUI-64), no SLAAC of its own and no temporary addresses (Ubuntu turns those on),
# which port security would drop.
_IPV6_SYSCTLS = """\
for setting in disable_ipv6=0 addr_gen_mode=0 accept_ra=0 autoconf=0 use_tempaddr=0
do
  echo "${{setting#*=}}" >"/proc/sys/net/ipv6/conf/$dev/${{setting%=*}}" || true
done
"""


def cloud_config(port: Port, settings: NetworkSettings) -> str:
    """The ``#cloud-config`` vendor data that gives ``port``'s NIC its address."""
    script = _SCRIPT.format(
        mac=port.mac,
        interface=_interfaces(port, settings)[0],
        netplan_file=NETPLAN_FILE,
        netplan=netplan_config(port, settings),
        nm_keyfile=NM_KEYFILE,
        nm=nm_keyfile(port, settings),
        networkd_file=NETWORKD_FILE,
        networkd=networkd_network(port, settings),
        ifupdown_file=IFUPDOWN_FILE,
        ifupdown=ifupdown_stanza("$dev", port, settings),
        mtu_command=f'ip link set dev "$dev" mtu {settings.mtu}\n' if settings.mtu else "",
        ipv6_sysctls=_IPV6_SYSCTLS.format() if _ipv6_interfaces(port, settings) else "",
        ipv6_commands="".join(
            f'ip -6 addr replace {address} dev "$dev"\n'
            for address in _ipv6_interfaces(port, settings)
            if address != _interfaces(port, settings)[0]  # on an IPv6-only pool, $interface
        ),
    )
    return "#cloud-config\nbootcmd:\n  - |\n" + textwrap.indent(script, "    ")


def netplan_config(port: Port, settings: NetworkSettings) -> str:
    """A netplan document for the NIC matched by MAC (no rename, no route, no DHCP)."""
    mtu = f"      mtu: {settings.mtu}\n" if settings.mtu else ""
    addresses = ", ".join(f'"{a}"' for a in _interfaces(port, settings))
    link_local = "[ipv6]" if _ipv6_interfaces(port, settings) else "[]"
    return (
        "network:\n"
        "  version: 2\n"
        "  ethernets:\n"
        f"    {CONNECTION_NAME}:\n"
        "      match:\n"
        f'        macaddress: "{port.mac}"\n'
        f"      addresses: [{addresses}]\n"
        f"{mtu}"
        "      dhcp4: false\n"
        "      dhcp6: false\n"
        "      accept-ra: false\n"
        f"      link-local: {link_local}\n"
    )


def networkd_network(port: Port, settings: NetworkSettings) -> str:
    """A systemd-networkd .network file for the NIC matched by MAC."""
    link = f"[Link]\nMTUBytes={settings.mtu}\n\n" if settings.mtu else ""
    addresses = "".join(f"Address={a}\n" for a in _interfaces(port, settings))
    link_local = "ipv6" if _ipv6_interfaces(port, settings) else "no"
    return (
        f"[Match]\nMACAddress={port.mac}\n\n{link}"
        f"[Network]\n{addresses}"
        f"LinkLocalAddressing={link_local}\nIPv6AcceptRA=no\n"
    )


def nm_keyfile(port: Port, settings: NetworkSettings) -> str:
    """A NetworkManager keyfile profile bound to the NIC's MAC (NM matches exact MACs)."""
    mtu = f"mtu={settings.mtu}\n" if settings.mtu else ""
    return (
        f"[connection]\nid={CONNECTION_NAME}\ntype=ethernet\nautoconnect=true\n\n"
        f"[ethernet]\nmac-address={port.mac}\n{mtu}\n"
        f"{_nm_ipv4(port, settings)}{_nm_ipv6(port, settings)}"
    )


def _nm_ipv4(port: Port, settings: NetworkSettings) -> str:
    interface = _interface(port, settings)
    if interface is None:
        return "[ipv4]\nmethod=disabled\n\n"
    return (
        f"[ipv4]\nmethod=manual\naddress1={interface}\nnever-default=true\nignore-auto-dns=true\n\n"
    )


def _nm_ipv6(port: Port, settings: NetworkSettings) -> str:
    interfaces = _ipv6_interfaces(port, settings)
    if not interfaces:
        return "[ipv6]\nmethod=ignore\n"
    addresses = "".join(f"address{n}={a}\n" for n, a in enumerate(interfaces, start=1))
    return (
        f"[ipv6]\nmethod=manual\n{addresses}addr-gen-mode=eui64\nip6-privacy=0\n"
        "never-default=true\nignore-auto-dns=true\n"
    )


def ifupdown_stanza(device: str, port: Port, settings: NetworkSettings) -> str:
    """An ifupdown stanza for ``device`` (ifupdown names NICs, it cannot match a MAC)."""
    mtu = f"    mtu {settings.mtu}\n"
    stanzas = [
        f"iface {device} inet static\n    address {address}\n"
        for address in filter(None, [_interface(port, settings)])
    ] + [
        f"iface {device} inet6 static\n    address {address}\n    accept_ra 0\n"
        for address in _ipv6_interfaces(port, settings)
    ]
    if settings.mtu:  # on the first stanza (ifupdown sets the link's MTU once)
        stanzas[0] += mtu
    return f"# cachenet: the cache NIC, MAC {port.mac}\nallow-hotplug {device}\n" + "".join(stanzas)


def _interface(port: Port, settings: NetworkSettings) -> str | None:
    """The port's IPv4 address/prefix length; None on an IPv6-only pool."""
    if port.address is None:
        return None
    return f"{port.address}/{subnet_of(settings, port.address).prefixlen}"


def _ipv6_interfaces(port: Port, settings: NetworkSettings) -> list[str]:
    """The port's EUI-64 address in each IPv6 prefix of the pool, as address/64."""
    return [f"{address}/64" for address in port.ipv6_addresses(settings.ipv6_prefixes)]


def _interfaces(port: Port, settings: NetworkSettings) -> list[str]:
    """Every address of the port, IPv4 first (a port has at least one)."""
    return [*filter(None, [_interface(port, settings)]), *_ipv6_interfaces(port, settings)]
