"""The nftables text of Linux bridge port security (pure)."""

import dataclasses
import ipaddress
import json

import pytest

from cachenet import privileged
from cachenet.bridge import nft_rules
from cachenet.bridge.nft_rules import Elements, RuleOptions
from cachenet.errors import BridgeError
from cachenet.port import Port

BOTH = RuleOptions("cache-", isolate_ports=True, anti_spoofing=True)


def port(n, device=None):
    address = ipaddress.IPv4Address(f"10.99.0.{n}")
    device = device or f"cache-{n:09x}"
    return Port(f"00000000-0000-0000-0000-{n:012x}", f"fa:17:3e:00:00:{n:02x}", address, device,
                "h")  # fmt: skip


def test_every_script_names_only_cachenets_table_as_the_privileged_side_requires():
    elements = Elements.of([port(7), port(8)])
    scripts = [
        nft_rules.table_script(BOTH, elements),
        nft_rules.table_script(RuleOptions("vm-", False, True), Elements()),
        nft_rules.element_script(Elements.of([port(7)]), elements),
        nft_rules.element_script(elements, Elements()),
        nft_rules.delete_script(),
    ]
    for script in scripts:
        assert privileged.nft_ruleset_problem(script) is None, script


def test_the_table_holds_each_ports_device_mac_and_address():
    script = nft_rules.table_script(BOTH, Elements.of([port(7)]))
    assert 'elements = { "cache-000000007" }' in script
    assert 'elements = { "cache-000000007" . fa:17:3e:00:00:07 }' in script
    assert 'elements = { "cache-000000007" . 10.99.0.7 }' in script
    assert 'iifname "cache-*" jump from_instance' in script
    assert 'iifname "cache-*" oifname "cache-*" drop' in script  # isolation


def test_adding_a_port_is_an_element_update_and_a_moved_one_is_replaced():
    before = Elements.of([port(7), port(8)])
    after = Elements.of([port(7), port(9, device="cache-000000008")])
    script = nft_rules.element_script(before, after)
    assert script.splitlines() == [
        'delete element bridge cachenet macs { "cache-000000008" . fa:17:3e:00:00:08 }',
        'delete element bridge cachenet addresses { "cache-000000008" . 10.99.0.8 }',
        'add element bridge cachenet macs { "cache-000000008" . fa:17:3e:00:00:09 }',
        'add element bridge cachenet addresses { "cache-000000008" . 10.99.0.9 }',
    ]
    assert nft_rules.element_script(after, after) == ""


def test_the_signature_follows_the_settings_that_shape_the_chains():
    signatures = {
        nft_rules.signature(options)
        for options in (
            BOTH,
            RuleOptions("vm-", True, True),
            RuleOptions("cache-", False, True),
            RuleOptions("cache-", True, False),
        )
    }
    assert len(signatures) == 4
    assert nft_rules.rule_count(RuleOptions("cache-", True, False)) == 1


def test_parse_reads_nfts_json_listing():
    listing = {"nftables": [
        {"metainfo": {"version": "1.0.6"}},
        {"table": {"family": "bridge", "name": "cachenet", "handle": 1}},
        {"set": {"name": "ports", "type": "ifname", "elem": ["cache-000000007"]}},
        {"set": {"name": "macs", "type": ["ifname", "ether_addr"],
                 "elem": [{"concat": ["cache-000000007", "FA:17:3E:00:00:07"]}]}},
        {"set": {"name": "addresses", "type": ["ifname", "ipv4_addr"],
                 "elem": [{"concat": ["cache-000000007", "10.99.0.7"]}]}},
        {"rule": {"chain": "prerouting", "comment": "cachenet rules abc", "expr": []}},
        {"rule": {"chain": "from_instance", "expr": []}},
    ]}  # fmt: skip
    table = nft_rules.parse_table(json.dumps(listing))
    assert (table.signature, table.rule_count) == ("abc", 2)
    assert table.elements == Elements.of([port(7)])


def test_a_name_nft_cannot_quote_is_one_clear_error():
    with pytest.raises(BridgeError, match="cannot write the interface name"):
        nft_rules.table_script(RuleOptions('ca"che', True, True), Elements())


DUAL_STACK = [ipaddress.IPv6Network("fd00:99::/64")]


def test_a_dual_stack_port_may_use_its_eui64_and_link_local_addresses():
    elements = Elements.of([port(7)], DUAL_STACK)
    # fa:17:3e:00:00:07 -> fd00:99::f817:3eff:fe00:7 and fe80::f817:3eff:fe00:7, as integers
    assert elements.addresses6 == {
        ("cache-000000007", "0xfd00009900000000f8173efffe000007"),
        ("cache-000000007", "0xfe80000000000000f8173efffe000007"),
    }
    assert Elements.of([port(7)]).addresses6 == set()  # no IPv6 on an IPv4-only pool
    script = nft_rules.table_script(BOTH, elements)
    assert "typeof iifname . @th,64,128" in script
    assert privileged.nft_ruleset_problem(script) is None
    rules = "\n".join(r for chain in nft_rules.chains(BOTH) for r in chain.rules)
    assert "icmpv6 type { nd-router-advert, nd-redirect } drop" in rules
    assert "udp sport 547 drop" in rules
    assert "nd-neighbor-advert iifname . @th,64,128 != @addresses6 drop" in rules
    assert "iifname . @nh,64,128 @addresses6 accept" in rules


def test_ipv6_elements_read_back_from_nfts_listing_compare_equal():
    listing = {"nftables": [
        {"set": {"name": "addresses6", "type": ["ifname", "integer"],
                 "elem": [{"concat": ["cache-000000007", "0xFD00009900000000F8173EFFFE000007"]}]}},
    ]}  # fmt: skip
    parsed = nft_rules.parse_table(json.dumps(listing)).elements.addresses6
    assert parsed == {("cache-000000007", "0xfd00009900000000f8173efffe000007")}
    wanted = Elements.of([port(7)], DUAL_STACK)
    assert nft_rules.element_script(Elements.of([port(7)]), wanted).splitlines() == [
        "add element bridge cachenet addresses6 { "
        '"cache-000000007" . 0xfd00009900000000f8173efffe000007, '
        '"cache-000000007" . 0xfe80000000000000f8173efffe000007 }'
    ]


def test_an_ipv6_only_port_has_no_ipv4_address_and_the_pool_no_dhcp_request_rule():
    v6only = dataclasses.replace(port(7), address=None)
    elements = Elements.of([v6only], DUAL_STACK)
    assert elements.addresses == set() and len(elements.addresses6) == 2
    assert elements.macs == {("cache-000000007", "fa:17:3e:00:00:07")}

    def rules(options):
        return [r for chain in nft_rules.chains(options) for r in chain.rules]

    v6only_pool = dataclasses.replace(BOTH, dhcpv4=False)
    assert [r for r in rules(BOTH) if r not in rules(v6only_pool)] == [
        "ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept"
    ]
    assert nft_rules.signature(v6only_pool) != nft_rules.signature(BOTH)  # rewritten on change
    script = nft_rules.table_script(v6only_pool, elements)
    assert privileged.nft_ruleset_problem(script) is None
