import ipaddress

import pytest

from cachenet.errors import ConfigError
from cachenet.settings import load_settings, mask_password


def write_conf(tmp_path, body, name="cachenet.conf"):
    path = tmp_path / name
    path.write_text("[cachenet]\n" + body)
    return str(path)


def problems_of(tmp_path, body):
    with pytest.raises(ConfigError) as caught:
        load_settings([write_conf(tmp_path, body)])
    return caught.value.problems


def test_defaults_need_no_file(monkeypatch):
    monkeypatch.delenv("CACHENET_CONFIG", raising=False)
    settings = load_settings(None)
    assert settings.bridge == "br-cache"
    assert settings.bridge_type == "linuxbridge"
    assert settings.mac_prefix == "fa:17:3e"
    assert settings.subnet == ipaddress.IPv4Network("10.99.0.0/16")
    assert settings.isolate_ports and settings.anti_spoofing
    assert settings.nic_model == "virtio"
    assert settings.allocatable_count == 65534


def test_reads_the_cachenet_group_of_nova_conf(tmp_path):
    nova_conf = tmp_path / "nova.conf"
    nova_conf.write_text(
        "[DEFAULT]\ncompute_driver = cachenet.LibvirtDriver\n"
        "[libvirt]\nvirt_type = kvm\n"
        "[cachenet]\nbridge_type = ovs\nvlan = 42\nsubnet = 10.5.0.0/24\n"
        "reserved = 10.5.0.1, 10.5.0.250-10.5.0.254\n"
    )
    settings = load_settings([str(nova_conf)])
    assert settings.bridge_type == "ovs"
    assert settings.vlan == 42
    assert [str(r) for r in settings.reserved] == ["10.5.0.1", "10.5.0.250-10.5.0.254"]
    assert settings.allocatable_count == 254 - 1 - 5


def test_config_file_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CACHENET_CONFIG", write_conf(tmp_path, "bridge = br-c2\n"))
    assert load_settings(None).bridge == "br-c2"


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings([str(tmp_path / "nope.conf")])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("mac_prefix = 01:00:5e\n", "multicast"),
        ("mac_prefix = fa\n", None),
        ("mac_prefix = fa:17:3e:00:00:00\n", "1 to 5"),
        ("mac_prefix = fa:zz\n", "not a MAC"),
        ("device_prefix = cachenet-ports-\n", "device_prefix"),
        ("bridge = br/cache\n", "bridge 'br/cache' is not a valid Linux interface name"),
        ("bridge = br-cache-too-long-\n", "at most 15"),
        ("subnet = 10.99.0.0/31\n", "no room"),
        ("subnet = 10.99.0.1/24\n", "not an IPv4 network"),
        ("subnet = 10.99.0.0/30\nreserved = 10.99.0.1-10.99.0.2\n", "no address left"),
        ("reserved = 10.100.0.1\n", "outside the subnet"),
        ("reserved = 10.99.0.9-10.99.0.1\n", "ends"),
        ("vlan = 10\n", "only supported with bridge_type ovs"),
        ("bridge_type = ovs\nvlan = 5000\n", "outside 1-4094"),
        ("bridge_type = macvtap\n", "bridge_type 'macvtap'"),
        ("mtu = 40\n", "mtu"),
        ("on_store_error = ignore\n", "on_store_error"),
        ("agent_selector = some\n", "agent_selector"),
        ("dhcp_router = 10.100.0.1\n", "outside the subnet"),
        ("isolate_ports = maybe\n", "isolate_ports"),
    ],
)
def test_each_bad_value_gets_a_message_naming_it(tmp_path, body, expected):
    if expected is None:  # a one-octet prefix is valid
        load_settings([write_conf(tmp_path, body)])
        return
    problems = problems_of(tmp_path, body)
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_all_problems_are_reported_at_once(tmp_path):
    problems = problems_of(tmp_path, "mac_prefix = 01\nvlan = 3\nsubnet = 10.1.2.3/8\n")
    assert len(problems) == 3


def test_password_is_masked_in_public_output(tmp_path):
    url = "postgresql+psycopg://cachenet:s3cret@db.example/cachenet"
    settings = load_settings([write_conf(tmp_path, f"database = {url}\n")])
    assert settings.database == url
    assert "s3cret" not in str(settings.public_dict())
    assert mask_password(url) == "postgresql+psycopg://cachenet:***@db.example/cachenet"
