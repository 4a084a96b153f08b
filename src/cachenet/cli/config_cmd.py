"""``cachenet config show|sample``."""

from __future__ import annotations

import io

import click
from oslo_config import cfg, generator

from cachenet.cli.context import CliContext, pass_cli
from cachenet.cli.output import emit_mapping, json_option


@click.group()
def config() -> None:
    """Inspect cachenet's settings."""


@config.command()
@json_option
@pass_cli
def show(cli: CliContext, as_json: bool) -> None:
    """Print the effective settings (validated; the database password masked)."""
    emit_mapping(cli.settings.public_dict(), as_json, title="[cachenet]")


@config.command()
def sample() -> None:
    """Print a commented sample config file with every option and its default."""
    conf = cfg.ConfigOpts()
    generator.register_cli_opts(conf)
    conf(args=["--namespace", "cachenet", "--wrap-width", "79"])
    out = io.StringIO()
    generator.generate(conf, output_file=out)
    click.echo(out.getvalue(), nl=False)
