# What the proxy's test and bench scripts share, sourced by them: a work directory, the
# processes they start (listed in `pids`, ended by the trap with the directory), `fail`, and
# `poll`, a bounded wait for a condition.
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# fail MESSAGE...: says why, shows the end of what the programs printed, and exits 1.
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.out "$work"/*.err; do
    [[ -s $f ]] && { echo "--- $f" >&2; tail -n 50 "$f" >&2; }
  done
  exit 1
}

# poll SECONDS COMMAND...: runs COMMAND every 20 ms until it succeeds; fails after SECONDS.
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.02
  done
}
