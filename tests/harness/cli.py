"""``cachenet`` run as a process, as an operator runs it: one helper for every test."""

from __future__ import annotations

import subprocess
import sys
from os import PathLike


def run_cachenet(
    conf: str | PathLike[str],
    *args: str,
    stdin: str | bytes | None = None,
    text: bool = True,
    timeout: float = 120,
    source: PathLike[str] | None = None,
) -> subprocess.CompletedProcess:
    """``cachenet --config-file CONF ARGS...`` with a minimal environment; never raises
    on a non-zero exit (the tests assert the status and the output).

    ``source``: the directory holding another release's ``cachenet`` package, run
    instead of this one (with the same interpreter and libraries)."""
    path = ([str(source)] if source is not None else []) + sys.path
    return subprocess.run(
        [sys.executable, "-m", "cachenet", "--config-file", str(conf), *args],
        input=stdin,
        capture_output=True,
        text=text,
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "PYTHONPATH": ":".join(path)},
        check=False,
        timeout=timeout,
    )
