"""Waiting for something a process does in its own time: the one polling loop."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """What was waited for did not happen in time (a test failure, not an error)."""


def wait_for(
    condition: Callable[[], T | None],
    what: str | Callable[[], str],
    timeout: float = 10.0,
    interval: float = 0.05,
) -> T:
    """Poll ``condition`` until it returns something true, and return that.

    On timeout, ``WaitTimeout`` says "timed out after N s waiting for WHAT"; ``what``
    may be a function, called then, to add what explains the failure (a daemon's log).
    """
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {detail}")
        time.sleep(interval)


def accepts_connections(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on TCP ``host``:``port`` (a condition for ``wait_for``)."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
        return True
    return False
