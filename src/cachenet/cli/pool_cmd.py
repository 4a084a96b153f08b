"""``cachenet pool show``: how full each subnet of the cache pool is."""

from __future__ import annotations

import click

from cachenet.cli.context import CliContext, pass_cli
from cachenet.cli.output import emit_mapping, emit_rows, json_option
from cachenet.store.usage import SubnetUsage, ipv4_or_prefix_total, pool_usage

COLUMNS = ["subnet", "size", "used", "free"]


@click.group()
def pool() -> None:
    """The cache pool: the subnets addresses are allocated from, in order."""


@pool.command()
@json_option
@pass_cli
def show(cli: CliContext, as_json: bool) -> None:
    """Per subnet: allocatable addresses (size), ports holding one (used), and free
    (per IPv6 prefix: the MACs left under mac_prefix, each giving one address)."""
    usage = pool_usage(cli.store)
    total = _total(usage)
    if as_json:
        emit_mapping({"subnets": [u.as_dict() for u in usage], "total": total}, as_json=True)
        return
    rows = [*(u.as_dict() for u in usage), {"subnet": "total", **total}]
    emit_rows(rows, COLUMNS, as_json=False, title="cache pool")


def _total(usage: list[SubnetUsage]) -> dict[str, int]:
    usage = ipv4_or_prefix_total(usage)
    return {
        "size": sum(u.size for u in usage),
        "used": sum(u.used for u in usage),
        "free": sum(u.free for u in usage),
    }
