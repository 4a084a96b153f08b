"""``cachenet doctor [--json]``: what is wrong on this host, and the command that fixes it."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence

import click

from cachenet.cli.context import CliContext, pass_cli
from cachenet.cli.output import json_option, literal
from cachenet.doctor import Result, healthy
from cachenet.doctor.checks import NAMES, config_failed, run_checks
from cachenet.errors import ConfigError


@click.command()
@json_option
@click.option(
    "--skip",
    multiple=True,
    type=click.Choice(NAMES[1:]),
    help="Leave this check out (repeatable), e.g. --skip libvirt on a DHCP-only node.",
)
@pass_cli
def doctor(cli: CliContext, as_json: bool, skip: Sequence[str]) -> None:
    """Check this host end to end: one line per check, with the command that fixes
    what is wrong. Exit status 0 when healthy, 1 when not, 2 for a bad configuration."""
    # A privileged helper that cannot start is in its check's line already; without a
    # handler of its own, its log would reach stderr too (logging's last resort).
    logging.getLogger("oslo.privsep").addHandler(logging.NullHandler())
    try:
        results = run_checks(cli.settings, skip)
        status = 0 if healthy(results) else 1
    except ConfigError as exc:
        results, status = config_failed(str(exc)), ConfigError.exit_code
    _emit(results, as_json)
    sys.exit(status)


def _emit(results: Sequence[Result], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
        return
    for result in results:
        click.echo(literal(result.line()))
