"""``cachenet vendordata serve``: the answer to Nova's dynamic vendordata POST.

Nova (``[api] vendordata_providers = DynamicJSON``) POSTs a JSON object
describing an instance to every ``NAME@URL`` of ``vendordata_dynamic_targets``
and puts the JSON it gets back under NAME in vendor_data2.json. cloud-init uses
only the key ``cloud-init`` there, and only a string: so the target must be
named ``cloud-init`` and the answer is a JSON string holding the cloud-config.

Every answer Nova can get must leave the metadata request working: Nova turns
an HTTP error into a warning and an empty entry, but into a failed metadata
request with ``vendordata_dynamic_failure_fatal``. So an unknown instance gets
200 with the empty string (cloud-init skips empty vendor data), never a 404;
errors (403, 400, 503) are for what is really wrong, and are logged.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import signal
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from cachenet.errors import CachenetError, IdentityError, StoreError
from cachenet.guest.vendordata import cloud_config
from cachenet.identity import canonical_uuid
from cachenet.port import Port
from cachenet.settings import NetworkSettings, VendordataSettings

LOG = logging.getLogger(__name__)
# Nova's body holds the instance's user data (at most 64 KiB) and metadata (128
# items of 255 + 255 characters by default quota): far below this.
MAX_BODY = 1024 * 1024
# A client that stops sending mid-request frees its thread after this; it also
# bounds how long SIGTERM waits for requests under way.
REQUEST_TIMEOUT = 10.0
EMPTY_ANSWER = ""  # what cloud-init ignores: convert_vendordata("") is None

LookUp = Callable[[str], Port | None]


class Refused(Exception):
    """A request answered with an HTTP error; the message is for the log and the client."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def answer(body: bytes, network: NetworkSettings, look_up: LookUp) -> str:
    """The JSON answer to Nova's POST ``body``: the instance's cloud-config, or empty.

    Raises ``Refused`` (400) for a body that is not Nova's, (503) when the store
    cannot be asked.
    """
    uuid = instance_uuid(body)
    try:
        port = look_up(uuid)
    except StoreError as exc:  # its message names the store with the password masked
        raise Refused(HTTPStatus.SERVICE_UNAVAILABLE, str(exc)) from None
    if port is None:
        LOG.info("instance %s has no cache port: empty answer", uuid)
        return json.dumps(EMPTY_ANSWER)
    LOG.info("instance %s: cloud-config for %s on MAC %s", uuid, port.shown_address, port.mac)
    return json.dumps(cloud_config(port, network))


def instance_uuid(body: bytes) -> str:
    """The canonical ``instance-id`` of Nova's request body, or ``Refused`` (400)."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise Refused(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
    if not isinstance(request, dict) or not isinstance(request.get("instance-id"), str):
        raise Refused(HTTPStatus.BAD_REQUEST, "the body is not an object with an instance-id")
    try:
        return canonical_uuid(request["instance-id"])
    except IdentityError:
        raise Refused(HTTPStatus.BAD_REQUEST, "instance-id is not a UUID") from None


def source_allowed(address: str, vendordata: VendordataSettings) -> bool:
    """Whether a peer at ``address`` is in ``vendordata_allowed_sources``."""
    peer = ipaddress.ip_address(address.split("%")[0])
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped:
        peer = peer.ipv4_mapped  # an IPv4 caller of a socket listening on ::
    return any(peer in network for network in vendordata.allowed_sources)


class VendordataServer(ThreadingHTTPServer):
    """One thread per request; requests under way finish before ``stop`` returns."""

    daemon_threads = False  # server_close() joins them: SIGTERM ends cleanly

    def __init__(
        self, vendordata: VendordataSettings, network: NetworkSettings, look_up: LookUp
    ) -> None:
        self.vendordata = vendordata
        self.network = network
        self.look_up = look_up
        address = vendordata.listen
        self.address_family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        try:
            super().__init__((str(address), vendordata.port), _Handler)
        except OSError as exc:  # in use, or an address this host does not have
            raise CachenetError(
                f"cannot listen on {address} port {vendordata.port}: {exc.strerror}"
            ) from None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def serve_until_signalled(self) -> None:
        """Serve until SIGTERM or SIGINT, then close the socket and finish requests."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        LOG.info("serving vendor data on %s port %d", *self.server_address[:2])
        try:
            self.serve_forever()
        finally:
            self.server_close()
        LOG.info("stopped")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever(), which runs in this very thread.
        LOG.info("signal %d: stopping", signum)
        threading.Thread(target=self.shutdown, daemon=True).start()


class _Handler(BaseHTTPRequestHandler):
    server: VendordataServer
    server_version = "cachenet-vendordata"
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT

    def do_POST(self) -> None:
        self._respond(lambda: answer(self._body(), self.server.network, self.server.look_up))

    def do_GET(self) -> None:
        self._respond(lambda: _raise(Refused(HTTPStatus.METHOD_NOT_ALLOWED, "POST only")))

    def _respond(self, work: Callable[[], str]) -> None:
        """200 with what ``work`` returns, or the error it raised (logged)."""
        try:
            self._check_source()
            self._send(HTTPStatus.OK, work())
        except Refused as exc:
            log = LOG.error if exc.status >= HTTPStatus.INTERNAL_SERVER_ERROR else LOG.warning
            log("%s to %s: %s", exc.status.value, self.client_address[0], exc)
            self._send(exc.status, json.dumps({"error": str(exc)}))
        except CachenetError as exc:
            LOG.error("500 to %s: %s", self.client_address[0], exc)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, json.dumps({"error": str(exc)}))

    def _check_source(self) -> None:
        if not source_allowed(self.client_address[0], self.server.vendordata):
            raise Refused(HTTPStatus.FORBIDDEN, "source not in vendordata_allowed_sources")

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "no Content-Length")
        if int(length) > MAX_BODY:
            self.close_connection = True  # the body is left unread
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            body = b""
        if len(body) < int(length):
            self.close_connection = True
            raise Refused(HTTPStatus.BAD_REQUEST, "the body ended before its Content-Length")
        return body

    def _send(self, status: HTTPStatus, payload: str) -> None:
        data = payload.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status >= HTTPStatus.BAD_REQUEST:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        LOG.debug("%s %s", self.client_address[0], format % args)


def _raise(exc: Exception) -> str:
    raise exc
