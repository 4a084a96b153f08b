"""``cachenet bridge ensure|teardown|status``: the cache bridge of this host."""

from __future__ import annotations

import click

from cachenet.bridge import backend_for, secure_host_ports
from cachenet.cli.context import CliContext, pass_cli
from cachenet.cli.output import emit_lines, emit_mapping, json_option


@click.group()
def bridge() -> None:
    """Set up, inspect or remove this host's cache bridge."""


@bridge.command()
@pass_cli
def ensure(cli: CliContext) -> None:
    """Create the bridge, attach the uplink and lay down port security's default deny;
    safe to run at every boot."""
    bridge = cli.settings.bridge
    backend = backend_for(bridge, cli.settings.network)
    # A DHCP node serving on the bridge keeps its addresses there; others are unreachable.
    host_on_bridge = cli.settings.dhcp.interface == bridge.name
    emit_lines(backend.ensure(host_on_bridge), f"{bridge.name} is already as configured")


@bridge.command()
@click.option("--force", is_flag=True, help="Remove it even with instance ports attached.")
@pass_cli
def teardown(cli: CliContext, force: bool) -> None:
    """Remove the bridge, if cachenet created it."""
    backend = backend_for(cli.settings.bridge, cli.settings.network)
    emit_lines(backend.teardown(force), f"{cli.settings.bridge.name} does not exist")


@bridge.command()
@pass_cli
def secure(cli: CliContext) -> None:
    """Install the port security rules of this host's instance ports as the store holds
    them (nova-compute and the agent do it on their own every agent_reconcile_interval)."""
    settings, host = cli.settings, cli.settings.store.host
    changes = secure_host_ports(settings.bridge, settings.network, cli.store, host)
    emit_lines(changes, f"the rules of every instance port of {host} are in place")


@bridge.command()
@json_option
@pass_cli
def status(cli: CliContext, as_json: bool) -> None:
    """Print the bridge, its type, MTU, uplink and instance ports."""
    status = backend_for(cli.settings.bridge, cli.settings.network).status()
    emit_mapping(status.as_dict(), as_json, title="cache bridge")
