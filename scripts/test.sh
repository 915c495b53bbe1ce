#!/usr/bin/env bash
# Builds sluice and runs every test: release, then asan+ubsan, then tsan, then the fuzzers.
# Usage: scripts/test.sh [preset...]   (default: release asan tsan fuzz)
# At the end (also after a failure) it prints how long each preset took to configure and
# build, and to test: wall time, and the CPU time of the commands, which on a shared machine
# says more than the wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
presets=("$@")
[[ ${#presets[@]} -gt 0 ]] || presets=(release asan tsan fuzz)

times=()
start=$SECONDS
minutes() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }
# CPU seconds (user + system) of the commands this script has run and waited for so far
# (cutime and cstime of /proc/<pid>/stat).
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($16 + $17) / hz }' "/proc/$$/stat"; }
report() {
  [[ ${#times[@]} -gt 0 ]] || return 0
  echo "=== sluice: wall time per preset (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)) ==="
  printf '%s\n' "${times[@]}"
  printf '%-8s %s (cpu %s)\n' total "$(minutes $((SECONDS - start)))" "$(minutes "$(cpu)")"
}
trap report EXIT

for preset in "${presets[@]}"; do
  echo "=== sluice: $preset ==="
  t0=$SECONDS c0=$(cpu)
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  t1=$SECONDS c1=$(cpu)
  times+=("$(printf '%-8s build %s (cpu %s)' "$preset" "$(minutes $((t1 - t0)))" \
                                              "$(minutes $((c1 - c0)))")")
  ctest --preset "$preset" -j "$jobs"
  t2=$SECONDS c2=$(cpu)
  times[-1]+="  test $(minutes $((t2 - t1))) (cpu $(minutes $((c2 - c1))))"
done
echo "=== sluice: all tests passed (${presets[*]}) ==="
