#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root: installs what the
# tests need (scripts/install.sh), starts the database servers, runs ruff, mypy and pytest.
# Extra arguments go to pytest instead (e.g. scripts/test.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
bash scripts/start-services.sh
.venv/bin/ruff check
.venv/bin/ruff format --check
.venv/bin/python -m mypy  # strict, on src/cachenet, bench and tests/harness: [tool.mypy] in pyproject.toml
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
# Nova's test package patches eventlet into the process it is imported in, so
# the Nova adapter's tests run in a pytest process of their own.
.venv/bin/python -m pytest --ignore=tests/nova_driver --ignore=tests/nova_unit
.venv/bin/python -m pytest tests/nova_driver
# Nova's own libvirt driver unit tests with cachenet's driver in place of Nova's
# (tests/nova_unit/conftest.py); also a process of its own.
.venv/bin/python -m pytest tests/nova_unit
