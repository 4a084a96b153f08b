"""Debian 12's cloud-init, unpacked (not installed), to run its own code on what cachenet hands it.

``apt-get download`` fetches cloud-init and python3-configobj (which its schema
module imports) once; they are unpacked under /var/cache/cachenet-tests/ and
their Python code runs in a subprocess with the venv's interpreter, so the test
process never imports cloud-init. No network: the tests that need it skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

CACHE = Path("/var/cache/cachenet-tests/cloud-init-src")
PACKAGES = ("cloud-init", "python3-configobj")

# Runs with the unpacked tree first on sys.path: vendor_data2.json on stdin,
# what cloud-init makes of it on stdout.
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


def cloudinit_tree() -> Path:
    """The unpacked packages' Python directory, downloaded on first use (or a skip)."""
    final = CACHE / "dist-packages"
    if not final.is_dir():
        _unpack(final)
    return final


def _unpack(final: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        pytest.skip("apt-get and dpkg are needed to fetch Debian's cloud-init")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        fetched = subprocess.run(
            ["apt-get", "download", *PACKAGES], cwd=work, capture_output=True, text=True
        )
        if fetched.returncode != 0:
            pytest.skip(f"cannot download {' '.join(PACKAGES)}: {fetched.stderr.strip()[-200:]}")
        root = Path(work) / "root"
        for deb in Path(work).glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
        os.replace(root / "usr" / "lib" / "python3" / "dist-packages", final)  # atomic


def consume_vendor_data2(vendor_data2: dict[str, Any]) -> dict[str, Any]:
    """What cloud-init's OpenStack datasource makes of a vendor_data2.json document.

    ``raw``: what it keeps as vendor data (None: nothing); ``parts``: the MIME
    types its user-data processor sees; ``schema_errors``: its strict schema
    check of the cloud-config part (None when there is none).
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(cloudinit_tree()), *sys.path]))
    result = subprocess.run(
        [sys.executable, "-c", _CONSUME],
        input=json.dumps(vendor_data2),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
