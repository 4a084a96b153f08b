"""``cachenet vendordata serve`` as Nova's DynamicJSON target, a real process on 127.0.0.1."""

import json
import socket
import time

import pytest

from cachenet.guest import service as service_module
from cachenet.guest.vendordata import cloud_config
from cachenet.settings import load_settings
from cachenet.store import open_store
from harness.cli import run_cachenet
from harness.databases import mariadb_behind_a_link
from harness.vendordata_service import vendordata_service, write_config

INSTANCE = "6f1c2b0a-4d3e-4f5a-8b9c-0d1e2f3a4b5c"
OTHER = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"


def nova_body(instance_uuid):
    """What nova.api.metadata.vendordata_dynamic POSTs."""
    return {
        "project-id": "9a8b7c6d5e4f4a3b2c1d0e9f8a7b6c5d",
        "instance-id": instance_uuid,
        "image-id": "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a",
        "user-data": None,
        "hostname": "vm-1",
        "metadata": {},
        "boot-roles": "member,reader",
    }


def allocate(service, instance_uuid):
    settings = load_settings([str(service.config_file)])
    return open_store(settings).allocate(instance_uuid, "compute-1"), settings


def test_an_allocated_instance_gets_its_cloud_config_and_no_other(db_url, tmp_path):
    with vendordata_service(tmp_path, db_url) as service:
        port, settings = allocate(service, INSTANCE)
        other, _ = allocate(service, OTHER)

        status, answer = service.post(nova_body(INSTANCE.upper()))  # any UUID spelling

    assert status == 200
    assert answer == cloud_config(port, settings.network)
    assert f"interface={port.address}/16" in answer and port.mac in answer
    assert str(other.address) not in answer and other.mac not in answer


def test_an_unknown_instance_gets_the_empty_answer_cloud_init_skips(tmp_path):
    with vendordata_service(tmp_path, f"sqlite:///{tmp_path}/ports.sqlite") as service:
        allocate(service, OTHER)

        assert service.post(nova_body(INSTANCE)) == (200, "")
        log = service.stop()

    assert f"instance {INSTANCE} has no cache port" in log


def test_a_source_outside_the_allowed_networks_gets_403_and_a_log_line(tmp_path):
    database = f"sqlite:///{tmp_path}/ports.sqlite"
    with vendordata_service(tmp_path, database, vendordata_allowed_sources="10.0.0.0/8") as svc:
        allocate(svc, INSTANCE)

        status, answer = svc.post(nova_body(INSTANCE))
        log = svc.stop()

    assert status == 403
    assert "cloud-config" not in json.dumps(answer)
    assert "403 to 127.0.0.1: source not in vendordata_allowed_sources" in log


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "the body is not JSON"),
        (b"\xff\xfe", "the body is not JSON"),
        (b'["instance-id"]', "the body is not an object with an instance-id"),
        (b'{"instance-id": 7}', "the body is not an object with an instance-id"),
        (b'{"instance-id": "../../etc"}', "instance-id is not a UUID"),
    ],
    ids=["not-json", "not-utf8", "array", "number", "not-uuid"],
)
def test_a_malformed_body_gets_400(tmp_path, body, reason):
    with vendordata_service(tmp_path, f"sqlite:///{tmp_path}/ports.sqlite") as service:
        assert service.post(body) == (400, {"error": reason})


def test_a_body_over_the_cap_gets_413_without_being_read(tmp_path):
    with vendordata_service(tmp_path, f"sqlite:///{tmp_path}/ports.sqlite") as service:
        port = int(service.url.rsplit(":", 1)[1].strip("/"))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            size = service_module.MAX_BODY + 1
            client.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
            reply = client.recv(4096).decode()

    assert reply.startswith("HTTP/1.1 413 ")


def test_a_store_outage_gets_503_and_a_log_line_without_the_password(tmp_path):
    with (
        mariadb_behind_a_link(tmp_path) as database,
        vendordata_service(tmp_path, database.url) as service,
    ):
        allocate(service, INSTANCE)
        database.cut()
        try:
            status, answer = service.post(nova_body(INSTANCE))
        finally:
            database.restore()
        recovered = service.post(nova_body(INSTANCE))
        log = service.stop()

    assert status == 503
    assert answer["error"].startswith("cannot use the port store at mysql+pymysql://cachenet:***@")
    assert "503 to 127.0.0.1: cannot use the port store" in log
    assert "cachenet:cachenet@" not in log and "cachenet:cachenet@" not in answer["error"]
    assert recovered[0] == 200 and recovered[1].startswith("#cloud-config\n")


def test_sigterm_stops_it_cleanly(tmp_path):
    with vendordata_service(tmp_path, f"sqlite:///{tmp_path}/ports.sqlite") as service:
        started = time.monotonic()
        log = service.stop()

        assert service.process.returncode == 0
    assert time.monotonic() - started < 5
    assert log.rstrip().endswith("stopped")


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path / "c.conf", f"sqlite:///{tmp_path}/p.sqlite", vendordata_port=str(port)
        )
        result = run_cachenet(config, "vendordata", "serve", timeout=30)

    assert result.returncode == 2
    assert result.stderr == (
        f"cachenet: error: cannot listen on 127.0.0.1 port {port}: Address already in use\n"
    )


def test_show_prints_what_an_instance_gets(tmp_path):
    config = write_config(tmp_path / "c.conf", f"sqlite:///{tmp_path}/p.sqlite")
    settings = load_settings([str(config)])
    port = open_store(settings).allocate(INSTANCE, "compute-1")

    known = run_cachenet(config, "vendordata", "show", INSTANCE)
    unknown = run_cachenet(config, "vendordata", "show", OTHER)
    bad = run_cachenet(config, "vendordata", "show", "nope")

    assert (known.returncode, known.stdout) == (0, cloud_config(port, settings.network))
    assert (unknown.returncode, unknown.stdout) == (0, "\n")
    assert bad.returncode == 2 and bad.stderr == "cachenet: error: 'nope' is not a UUID\n"
