import ipaddress

import pytest
from oslo_config import cfg

from cachenet.errors import ConfigError
from cachenet.nova.options import nova_settings_from_conf, register_nova_opts
from cachenet.settings import load_settings, mask_password, register_opts
from cachenet.store.addresses import AddressPool

NOVA_OPTIONS = ("flavor_extra_spec", "image_property", "exclude_", "on_store_error")


def write_conf(tmp_path, body, name="cachenet.conf"):
    path = tmp_path / name
    path.write_text("[cachenet]\n" + body)
    return str(path)


def problems_of(tmp_path, body):
    """The problems of a config file, as the processes that read the options of ``body``
    find them: Nova's options are nova-compute's alone (cachenet's driver reads them)."""
    path = write_conf(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        if body.startswith(NOVA_OPTIONS):
            nova_settings_from_conf(nova_conf([path]))
        else:
            load_settings([path])
    return caught.value.problems


def nova_conf(files):
    """nova.conf's [cachenet] group as cachenet's driver registers it in nova-compute."""
    conf = cfg.ConfigOpts()
    register_opts(conf)
    register_nova_opts(conf)
    conf(args=[], default_config_files=files)
    return conf


def test_defaults_need_no_file(monkeypatch):
    monkeypatch.delenv("CACHENET_CONFIG", raising=False)
    settings = load_settings(None)
    assert settings.bridge.name == "br-cache"
    assert settings.bridge.bridge_type == "linuxbridge"
    assert settings.network.mac_prefix == "fa:17:3e"
    assert settings.network.subnets == (ipaddress.IPv4Network("10.99.0.0/16"),)
    assert settings.bridge.isolate_ports and settings.bridge.anti_spoofing
    assert settings.bridge.nic_model == "virtio"
    assert AddressPool.from_settings(settings.network).size == 65534


def test_reads_the_cachenet_group_of_nova_conf(tmp_path):
    nova_conf = tmp_path / "nova.conf"
    nova_conf.write_text(
        "[DEFAULT]\ncompute_driver = cachenet.LibvirtDriver\n"
        "[libvirt]\nvirt_type = kvm\n"
        "[cachenet]\nbridge_type = ovs\nvlan = 42\nsubnet = 10.5.0.0/24\n"
        "reserved = 10.5.0.1, 10.5.0.250-10.5.0.254\n"
    )
    settings = load_settings([str(nova_conf)])
    assert settings.bridge.bridge_type == "ovs"
    assert settings.bridge.vlan == 42
    assert [str(r) for r in settings.network.reserved] == ["10.5.0.1", "10.5.0.250-10.5.0.254"]
    assert AddressPool.from_settings(settings.network).size == 254 - 1 - 5


def test_nova_options_are_read_only_where_nova_runs(tmp_path):
    path = write_conf(tmp_path, "exclude_flavors = tiny\non_store_error = skip\n")
    settings = load_settings([path])  # the cachenet command: Nova's options are not its own
    assert "on_store_error" not in settings.public_dict()
    settings_in_nova, nova = nova_settings_from_conf(nova_conf([path]))
    assert settings_in_nova == settings
    assert nova.exclude_flavors == ("tiny",) and nova.on_store_error == "skip"


def test_nova_and_other_problems_in_one_message(tmp_path):
    path = write_conf(tmp_path, "on_store_error = ignore\nvlan = 3\n")
    with pytest.raises(ConfigError) as caught:
        nova_settings_from_conf(nova_conf([path]))
    assert [p.split(" ", 1)[0] for p in caught.value.problems] == ["vlan", "on_store_error"]


def test_config_file_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CACHENET_CONFIG", write_conf(tmp_path, "bridge = br-c2\n"))
    assert load_settings(None).bridge.name == "br-c2"


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
    assert settings.store.database == url
    assert "s3cret" not in str(settings.public_dict())
    assert mask_password(url) == "postgresql+psycopg://cachenet:***@db.example/cachenet"


# Values that were accepted and broke something later (issue "hard to misuse").
@pytest.mark.parametrize(
    ("body", "option", "expected"),
    [
        ("dhcp_lease_time =\n", "dhcp_lease_time", "empty"),
        ("agent_reconcile_interval =\n", "agent_reconcile_interval", "empty"),
        ("mtu =\n", "mtu", "empty"),
        ("dhcp_router = 10.99.0.5\n", "dhcp_router", "add it to reserved"),
        ("dhcp_dns_servers = 10.99.0.5\n", "dhcp_dns_servers", "add it to reserved"),
        ("dhcp_router = 10.99.0.0\n", "dhcp_router", "network or broadcast"),
        ("device_prefix = vm+\n", "device_prefix", "letters, digits"),
        ("device_prefix = vm=\n", "device_prefix", "letters, digits"),
        ("device_prefix = -x\n", "device_prefix", "letters, digits"),
        ("device_prefix = x#\n", "device_prefix", "letters, digits"),
        ("device_prefix = é\n", "device_prefix", "letters, digits"),
        ("device_prefix =\n", "device_prefix", "at least one"),
        ("database = sqlite://\n", "database", "in-memory"),
        ("database = sqlite:///:memory:\n", "database", "in-memory"),
        ("database = sqlite:///relative.sqlite\n", "database", "relative path"),
        ("bridge = ééééééééééééééé\n", "bridge", "30 bytes, at most 15"),
        ("uplink = ééé\n", "uplink", "printable ASCII"),
        ("subnet = 224.0.0.0/24\n", "subnet", "multicast"),
        ("subnet = 127.0.0.0/24\n", "subnet", "loopback"),
        ("subnet = 0.0.0.0/8\n", "subnet", "'this network'"),
        ("subnet = 255.255.255.0/24\n", "subnet", "reserved"),
        ("subnet = 169.254.0.0/16\n", "subnet", "link-local"),
        ("mac_prefix = fa:17:3e:00:00\n", "mac_prefix", "256 MAC addresses"),
        ("host =\n", "host", "empty"),
        ("host = compute 1\n", "host", "whitespace"),
        (f"host = {'h' * 256}\n", "host", "at most 255"),
        ("dhcp_state_dir =\n", "dhcp_state_dir", "absolute"),
        ("dhcp_state_dir = var/dhcp\n", "dhcp_state_dir", "absolute"),
        ("datapath_type = kernel\n", "datapath_type", "not one of system, netdev"),
        ("ovsdb_connection = /run/openvswitch/db.sock\n", "ovsdb_connection", "unix:PATH"),
        ("libvirt_uri = system\n", "libvirt_uri", "libvirt URI"),
        ("flavor_extra_spec =\n", "flavor_extra_spec", "not a key"),
        ("exclude_projects = a,,b\n", "exclude_projects", "empty item"),
        ("nic_model = \x1b[31mvirtio\n", "nic_model", "control characters"),
        # Pools of several subnets.
        ("subnet = 10.1.0.0/24, 10.1.0.128/25\n", "subnet", "overlaps 10.1.0.0/24"),
        ("subnet = 10.1.0.0/24, 10.1.0.0/24\n", "subnet", "must be disjoint"),
        ("subnet = 10.1.0.0/24, 10.2.0.1/24\n", "subnet", "not an IPv4 network"),
        ("subnet = 10.1.0.0/24,,10.2.0.0/24\n", "subnet", "empty item"),
        ("subnet = 10.1.0.0/24, 224.0.0.0/24\n", "subnet", "multicast"),
        (
            "subnet = 10.1.0.0/24, 10.2.0.0/30\nreserved = 10.2.0.1-10.2.0.2\n",
            "subnet 10.2",
            "no address left",
        ),
        (
            "subnet = 10.1.0.0/24, 10.2.0.0/24\nreserved = 10.3.0.1\n",
            "reserved",
            "outside every subnet of the pool 10.1.0.0/24, 10.2.0.0/24",
        ),
        (
            "subnet = 10.1.0.0/24, 10.1.1.0/24\nreserved = 10.1.0.250-10.1.1.5\n",
            "reserved",
            "inside one subnet",
        ),
        (
            "subnet = 10.1.0.0/24, 10.2.0.0/24\ndhcp_router = 10.2.0.7\n",
            "dhcp_router",
            "add it to reserved",
        ),
        (
            "subnet = 10.1.0.0/24, 10.2.0.0/24\ndhcp_router = 10.3.0.1\n",
            "dhcp_router",
            "outside the pool 10.1.0.0/24, 10.2.0.0/24",
        ),
        (
            "subnet = 10.1.0.0/24, 10.2.0.0/24\ndhcp_dns_servers = 10.2.0.255\n",
            "dhcp_dns_servers",
            "broadcast address of 10.2.0.0/24",
        ),
        (
            "subnet = 10.1.0.0/24, 10.2.0.0/24\nmac_prefix = fa:17:3e:00:00\n",
            "mac_prefix",
            "256 MAC addresses for the 508 instance addresses",
        ),
    ],
)
def test_values_once_accepted_are_refused_naming_the_option(tmp_path, body, option, expected):
    problems = problems_of(tmp_path, body)
    assert len(problems) == 1, problems
    assert problems[0].startswith(option) and expected in problems[0], problems


@pytest.mark.parametrize(
    "body",
    [
        "device_prefix = vm-\n",
        "dhcp_router = 10.99.0.1\nreserved = 10.99.0.1\ndhcp_dns_servers = 10.99.0.1, 9.9.9.9\n",
        "mac_prefix = fa:17:3e:00:00\nsubnet = 10.99.0.0/24\n",  # 256 MACs, 254 addresses
        "subnet = 100.64.0.0/10\n",
        "database = sqlite:////var/lib/cachenet/ports.sqlite\n",
        "database = postgresql+psycopg://cachenet:S3cr%2Fet%40pw@db/cachenet\n",
        "bridge_type = ovs\nvlan = 4094\nmtu = 9000\n",
        "subnet = 10.1.0.0/24, 10.1.1.0/24, 192.168.0.0/16\n"
        "reserved = 10.1.0.1, 10.1.1.1-10.1.1.9, 192.168.0.0/24\n"
        "dhcp_router = 10.1.1.1\ndhcp_dns_servers = 10.1.0.1, 9.9.9.9\n",
    ],
)
def test_good_values_still_load(tmp_path, body):
    load_settings([write_conf(tmp_path, body)])


def test_a_pool_keeps_its_order_and_reserved_spans_it(tmp_path):
    conf = write_conf(
        tmp_path, "subnet = 10.7.0.0/24, 10.5.0.0/30\nreserved = 10.7.0.1, 10.5.0.1\n"
    )
    settings = load_settings([conf])
    assert [str(s) for s in settings.network.subnets] == ["10.7.0.0/24", "10.5.0.0/30"]
    spaces = AddressPool.from_settings(settings.network).spaces
    assert [space.size for space in spaces] == [253, 1]
    assert settings.public_dict()["subnet"] == "10.7.0.0/24,10.5.0.0/30"


def test_three_mistakes_of_different_kinds_in_one_message(tmp_path):
    # An empty number (oslo.config's read), a device prefix (a single option) and
    # a router the store would hand out (subnet, reserved and router together).
    conf = write_conf(tmp_path, "mtu =\ndevice_prefix = vm+\ndhcp_router = 10.99.0.5\n")
    with pytest.raises(ConfigError) as caught:
        load_settings([conf])
    problems = caught.value.problems
    assert [p.split(" ", 1)[0] for p in problems] == ["mtu", "device_prefix", "dhcp_router"]
    assert "\n" not in str(caught.value) and str(caught.value).count("; ") >= 2


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql+psycopg://cachenet:S3cr/et@db.example:5432/cachenet",
            "postgresql+psycopg://cachenet:***@db.example:5432/cachenet",
        ),
        (
            "mysql+pymysql://cachenet:S3cr%2Fet%40pw:x@db/cachenet",
            "mysql+pymysql://cachenet:***@db/cachenet",
        ),
        ("postgresql+psycopg://:S3cret@db/cachenet", "postgresql+psycopg://:***@db/cachenet"),
        (
            "postgresql+psycopg://db/cachenet?user=cachenet&password=S3cret",
            "postgresql+psycopg://db/cachenet?password=***&user=cachenet",
        ),
        ("mysql+pymysql://db/cachenet?passwd=S3cret", "mysql+pymysql://db/cachenet?passwd=***"),
        ("postgresql+psycopg://u:S3cr@et@db/cachenet", "<unparseable URL>"),  # raw '@'
        ("S3cret is not a URL", "<unparseable URL>"),
        ("sqlite:////var/lib/cachenet/ports.sqlite", "sqlite:////var/lib/cachenet/ports.sqlite"),
    ],
)
def test_mask_password_parses_the_url(url, masked):
    assert mask_password(url) == masked


@pytest.mark.parametrize(
    "url",
    [
        "S3cret is not a URL",
        "postgresql+psycopg://u:S3cr@et@db/cachenet",
        "postgresql+psycopg://u:S3cret@db:notaport/cachenet",
    ],
)
def test_database_that_does_not_parse_is_refused_without_showing_it(tmp_path, url):
    problems = problems_of(tmp_path, f"database = {url}\n")
    assert len(problems) == 1 and problems[0].startswith("database ")
    assert "S3c" not in problems[0] and "et@db" not in problems[0]
