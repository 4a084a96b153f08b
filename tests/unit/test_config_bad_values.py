"""Every option of [cachenet], fed bad values through ``cachenet config show`` as a process.

Each bad value must stop the command with exit status 2 and exactly one line
on stderr that names the option, never a traceback. The generic classes
(empty, garbage, huge) apply to every option of a type; the specific ones are
values that were once silently accepted. Nova's options, which only
nova-compute registers, go through the loading of cachenet's Nova driver: one
``ConfigError`` (exit status 2) whose one-line message names the option.
"""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from oslo_config import cfg

from cachenet.errors import ConfigError
from cachenet.nova.options import OPTS as NOVA_OPTS
from cachenet.nova.options import nova_settings_from_conf, register_nova_opts
from cachenet.settings import ALL_OPTS, register_opts
from harness.cli import run_cachenet

HUGE = "x" * 5000
GARBAGE = ["a\x01b", "\x1b[31mred"]  # control characters (a terminal escape)
BAD_IFNAMES = ["br/cache", "br cache", ".", "br-cache-too-long-", "é" * 15, "ééé"]
BAD_KEYS = ["a b", "k" * 256]

GENERIC = {
    cfg.StrOpt: ["", *GARBAGE, HUGE],
    cfg.IPOpt: ["", "garbage", "fe80::1", HUGE],
    cfg.IntOpt: ["", "abc", "1.5", "99999999999999999999999"],
    cfg.PortOpt: ["", "abc", "1.5", "99999999999999999999999"],
    cfg.BoolOpt: ["", "maybe"],
    cfg.ListOpt: ["a,,b", "ok, a\x01b", HUGE],
}

SPECIFIC = {
    "bridge": BAD_IFNAMES,
    "bridge_type": ["macvtap", "OVS"],
    "uplink": BAD_IFNAMES,
    "mtu": ["67", "65536"],
    "vlan": ["0", "4095", "10"],  # 10: a Linux bridge (the default) has no VLAN
    "datapath_type": ["kernel"],
    "ovsdb_connection": ["/var/run/openvswitch/db.sock", "tcp:127.0.0.1", "unix:"],
    "openflow_listen": ["10.0.0.1:6634", "0.0.0.0:6634", "127.0.0.1", "127.0.0.1:0", "x:1"],
    "mac_prefix": ["01:00:5e", "fa:17:3e:00:00:00", "fa:zz", "fa:17:3e:00:00", "fa::3e"],
    "device_prefix": ["vm+", "vm=", "-x", "x#", "é", "vm.", "vm_", "cachenet-ports-"],
    "subnet": [
        "224.0.0.0/24",
        "127.0.0.0/24",
        "0.0.0.0/8",
        "255.255.255.0/24",
        "169.254.0.0/16",
        "128.0.0.0/1",  # overlaps multicast
        "10.99.0.1/24",
        "10.99.0.0/31",
        "",  # an empty pool
        "10.99.0.0/16, 10.99.128.0/17",  # subnets of a pool overlap
        "10.99.0.0/16, 10.99.0.0/16",
        "10.99.0.0/16, 224.0.0.0/24",
        "10.99.0.0/16, 10.100.0.1/24",
        "fd00:99::/48, fd00:98::/64",  # IPv6 only: each prefix still a /64
        "10.99.0.0/16, fd00:99::/48",  # SLAAC needs a /64
        "10.99.0.0/16, fd00:99::/80",
        "10.99.0.0/16, ff02::/64",  # multicast
        "10.99.0.0/16, fe80::/64",  # link-local
        "10.99.0.0/16, fec0::/64",  # site-local
        "10.99.0.0/16, ::/64",
        "10.99.0.0/16, fd00:99::1/64",  # host bits
        "10.99.0.0/16, fd00:99::/64, fd00:99::/64",
        "10.99.0.0/16, fd00:99:::/64",
    ],
    "reserved": ["10.100.0.1", "10.99.0.9-10.99.0.1", "nope", "10.99.0.0/16"],
    "isolate_ports": ["yes please"],
    "anti_spoofing": ["off-ish"],
    "nic_model": ["Virtio", "virtio;reboot"],
    "database": [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///relative.sqlite",
        "not a url",
        "oracle://user:pw@db/cachenet",
        "postgresql+psycopg://user:pw@pw@db/cachenet",  # raw '@' in the password
        "postgresql+psycopg://user:pw@db:port/cachenet",
        "postgresql+psycopg://user:pw@/cachenet?host=db1:5432,db2:5432",
    ],
    "host": ["compute 1", "h" * 256, "tab\there"],
    "pool_size": ["0", "101", "-1"],
    "pool_max_overflow": ["-1", "101"],
    "pool_idle_timeout": ["0", "3601"],
    "pool_recycle": ["9", "86401"],
    "pool_timeout": ["0", "3601"],
    "database_prepared_statements": ["sometimes"],
    "dhcp_interface": BAD_IFNAMES,
    "dhcp_lease_time": ["119", "31536001"],
    "dhcp_router": ["10.99.0.5", "10.100.0.1", "10.99.0.0", "10.99.255.255"],
    "dhcp_dns_servers": ["10.99.0.5", "1.2.3", "fe80::1"],
    "dhcp_state_dir": ["relative/dir", "./dhcp"],
    "dnsmasq": ["  "],
    "dhcp_authoritative": ["sometimes"],
    "libvirt_uri": ["system", "qemu system"],
    "agent_selector": ["some", "name:", "metadata:"],
    "agent_reconcile_interval": ["0", "86401"],
    "flavor_extra_spec": BAD_KEYS,
    "image_property": BAD_KEYS,
    "exclude_flavors": [],
    "exclude_projects": [],
    "on_store_error": ["ignore", "FAIL"],
    "vendordata_listen": ["127.0.0.1:8790", "localhost"],
    "vendordata_port": ["0", "65536"],
    "vendordata_allowed_sources": ["", "10.0.0.1/8", "nope", "10.0.0.0/8, ::1/129"],
    "metrics_listen": ["127.0.0.1", "127.0.0.1:0", "localhost:9464", "::1:9464", "[::1]:65536"],
}


def bad_values(opt):
    """Generic values for the option's type, then the specific ones."""
    generic = next(values for kind, values in GENERIC.items() if type(opt) is kind)
    return list(dict.fromkeys(generic + SPECIFIC[opt.dest]))


def config_show(conf):
    return run_cachenet(conf, "config", "show")


def nova_compute_start(conf_file):
    """What nova-compute's start with cachenet's driver makes of ``conf_file``: the
    ``ConfigError`` that stops it (its message, exit status), or None."""
    conf = cfg.ConfigOpts()
    register_opts(conf)
    register_nova_opts(conf)
    conf(args=[], default_config_files=[str(conf_file)])
    try:
        nova_settings_from_conf(conf)
    except ConfigError as exc:
        return exc
    return None


def what_is_wrong(result, option):
    """Why ``result`` is not a one-line error naming ``option`` (None: it is one)."""
    lines = result.stderr.strip().splitlines()
    if result.returncode != 2:
        return f"exit status {result.returncode}"
    if "Traceback" in result.stderr or len(lines) != 1:
        return f"{len(lines)} lines on stderr"
    return _not_named(lines[0], option)


def _not_named(line, option):
    if not re.search(rf"(?<!\w){option}(?!\w)", line):
        return f"option not named in {line!r}"
    return None


def test_every_option_has_bad_values():
    every = ALL_OPTS + NOVA_OPTS
    assert {opt.dest for opt in every} == set(SPECIFIC)
    assert all(type(opt) in GENERIC for opt in every)


@pytest.mark.parametrize("opt", ALL_OPTS, ids=lambda opt: opt.dest)
def test_each_bad_value_is_one_line_naming_the_option(tmp_path, opt):
    confs = []
    for i, value in enumerate(bad_values(opt)):
        conf = tmp_path / f"bad{i}.conf"
        conf.write_text(f"[cachenet]\n{opt.dest} = {value}\n")
        confs.append((value, conf))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda vc: (vc[0], config_show(vc[1])), confs))
    failures = {
        value[:40]: why for value, result in results if (why := what_is_wrong(result, opt.dest))
    }
    assert not failures, failures


@pytest.mark.parametrize("opt", NOVA_OPTS, ids=lambda opt: opt.dest)
def test_each_bad_nova_value_stops_nova_compute_with_one_line_naming_it(tmp_path, opt):
    failures = {}
    for i, value in enumerate(bad_values(opt)):
        conf = tmp_path / f"nova{i}.conf"
        conf.write_text(f"[cachenet]\n{opt.dest} = {value}\n")
        error = nova_compute_start(conf)
        if error is None or error.exit_code != 2:
            failures[value[:40]] = "accepted"
        elif len(str(error).splitlines()) != 1:
            failures[value[:40]] = f"{len(str(error).splitlines())} lines"
        elif why := _not_named(str(error), opt.dest):
            failures[value[:40]] = why
    assert not failures, failures


def test_nova_options_are_not_the_commands(tmp_path):
    """A cachenet.conf holding Nova's options (or a nova.conf read by the cachenet
    command) loads: the command never registers them, whatever their values."""
    conf = tmp_path / "with-nova.conf"
    conf.write_text("[cachenet]\non_store_error = ignore\nflavor_extra_spec = a b\n")
    result = config_show(conf)
    assert result.returncode == 0, result.stderr
    assert "on_store_error" not in result.stdout


def test_three_mistakes_in_one_line(tmp_path):
    conf = tmp_path / "three.conf"
    conf.write_text("[cachenet]\ndhcp_lease_time =\nsubnet = 224.0.0.0/24\nhost =\n")
    result = config_show(conf)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    for option in ("dhcp_lease_time", "subnet", "host"):
        assert re.search(rf"(?<!\w){option}(?!\w)", line), line


def test_reserved_on_an_ipv6_only_pool_is_one_line(tmp_path):
    """An IPv6-only pool hands out no IPv4 address: an IPv4 range to reserve is a mistake."""
    conf = tmp_path / "v6only.conf"
    conf.write_text("[cachenet]\nsubnet = fd00:99::/64\nreserved = 10.99.0.1\n")
    assert what_is_wrong(config_show(conf), "reserved") is None


def test_an_ipv6_only_pool_loads(tmp_path):
    conf = tmp_path / "v6only.conf"
    conf.write_text("[cachenet]\nsubnet = fd00:99::/64, 2001:db8:99::/64\n")
    result = config_show(conf)
    assert result.returncode == 0, result.stderr
    assert re.search(r"subnet\W+fd00:99::/64,2001:db8:99::/64", result.stdout), result.stdout
