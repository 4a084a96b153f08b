"""The ``cachenet`` command: one click group, one module per subcommand group."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from cachenet import __version__
from cachenet.cli.agent_cmd import agent, attach, detach
from cachenet.cli.bridge_cmd import bridge
from cachenet.cli.config_cmd import config
from cachenet.cli.context import CliContext
from cachenet.cli.dhcp_cmd import dhcp
from cachenet.cli.output import literal
from cachenet.cli.ports_cmd import db, ports
from cachenet.cli.vendordata_cmd import vendordata
from cachenet.cli.xml_cmd import xml
from cachenet.errors import CachenetError


class _Group(click.Group):
    """Turns a ``CachenetError`` into one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CachenetError as exc:
            # literal(): a message may quote what a user typed or a row held.
            click.echo(f"cachenet: error: {literal(exc)}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cachenet")
@click.option(
    "--config-file",
    "config_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Config file with a [cachenet] group (nova.conf works); repeatable. "
    "Default: $CACHENET_CONFIG, else /etc/cachenet/cachenet.conf if present.",
)
@click.pass_context
def cli(ctx: click.Context, config_files: Sequence[str]) -> None:
    """Give every VM a second NIC on the cache network."""
    ctx.obj = CliContext(config_files=tuple(config_files))


cli.add_command(config)
cli.add_command(xml)
cli.add_command(ports)
cli.add_command(db)
cli.add_command(bridge)
cli.add_command(dhcp)
cli.add_command(attach)
cli.add_command(detach)
cli.add_command(agent)
cli.add_command(vendordata)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command; a usage mistake is one line too (click's own spans four)."""
    args = list(argv) if argv is not None else None
    try:
        status = cli.main(args=args, prog_name="cachenet", standalone_mode=False)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "cachenet"
        message = literal(exc.format_message())
        click.echo(f"cachenet: error: {message} (see '{where} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"cachenet: error: {literal(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)
