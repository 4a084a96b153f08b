"""The [cachenet] vendordata_* options, and who may ask the service."""

import ipaddress

import pytest

from cachenet.errors import ConfigError
from cachenet.guest.service import source_allowed
from cachenet.settings import load_settings, make_settings


def test_defaults_listen_on_loopback_for_loopback_only():
    settings = make_settings()

    assert settings.vendordata.listen == ipaddress.ip_address("127.0.0.1")
    assert settings.vendordata.port == 8790
    assert [str(n) for n in settings.vendordata.allowed_sources] == ["127.0.0.0/8", "::1/128"]


def test_every_problem_is_in_one_message(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text(
        "[cachenet]\nvendordata_listen = fe80::1\nvendordata_port = 0\n"
        "vendordata_allowed_sources = 10.0.0.1/8, nope\n"
    )

    with pytest.raises(ConfigError) as caught:
        load_settings([str(conf)])

    problems = caught.value.problems
    assert len(problems) == 4, problems
    assert problems[0].startswith("vendordata_port 0 is")
    assert any(p.startswith("vendordata_listen fe80::1 is link-local") for p in problems)
    assert any(
        p.startswith("vendordata_allowed_sources '10.0.0.1/8' is not a network") for p in problems
    )
    assert any(p.startswith("vendordata_allowed_sources 'nope' is not a network") for p in problems)


def test_an_empty_source_list_is_refused():
    with pytest.raises(ConfigError, match="vendordata_allowed_sources is empty"):
        make_settings(vendordata_allowed_sources=[])


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        ("127.0.0.1", True),
        ("192.0.2.10", True),
        ("::ffff:192.0.2.10", True),  # an IPv4 caller of a socket on ::
        ("192.0.2.200", False),
        ("::1", False),
        ("2001:db8::5", True),
        ("fe80::1%eth0", False),
    ],
)
def test_source_allowed(peer, allowed):
    settings = make_settings(
        vendordata_listen="::",
        vendordata_allowed_sources=["127.0.0.0/8", "192.0.2.0/25", "2001:db8::/64"],
    )
    assert source_allowed(peer, settings.vendordata) is allowed
