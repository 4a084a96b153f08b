"""Real cloud-init for the tests: Debian's package, unpacked, never installed.

Installing cloud-init on the test host would add its boot units; the tests only
need its Python package. ``apt-get download`` + ``dpkg -x`` unpack it once into
/var/cache/cachenet-tests/ (kept between runs, shared by concurrent runs under a
lock); ``import_cloudinit`` puts it first on ``sys.path``. Its Python
dependencies come from the ``test`` extra.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

CACHE = Path("/var/cache/cachenet-tests")
UNPACKED = CACHE / "cloud-init"
SITE = UNPACKED / "usr/lib/python3/dist-packages"


def cloudinit_site() -> Path:
    """The directory holding Debian's ``cloudinit`` package, unpacked on first use."""
    if (SITE / "cloudinit").is_dir():
        return SITE
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "cloud-init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (SITE / "cloudinit").is_dir():
            _unpack()
    return SITE


def _unpack() -> None:
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        subprocess.run(
            ["apt-get", "download", "-q", "cloud-init"], cwd=work, check=True, capture_output=True
        )
        (deb,) = Path(work).glob("cloud-init_*.deb")
        partial = Path(work) / "unpacked"
        subprocess.run(["dpkg", "-x", str(deb), str(partial)], check=True, capture_output=True)
        shutil.rmtree(UNPACKED, ignore_errors=True)
        partial.rename(UNPACKED)  # whole or not at all: the check above sees no half tree


def import_cloudinit(module: str = "cloudinit") -> ModuleType:
    """Import ``module`` (e.g. "cloudinit.net.netplan") from Debian's cloud-init."""
    site = str(cloudinit_site())
    if site not in sys.path:
        sys.path.insert(0, site)
    return importlib.import_module(module)


def version() -> str:
    """The unpacked package's version, e.g. "22.4.2"."""
    return str(import_cloudinit("cloudinit.version").version_string())


def network_config(network_data: dict[str, Any], known_macs: dict[str, str]) -> dict[str, Any]:
    """cloud-init's network config (version 1) for an OpenStack network_data.json,
    ``known_macs`` mapping each MAC to the guest's interface name."""
    openstack = import_cloudinit("cloudinit.sources.helpers.openstack")
    net = import_cloudinit("cloudinit.net")
    # cloud-init also reads the guest's /sys/class/net (for InfiniBand NICs); the
    # guest's is not this host's: it is given by known_macs alone, so an empty one.
    with (
        tempfile.TemporaryDirectory() as guest_sys_class_net,
        mock.patch.object(net, "SYS_CLASS_NET", guest_sys_class_net + "/"),
    ):
        config: dict[str, Any] = openstack.convert_net_json(network_data, known_macs=known_macs)
        return config


RENDERERS = ("netplan", "eni", "networkd")


def render(config: dict[str, Any], renderer: str, target: Path) -> dict[str, str]:
    """The files cloud-init's ``renderer`` writes for ``config`` under ``target``,
    by path relative to it (nothing is applied: no netplan/ifup/networkctl run)."""
    network_state = import_cloudinit("cloudinit.net.network_state")
    module = import_cloudinit(f"cloudinit.net.{renderer}")
    options: dict[str, dict[str, Any]] = {
        "netplan": {"postcmds": False, "features": []},  # no `netplan info`/`generate` here
        "eni": {},  # also writes the udev rule naming each NIC by its MAC
        "networkd": {},
    }
    state = network_state.parse_net_config_data(config)
    module.Renderer(config=options[renderer]).render_network_state(state, target=str(target))
    return {
        str(path.relative_to(target)): path.read_text()
        for path in sorted(target.rglob("*"))
        if path.is_file()
    }


# consume_vendor_data2 runs this in a subprocess, the unpacked tree first on
# sys.path: vendor_data2.json on stdin, what cloud-init makes of it on stdout.
_CONSUME = r"""
import json, sys
import yaml
from cloudinit import helpers, sources, user_data
from cloudinit.config.schema import SchemaValidationError, get_schema, validate_cloudconfig_schema

raw = sources.convert_vendordata(json.load(sys.stdin))
result = {"raw": raw, "parts": [], "schema_errors": None}
if raw is not None:
    message = user_data.UserDataProcessor(helpers.Paths({})).process(raw)
    for part in message.walk():
        if not part.is_multipart():
            result["parts"].append(part.get_content_type())
            if part.get_content_type() == "text/cloud-config":
                try:
                    validate_cloudconfig_schema(
                        yaml.safe_load(part.get_payload(decode=True)), get_schema(), strict=True
                    )
                    result["schema_errors"] = []
                except SchemaValidationError as exc:
                    result["schema_errors"] = [str(exc)]
print(json.dumps(result))
"""


def consume_vendor_data2(vendor_data2: dict[str, Any]) -> dict[str, Any]:
    """What cloud-init's OpenStack datasource makes of a vendor_data2.json document.

    ``raw``: what it keeps as vendor data (None: nothing); ``parts``: the MIME
    types its user-data processor sees; ``schema_errors``: its strict schema
    check of the cloud-config part (None when there is none).
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(cloudinit_site()), *sys.path]))
    result = subprocess.run(
        [sys.executable, "-c", _CONSUME],
        input=json.dumps(vendor_data2),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config
