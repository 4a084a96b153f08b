"""``cachenet attach`` and ``cachenet ports allocate`` served by the running agent.

A process that loads libvirt, SQLAlchemy and oslo.config spends half a second
before it does anything; the agent has them loaded and libvirt connected. So
the CLI asks the agent over a Unix socket first, and does the work itself when
no agent answers (none runs, another configuration, not allowed to connect).
Both commands are idempotent: a request the agent could not answer is safely
done again by the CLI.

- One socket per configuration: its name holds a digest of the config files
  (paths and contents) as the agent read them at start. An agent serves only
  commands run with exactly its configuration; after a file changes, the CLI
  works alone until the agent is restarted.
- Only root and the agent's user may connect: the socket is 0600, in a
  directory only its owner may write, and the agent checks the peer's uid
  (SO_PEERCRED). Through the socket a caller gets no more than the agent does
  for its own domains.
- The client side imports nothing heavy: the CLI loads it before knowing
  whether it will do the work itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cachenet.errors import CachenetError

LOG = logging.getLogger(__name__)
RUN_DIR = Path("/run/cachenet")
MESSAGE_MAX = 64 * 1024  # bytes; a request or a reply is a few hundred
REQUEST_TIMEOUT = 5.0  # seconds the agent waits for a client's request
REPLY_TIMEOUT = 120.0  # seconds the CLI waits for the agent's answer

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class AgentUnavailable(Exception):
    """The agent cannot serve a request now (e.g. libvirt is down): the CLI does it."""


class AgentError(CachenetError):
    """The agent refused the request: its one-line message and exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def socket_path(config_files: Sequence[str]) -> Path | None:
    """The agent socket of this configuration; None when a file cannot be read."""
    digest = hashlib.sha256()
    for name in config_files:
        path = os.path.abspath(name)
        try:
            content = Path(path).read_bytes()
        except OSError:
            return None
        digest.update(b"%s\0%d\0%s" % (path.encode(), len(content), content))
    return RUN_DIR / f"agent-{digest.hexdigest()[:16]}.sock"


def ask(
    config_files: Sequence[str], command: str, **arguments: str | None
) -> dict[str, Any] | None:
    """The agent's answer to ``command``; None when no agent serves this configuration.

    Raises AgentError when the agent refused it (the CLI would have too).
    """
    path = socket_path(config_files)
    if path is None or not _private(path.parent):
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:  # no agent, or this user may not reach it
            return None
        sock.settimeout(REPLY_TIMEOUT)
        try:
            sock.sendall(json.dumps({"command": command, **arguments}).encode())
            sock.shutdown(socket.SHUT_WR)
            reply = json.loads(_receive(sock))
        except TimeoutError:
            raise AgentError(
                f"the agent did not answer within {REPLY_TIMEOUT:.0f} s (it may still finish "
                "the request); see its log",
                CachenetError.exit_code,
            ) from None
        except (OSError, ValueError):  # the agent went away mid-request
            return None
    if not isinstance(reply, dict):
        return None
    if "error" in reply:
        raise AgentError(str(reply["error"]), int(reply.get("exit_code", CachenetError.exit_code)))
    answer = reply.get("answer")
    return answer if isinstance(answer, dict) else None


class HandoffServer:
    """The agent's side: one thread answering requests, one at a time."""

    def __init__(self, config_files: Sequence[str], handlers: dict[str, Handler]) -> None:
        self.path = socket_path(config_files)
        self.handlers = handlers
        self._listener: socket.socket | None = None

    def start(self) -> None:
        """Listen, unless that cannot be done safely (logged: the CLI then works alone)."""
        try:
            self._listener = self._bind()
        except (OSError, _Unsafe) as exc:
            LOG.warning("not serving cachenet commands over %s: %s", RUN_DIR, exc)
            return
        if self._listener is not None:
            threading.Thread(target=self._serve, name="handoff", daemon=True).start()
            LOG.info("serving cachenet attach and ports allocate on %s", self.path)

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            if self.path is not None:
                self.path.unlink(missing_ok=True)

    def _bind(self) -> socket.socket | None:
        if self.path is None:
            raise _Unsafe("a config file cannot be read")
        RUN_DIR.mkdir(mode=0o755, exist_ok=True)
        if not _private(RUN_DIR) or RUN_DIR.stat().st_uid not in (0, os.geteuid()):
            raise _Unsafe(f"{RUN_DIR} is writable by others than its owner, or not ours")
        if _answering(self.path):
            LOG.warning("another agent serves this configuration on %s", self.path)
            return None
        self.path.unlink(missing_ok=True)  # left by an agent that died
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is created 0600
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old_umask)
        listener.listen(16)
        return listener

    def _serve(self) -> None:
        while (listener := self._listener) is not None:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed by stop()
                return
            with conn:
                try:
                    self._answer(conn)
                except Exception:  # a request must never end the agent's service
                    LOG.exception("answering a cachenet command")

    def _answer(self, conn: socket.socket) -> None:
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid not in (0, os.geteuid()):  # the 0600 socket already says so
            return
        conn.settimeout(REQUEST_TIMEOUT)
        try:
            request = json.loads(_receive(conn))
        except (OSError, ValueError):
            return  # no reply: the CLI does the work itself
        command = request.get("command") if isinstance(request, dict) else None
        handler = self.handlers.get(command) if isinstance(command, str) else None
        if handler is None:
            return  # not a request of this cachenet: the CLI does the work itself
        shown = {k: v for k, v in request.items() if k != "command"}
        LOG.info("answering cachenet %s %r for uid %d", command, shown, uid)
        try:
            reply: dict[str, Any] = {"answer": handler(request)}
        except AgentUnavailable as exc:
            LOG.info("leaving %s to the CLI: %s", request["command"], exc)
            return
        except CachenetError as exc:
            reply = {"error": str(exc), "exit_code": exc.exit_code}
        conn.sendall(json.dumps(reply).encode())


class _Unsafe(Exception):
    pass


def _answering(path: Path) -> bool:
    """Whether a process listens on the socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


def _private(directory: Path) -> bool:
    """Whether only its owner may create files in ``directory`` (a socket there is theirs)."""
    try:
        mode = directory.stat().st_mode
    except OSError:
        return False
    return stat.S_ISDIR(mode) and not mode & (stat.S_IWGRP | stat.S_IWOTH)


def _receive(conn: socket.socket) -> bytes:
    """Everything the peer sends until it stops sending, at most MESSAGE_MAX bytes."""
    chunks = []
    size = 0
    while chunk := conn.recv(65536):
        size += len(chunk)
        if size > MESSAGE_MAX:
            raise ValueError("message too long")
        chunks.append(chunk)
    return b"".join(chunks)
