"""Errors cachenet reports to operators.

Every error a user can cause (bad config, bad input, a full subnet, a server
that is down) is a ``CachenetError`` whose message is one line naming the
problem; the CLI prints it without a traceback and exits with status 2.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator


class CachenetError(Exception):
    """An error with a message meant for the operator."""

    exit_code = 2


class ConfigError(CachenetError):
    """The settings are invalid; ``problems`` holds one message per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        one_line = (" ".join(p.split("\n")) for p in problems)  # the CLI prints one line
        super().__init__("invalid configuration: " + "; ".join(one_line))


class DomainXMLError(CachenetError):
    """A domain XML document cannot be used (malformed, not a domain, no devices)."""


class IdentityError(CachenetError):
    """A MAC address, UUID or device name is malformed or out of range."""


class SubnetExhausted(CachenetError):
    """Every allocatable address of the cache subnet is in use."""


class StoreError(CachenetError):
    """The port store refused an operation (unknown instance, conflict, ...)."""


class StoreUnavailable(StoreError):
    """The port store's database cannot be reached."""


class BridgeError(CachenetError):
    """The cache bridge cannot be set up, inspected or removed."""


class NamespaceNotFound(CachenetError):
    """A named network namespace does not exist."""


class DhcpError(CachenetError):
    """The DHCP server cannot be started or its reservations written."""


class LibvirtError(CachenetError):
    """libvirt refused an operation on a domain."""


class PrivilegeError(CachenetError):
    """The operation needs a privilege (root, CAP_NET_ADMIN, a group) this process lacks."""


class StoreAccessDenied(StoreUnavailable, PrivilegeError):
    """The port store exists but this user may not use it (an SQLite file's permissions)."""


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` is the kernel refusing this process (EPERM/EACCES): a file, a
    socket, or a netlink request (pyroute2's NetlinkError carries the errno as ``code``)."""
    code = exc.errno if isinstance(exc, OSError) else getattr(exc, "code", None)
    return code in (errno.EPERM, errno.EACCES)


@contextlib.contextmanager
def privilege_needed(message: str) -> Iterator[None]:
    """Turns the kernel refusing what the block does into ``PrivilegeError(message)``,
    which should name what is missing and how to get it."""
    try:
        yield
    except Exception as exc:
        if not refused(exc):
            raise
        raise PrivilegeError(message) from None
