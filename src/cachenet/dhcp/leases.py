"""dnsmasq's lease file, joined with the store (who holds which address, until when)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cachenet.port import Port


@dataclass(frozen=True)
class Lease:
    mac: str
    address: str
    expires: datetime | None  # None: an infinite lease
    hostname: str | None
    instance_uuid: str | None  # from the store; None: no port has this MAC any more

    def as_dict(self) -> dict[str, str | None]:
        return {
            "mac": self.mac,
            "address": self.address,
            "instance_uuid": self.instance_uuid,
            "expires": self.expires.isoformat() if self.expires else None,
            "hostname": self.hostname,
        }


def read_leases(path: Path, ports: list[Port]) -> list[Lease]:
    """Leases of the file at ``path`` (none if it does not exist yet), sorted by address.

    Each line: ``<expiry epoch> <mac> <ip> <hostname|*> <client-id|*>``.
    """
    if not path.exists():
        return []
    by_mac = {p.mac: p.instance_uuid for p in ports}
    leases = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] == "duid":
            continue
        expiry, mac, address, hostname = fields[:4]
        leases.append(
            Lease(
                mac=mac.lower(),
                address=address,
                expires=None if expiry == "0" else datetime.fromtimestamp(int(expiry), UTC),
                hostname=None if hostname == "*" else hostname,
                instance_uuid=by_mac.get(mac.lower()),
            )
        )
    return sorted(leases, key=lambda lease: tuple(int(o) for o in lease.address.split(".")))
