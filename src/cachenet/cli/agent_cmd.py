"""``cachenet attach|detach|agent``: the cache NIC on plain libvirt hosts.

libvirt, the store and the bridge code are imported by the command that runs:
``attach`` is first handed to the agent (``cachenet.agent.handoff``), and
needs none of them when the agent answers.
"""

from __future__ import annotations

import signal
from types import FrameType

import click

from cachenet import logs, metrics
from cachenet.agent import handoff
from cachenet.cli.context import CliContext, pass_cli
from cachenet.cli.output import emit_lines


@click.command()
@click.argument("domain")
@pass_cli
def attach(cli: CliContext, domain: str) -> None:
    """Give DOMAIN (name or UUID) its cache NIC: persistent, and live if it runs."""
    answer = handoff.ask(cli.files, "attach", domain=domain)
    if answer is not None:
        emit_lines([str(line) for line in answer.get("lines", [])], "already attached")
        return
    from cachenet.agent.attach import attach as attach_domain
    from cachenet.agent.attach import connect, lookup

    conn = connect(cli.settings.agent.libvirt_uri)
    emit_lines(attach_domain(cli.settings, cli.store, lookup(conn, domain)), "already attached")


@click.command()
@click.argument("domain")
@click.option("--release", is_flag=True, help="Also free the domain's port in the store.")
@pass_cli
def detach(cli: CliContext, domain: str, release: bool) -> None:
    """Remove DOMAIN's cache NIC (persistent, and live if it runs)."""
    from cachenet.agent.attach import connect, lookup
    from cachenet.agent.attach import detach as detach_domain

    conn = connect(cli.settings.agent.libvirt_uri)
    emit_lines(
        detach_domain(cli.settings, cli.store, lookup(conn, domain), release), "no cache NIC"
    )


@click.command()
@click.option("--once", is_flag=True, help="Reconcile once and exit.")
@pass_cli
def agent(cli: CliContext, once: bool) -> None:
    """Add the cache NIC to every selected domain as it is defined; release on undefine."""
    from cachenet.agent.agent import Agent, reconcile
    from cachenet.agent.attach import connect

    logs.configure_daemon()
    if once:
        changes, released = reconcile(
            cli.settings, cli.store, connect(cli.settings.agent.libvirt_uri)
        )
        released_lines = [f"released the port of {p.instance_uuid}" for p in released]
        emit_lines(changes + released_lines, "every selected domain has its cache NIC")
        return
    logs.log_start("agent", cli.settings)
    metrics.serve("agent", cli.settings.metrics.listen, cli.store)
    runner = Agent(cli.settings, cli.store, cli.files)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        runner.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    runner.run()
