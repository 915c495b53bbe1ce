#!/usr/bin/env bash
# Runs sluice-proxy on loopback between clients (curl, or proxy_test_peer) and an upstream
# (proxy_test_peer), and checks what comes out. Called by CTest:
#   proxy_test.sh PROXY PEER args|names|halfclose|stop|rate|fair
# Every port is chosen by the kernel (port 0) and read back from the programs' first line;
# every wait is bounded; the trap ends whatever was started.
set -euo pipefail
proxy=$1 peer=$2 check=$3

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.out "$work"/*.err; do
    [[ -s $f ]] && { echo "--- $f" >&2; cat "$f" >&2; }
  done
  exit 1
}

# Waits (10 s at most) until file $1 has a line matching the regex $2.
wait_for_line() {
  timeout 10 bash -c "until grep -qE '$2' '$1'; do sleep 0.05; done" ||
    fail "no line matching '$2' in $1"
}

start_upstream() { # peer mode...
  "$peer" "$@" >"$work/upstream.out" 2>"$work/upstream.err" &
  pids+=($!)
  wait_for_line "$work/upstream.out" '^port [0-9]+$'
  upstream_port=$(sed -nE 's/^port ([0-9]+)$/\1/p' "$work/upstream.out" | head -n1)
}

# Proxy options beyond --listen and --upstream; their hosts are $listen_host and
# $upstream_host, 127.0.0.1 unless set.
start_proxy() {
  "$proxy" --listen "${listen_host:-127.0.0.1}:0" --upstream "${upstream_host:-127.0.0.1}:$upstream_port" \
    "$@" >"$work/proxy.out" 2>"$work/proxy.err" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_for_line "$work/proxy.out" '^listening on '
  proxy_port=$(sed -nE 's/^listening on .*:([0-9]+), upstream .*/\1/p' "$work/proxy.out" | head -n1)
  [[ -n $proxy_port ]] || fail "no port in the 'listening on' line"
}

# SIGTERM must end the proxy cleanly: exit 0, within 5 s, with a line for each connection.
stop_proxy() {
  kill -TERM "$proxy_pid"
  timeout 5 tail --pid="$proxy_pid" -f /dev/null || fail "the proxy did not stop on SIGTERM"
  local rc=0
  wait "$proxy_pid" || rc=$?
  [[ $rc -eq 0 ]] || fail "the proxy exited with $rc after SIGTERM"
  grep -q '^stopping (signal 15)' "$work/proxy.out" || fail "no 'stopping' line"
}

# Downloads $1 bytes through the proxy; prints "bytes_per_second bytes".
download() {
  timeout 30 curl --noproxy '*' -sS --max-time 25 -o /dev/null \
    -w '%{speed_download} %{size_download}\n' "http://127.0.0.1:$proxy_port/"
}

# within VALUE LOW HIGH: LOW <= VALUE <= HIGH (decimals welcome)
within() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }

need_curl() {
  command -v curl >/dev/null || { echo "curl is missing (scripts/setup.sh installs it)"; exit 77; }
}

case $check in
args)
  # Each bad command line: exit 2, and the first line of stderr names the bad argument
  # (the usage that follows names them all).
  expect_bad() { # name args...
    local name=$1 rc=0
    shift
    timeout 5 "$proxy" "$@" >"$work/args.out" 2>"$work/args.err" || rc=$?
    [[ $rc -eq 2 ]] || fail "sluice-proxy $* exited with $rc, not 2"
    head -n1 "$work/args.err" | grep -qF -- "sluice-proxy: $name: " ||
      fail "sluice-proxy $*: stderr does not start with $name"
    grep -q '^usage:' "$work/args.err" || fail "sluice-proxy $*: no usage on stderr"
  }
  ok=(--listen 127.0.0.1:0 --upstream 127.0.0.1:9)
  expect_bad --bogus "${ok[@]}" --bogus 1
  expect_bad --rate "${ok[@]}" --rate
  expect_bad --rate "${ok[@]}" --rate --total 1MiB
  expect_bad --rate "${ok[@]}" --rate 10XB
  expect_bad --rate "${ok[@]}" --rate 0
  expect_bad --total "${ok[@]}" --total -5KiB
  expect_bad --tick "${ok[@]}" --tick 10
  expect_bad --stats "${ok[@]}" --stats 0s
  expect_bad --listen --listen :80 --upstream 127.0.0.1:9
  expect_bad --listen --listen '[::1' --upstream 127.0.0.1:9
  expect_bad --upstream --listen 127.0.0.1:0 --upstream 127.0.0.1
  expect_bad --upstream --listen 127.0.0.1:0 --upstream localhost:http
  # Names that do not resolve (.invalid never does, RFC 6761): the value and the reason.
  expect_bad --upstream --listen 127.0.0.1:0 --upstream no-such-host.invalid:80
  grep -qF "'no-such-host.invalid:80': cannot resolve 'no-such-host.invalid': " "$work/args.err" ||
    fail "--upstream no-such-host.invalid:80: the message does not say what failed"
  expect_bad --listen --listen no-such-host.invalid:0 --upstream 127.0.0.1:9
  expect_bad --listen --upstream 127.0.0.1:9
  expect_bad --upstream --listen 127.0.0.1:0
  rc=0
  "$proxy" --help >"$work/help.out" 2>&1 || rc=$?
  { [[ $rc -eq 0 ]] && grep -q '^usage: sluice-proxy' "$work/help.out"; } || fail "--help: exit $rc"
  echo "bad arguments: exit 2 and named; --help: exit 0"
  ;;

names)
  # Host names, resolved at start: the proxy listens on and connects to localhost.
  need_curl
  start_upstream http 100000
  listen_host=localhost upstream_host=localhost start_proxy
  grep -qE "^listening on .*, upstream localhost:$upstream_port[ ,]" "$work/proxy.out" ||
    fail "the 'listening on' line does not name the upstream localhost:$upstream_port"
  size=$(timeout 30 curl --noproxy '*' -sS --max-time 25 -o "$work/body" -w '%{size_download}' \
    "http://localhost:$proxy_port/") || fail "curl through the proxy failed"
  [[ $size -eq 100000 && $(stat -c %s "$work/body") -eq 100000 ]] ||
    fail "downloaded $size bytes, not 100000"
  [[ -z $(tr -d x <"$work/body") ]] || fail "the body is not the upstream's (all 'x')"
  stop_proxy
  grep -qE '^closed #1 .*down 97\.[0-9] KiB in' "$work/proxy.out" || fail "no close line"
  cat "$work/proxy.out"
  ;;

halfclose)
  # The upstream answers only after the client's half-close reached it through the proxy,
  # and the client must still get the answer after its own half-close.
  start_upstream echo-after-eof
  start_proxy --rate 1MiB
  timeout 10 "$peer" half-close-client "$proxy_port" 100000 || fail "half-close did not get through"
  stop_proxy
  grep -qE '^closed #1 .*up 97.7 KiB, down 97.7 KiB' "$work/proxy.out" || fail "no close line"
  ;;

stop)
  # SIGTERM in the middle of downloads that wait for tokens (own and group): the proxy
  # must cancel the waits, close both sides and exit 0 at once. And an upstream that
  # refuses gets a line, not a crash.
  need_curl
  start_upstream http 10000000
  start_proxy --rate 100KiB --total 150KiB --stats 200ms
  for i in 1 2; do
    timeout 20 curl --noproxy '*' -s -o /dev/null "http://127.0.0.1:$proxy_port/" &
    pids+=($!)
  done
  wait_for_line "$work/proxy.out" '^listening'
  sleep 1
  stop_proxy
  [[ $(grep -c '^closed #' "$work/proxy.out") -eq 2 ]] || fail "not 2 close lines"
  cat "$work/proxy.out"
  refused_port=$upstream_port
  kill "${pids[0]}" # the upstream
  wait "${pids[0]}" 2>/dev/null || true
  upstream_port=$refused_port
  start_proxy
  timeout 10 curl --noproxy '*' -s -o /dev/null "http://127.0.0.1:$proxy_port/" || true
  wait_for_line "$work/proxy.out" "^#1 127\\.0\\.0\\.1:[0-9]+: upstream 127\\.0\\.0\\.1:$refused_port: "
  stop_proxy
  cat "$work/proxy.out"
  ;;

rate)
  # One download at --rate 200KiB: about 3 s for 600 KB.
  need_curl
  start_upstream http 600000
  start_proxy --rate 200KiB
  read -r speed size < <(download) || fail "curl failed"
  echo "one connection at --rate 200KiB: $speed B/s ($(awk -v s="$speed" 'BEGIN{printf "%.1f", s/1024}') KiB/s) for $size bytes"
  [[ $size -eq 600000 ]] || fail "downloaded $size bytes, not 600000"
  # 0.6x..1.3x of 204800 B/s; the first tick's burst (2 KiB) is far inside that.
  within "$speed" 122880 266240 || fail "rate $speed B/s is not about 204800 B/s"
  stop_proxy
  grep -qE '^closed #1 127\.0\.0\.1:[0-9]+: up .*, down 58[56]\.[0-9] KiB in' "$work/proxy.out" ||
    fail "no close line for the download"
  ;;

fair)
  # Three downloads at once share --total 300KiB: about 100 KiB/s each, ~4 s.
  need_curl
  start_upstream http 400000
  start_proxy --total 300KiB --stats 1s
  for i in 1 2 3; do
    download >"$work/curl$i.txt" 2>"$work/curl$i.err" &
    curls[i]=$!
  done
  for i in 1 2 3; do wait "${curls[i]}" || fail "curl $i failed"; done
  sum=0
  for i in 1 2 3; do
    read -r speed size <"$work/curl$i.txt"
    echo "curl $i of 3 under --total 300KiB: $speed B/s ($(awk -v s="$speed" 'BEGIN{printf "%.1f", s/1024}') KiB/s)"
    [[ $size -eq 400000 ]] || fail "curl $i downloaded $size bytes, not 400000"
    within "$speed" 61440 143360 || fail "curl $i: $speed B/s is not about a third of 307200"
    sum=$(awk -v a="$sum" -v b="$speed" 'BEGIN { print a + b }')
  done
  echo "sum: $sum B/s ($(awk -v s="$sum" 'BEGIN{printf "%.1f", s/1024}') KiB/s)"
  within "$sum" 230400 399360 || fail "the sum $sum B/s is not about 307200"
  grep -qE '^stats: 3 connections \| #1 down .* \| total down .* \(limit 300\.0 KiB/s\)$' \
    "$work/proxy.out" || fail "no stats line with 3 connections"
  stop_proxy
  [[ $(grep -c '^closed #' "$work/proxy.out") -eq 3 ]] || fail "not 3 close lines"
  ;;

*)
  echo "unknown check $check" >&2
  exit 2
  ;;
esac
echo "PASS: $check"
