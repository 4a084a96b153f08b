"""dnsmasq's --dhcp-hostsdir: one reservation file per port, written atomically.

dnsmasq reads new and changed files there through inotify, but forgets a
deleted file's reservation only on SIGHUP: ``apply`` says when one is needed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cachenet.port import Port


def reservation_name(port: Port) -> str:
    """One file per instance, so releasing one port never touches another's file."""
    return f"{port.instance_uuid}.conf"


def reservation_line(port: Port) -> str:
    """A dhcp-host line: this MAC gets this address (and the device name as host name)."""
    return f"{port.mac},{port.address},{port.device}\n"


class HostsDir:
    """The reservation files of a directory, with what they hold cached in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o755)  # dnsmasq reads it after dropping privileges
        self._written: dict[str, str] = {
            f.name: f.read_text() for f in self.path.glob("*.conf") if f.is_file()
        }

    def write(self, port: Port) -> bool:
        """Write ``port``'s reservation; False when the file already says that."""
        name, line = reservation_name(port), reservation_line(port)
        if self._written.get(name) == line:
            return False
        _atomic_write(self.path / name, line)
        self._written[name] = line
        return True

    def remove(self, port: Port) -> bool:
        """Remove ``port``'s reservation; False when there was none."""
        name = reservation_name(port)
        if name not in self._written:
            return False
        (self.path / name).unlink(missing_ok=True)
        del self._written[name]
        return True

    def replace_all(self, ports: list[Port]) -> bool:
        """Make the directory hold exactly ``ports``; True when a file was removed or changed."""
        wanted = {reservation_name(p): p for p in ports}
        dropped = [name for name in self._written if name not in wanted]
        for name in dropped:
            (self.path / name).unlink(missing_ok=True)
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
