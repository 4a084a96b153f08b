"""``cachenet ports ...`` and ``cachenet db upgrade``: the port store by hand."""

from __future__ import annotations

import click

from cachenet.agent.attach import connect, list_domains
from cachenet.cli.context import CliContext, pass_cli
from cachenet.cli.output import emit_mapping, emit_rows, json_option
from cachenet.errors import StoreError
from cachenet.port import Port
from cachenet.store.engine import make_engine, upgrade

COLUMNS = ["instance_uuid", "mac", "address", "device", "host", "bridge", "created_at"]


@click.group()
def ports() -> None:
    """Allocate, inspect and release instances' cache ports."""


@ports.command()
@click.argument("instance_uuid")
@click.option("--host", help="Host the instance runs on (default: the host setting).")
@json_option
@pass_cli
def allocate(cli: CliContext, instance_uuid: str, host: str | None, as_json: bool) -> None:
    """Give INSTANCE_UUID its port (the existing one if it has one)."""
    _emit(cli.store.allocate(instance_uuid, host or cli.settings.host), as_json)


@ports.command()
@click.argument("instance_uuid")
@json_option
@pass_cli
def show(cli: CliContext, instance_uuid: str, as_json: bool) -> None:
    """Print INSTANCE_UUID's port."""
    port = cli.store.get(instance_uuid)
    if port is None:
        raise StoreError(f"instance {instance_uuid} has no port")
    _emit(port, as_json)


@ports.command(name="list")
@click.option("--host", help="Only ports of this host.")
@json_option
@pass_cli
def list_ports(cli: CliContext, host: str | None, as_json: bool) -> None:
    """List ports, by address."""
    rows = [p.as_dict() for p in cli.store.list(host)]
    emit_rows(rows, COLUMNS, as_json, title="cache ports")


@ports.command()
@click.argument("instance_uuid")
@json_option
@pass_cli
def release(cli: CliContext, instance_uuid: str, as_json: bool) -> None:
    """Free INSTANCE_UUID's address and MAC."""
    port = cli.store.release(instance_uuid)
    if port is None:
        raise StoreError(f"instance {instance_uuid} has no port")
    _emit(port, as_json)


@ports.command()
@click.argument("instance_uuid")
@click.argument("new_host")
@json_option
@pass_cli
def move(cli: CliContext, instance_uuid: str, new_host: str, as_json: bool) -> None:
    """Record that INSTANCE_UUID now runs on NEW_HOST (MAC and address stay)."""
    _emit(cli.store.move(instance_uuid, new_host), as_json)


@ports.command()
@click.option("--host", help="Host whose ports are checked (default: the host setting).")
@click.option(
    "--live",
    "live_file",
    type=click.File(),
    help="File with the UUIDs of the host's live instances, one a line ('-': stdin). "
    "Default: the domains libvirt knows at libvirt_uri (defined or running).",
)
@click.option(
    "--grace",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds a port is kept after allocation even if its instance is not live.",
)
@json_option
@pass_cli
def gc(
    cli: CliContext, host: str | None, live_file: click.File | None, grace: float, as_json: bool
) -> None:
    """Release the ports of a host whose instances are gone."""
    if live_file is None:
        live = [d.UUIDString() for d in list_domains(connect(cli.settings.libvirt_uri))]
    else:
        live = [line.strip() for line in live_file if line.strip()]
    released = cli.store.gc(host or cli.settings.host, live, grace)
    emit_rows([p.as_dict() for p in released], COLUMNS, as_json, title="released")


@click.group()
def db() -> None:
    """Manage the port store's database."""


@db.command(name="upgrade")
@pass_cli
def db_upgrade(cli: CliContext) -> None:
    """Create or migrate the schema to the newest version."""
    upgrade(make_engine(cli.settings.database))
    click.echo("port store schema is up to date")


def _emit(port: Port, as_json: bool) -> None:
    emit_mapping(port.as_dict(), as_json, title="cache port")
