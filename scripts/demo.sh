#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine, as root: installs what cachenet needs,
# then boots three tiny VMs on a cache network built by cachenet on this machine
# (bridge, cache node with DHCP, cache NICs) and shows what each VM got.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
# The demonstration is part of the test harness (tests/harness), not of the installed package.
PYTHONPATH=tests exec .venv/bin/python -m harness.demo
