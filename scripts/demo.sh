#!/usr/bin/env bash
# Builds sluice and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target sluice_demo >/dev/null
exec build/release/example/sluice_demo "$@"
