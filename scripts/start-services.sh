#!/usr/bin/env bash
# Starts the servers the tests use that are not started by the tests themselves.
# Idempotent. (libvirtd, Open vSwitch and dnsmasq are started by test fixtures.)
set -euo pipefail
cd "$(dirname "$0")/.."
