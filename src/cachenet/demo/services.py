"""Start libvirtd and virtlogd when no init system did (fresh machines, CI)."""

from __future__ import annotations

import contextlib
import subprocess
import time

import libvirt

from cachenet.errors import LibvirtError


def libvirtd_running(uri: str = "qemu:///system") -> bool:
    with contextlib.suppress(libvirt.libvirtError):
        libvirt.open(uri).close()
        return True
    return False


def ensure_libvirtd(uri: str = "qemu:///system", timeout: float = 20) -> None:
    if libvirtd_running(uri):
        return
    subprocess.run(["virtlogd", "-d"], check=False)
    subprocess.run(["libvirtd", "-d"], check=True)
    deadline = time.monotonic() + timeout
    while not libvirtd_running(uri):
        if time.monotonic() > deadline:
            raise LibvirtError(f"libvirtd did not start within {timeout:.0f} s")
        time.sleep(0.2)
