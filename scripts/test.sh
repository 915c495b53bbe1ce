#!/usr/bin/env bash
# Builds sluice and runs every test: release, then asan+ubsan, then tsan, then the fuzzers.
# Usage: scripts/test.sh [preset...]   (default: release asan tsan fuzz)
# At the end (also after a failure) it prints how long each preset took to configure and
# build, and to test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
presets=("$@")
[[ ${#presets[@]} -gt 0 ]] || presets=(release asan tsan fuzz)

times=()
start=$SECONDS
minutes() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }
report() {
  [[ ${#times[@]} -gt 0 ]] || return 0
  echo "=== sluice: wall time per preset (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)) ==="
  printf '%s\n' "${times[@]}"
  printf '%-8s %s\n' total "$(minutes $((SECONDS - start)))"
}
trap report EXIT

for preset in "${presets[@]}"; do
  echo "=== sluice: $preset ==="
  t0=$SECONDS
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  t1=$SECONDS
  times+=("$(printf '%-8s build %s' "$preset" "$(minutes $((t1 - t0)))")")
  ctest --preset "$preset" -j "$jobs"
  t2=$SECONDS
  times[-1]+="  test $(minutes $((t2 - t1)))"
done
echo "=== sluice: all tests passed (${presets[*]}) ==="
