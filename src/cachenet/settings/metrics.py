"""Where ``dhcp serve``, ``agent`` and nova-compute serve their Prometheus metrics."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from oslo_config import cfg

from cachenet.settings.reading import Area, Values, shown_value

OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "metrics_listen",
        help="ADDRESS:PORT (IPv6: [ADDRESS]:PORT) on which `cachenet dhcp serve`, "
        "`cachenet agent` and nova-compute (cachenet's driver) serve Prometheus metrics at "
        "/metrics (e.g. 127.0.0.1:9464). Unset: no metrics.",
    ),
]


@dataclass(frozen=True)
class MetricsSettings(Area):
    """The metrics listener (None: no metrics are served)."""

    listen: str | None = field(metadata={"option": "metrics_listen"})


def parse(v: Values, problems: list[str]) -> MetricsSettings | None:
    """The metrics settings of the values read, or None with ``problems`` saying why."""
    listen = v["metrics_listen"]
    if listen is not None:
        try:
            split_listen(str(listen))
        except ValueError:
            problems.append(
                f"metrics_listen {shown_value(listen)} is not ADDRESS:PORT ([ADDRESS]:PORT "
                "for IPv6) with a port between 1 and 65535"
            )
            return None
    return MetricsSettings(listen=listen)


def split_listen(text: str) -> tuple[str, int]:
    """ADDRESS:PORT (an IPv6 address in brackets) as (address, port); ValueError if not."""
    host, _, port = text.rpartition(":")
    address = ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    if isinstance(address, ipaddress.IPv6Address) != host.startswith("["):
        raise ValueError(f"{text} is not ADDRESS:PORT")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text} has no port between 1 and 65535")
    return str(address), int(port)
