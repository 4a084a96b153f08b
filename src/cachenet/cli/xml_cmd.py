"""``cachenet xml add|remove|show``: filters over a domain XML on stdin."""

from __future__ import annotations

import ipaddress
import json
import sys
from typing import BinaryIO

import click

from cachenet import domxml
from cachenet.cli.context import CliContext, pass_cli
from cachenet.cli.output import emit_mapping, json_option
from cachenet.errors import IdentityError
from cachenet.identity import canonical_mac, canonical_uuid, device_name, has_mac_prefix
from cachenet.port import Port
from cachenet.settings import BridgeSettings, NetworkSettings, Settings
from cachenet.store.addresses import AddressPool

_input_option = click.option(
    "--file", "-f", "source", type=click.File("rb"), default="-", help="Domain XML (default stdin)."
)


@click.group()
def xml() -> None:
    """Add, remove or show the cache interface of a libvirt domain XML."""


@xml.command()
@click.argument("instance_uuid")
@click.option(
    "--mac",
    help="MAC of the cache NIC (with --ip, or alone on an IPv6-only pool: bypass the store).",
)
@click.option("--ip", "address", help="Cache address of the instance (with --mac).")
@_input_option
@pass_cli
def add(
    cli: CliContext, instance_uuid: str, mac: str | None, address: str | None, source: BinaryIO
) -> None:
    """Write the domain XML with the instance's cache interface to stdout.

    The port comes from the store (allocated for this host on first use);
    --mac and --ip together override it without touching the store.
    """
    domain_xml = _read_domain(source)
    domxml.check_domain(domain_xml)  # before the store: a bad document allocates nothing
    if mac is None and address is None:
        port = cli.store.allocate(instance_uuid, cli.settings.store.host)
    else:
        port = _port_from_options(cli.settings, instance_uuid, mac, address)
    sys.stdout.write(domxml.add_cache_interface(domain_xml, port, *_cache_nic(cli)) + "\n")


@xml.command()
@_input_option
@pass_cli
def remove(cli: CliContext, source: BinaryIO) -> None:
    """Write the domain XML without its cache interface to stdout."""
    sys.stdout.write(domxml.remove_cache_interface(_read_domain(source), *_cache_nic(cli)) + "\n")


@xml.command()
@_input_option
@json_option
@pass_cli
def show(cli: CliContext, source: BinaryIO, as_json: bool) -> None:
    """Print the domain's cache interface (exit status 1 when it has none)."""
    found = domxml.find_cache_interface(_read_domain(source), *_cache_nic(cli))
    if found is None:
        if as_json:
            click.echo(json.dumps(None))
        else:
            click.echo("no cache interface", err=True)
        sys.exit(1)
    emit_mapping(found.as_dict(), as_json, title="cache interface")


def _cache_nic(cli: CliContext) -> tuple[BridgeSettings, NetworkSettings]:
    """What the cache interface is told apart by: the bridge and the MAC prefix."""
    return cli.settings.bridge, cli.settings.network


def _read_domain(source: BinaryIO) -> bytes:
    """The document, read no further than one byte over the size limit."""
    data = source.read(domxml.MAX_DOMAIN_XML_BYTES + 1)
    domxml.check_size(len(data))
    return data


def _pool_address(settings: Settings, address: str) -> ipaddress.IPv4Address:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise IdentityError(f"{address!r} is not an IPv4 address") from None
    pool = AddressPool.from_settings(settings.network)
    if pool.space_of(ip) is None:
        raise IdentityError(f"address {ip} is outside the cache {pool}")
    return ip


def _port_from_options(
    settings: Settings, instance_uuid: str, mac: str | None, address: str | None
) -> Port:
    ipv6_only = not settings.network.subnets  # a port is its MAC alone then
    if ipv6_only and address is not None:
        raise click.UsageError("--ip: an IPv6-only pool hands out no IPv4 address (--mac alone)")
    if mac is None or (address is None and not ipv6_only):
        raise click.UsageError("--mac and --ip go together")
    instance_uuid = canonical_uuid(instance_uuid)
    mac = canonical_mac(mac)
    prefix = settings.network.mac_prefix
    if not has_mac_prefix(mac, prefix):
        raise IdentityError(f"MAC {mac} is not under the cache MAC prefix {prefix}")
    ip = None if address is None else _pool_address(settings, address)
    return Port(
        instance_uuid=instance_uuid,
        mac=mac,
        address=ip,
        # Without the store no name is allocated: the instance's first choice.
        device=device_name(settings.bridge.device_prefix, instance_uuid),
        host=settings.store.host,
    )
