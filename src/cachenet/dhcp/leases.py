"""dnsmasq's lease file: joined with the store (who holds which address, until when),
and seeded with every reservation before dnsmasq starts.

Why seed: with several DHCP servers, none is authoritative (each would NAK the
others' clients), and a non-authoritative dnsmasq ignores a REBIND for which
it has no lease. A client whose server died would lose its address at the end
of its lease. A lease file holding every reservation (``0 MAC IP * *``, expiry
0 = infinite, as Neutron writes it) makes every server ACK that rebind.
cachenet never grants an infinite lease (dhcp_lease_time has a maximum), so an
expiry of 0 marks a seed: a lease this server has not granted (yet).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cachenet.dhcp.hostsdir import _atomic_write, is_own
from cachenet.errors import privilege_needed
from cachenet.port import Port

SEED_EXPIRY = "0"


@dataclass(frozen=True)
class Lease:
    mac: str
    address: str
    expires: datetime
    hostname: str | None
    instance_uuid: str | None  # from the store; None: no port has this MAC any more

    def as_dict(self) -> dict[str, str | None]:
        return {
            "mac": self.mac,
            "address": self.address,
            "instance_uuid": self.instance_uuid,
            "expires": self.expires.isoformat(),
            "hostname": self.hostname,
        }


def read_leases(path: Path, ports: list[Port]) -> list[Lease]:
    """Leases this server granted, from the file at ``path`` (none if it does not
    exist yet), sorted by address; seeds are left out.

    Each line: ``<expiry epoch> <mac> <ip> <hostname|*> <client-id|*>``.
    """
    with privilege_needed(f"this user may not read dnsmasq's leases {path}: run it as root"):
        if not path.exists():
            return []
        text = path.read_text()
    by_mac = {p.mac: p.instance_uuid for p in ports}
    leases = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] in ("duid", SEED_EXPIRY):
            continue
        expiry, mac, address, hostname = fields[:4]
        leases.append(
            Lease(
                mac=mac.lower(),
                address=address,
                expires=datetime.fromtimestamp(int(expiry), UTC),
                hostname=None if hostname == "*" else hostname,
                instance_uuid=by_mac.get(mac.lower()),
            )
        )
    return sorted(leases, key=lambda lease: tuple(int(o) for o in lease.address.split(".")))


def reservations_in(hosts: Path) -> dict[str, str]:
    """MAC -> address of the reservation files cachenet wrote in ``hosts``."""
    found = {}
    for entry in hosts.iterdir():
        if is_own(entry.name) and entry.is_file() and not entry.is_symlink():
            mac, address, *_ = entry.read_text().strip().split(",")
            found[mac.lower()] = address
    return found


def seed_lease_file(path: Path, reservations: dict[str, str]) -> None:
    """Rewrite the lease file (dnsmasq stopped) to hold a lease for each reservation.

    A lease dnsmasq granted for a reservation is kept as it is (its expiry, host
    name, client id); every other reservation gets a seed; a line for a MAC no
    longer reserved, or for another address, is dropped.
    """
    kept = [line for line in _lines(path) if _granted_for(line, reservations)]
    held = {line.split()[1].lower() for line in kept}
    seeds = [
        f"{SEED_EXPIRY} {mac} {address} * *"
        for mac, address in sorted(reservations.items())
        if mac not in held
    ]
    _atomic_write(path, "".join(f"{line}\n" for line in [*kept, *seeds]))


def _lines(path: Path) -> Iterable[str]:
    return path.read_text().splitlines() if path.exists() else []


def _granted_for(line: str, reservations: dict[str, str]) -> bool:
    fields = line.split()
    if len(fields) < 4 or fields[0] in ("duid", SEED_EXPIRY):
        return False
    return reservations.get(fields[1].lower()) == fields[2]
