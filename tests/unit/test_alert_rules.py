"""examples/prometheus/cachenet-alerts.yml: valid rules (promtool), each alert firing on
the series it is for (promtool test rules), and only metrics cachenet exposes named; the
README's metric table lists exactly those metrics."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cachenet import metrics
from cachenet.settings import make_settings
from cachenet.store import open_store

ROOT = Path(__file__).parents[2]
RULES = ROOT / "examples" / "prometheus" / "cachenet-alerts.yml"
RULE_TESTS = Path(__file__).parent / "cachenet-alerts-test.yml"


@pytest.fixture(scope="module")
def exposed(tmp_path_factory):
    """Every metric family and sample name the dhcp and agent services expose."""
    path = tmp_path_factory.mktemp("store") / "ports.sqlite"
    store = open_store(make_settings(database=f"sqlite:///{path}"))
    families, samples = set(), set()
    for service in ("dhcp", "agent"):
        text = generate_latest(metrics.enable(service, store)).decode()
        for family in text_string_to_metric_families(text):
            families.add(family.name)
            samples |= {sample.name for sample in family.samples}
    store.engine.dispose()
    return families, samples


def promtool():
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: scripts/install.sh installs Debian's prometheus")
    return found


def test_promtool_accepts_the_rules():
    result = subprocess.run([promtool(), "check", "rules", str(RULES)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_on_its_series_and_only_then():
    result = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_name_only_metrics_cachenet_exposes(exposed):
    _families, samples = exposed
    rules = [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]
    assert {rule["alert"] for rule in rules} >= {
        "CachenetPoolAlmostFull", "CachenetDhcpNotSynced", "CachenetDnsmasqRestarting"
    }  # fmt: skip
    for rule in rules:
        named = set(re.findall(r"\bcachenet_\w+", rule["expr"]))
        assert named and named <= samples, (rule["alert"], named - samples)


def test_the_readme_lists_every_metric(exposed):
    families, _samples = exposed
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\| `(cachenet_\w+?)(?:_total)?` \|", readme, re.MULTILINE))
    assert listed == families
