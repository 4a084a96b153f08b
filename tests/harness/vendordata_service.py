"""A running ``cachenet vendordata serve`` process on 127.0.0.1, and a client for it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cli import start_cachenet
from harness.loopback import free_port
from harness.wait import accepts_connections, wait_for

START_TIMEOUT = 20.0


@dataclass
class Service:
    process: subprocess.Popen[str]
    url: str
    config_file: Path

    def post(
        self, body: bytes | dict[str, object], headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """(status, decoded JSON answer) of a POST, as Nova sends it."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url, data=data, method="POST")
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def stop(self) -> str:
        """SIGTERM, wait, and return what it logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


def write_config(path: Path, database: str, **options: str) -> Path:
    lines = ["[cachenet]", f"database = {database}"]
    lines += [f"{name} = {value}" for name, value in options.items()]
    # Replaced whole: a cachenet process starting meanwhile reads the old file or the
    # new one, never a truncated one (which would send it to the default database).
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(path)
    return path


@contextlib.contextmanager
def vendordata_service(directory: Path, database: str, **options: str) -> Iterator[Service]:
    """The service on a free port of 127.0.0.1, stopped (SIGTERM) afterwards."""
    port = free_port()
    config = write_config(
        directory / "vendordata.conf",
        database,
        vendordata_listen="127.0.0.1",
        vendordata_port=str(port),
        **options,
    )
    process = start_cachenet(
        config, "vendordata", "serve", log=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    service = Service(process, f"http://127.0.0.1:{port}/", config)
    try:
        _wait_listening(process, port)
        yield service
    finally:
        service.stop()


def _wait_listening(process: subprocess.Popen[str], port: int) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the service exited: {process.communicate()[1]}")
        return accepts_connections(port)

    wait_for(listening, f"the service to listen on port {port}", START_TIMEOUT)
