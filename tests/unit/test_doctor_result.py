"""The doctor's result lines and exit rule (pure)."""

from cachenet.doctor import FAIL, OK, SKIPPED, WARN, Result, healthy


def test_a_line_names_status_check_finding_and_fix():
    result = Result("uplink", FAIL, "eth1 is DOWN", "cachenet bridge ensure")
    assert result.line() == "FAIL    uplink          eth1 is DOWN; fix: cachenet bridge ensure"
    assert Result("store", OK, "sqlite:////x answers").line() == (
        "OK      store           sqlite:////x answers"
    )


def test_skipped_checks_are_healthy_warnings_and_failures_are_not():
    ok, skipped = Result("a", OK, ""), Result("b", SKIPPED, "not a DHCP node")
    assert healthy([ok, skipped])
    assert not healthy([ok, Result("pool", WARN, "87 %")])
    assert not healthy([skipped, Result("bridge", FAIL, "gone")])
