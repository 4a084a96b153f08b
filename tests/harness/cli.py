"""``cachenet`` run as a process, as an operator runs it: the one way tests, benchmarks and
the demonstration start it.

``cachenet_argv`` is the command line, ``run_cachenet`` runs a command to its end and
``start_cachenet`` starts a daemon (``dhcp serve``, ``agent``, ...), ``running_cachenet``
runs one for the length of a ``with`` block once it says it is ready. Each takes ``ns`` to run
inside a network namespace (``ip netns exec``) and runs with a minimal environment, so that
what the operator's shell holds does not leak in (``env`` adds to it).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import IO, Any

from harness.wait import wait_for

Conf = str | PathLike[str]

# What a service manager gives a daemon: the tools cachenet calls (ip, dnsmasq, nft, ovs-*).
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAIN = "from cachenet.cli import main; main()"  # what ``python -m cachenet`` runs


def cachenet_argv(
    conf: Conf | None,
    *args: str,
    ns: str | None = None,
    python: str = sys.executable,
    patch: str | None = None,
) -> list[str]:
    """``[ip netns exec NS] python -m cachenet [--config-file CONF] ARGS...``.

    ``patch``: Python statements run first, in the command's process (a timeout shrunk
    so that a test need not wait it out), e.g. ``"import m; m.TIMEOUT = 1"``.
    """
    prefix = ["ip", "netns", "exec", ns] if ns else []
    config = ["--config-file", str(conf)] if conf is not None else []
    entry = ["-m", "cachenet"] if patch is None else ["-c", f"{patch}\n{MAIN}"]
    return [*prefix, python, *entry, *config, *args]


def cachenet_env(
    env: Mapping[str, str] | None = None, source: PathLike[str] | None = None
) -> dict[str, str]:
    """The minimal environment: PATH, and this process's import path (the tree under test).

    ``source``: the directory holding another release's ``cachenet`` package, run
    instead of this one (with the same interpreter and libraries)."""
    path = ([str(source)] if source is not None else []) + sys.path
    return {"PATH": PATH, "PYTHONPATH": ":".join(path), **(env or {})}


def run_cachenet(
    conf: Conf | None,
    *args: str,
    ns: str | None = None,
    stdin: str | bytes | None = None,
    text: bool = True,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    patch: str | None = None,
    source: PathLike[str] | None = None,
) -> subprocess.CompletedProcess[Any]:
    """``cachenet --config-file CONF ARGS...`` to its end, output captured; never raises
    on a non-zero exit (the caller asserts the status and the output). ``source``: run
    another release (``cachenet_env``)."""
    return subprocess.run(
        cachenet_argv(conf, *args, ns=ns, patch=patch),
        input=stdin,
        capture_output=True,
        text=text,
        env=cachenet_env(env, source),
        check=False,
        timeout=timeout,
    )


def start_cachenet(
    conf: Conf | None,
    *args: str,
    ns: str | None = None,
    log: IO[Any] | int | None = None,
    env: Mapping[str, str] | None = None,
    patch: str | None = None,
    **popen: Any,
) -> subprocess.Popen[Any]:
    """A long-running ``cachenet`` command (a daemon), its output and errors to ``log``
    (a file, or ``subprocess.PIPE``; ``stderr=`` to keep the errors apart); the caller
    stops it."""
    popen.setdefault("stderr", subprocess.STDOUT if log is not None else None)
    return subprocess.Popen(
        cachenet_argv(conf, *args, ns=ns, patch=patch), stdout=log, env=cachenet_env(env), **popen
    )


@contextlib.contextmanager
def running_cachenet(
    conf: Conf,
    *args: str,
    log: Path,
    ready: str,
    ns: str | None = None,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[Any]]:
    """A daemon, its output in ``log``, from the moment ``ready`` is in that log until the
    block ends (SIGTERM, then its exit). One that exits before it is ready is a failure
    that shows its log."""
    with open(log, "w") as out:
        daemon = start_cachenet(conf, *args, ns=ns, log=out, env=env)
    try:

        def is_ready() -> bool:
            if daemon.poll() is not None:
                raise AssertionError(f"cachenet {' '.join(args)} exited: {log.read_text()}")
            return ready in log.read_text()

        wait_for(is_ready, lambda: f"{ready!r} from cachenet {' '.join(args)}: {log.read_text()}",
                 timeout, interval=0.1)  # fmt: skip
        yield daemon
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=15)
