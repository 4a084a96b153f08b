"""``cachenet doctor`` run by a user without root (nobody, through setpriv): what it
cannot check for lack of privilege is one line each, never a traceback."""

import json

import pytest

from cachenet.doctor.checks import CHECKS
from harness.doctor import cachenet, write_conf
from harness.unprivileged import NOBODY, cachenet_as

pytestmark = pytest.mark.root


@pytest.fixture
def host(prefix, ns, shared_dir, libvirtd):
    """A Linux bridge host in ``ns``; its store in a directory only root may enter."""
    store_dir = shared_dir / "root-only"
    store_dir.mkdir(mode=0o700)
    conf = write_conf(shared_dir / "cachenet.conf", database=f"sqlite:///{store_dir}/ports.db",
                      host="compute-1", bridge=f"{prefix}br", uplink=f"{prefix}up",
                      libvirt_uri=libvirtd)  # fmt: skip
    conf.chmod(0o644)
    cachenet(conf, "db", "upgrade")
    cachenet(conf, "bridge", "ensure", ns=ns)
    return conf


def test_what_nobody_may_not_check_is_one_line_each(host, ns):
    done = cachenet_as(NOBODY, host, "doctor", "--json", netns=ns)
    assert "Traceback" not in done.stderr, done.stderr
    results = {r["name"]: r for r in json.loads(done.stdout)}
    refused = {name for name, r in results.items() if "lacks a privilege" in r["message"]}
    # The store (root's SQLite file), the nftables table and libvirt's system socket.
    assert refused == {"store", "port-isolation", "libvirt"}, results
    for name in refused:
        assert results[name]["status"] == "skipped"
        assert results[name]["fix"] == "run cachenet doctor as root"
    # What any user may read is still checked.
    assert results["bridge"]["status"] == "ok", results["bridge"]
    assert results["uplink"]["status"] == "ok", results["uplink"]
    assert results["schema"]["message"] == "not checked: store could not be checked"


def test_the_text_output_is_one_line_per_check(host, ns):
    done = cachenet_as(NOBODY, host, "doctor", netns=ns)
    assert "Traceback" not in done.stderr and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[1] for line in lines][:3] == ["config", "store", "schema"]
    assert [line.split()[1] for line in lines] == ["config", *CHECKS]
    store = next(line for line in lines if line.split()[1] == "store")
    assert store.startswith("SKIPPED store           not checked, this user lacks a privilege: ")
    assert store.endswith("; fix: run cachenet doctor as root")
