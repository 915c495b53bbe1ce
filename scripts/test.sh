#!/usr/bin/env bash
# Builds sluice and runs every test: release, then asan+ubsan, then tsan, then the fuzzers.
# Usage: scripts/test.sh [preset...]   (default: release asan tsan fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
presets=("$@")
[[ ${#presets[@]} -gt 0 ]] || presets=(release asan tsan fuzz)
for preset in "${presets[@]}"; do
  echo "=== sluice: $preset ==="
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
done
echo "=== sluice: all tests passed (${presets[*]}) ==="
