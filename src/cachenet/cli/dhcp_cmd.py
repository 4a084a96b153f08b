"""``cachenet dhcp serve|sync|leases``."""

from __future__ import annotations

import click

from cachenet import logs, metrics
from cachenet.cli.context import CliContext, pass_cli
from cachenet.cli.output import emit_rows, json_option
from cachenet.dhcp.leases import read_leases
from cachenet.dhcp.server import DhcpServer, lease_file, sync_once
from cachenet.store import open_store


@click.group()
def dhcp() -> None:
    """DHCP for the cache subnet: dnsmasq with the store's reservations."""


@dhcp.command()
@pass_cli
def serve(cli: CliContext) -> None:
    """Run dnsmasq on dhcp_interface and keep its reservations in sync (until SIGTERM)."""
    # It follows the store (and on PostgreSQL listens to it): it keeps its connection.
    store = open_store(cli.settings, hold_connection=True)
    settings = cli.settings
    server = DhcpServer(settings.dhcp, settings.network, store)  # checks the set-up first
    logs.configure_daemon()
    logs.log_start("dhcp serve", settings)
    metrics.serve("dhcp", settings.metrics.listen, store)
    server.serve()


@dhcp.command()
@click.option("--once", is_flag=True, required=True, help="Write the reservations once and exit.")
@pass_cli
def sync(cli: CliContext, once: bool) -> None:
    """Write the reservation directory from the store."""
    count = sync_once(cli.settings.dhcp, cli.store)
    click.echo(f"{count} reservations in {cli.settings.dhcp.state_dir / 'hosts'}")


@dhcp.command()
@json_option
@pass_cli
def leases(cli: CliContext, as_json: bool) -> None:
    """List dnsmasq's leases with the instance each MAC belongs to."""
    rows = [
        lease.as_dict() for lease in read_leases(lease_file(cli.settings.dhcp), cli.store.list())
    ]
    emit_rows(rows, ["mac", "address", "instance_uuid", "expires", "hostname"], as_json, "leases")
