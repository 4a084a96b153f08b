"""Scraping a cachenet service's /metrics as Prometheus would, and reading the figures."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from harness.wait import wait_for

FETCH = (
    "import sys, urllib.request; "
    "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
)


class Scrape:
    """The samples of one scrape: ``scrape["name", {"label": "value"}]`` -> value."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def __getitem__(self, key: str | tuple[str, dict[str, str]]) -> float:
        name, labels = (key, {}) if isinstance(key, str) else key
        return self.samples[(name, frozenset(labels.items()))]

    def get(self, name: str, default: float | None = None, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())), default)

    def names(self) -> set[str]:
        return {name for name, _labels in self.samples}


def scrape(listen: str, ns: str | None = None) -> Scrape:
    """GET http://LISTEN/metrics, from inside the network namespace ``ns`` when given
    (its loopback is its own)."""
    url = f"http://{listen}/metrics"
    if ns is None:
        with urllib.request.urlopen(url, timeout=5) as response:
            return Scrape(response.read().decode())
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", FETCH, url],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return Scrape(done.stdout)


def scrape_until(
    listen: str, condition: Callable[[Scrape], bool], what: str, ns: str | None = None,
    timeout: float = 10.0,
) -> Scrape:  # fmt: skip
    """Scrape until ``condition`` holds; the last scrape is in the failure message."""
    last: list[str] = ["no scrape"]

    def satisfied() -> Scrape | None:
        try:
            found = scrape(listen, ns)
        except (OSError, subprocess.CalledProcessError) as exc:
            last[0] = str(exc)
            return None
        last[0] = found.text
        return found if condition(found) else None

    return wait_for(satisfied, lambda: f"{what}; last scrape:\n{last[0]}", timeout, interval=0.1)
