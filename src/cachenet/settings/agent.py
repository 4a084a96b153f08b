"""``cachenet agent`` on plain libvirt hosts: which libvirt, which domains, how often."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from oslo_config import cfg

from cachenet.settings.reading import Area, Values, all_read, shown_value

OPTS: list[cfg.Opt] = [
    cfg.StrOpt("libvirt_uri", default="qemu:///system", help="libvirt connection URI."),
    cfg.StrOpt(
        "agent_selector",
        default="all",
        help="Domains the agent gives a cache NIC: 'all', 'name:<glob>', or "
        "'metadata:<namespace URI>' (domains holding that metadata element).",
    ),
    cfg.IntOpt(
        "agent_reconcile_interval",
        default=60,
        min=1,
        max=86400,
        help="Seconds between the agent's reconciliations (interfaces missing, ports of "
        "vanished domains); also how soon an event missed while the store was down is made up, "
        "and how soon the agent or nova-compute restores lost port security rules.",
    ),
]


@dataclass(frozen=True)
class AgentSettings(Area):
    """The libvirt the agent (and ``ports gc``, ``doctor``) talks to and the agent's rhythm."""

    libvirt_uri: str
    selector: str = field(metadata={"option": "agent_selector"})
    reconcile_interval: int = field(metadata={"option": "agent_reconcile_interval"})


def parse(v: Values, problems: list[str]) -> AgentSettings | None:
    """The agent settings of the values read, or None with ``problems`` saying why."""
    before = len(problems)
    uri = v["libvirt_uri"]
    if uri is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S*", str(uri)):
        problems.append(
            f"libvirt_uri {shown_value(uri)} is not a libvirt URI (e.g. qemu:///system)"
        )
    selector = v["agent_selector"]
    kind, _, arg = str(selector).partition(":")
    if selector is not None and not (selector == "all" or (kind in ("name", "metadata") and arg)):
        problems.append(
            f"agent_selector {shown_value(selector)} is not 'all', 'name:<glob>' or "
            "'metadata:<URI>'"
        )
    if len(problems) > before or not all_read(v, OPTS):
        return None
    return AgentSettings(
        libvirt_uri=str(uri),
        selector=str(selector),
        reconcile_interval=int(v["agent_reconcile_interval"]),
    )
