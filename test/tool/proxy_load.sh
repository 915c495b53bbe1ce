#!/usr/bin/env bash
# sluice-proxy under load, on loopback, with an echo upstream (proxy_test_peer echo):
# 1,000 connections open at once, each moving its own bytes back and forth (checked byte
# for byte), then 5,000 connection cycles (open, exchange, close). After each phase the
# proxy's open descriptors must come back to where they started, and its resident memory
# close to it. Called by CTest:
#   proxy_load.sh PROXY PEER CLIENT
# Every wait is a bounded poll of the condition; the trap ends whatever was started.
set -euo pipefail
proxy=$1 peer=$2 client=$3

connections=1000 cycles=5000 bytes=16384 parallel=16

source "$(dirname "$0")/processes.sh"

# Each side of 1,000 connections needs a descriptor per connection (the proxy two, and it
# raises its own soft limit to the hard one); the margin is for what else they open.
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt $((2 * connections + 200)) ]]; then
  echo "the hard limit on descriptors ($hard) is too low for $connections connections"
  exit 77
fi
ulimit -n "$hard"

# Under ASan the memory is ASan's as much as the proxy's: freed blocks wait in its
# quarantine, and the shadow of every page the heap ever used stays resident. There, the
# memory check is that 5,000 cycles add nothing to what 1,000 connections left behind, and
# LeakSanitizer, at the proxy's exit, checks that everything was freed. A small quarantine
# (it still catches a use after recent frees) and pages released at once keep ASan's own
# share small.
asan=0
if [[ $(ldd "$proxy") == *libasan* ]]; then # (not grep -q: pipefail would see ldd's SIGPIPE)
  asan=1
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16:allocator_release_to_os_interval_ms=0"
fi

"$peer" echo >"$work/upstream.out" 2>"$work/upstream.err" &
pids+=($!)
poll 10 grep -sqE '^port [0-9]+$' "$work/upstream.out" || fail "the upstream did not start"
upstream_port=$(sed -nE 's/^port ([0-9]+)$/\1/p' "$work/upstream.out")

# Limits that never bind here, so that every connection also joins and leaves the group.
"$proxy" --listen 127.0.0.1:0 --upstream "127.0.0.1:$upstream_port" --total 10GiB \
  --rate 1GiB >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pid=$!
pids+=("$proxy_pid")
poll 10 grep -sq 'listening on ' "$work/proxy.out" || fail "the proxy did not start"
proxy_port=$(sed -nE 's/.*listening on .*:([0-9]+), upstream .*/\1/p' "$work/proxy.out" | head -n1)
[[ -n $proxy_port ]] || fail "no port in the 'listening on' line"

fds() { ls "/proc/$proxy_pid/fd" | wc -l; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$proxy_pid/status"; }
fds_are() { [[ $(fds) -eq $1 ]]; }

# Memory may stay above where it started by this much: what the allocator keeps for reuse
# (glibc's free lists, Asio's recycled operation memory) rather than hand back to the
# system. It is small next to what the connections use: each holds two 64 KiB buffers
# while it relays, so 1,000 of them hold over 128 MB at once, and a leak of even a few
# hundred bytes a connection (16,000 connections in all) would exceed it.
rss_tolerance_kib=$((8 * 1024))

fds0=$(fds) rss0=$(rss_kib)
echo "start: $fds0 descriptors, VmRSS $rss0 KiB"
rss_base=$rss0 # the level memory must come back to
rss_is_back() { (($(rss_kib) <= rss_base + rss_tolerance_kib)); }

# After a phase: descriptors exactly as at the start, memory within the tolerance. Both are
# polled (a proxy may hand memory back some time after its last connection has closed).
check_back() { # phase
  poll 20 fds_are "$fds0" || fail "$1: $(fds) descriptors open, not $fds0"
  local ok=1
  [[ -z $rss_base ]] || poll 10 rss_is_back || ok=0
  echo "after $1: $(fds) descriptors, VmRSS $(rss_kib) KiB"
  ((ok)) || fail "$1: VmRSS $(rss_kib) KiB, over $rss_tolerance_kib KiB above $rss_base KiB"
}

((asan)) && rss_base= # (see ASAN_OPTIONS above)

# Phase 1: all connections open at once. The proxy holds two descriptors for each, at the
# same time, before any closes.
"$client" hold "$proxy_port" "$connections" "$bytes" >"$work/hold.out" 2>"$work/hold.err" &
hold_pid=$!
pids+=("$hold_pid")
# Until every connection has exchanged its bytes, or the client has given up.
held_or_gone() { grep -sq "^held $connections$" "$work/hold.out" || ! kill -0 "$hold_pid" 2>/dev/null; }
poll 60 held_or_gone && grep -q "^held $connections$" "$work/hold.out" ||
  fail "not all $connections connections exchanged their bytes: $(head -n1 "$work/hold.out")"
poll 10 fds_are $((fds0 + 2 * connections)) ||
  fail "$(fds) descriptors with $connections connections open, not $((fds0 + 2 * connections))"
echo "$connections connections open: $(fds) descriptors, VmRSS $(rss_kib) KiB"
kill -USR1 "$hold_pid"
rc=0
wait "$hold_pid" || rc=$?
[[ $rc -eq 0 ]] || fail "the connections did not close cleanly: $(cat "$work/hold.out")"
check_back "$connections concurrent connections"
((asan)) && rss_base=$(rss_kib) # the level the cycles must keep (see ASAN_OPTIONS above)

# Phase 2: short connections, a few at a time.
rc=0
timeout 60 "$client" cycles "$proxy_port" "$cycles" "$bytes" "$parallel" >"$work/cycles.out" \
  2>"$work/cycles.err" || rc=$?
[[ $rc -eq 0 ]] || fail "connection cycles: exit $rc: $(cat "$work/cycles.out")"
check_back "$cycles connection cycles"

kill -TERM "$proxy_pid"
rc=0
timeout 10 tail --pid="$proxy_pid" -f /dev/null || fail "the proxy did not stop on SIGTERM"
wait "$proxy_pid" || rc=$?
[[ $rc -eq 0 ]] || fail "the proxy exited with $rc after SIGTERM"
echo "PASS: load"
