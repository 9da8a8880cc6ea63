#!/usr/bin/env bash
# Configures and builds Rauha into ./build (Release with debug info, warnings as errors).
# Uses ccache when it is installed (it is optional: a rebuild of an unchanged file is then a
# cache hit, e.g. a second clone on the same machine).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build build -j "$jobs"
