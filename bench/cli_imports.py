"""Time each cachenet command spends importing modules, per command.

    .venv/bin/python bench/cli_imports.py [--runs N]     (as root: also with an agent)

Runs each command as an operator would (``python -X importtime -m cachenet
...``, the store on a throw-away SQLite file) and sums the cumulative times
of the top-level imports ``-X importtime`` reports: every module the command
loaded, including those a command imports when it runs, and nothing of the
command's own work. The anchor is the same sum for ``python -c pass`` (the
interpreter's own start-up imports: site, encodings). Commands are run
interleaved, N rounds, and the median of each is printed; ``-X importtime``
itself slows imports a little, so the figures are upper bounds.

``attach`` and ``ports allocate`` are run twice: alone, and handed to a
running ``cachenet agent`` of the same configuration (started in a network
namespace of its own, libvirt's test driver; root only), which is how a host
running the agent serves them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the harness

TARGET = {"ports allocate": 0.15, "ports allocate (agent)": 0.15}  # seconds
XML_PORT = ["--mac", "fa:16:3e:00:00:05", "--ip", "10.99.0.20"]
DOMAIN = b"<domain type='kvm'><name>d</name><devices/></domain>"
NODE = (
    "<node><domain type='test'><name>bench</name><memory>1024</memory><os><type>hvm</type>"
    "</os><devices/></domain></node>"
)


def import_seconds(
    args: list[str], env: dict[str, str], stdin: bytes = b"", ns: str | None = None
) -> float:
    """Sum of the cumulative times of the top-level imports of one run of ``args``."""
    where = ["ip", "netns", "exec", ns] if ns else []
    result = subprocess.run(
        [*where, sys.executable, "-X", "importtime", *args],
        input=stdin, capture_output=True, env=env, check=False,
    )  # fmt: skip
    total = 0
    for line in result.stderr.decode().splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # one space: a top-level import
            total += int(cumulative)
    return total / 1e6


UUID = str(uuid.uuid4())  # allocated once, then found: allocate is idempotent
# name -> (arguments, stdin, whether it runs in the agent's namespace)
Commands = dict[str, tuple[list[str], bytes, bool]]


def commands(conf: Path, agents_conf: Path | None) -> Commands:
    """The commands measured; ``attach`` only with ``agents_conf`` (as root): it
    writes port security rules, which must go to the bench's own namespace."""
    cachenet = ["-m", "cachenet", "--config-file", str(conf)]
    attach: Commands = {}
    if agents_conf is not None:
        served = ["-m", "cachenet", "--config-file", str(agents_conf)]
        attach = {
            "ports allocate (agent)": ([*served, "ports", "allocate", UUID], b"", False),
            "attach": ([*cachenet, "attach", "bench"], b"", True),
            "attach (agent)": ([*served, "attach", "bench"], b"", True),
        }
    return {
        "python -c pass (anchor)": (["-c", "pass"], b"", False),
        "--help": ([*cachenet, "--help"], b"", False),
        "ports allocate": ([*cachenet, "ports", "allocate", UUID, "--json"], b"", False),
        **attach,
        "ports list": ([*cachenet, "ports", "list"], b"", False),
        "xml add": ([*cachenet, "xml", "add", str(uuid.uuid4()), *XML_PORT], DOMAIN, False),
        "bridge status": ([*cachenet, "bridge", "status", "--json"], b"", False),
        "dhcp sync --once": ([*cachenet, "dhcp", "sync", "--once"], b"", False),
    }


@contextlib.contextmanager
def running_agent(conf: Path) -> Iterator[str]:
    """``cachenet agent`` of ``conf`` in a namespace of its own (its port security
    writes that namespace's nftables), until the block ends; yields the namespace."""
    from harness import netns
    from harness.cli import running_cachenet

    log = conf.with_suffix(".log")
    with (
        netns.namespace(netns.unique_prefix() + "-bench") as ns,
        running_cachenet(conf, "agent", ns=ns, log=log, ready="reconciled"),
    ):
        yield ns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cachenet-bench-") as tmp:
        (Path(tmp) / "node.xml").write_text(NODE)
        options = (
            "[cachenet]\nsubnet = 10.99.0.0/24\nbridge = cnbench0\nmac_prefix = fa:16:3e\n"
            f"database = sqlite:///{tmp}/ports.sqlite\ndhcp_state_dir = {tmp}/dhcp\n"
            f"libvirt_uri = test://{tmp}/node.xml\nagent_selector = name:none-*\n"
        )
        conf = Path(tmp) / "cachenet.conf"
        conf.write_text(options)
        agents_conf = Path(tmp) / "agent.conf"  # the same options; only the agent's file
        agents_conf.write_text(options + "# the agent's\n")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        as_root = os.geteuid() == 0
        runs = commands(conf, agents_conf if as_root else None)
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        with running_agent(agents_conf) if as_root else contextlib.nullcontext() as ns:
            for argv, stdin, in_ns in runs.values():  # warm up: byte-code, schema created
                import_seconds(argv, env, stdin, ns if in_ns else None)
            for _ in range(args.runs):
                for name, (argv, stdin, in_ns) in runs.items():
                    seconds[name].append(import_seconds(argv, env, stdin, ns if in_ns else None))
    print(f"import time per command, median of {args.runs} interleaved runs (python -X importtime)")
    for name, values in seconds.items():
        median = statistics.median(values)
        target = f"  (target < {TARGET[name]:.2f} s)" if name in TARGET else ""
        print(f"  {name:<26} {median:6.3f} s  min {min(values):.3f}{target}")


if __name__ == "__main__":
    main()
