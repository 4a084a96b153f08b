#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine, as root: installs what cachenet needs,
# then shows the cache interface cachenet adds to a Nova-shaped domain.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
export CACHENET_CONFIG=
uuid=2a9f4c4e-5a0e-4d47-9c39-8e6a4d1f0b7a
echo "== cachenet xml add $uuid (examples/nova-domain.xml)"
.venv/bin/cachenet xml add "$uuid" --mac fa:17:3e:00:00:07 --ip 10.99.0.7 \
  < examples/nova-domain.xml > /tmp/cachenet-demo-domain.xml
.venv/bin/cachenet xml show < /tmp/cachenet-demo-domain.xml
virt-xml-validate /tmp/cachenet-demo-domain.xml domain
