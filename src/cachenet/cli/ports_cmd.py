"""``cachenet ports ...`` and ``cachenet db upgrade``: the port store by hand.

``ports allocate`` is first handed to the agent (``cachenet.agent.handoff``):
run for every new instance, it then loads neither oslo.config nor SQLAlchemy.
"""

from __future__ import annotations

import math
from typing import Any, BinaryIO

import click

from cachenet.agent import handoff
from cachenet.cli.context import CliContext, pass_cli
from cachenet.cli.output import emit_mapping, emit_rows, json_option
from cachenet.errors import IdentityError, StoreError
from cachenet.identity import canonical_uuid
from cachenet.port import Port

PORT_TITLE = "cache port"
COLUMNS = ["instance_uuid", "mac", "address", "device", "host", "created_at"]
GC_GUARD_PORTS = 10  # a gc releasing more than this many ports, and more than half, needs --yes
GRACE_MAX = 10 * 365 * 24 * 3600.0  # seconds; also keeps now - grace a valid date
UUID_LINE_MAX = 128  # bytes: a longer --live line is no UUID, and is not read whole


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
    answer = handoff.ask(cli.files, "allocate", instance_uuid=instance_uuid, host=host)
    if answer is not None:
        emit_mapping(answer.get("port", {}), as_json, title=PORT_TITLE)
        return
    _emit(cli, cli.store.allocate(instance_uuid, host or cli.settings.store.host), as_json)


@ports.command()
@click.argument("instance_uuid")
@json_option
@pass_cli
def show(cli: CliContext, instance_uuid: str, as_json: bool) -> None:
    """Print INSTANCE_UUID's port."""
    port = cli.store.get(instance_uuid)
    if port is None:
        raise StoreError(f"instance {instance_uuid} has no port")
    _emit(cli, port, as_json)


@ports.command(name="list")
@click.option("--host", help="Only ports of this host.")
@json_option
@pass_cli
def list_ports(cli: CliContext, host: str | None, as_json: bool) -> None:
    """List ports, by address."""
    _emit_list(cli, cli.store.list(host), as_json, title="cache ports")


@ports.command()
@click.argument("instance_uuid")
@json_option
@pass_cli
def release(cli: CliContext, instance_uuid: str, as_json: bool) -> None:
    """Free INSTANCE_UUID's address and MAC."""
    port = cli.store.release(instance_uuid)
    if port is None:
        raise StoreError(f"instance {instance_uuid} has no port")
    _emit(cli, port, as_json)


@ports.command()
@click.argument("instance_uuid")
@click.argument("new_host")
@json_option
@pass_cli
def move(cli: CliContext, instance_uuid: str, new_host: str, as_json: bool) -> None:
    """Record that INSTANCE_UUID now runs on NEW_HOST (MAC and address stay)."""
    _emit(cli, cli.store.move(instance_uuid, new_host), as_json)


class Seconds(click.FloatRange):
    """A finite number of seconds from 0 to ten years (FloatRange lets NaN through)."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=0, max=GRACE_MAX)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        seconds = float(super().convert(value, param, ctx))
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


@ports.command()
@click.option("--host", help="Host whose ports are checked (default: the host setting).")
@click.option(
    "--live",
    "live_file",
    type=click.File("rb"),
    help="File with the UUIDs of the host's live instances, one a line ('-': stdin). "
    "Default: the domains libvirt knows at libvirt_uri (defined or running).",
)
@click.option(
    "--grace",
    type=Seconds(),
    default=600.0,
    show_default=True,
    help="Seconds a port is kept after allocation even if its instance is not live.",
)
@click.option(
    "--yes",
    is_flag=True,
    help=f"Release even when the live list is empty, or when more than {GC_GUARD_PORTS} "
    "ports and more than half of the host's would go.",
)
@json_option
@pass_cli
def gc(
    cli: CliContext,
    host: str | None,
    live_file: BinaryIO | None,
    grace: float,
    yes: bool,
    as_json: bool,
) -> None:
    """Release the ports of a host whose instances are gone."""
    if live_file is None:
        # libvirt is loaded only here: the other ports commands run without it.
        from cachenet.agent.attach import connect, list_domains

        live = [d.UUIDString() for d in list_domains(connect(cli.settings.agent.libvirt_uri))]
    else:
        live = read_live_list(live_file)
    host = host or cli.settings.store.host
    if not yes:
        check_gc_is_plausible(cli.store.list(host), live, host)
    released = cli.store.gc(host, live, grace)
    _emit_list(cli, released, as_json, title="released")


def read_live_list(source: BinaryIO) -> list[str]:
    """The instance UUIDs of ``source``, one a line; a line that is not one is named."""
    name = getattr(source, "name", "-")
    live = []
    for number, line in enumerate(iter(lambda: source.readline(UUID_LINE_MAX), b""), start=1):
        text = line.strip()
        if not text:
            continue
        try:
            live.append(canonical_uuid(text.decode("ascii")))
        except (UnicodeDecodeError, IdentityError):
            raise IdentityError(
                f"--live {name}: line {number} is not an instance UUID: {text[:20]!r}"
            ) from None
    return live


def check_gc_is_plausible(ports_of_host: list[Port], live: list[str], host: str) -> None:
    """Refuse a gc that looks like a wrong live list rather than instances gone.

    An empty list (``/dev/null``, a libvirt URI pointing elsewhere) would release
    every port of the host; so would a list from another host. Up to
    GC_GUARD_PORTS ports, or up to half of the host's, may go without --yes.
    """
    live_set = set(live)
    doomed = sum(1 for p in ports_of_host if p.instance_uuid not in live_set)
    if not doomed:
        return
    if not live:
        raise StoreError(
            f"the live instance list is empty: gc would release every port of {host} "
            f"({doomed}); add --yes if that is meant"
        )
    if doomed > GC_GUARD_PORTS and 2 * doomed > len(ports_of_host):
        raise StoreError(
            f"gc would release up to {doomed} of the {len(ports_of_host)} ports of {host} "
            f"(more than {GC_GUARD_PORTS} and more than half); add --yes if that is meant"
        )


@click.group()
def db() -> None:
    """Manage the port store's database."""


@db.command(name="upgrade")
@click.option(
    "--upgraded-host",
    "upgraded_hosts",
    multiple=True,
    metavar="HOST",
    help="Count HOST as running this release (it is gone, or will never open the store "
    "again) so that it does not hold the contract phase back. Repeatable.",
)
@pass_cli
def db_upgrade(cli: CliContext, upgraded_hosts: tuple[str, ...]) -> None:
    """Apply the schema's next phase: expand, then (once every host runs this release) contract.

    Opening the store applies the expand phase by itself; only this command
    applies the contract phase, and refuses it while a host still running an
    older release is seen.
    """
    from cachenet.identity import check_host
    from cachenet.store import phases
    from cachenet.store.engine import make_engine
    from cachenet.store.pooling import PoolOptions

    store = cli.settings.store
    marked = [check_host(name) for name in upgraded_hosts]
    engine = make_engine(store.database, pool=PoolOptions.of(store))
    try:
        applied = phases.upgrade(engine, marked)
    finally:
        engine.dispose()
    click.echo(UPGRADE_MESSAGES[applied])


UPGRADE_MESSAGES = {
    "nothing to do": "nothing to do: the port store schema is up to date",
    "expand": "applied the expand phase; run `cachenet db upgrade` again for the contract "
    "phase once every host runs this release",
    "contract": "applied the contract phase; the port store schema is up to date",
    "expand and contract": "created the port store schema (expand and contract phases)",
}


def _emit(cli: CliContext, port: Port, as_json: bool) -> None:
    emit_mapping(port.as_dict(cli.settings.network.ipv6_prefixes), as_json, title=PORT_TITLE)


def _emit_list(cli: CliContext, listed: list[Port], as_json: bool, title: str) -> None:
    """Ports as rows; a dual-stack pool adds each port's IPv6 addresses (EUI-64 of its MAC)."""
    prefixes = cli.settings.network.ipv6_prefixes
    columns = [*COLUMNS, "ipv6_addresses"] if prefixes else COLUMNS
    emit_rows([p.as_dict(prefixes) for p in listed], columns, as_json, title=title)
