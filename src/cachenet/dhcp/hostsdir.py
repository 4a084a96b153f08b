"""dnsmasq's --dhcp-hostsdir: one reservation file per port, written atomically.

dnsmasq reads new and changed files there through inotify, but forgets a
deleted file's reservation only on SIGHUP: ``apply`` says when one is needed.

cachenet owns only the files it names, ``<canonical instance UUID>.conf``: any
other file there is left alone (and logged once). A state or hosts directory
that is a symbolic link is refused: what it points to is not cachenet's.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import tempfile
from pathlib import Path

from cachenet import metrics
from cachenet.errors import DhcpError, IdentityError
from cachenet.identity import check_device, check_stored_mac, check_stored_uuid
from cachenet.port import Port

LOG = logging.getLogger(__name__)
_OWN_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.conf")


def reservation_name(port: Port) -> str:
    """One file per instance, so releasing one port never touches another's file."""
    # The store checked the row already; a file name is checked here again.
    try:
        return f"{check_stored_uuid(port.instance_uuid)}.conf"
    except IdentityError as exc:
        raise DhcpError(f"no reservation file: instance {exc}") from None


def reservation_line(port: Port) -> str:
    """A dhcp-host line: this MAC gets this address (and the device name as host name)."""
    try:
        mac, device = check_stored_mac(port.mac), check_device(port.device)
    except IdentityError as exc:
        raise DhcpError(f"no reservation for instance {port.instance_uuid!r}: {exc}") from None
    if not isinstance(port.address, ipaddress.IPv4Address):
        raise DhcpError(f"no reservation for instance {port.instance_uuid!r}: not an address")
    return f"{mac},{port.address},{device}\n"


def is_own(name: str) -> bool:
    """Whether cachenet names a file so (and may therefore replace or delete it)."""
    return _OWN_NAME.fullmatch(name) is not None


def refuse_symlinks(hosts: Path) -> None:
    """Raise DhcpError if the hosts directory or the state directory holding it is a link."""
    for directory in (hosts.parent, hosts):
        if directory.is_symlink():
            raise DhcpError(f"{directory} is a symbolic link: refusing to write reservations")


class HostsDir:
    """The reservation files of a directory, with what they hold cached in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        refuse_symlinks(path)
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o755)  # dnsmasq reads it after dropping privileges
        self._written: dict[str, str] = {}
        foreign = []
        for entry in self.path.iterdir():
            if is_own(entry.name) and entry.is_file() and not entry.is_symlink():
                self._written[entry.name] = entry.read_text()
            elif not entry.name.startswith("."):  # our temporary files and the probe
                foreign.append(entry.name)
        if foreign:
            names = ", ".join(repr(name) for name in sorted(foreign)[:10])
            LOG.warning("%s holds %d files cachenet did not name, left alone: %s",
                        self.path, len(foreign), names)  # fmt: skip

    def write(self, port: Port) -> bool:
        """Write ``port``'s reservation; False when the file already says that."""
        name, line = reservation_name(port), reservation_line(port)
        if self._written.get(name) == line:
            return False
        _atomic_write(self.path / name, line)
        self._written[name] = line
        LOG.debug("wrote reservation %s: %s", name, line.strip())
        metrics.reservation_written()
        return True

    def remove(self, port: Port) -> bool:
        """Remove ``port``'s reservation; False when there was none."""
        name = reservation_name(port)
        if name not in self._written:
            return False
        _unlink(self.path / name)
        del self._written[name]
        return True

    def replace_all(self, ports: list[Port]) -> bool:
        """Make the directory hold exactly ``ports``; True when a file was removed or changed."""
        wanted = {reservation_name(p): p for p in ports}
        dropped = [name for name in self._written if name not in wanted]
        for name in dropped:
            _unlink(self.path / name)
            del self._written[name]
        changed = bool(dropped)
        for name, port in wanted.items():
            existed = name in self._written
            if self.write(port) and existed:
                changed = True
        return changed

    def holds(self, port: Port) -> bool:
        return reservation_name(port) in self._written

    def names(self) -> set[str]:
        return set(self._written)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
    LOG.debug("removed reservation %s", path.name)
    metrics.reservation_removed()


def _atomic_write(path: Path, text: str) -> None:
    """Write to a temporary name in the same directory, then rename: never a half file.

    The temporary name does not end in .conf, and dnsmasq ignores files whose
    names start with '.', so it never reads the file before the rename.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
