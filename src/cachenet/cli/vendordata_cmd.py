"""``cachenet vendordata serve|show``."""

from __future__ import annotations

import click

from cachenet import logs
from cachenet.cli.context import CliContext, pass_cli
from cachenet.guest.service import VendordataServer
from cachenet.guest.vendordata import cloud_config
from cachenet.identity import canonical_uuid


@click.group()
def vendordata() -> None:
    """Vendor data for Nova's DynamicJSON provider: cloud-config for the cache NIC."""


@vendordata.command()
@pass_cli
def serve(cli: CliContext) -> None:
    """Answer Nova's vendordata requests on vendordata_listen:vendordata_port (until SIGTERM)."""
    settings = cli.settings
    # Opened once (schema checked); each request then takes a connection of its
    # own, as every cachenet process but the DHCP poller does.
    store = cli.store
    server = VendordataServer(settings.vendordata, settings.network, store.get)
    logs.configure_daemon()
    logs.log_start("vendordata serve", settings)
    server.serve_until_signalled()


@vendordata.command()
@click.argument("instance_uuid")
@pass_cli
def show(cli: CliContext, instance_uuid: str) -> None:
    """Print the cloud-config an instance gets (empty line if it has no cache port)."""
    port = cli.store.get(canonical_uuid(instance_uuid))
    click.echo(cloud_config(port, cli.settings.network) if port else "", nl=port is None)
