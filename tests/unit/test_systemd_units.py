"""The systemd units under examples/systemd: valid for systemd, and running real commands."""

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parents[2] / "examples" / "systemd"
SERVICES = sorted(UNITS.glob("*.service"))
CACHENET = Path(sys.executable).with_name("cachenet")


def exec_start(path):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(path)
    return shlex.split(unit["Service"]["ExecStart"].splitlines()[-1])


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_accepts_the_units_without_a_warning(tmp_path):
    # Installed, the command is /usr/local/bin/cachenet; here it is the venv's. They are
    # checked together: the agent's unit requires the bridge's.
    for service in SERVICES:
        text = service.read_text().replace("/usr/local/bin/cachenet", str(CACHENET))
        (tmp_path / service.name).write_text(text)
    units = [str(tmp_path / service.name) for service in SERVICES]
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.parametrize("service", SERVICES, ids=lambda p: p.name)
def test_each_unit_runs_a_cachenet_command_that_exists(service):
    command = exec_start(service)
    assert command[0] == "/usr/local/bin/cachenet"
    result = subprocess.run([str(CACHENET), *command[1:], "--help"], capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_nova_compute_drop_in_starts_cachenet_nova_compute():
    command = exec_start(UNITS / "nova-compute.service.d" / "cachenet.conf")
    assert Path(command[0]).name == "cachenet-nova-compute"
    assert CACHENET.with_name("cachenet-nova-compute").exists()  # the console script
