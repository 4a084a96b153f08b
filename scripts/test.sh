#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root: installs what the
# tests need (scripts/install.sh), starts the database servers, runs ruff and pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
bash scripts/start-services.sh
.venv/bin/ruff check
.venv/bin/ruff format --check
exec .venv/bin/python -m pytest "$@"
