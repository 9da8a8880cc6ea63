#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every test (unit and
# integration; integration tests need root and start their own rauhad each).
# RAUHA_TEST_REQUIRE_ALL=1 turns a skipped test (missing kernel feature) into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh
cd build
ctest --output-on-failure --timeout 600 "$@"
