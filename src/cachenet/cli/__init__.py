"""The ``cachenet`` command: one click group, one module per subcommand group.

Each subcommand's module is imported only when that subcommand runs (or when
``cachenet --help`` lists them all): ``cachenet ports allocate`` is run for
every new instance and must not pay for libvirt, pyroute2 or ovsdbapp.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from cachenet import logs
from cachenet.cli.context import CliContext
from cachenet.cli.output import literal
from cachenet.errors import CachenetError, refused

# Command name -> "module:attribute" of its click command, imported on demand.
COMMANDS: dict[str, str] = {
    "config": "cachenet.cli.config_cmd:config",
    "xml": "cachenet.cli.xml_cmd:xml",
    "ports": "cachenet.cli.ports_cmd:ports",
    "db": "cachenet.cli.ports_cmd:db",
    "bridge": "cachenet.cli.bridge_cmd:bridge",
    "dhcp": "cachenet.cli.dhcp_cmd:dhcp",
    "attach": "cachenet.cli.agent_cmd:attach",
    "detach": "cachenet.cli.agent_cmd:detach",
    "agent": "cachenet.cli.agent_cmd:agent",
    "vendordata": "cachenet.cli.vendordata_cmd:vendordata",
    "doctor": "cachenet.cli.doctor_cmd:doctor",
}


class _Group(click.Group):
    """Loads subcommands lazily from ``COMMANDS`` (click's LazyGroup pattern), and
    turns a ``CachenetError`` into one line on stderr and exit status 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
        return command

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CachenetError as exc:
            # literal(): a message may quote what a user typed or a row held.
            click.echo(f"cachenet: error: {literal(exc)}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:
            if not refused(exc):
                raise
            # The system refused this user something no command translated: still one line.
            command = ctx.invoked_subcommand
            message = f"{command} was refused a privilege ({literal(exc)}): run it as root"
            click.echo(f"cachenet: error: {message}", err=True)
            sys.exit(CachenetError.exit_code)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """--version, reading the installed version only when asked (importlib.metadata is slow)."""
    if not value or ctx.resilient_parsing:
        return
    from cachenet import __version__

    click.echo(f"cachenet, version {__version__}")
    ctx.exit()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.option(
    "--config-file",
    "config_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Config file with a [cachenet] group (nova.conf works); repeatable. "
    "Default: $CACHENET_CONFIG, else /etc/cachenet/cachenet.conf if present.",
)
@click.option("--debug", is_flag=True, help="Log cachenet's debug lines too.")
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append the log to this file instead of stderr.",
)
@click.pass_context
def cli(
    ctx: click.Context, config_files: Sequence[str], debug: bool, log_file: Path | None
) -> None:
    """Give every VM a second NIC on the cache network."""
    logs.configure(debug, log_file)
    ctx.obj = CliContext(config_files=tuple(config_files))


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
