"""Running cachenet as a user other than root, as nova-compute and the agent do.

The test process is root; these helpers run a command as another uid with
setpriv, with this checkout's source first on the path, through an interpreter
that uid can execute (the venv's may sit under root's home).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.cli import cachenet_argv

NOBODY = 65534
SRC = Path(__file__).parents[2] / "src"


def interpreter() -> str:
    """This Python if every uid may run it, else the system's of the same version."""
    if _executable_by_others(Path(sys.executable).resolve()):
        return sys.executable
    return f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"


def _executable_by_others(path: Path) -> bool:
    if not path.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)


def pythonpath() -> str:
    """This checkout's source, then the venv's packages (not root's standard library)."""
    packages = [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    return ":".join(dict.fromkeys([str(SRC), *packages]))


def run_as(
    uid: int, argv: list[str], gid: int | None = None, netns: str | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``argv`` as ``uid`` (no supplementary groups), in /tmp, with a plain environment;
    in the network namespace ``netns`` if given."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONPATH": pythonpath(),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": "/tmp",
        **kwargs.pop("env", {}),
    }
    group = uid if gid is None else gid
    setpriv = ["setpriv", f"--reuid={uid}", f"--regid={group}", "--clear-groups"]
    if netns:
        setpriv = ["ip", "netns", "exec", netns, *setpriv]
    return subprocess.run([*setpriv, *argv], env=env, cwd="/tmp", capture_output=True,
                          text=True, check=False, **kwargs)  # fmt: skip


def cachenet_as(
    uid: int, conf: Path, *args: str, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return run_as(uid, cachenet_argv(conf, *args, python=interpreter()), **kwargs)


@contextlib.contextmanager
def service_user() -> Iterator[pwd.struct_passwd]:
    """A system user (and its group) made for the test, removed afterwards."""
    name = f"cnt{uuid.uuid4().hex[:10]}"
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", name], check=True)  # fmt: skip
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False)


@contextlib.contextmanager
def sudoers_drop_in(line: str) -> Iterator[Path]:
    """``line`` as a sudoers drop-in (checked by visudo first), removed afterwards."""
    path = Path("/etc/sudoers.d") / f"cachenet-test-{uuid.uuid4().hex[:10]}"
    candidate = path.with_name(f".{path.name}")  # sudo skips names with a dot
    candidate.write_text(line + "\n")
    os.chmod(candidate, 0o440)
    try:
        subprocess.run(["visudo", "-cqf", str(candidate)], check=True)
        candidate.rename(path)
        yield path
    finally:
        candidate.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
