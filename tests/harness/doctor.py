"""``cachenet doctor --json`` run as an operator runs it, its results by check name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from os import PathLike

from harness.cli import run_cachenet


@dataclass
class Doctor:
    status: int
    results: dict[str, dict[str, str | None]]
    stderr: str

    def status_of(self, name: str) -> str | None:
        return self.results[name]["status"]

    def message(self, name: str) -> str:
        return str(self.results[name]["message"])

    def fix(self, name: str) -> str | None:
        return self.results[name]["fix"]

    def not_ok(self) -> dict[str, str | None]:
        """Check name -> status, for every check that is neither ok nor skipped."""
        return {
            name: r["status"]
            for name, r in self.results.items()
            if r["status"] not in ("ok", "skipped")
        }


def run_doctor(
    conf: str | PathLike[str], *args: str, ns: str | None = None, env: dict[str, str] | None = None
) -> Doctor:
    """``cachenet --config-file CONF doctor --json ARGS`` (in the network namespace ``ns``)."""
    done = run_cachenet(conf, "doctor", "--json", *args, ns=ns, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    results = {r["name"]: r for r in json.loads(done.stdout)}
    return Doctor(done.returncode, results, done.stderr)


def cachenet(conf: str | PathLike[str], *args: str, ns: str | None = None) -> str:
    """Another ``cachenet`` command (a fix doctor named); its output. It must succeed."""
    done = run_cachenet(conf, *args, ns=ns)
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


def write_conf(path: PathLike[str], **options: object) -> PathLike[str]:
    from pathlib import Path

    Path(path).write_text("[cachenet]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()))
    return path
