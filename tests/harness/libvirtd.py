"""Start libvirtd and virtlogd when no init system did (fresh machines, CI)."""

from __future__ import annotations

import contextlib
import subprocess

import libvirt

from harness.wait import wait_for


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
    wait_for(lambda: libvirtd_running(uri), "libvirtd to start", timeout, interval=0.2)
