#!/usr/bin/env bash
# Sets up this machine (packages), builds, and runs every test: unit tests,
# then integration tests on real LXC containers and sshd (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
cd build
ctest --output-on-failure -L unit
ctest --output-on-failure -L integration --timeout 1200
