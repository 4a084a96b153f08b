"""cachenet: a second NIC on a dedicated cache network for every VM instance.

Layout (data flows one way, settings -> port -> interface XML -> libvirt):

- ``settings``  every option of the ``[cachenet]`` group, validated at load
- ``identity``  pure rules for MAC addresses and host device names
- ``port``      the Port value object: one per instance
- ``domxml``    pure functions that add/find/remove the cache interface
- ``store``     IPAM: the port store (SQLite, PostgreSQL, MariaDB)
- ``bridge``    host side: the cache bridge (Linux bridge, Open vSwitch)
- ``dhcp``      dnsmasq with static reservations synced from the store
- ``agent``     plain libvirt hosts: attach/detach and the domain event agent
- ``nova``      the Nova LibvirtDriver subclass
- ``cli``       the ``cachenet`` command
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``, read on first use: importlib.metadata costs every command ~30 ms."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cachenet")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"
