#!/usr/bin/env bash
# Runs sluice-proxy on loopback between clients (curl, or proxy_test_peer) and an upstream
# (proxy_test_peer), and checks what comes out. Called by CTest:
#   proxy_test.sh PROXY PEER CHECK     (the checks are the cases at the end)
# Every port is chosen by the kernel (port 0) and read back from the programs' first line;
# every wait is bounded; the trap ends whatever was started.
set -euo pipefail
proxy=$1 peer=$2 check=$3

source "$(dirname "$0")/processes.sh"

# Waits (10 s, or $3 s, at most) until file $1 has a line matching the regex $2.
wait_for_line() {
  timeout "${3:-10}" bash -c "until grep -qE '$2' '$1'; do sleep 0.05; done" ||
    fail "no line matching '$2' in $1"
}

# Every log line starts with its time, ISO 8601 in UTC: "2024-05-01T12:34:56.789Z ".
ts='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z '

# The port of a "listening on" line.
listen_port() { sed -nE 's/.*listening on .*:([0-9]+), upstream .*/\1/p' | head -n1; }

# Each output file is emptied before its program starts, so that a wait for its first line
# cannot see the line of the one before.
start_upstream() { # peer mode...
  : >"$work/upstream.out"
  "$peer" "$@" >>"$work/upstream.out" 2>"$work/upstream.err" &
  pids+=($!)
  wait_for_line "$work/upstream.out" '^port [0-9]+$'
  upstream_port=$(sed -nE 's/^port ([0-9]+)$/\1/p' "$work/upstream.out" | head -n1)
}

# Proxy options beyond --listen and --upstream; their hosts are $listen_host and
# $upstream_host, 127.0.0.1 unless set; $fd_limit, if set, is its ulimit -n.
start_proxy() {
  : >"$work/proxy.out"
  (
    [[ -z ${fd_limit:-} ]] || ulimit -n "$fd_limit"
    exec "$proxy" --listen "${listen_host:-127.0.0.1}:0" \
      --upstream "${upstream_host:-127.0.0.1}:$upstream_port" "$@"
  ) >>"$work/proxy.out" 2>"$work/proxy.err" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_for_line "$work/proxy.out" "(^${ts}|\"message\":\")listening on " # text or JSON
  proxy_port=$(listen_port <"$work/proxy.out")
  [[ -n $proxy_port ]] || fail "no port in the 'listening on' line"
}

# A proxy with exactly the arguments given (routes with --route), its output in
# $work/$1.out; its pid in $raw_pid. Waits for its first "listening on" line.
start_proxy_raw() { # name args...
  local name=$1
  shift
  : >"$work/$name.out"
  "$proxy" "$@" >>"$work/$name.out" 2>"$work/$name.err" &
  raw_pid=$!
  pids+=("$raw_pid")
  wait_for_line "$work/$name.out" "^${ts}listening on "
}

# Ends proxy $1 with SIGTERM; it must exit 0 within 5 s.
stop_pid() {
  kill -TERM "$1"
  timeout 5 tail --pid="$1" -f /dev/null || fail "proxy $1 did not stop on SIGTERM"
  local rc=0
  wait "$1" || rc=$?
  [[ $rc -eq 0 ]] || fail "proxy $1 exited with $rc after SIGTERM"
}

# Checks that file $1 is in the Prometheus text format (version 0.0.4): HELP and TYPE lines
# naming valid metric names, every sample of a family declared by its TYPE and all its
# samples together, labels quoted and escaped, values numbers (or +Inf, -Inf, NaN),
# counters not negative and named *_total. Prints the first fault and fails.
prom_check() {
  awk '
    function bad(why) { printf "line %d: %s: %s\n", NR, why, $0; failed = 1; exit 1 }
    /^# HELP / { if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) bad("bad name"); next }
    /^# TYPE / {
      if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) bad("bad name")
      if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/ || NF != 4) bad("bad type")
      if ($3 in type) bad("family declared twice")
      type[$3] = $4; next
    }
    /^#/ || /^$/ { next }
    {
      if (!match($0, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) bad("no metric name")
      name = substr($0, 1, RLENGTH); rest = substr($0, RLENGTH + 1)
      if (rest ~ /^\{/) {
        if (!match(rest, /^\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\}/)) bad("bad labels")
        rest = substr(rest, RLENGTH + 1)
      }
      if (rest !~ /^ [-+]?([0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|\.[0-9]+|Inf|NaN)( -?[0-9]+)?$/) bad("bad value")
      if (!(name in type)) bad("no TYPE for " name)
      if (name != last && (name in seen)) bad("samples of " name " apart")
      seen[name] = 1; last = name
      split(rest, v, " ")
      if (type[name] == "counter" && (v[2] + 0 < 0 || name !~ /_total$/)) bad("bad counter")
      ++samples
    }
    END { if (!failed && samples == 0) { print "no samples"; exit 1 } }
  ' "$1"
}

# The value of sample $2 (its name and labels, as written) in metrics file $1.
metric() { awk -v s="$2" 'index($0, s " ") == 1 { print $2 }' "$1"; }

# An admin request: admin METHOD PATH [BODY] prints the status and writes the body to
# $work/admin.body. $admin_port is the admin's port.
admin() {
  local method=$1 path=$2 body=${3-}
  local data=()
  [[ $method == PUT ]] && data=(--data-binary "$body")
  timeout 10 curl --noproxy '*' -sS --max-time 8 -X "$method" "${data[@]}" \
    -o "$work/admin.body" -w '%{http_code}' "${admin_curl_args[@]}" \
    "http://127.0.0.1:$admin_port$path"
}

# The bytes moved down so far, from GET /stats (its first key: {"bytes":{"down":N,...).
down_bytes() {
  admin GET /stats >/dev/null && sed -nE 's/^\{"bytes":\{"down":([0-9]+),.*/\1/p' "$work/admin.body"
}
downloading() { [[ $(down_bytes) -gt 0 ]]; }

# SIGTERM must end the proxy cleanly: exit 0, within 5 s, with a line for each connection.
stop_proxy() {
  kill -TERM "$proxy_pid"
  timeout 5 tail --pid="$proxy_pid" -f /dev/null || fail "the proxy did not stop on SIGTERM"
  local rc=0
  wait "$proxy_pid" || rc=$?
  [[ $rc -eq 0 ]] || fail "the proxy exited with $rc after SIGTERM"
  grep -qE "^${ts}stopping \(signal 15\)" "$work/proxy.out" || fail "no 'stopping' line"
}

# Downloads $1 bytes through the proxy; prints "bytes_per_second bytes".
download() {
  timeout 30 curl --noproxy '*' -sS --max-time 25 -o /dev/null \
    -w '%{speed_download} %{size_download}\n' "http://127.0.0.1:$proxy_port/"
}

# Downloads through the proxy from source address $1 (127.0.0.1, 127.0.0.2: all of 127/8 is
# loopback); prints "bytes_per_second bytes".
download_from() {
  timeout 30 curl --noproxy '*' -sS --max-time 25 --interface "$1" -o /dev/null \
    -w '%{speed_download} %{size_download}\n' "http://127.0.0.1:$proxy_port/"
}

# within VALUE LOW HIGH: LOW <= VALUE <= HIGH (decimals welcome)
within() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }

need_curl() {
  command -v curl >/dev/null || { echo "curl is missing (scripts/setup.sh installs it)"; exit 77; }
}

# A redis-server of the test's own on unix socket $1, in the background (ended by the trap);
# its pid in $redis_pid. Skips (77) where redis-server is not installed.
start_redis() {
  command -v redis-server >/dev/null ||
    { echo "redis-server is missing (scripts/setup.sh installs it)"; exit 77; }
  redis-server --port 0 --unixsocket "$1" --save "" --appendonly no --dir "$work" \
    --enable-debug-command local --daemonize no >>"$work/redis.out" 2>&1 &
  redis_pid=$!
  pids+=("$redis_pid")
  poll 10 test -S "$1" || fail "redis-server did not listen on $1"
}

# The admin port of the proxy whose output is $1.
admin_port_of() { sed -nE 's|.*admin on http://127\.0\.0\.1:([0-9]+)/.*|\1|p' "$1" | head -n1; }

# The JSON object of /stats' fleet direction $1 (down or up), from $work/admin.body.
fleet_of() { grep -oE "\"$1\":\\{\"total\":[^}]*\\}" "$work/admin.body"; }

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
  expect_bad --stats "${ok[@]}" --stats 1ns
  expect_bad --tick "${ok[@]}" --tick 1us
  grep -qF "must be at least 1ms, the smallest tick that works" "$work/args.err" ||
    fail "--tick 1us: the message does not name the smallest tick that works"
  expect_bad --rate "${ok[@]}" --rate 1K --rate 2K
  expect_bad --burst "${ok[@]}" --rate 1MiB --burst 1KiB
  expect_bad --rate-down "${ok[@]}" --rate-down 0
  expect_bad --total-up "${ok[@]}" --total-up 5XB
  expect_bad --max-connections "${ok[@]}" --max-connections 0
  expect_bad --log-format "${ok[@]}" --log-format yaml
  expect_bad --delay "${ok[@]}" --delay 0ms
  expect_bad --jitter "${ok[@]}" --jitter 10ms
  expect_bad --jitter "${ok[@]}" --delay 10ms --jitter 20ms
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
  expect_bad --per-ip "${ok[@]}" --per-ip 0
  expect_bad --per-ip-up "${ok[@]}" --per-ip-up 1XB
  expect_bad --per-ip-max-connections "${ok[@]}" --per-ip-max-connections x
  expect_bad --route --route 127.0.0.1:0
  expect_bad --route --route 127.0.0.1:0=unix:
  expect_bad --listen --route 127.0.0.1:0=127.0.0.1:9 --listen 127.0.0.1:0
  expect_bad --route --route 127.0.0.1:0=no-such-host.invalid:80
  expect_bad --admin "${ok[@]}" --admin 0.0.0.0:0
  expect_bad --admin "${ok[@]}" --admin localhost
  expect_bad --upstream --listen 127.0.0.1:0
  # --total-store and its companions (in a build without Redis, each is refused as such).
  expect_bad --total-group "${ok[@]}" --total 1MiB --total-group g
  expect_bad --total-store "${ok[@]}" --total 1MiB --total-store unix:/tmp/r.sock
  expect_bad --total-store "${ok[@]}" --total-store unix:/tmp/r.sock --total-group g
  expect_bad --total-store "${ok[@]}" --total 1MiB --total-store localhost:6379 --total-group g
  expect_bad --total-store "${ok[@]}" --total 1MiB \
    --total-store redis://no-such-host.invalid:6379 --total-group g
  expect_bad --total-on-failure "${ok[@]}" --total 1MiB --total-on-failure never \
    --total-store unix:/tmp/r.sock --total-group g
  expect_bad --total-group "${ok[@]}" --total 1MiB --total-group $'g\xff' \
    --total-store unix:/tmp/r.sock
  rc=0
  "$proxy" --help >"$work/help.out" 2>&1 || rc=$?
  { [[ $rc -eq 0 ]] && grep -q '^usage: sluice-proxy' "$work/help.out"; } || fail "--help: exit $rc"
  "$proxy" --version >"$work/version.out" 2>&1 || fail "--version: exit $?"
  grep -qE '^sluice-proxy [0-9]+\.[0-9]+\.[0-9]+$' "$work/version.out" || fail "--version: $(cat "$work/version.out")"
  echo "bad arguments: exit 2 and named; --help and --version: exit 0"
  ;;

names)
  # Host names, resolved at start: the proxy listens on and connects to localhost.
  need_curl
  start_upstream http 100000
  listen_host=localhost upstream_host=localhost start_proxy
  grep -qE "^${ts}listening on .*, upstream localhost:$upstream_port[ ,]" "$work/proxy.out" ||
    fail "the 'listening on' line does not name the upstream localhost:$upstream_port"
  size=$(timeout 30 curl --noproxy '*' -sS --max-time 25 -o "$work/body" -w '%{size_download}' \
    "http://localhost:$proxy_port/") || fail "curl through the proxy failed"
  [[ $size -eq 100000 && $(stat -c %s "$work/body") -eq 100000 ]] ||
    fail "downloaded $size bytes, not 100000"
  [[ -z $(tr -d x <"$work/body") ]] || fail "the body is not the upstream's (all 'x')"
  stop_proxy
  grep -qE "^${ts}closed #1 .*down 97\.[0-9] KiB in" "$work/proxy.out" || fail "no close line"
  cat "$work/proxy.out"
  ;;

halfclose)
  # The upstream answers only after the client's half-close reached it through the proxy,
  # and the client must still get the answer after its own half-close.
  start_upstream echo-after-eof
  start_proxy --rate 1MiB
  timeout 10 "$peer" half-close-client "$proxy_port" 100000 || fail "half-close did not get through"
  stop_proxy
  grep -qE "^${ts}closed #1 .*up 97.7 KiB, down 97.7 KiB" "$work/proxy.out" || fail "no close line"
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
  wait_for_line "$work/proxy.out" "^${ts}stats: 2 connections \\| #1 down [1-9]"
  stop_proxy
  [[ $(grep -cE "^${ts}closed #.*: stopped$" "$work/proxy.out") -eq 2 ]] || fail "not 2 close lines"
  cat "$work/proxy.out"
  refused_port=$upstream_port
  kill "${pids[0]}" # the upstream
  wait "${pids[0]}" 2>/dev/null || true
  upstream_port=$refused_port
  start_proxy
  timeout 10 curl --noproxy '*' -s -o /dev/null "http://127.0.0.1:$proxy_port/" || true
  wait_for_line "$work/proxy.out" "^${ts}#1 127\\.0\\.0\\.1:[0-9]+: upstream 127\\.0\\.0\\.1:$refused_port: Connection refused"
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
  grep -qE "^${ts}closed #1 127\.0\.0\.1:[0-9]+: up .*, down 58[56]\.[0-9] KiB in" "$work/proxy.out" ||
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
  grep -qE "^${ts}stats: 3 connections \| #1 down .* \| total down .* \(limit 300\.0 KiB/s\)$" \
    "$work/proxy.out" || fail "no stats line with 3 connections"
  stop_proxy
  [[ $(grep -cE "^${ts}closed #" "$work/proxy.out") -eq 3 ]] || fail "not 3 close lines"
  ;;

daemon)
  # Every log line has its timestamp; --log-format json makes each an object; SIGHUP is
  # logged and ignored (the proxy goes on serving).
  start_upstream http 1000
  start_proxy
  [[ $("$peer" download "$proxy_port") == eof\ 1* ]] || fail "the download through the proxy failed"
  wait_for_line "$work/proxy.out" "^${ts}closed #1 "
  kill -HUP "$proxy_pid"
  wait_for_line "$work/proxy.out" "^${ts}SIGHUP ignored"
  [[ $("$peer" download "$proxy_port") == eof\ 1* ]] || fail "no download after SIGHUP"
  wait_for_line "$work/proxy.out" "^${ts}closed #2 "
  stop_proxy
  bad=$(grep -cvE "^${ts}" "$work/proxy.out" || true)
  [[ $bad -eq 0 ]] || fail "$bad log lines without a timestamp"
  cat "$work/proxy.out"
  start_proxy --log-format json --rate-down 1MiB --stats 100ms
  [[ $("$peer" download "$proxy_port") == eof\ 1* ]] || fail "the download through the proxy failed"
  wait_for_line "$work/proxy.out" '"event":"closed"'
  wait_for_line "$work/proxy.out" '"event":"stats"'
  kill -HUP "$proxy_pid"
  wait_for_line "$work/proxy.out" '"event":"sighup"'
  kill -TERM "$proxy_pid"
  timeout 5 tail --pid="$proxy_pid" -f /dev/null || fail "the proxy did not stop on SIGTERM"
  "$peer" json-lines "$work/proxy.out" time event message || fail "not one JSON object a line"
  for event in listening closed stats sighup stopping; do
    grep -q "\"event\":\"$event\"" "$work/proxy.out" || fail "no $event event"
  done
  grep -qE '"rate_down":1048576,"rate_up":null' "$work/proxy.out" || fail "no rates in the listening event"
  grep -qE '"event":"closed",.*"down_bytes":1[0-9]{3},.*"end":"eof"' "$work/proxy.out" ||
    fail "the closed event lacks its fields"
  head -n2 "$work/proxy.out"
  ;;

sigpipe)
  # The reader of the proxy's stdout goes away (sluice-proxy ... | head -n1): the lines
  # after are lost, the proxy and its connections are not.
  start_upstream http 100000
  mkfifo "$work/stdout.fifo"
  "$proxy" --listen 127.0.0.1:0 --upstream "127.0.0.1:$upstream_port" --rate 10MiB \
    >"$work/stdout.fifo" 2>"$work/proxy.err" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  head -n1 <"$work/stdout.fifo" >"$work/proxy.out" # then the pipe has no reader
  proxy_port=$(listen_port <"$work/proxy.out")
  [[ -n $proxy_port ]] || fail "no 'listening on' line"
  timeout 30 "$peer" sequential "$proxy_port" 20 100000 || fail "downloads failed once stdout was gone"
  kill -0 "$proxy_pid" 2>/dev/null || fail "the proxy died when its stdout's reader went"
  kill -TERM "$proxy_pid"
  timeout 5 tail --pid="$proxy_pid" -f /dev/null || fail "the proxy did not stop on SIGTERM"
  rc=0
  wait "$proxy_pid" || rc=$?
  [[ $rc -eq 0 ]] || fail "the proxy exited with $rc"
  grep -qE '^sluice-proxy: 2[01] log lines dropped: stdout was closed$' "$work/proxy.err" ||
    fail "stderr does not count the lines lost: $(cat "$work/proxy.err")"
  cat "$work/proxy.err"
  ;;

logstall)
  # Nobody reads the proxy's stdout (a full pipe): the proxy goes on serving, queues what
  # it can, drops and counts the rest, and says how many once the pipe is read again.
  start_upstream http 10
  mkfifo "$work/stdout.fifo"
  "$proxy" --listen 127.0.0.1:0 --upstream "127.0.0.1:$upstream_port" --log-format json \
    >"$work/stdout.fifo" 2>"$work/proxy.err" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  exec 3<"$work/stdout.fifo"
  read -r first <&3
  proxy_port=$(sed -nE 's/.*"listen":"127\.0\.0\.1:([0-9]+)".*/\1/p' <<<"$first")
  [[ -n $proxy_port ]] || fail "no \"listen\" in the first line: $first"
  # 1500 lines of about 250 bytes: more than the pipe (64 KiB) and the queue (256 KiB) hold.
  timeout 60 "$peer" sequential "$proxy_port" 1500 10 ||
    fail "the proxy stopped serving while its stdout was full"
  cat <&3 >"$work/proxy.out" &
  reader=$!
  pids+=("$reader")
  exec 3<&-
  wait_for_line "$work/proxy.out" '"event":"log_dropped"'
  kill -TERM "$proxy_pid"
  timeout 5 tail --pid="$proxy_pid" -f /dev/null || fail "the proxy did not stop on SIGTERM"
  timeout 5 tail --pid="$reader" -f /dev/null || fail "stdout did not end with the proxy"
  grep -q '"event":"stopping"' "$work/proxy.out" || fail "no stopping line"
  dropped=$(awk -F'"dropped":' '/"event":"log_dropped"/ { n += $2 + 0 } END { print n + 0 }' "$work/proxy.out")
  closed=$(grep -c '"event":"closed"' "$work/proxy.out")
  echo "1500 connections: $closed closed lines written, $dropped dropped and counted"
  [[ $dropped -gt 0 && $((closed + dropped)) -eq 1500 ]] ||
    fail "$closed written and $dropped dropped is not 1500"
  ;;

reset)
  # A reset reaches the other side as a reset, not as a clean end of stream: the upstream's
  # to the client, then the client's to the upstream.
  start_upstream reset-after 5000000
  start_proxy
  result=$("$peer" download "$proxy_port" | head -n1)
  echo "upstream reset after 5000000 bytes; the client: $result"
  [[ $result == reset* ]] || fail "the client saw '$result', not a reset"
  wait_for_line "$work/proxy.out" "^${ts}closed #1 .*: upstream reset$"
  stop_proxy
  kill "${pids[0]}"
  start_upstream count
  start_proxy
  "$peer" reset-client "$proxy_port" 100000
  wait_for_line "$work/upstream.out" '^(eof|reset|.*) after [0-9]+$'
  cat "$work/upstream.out"
  grep -qE '^reset after [0-9]+$' "$work/upstream.out" || fail "the upstream did not see a reset"
  wait_for_line "$work/proxy.out" "^${ts}closed #1 .*: client reset$"
  stop_proxy
  ;;

ticks)
  # The smallest tick accepted gives the whole rate (99% or more), alone and in a group.
  start_upstream http 2097152
  start_proxy --rate 1MiB --tick 1ms
  # Timed from the first byte: how long the connection took to set up is not the shaping's.
  read -r end bytes secs first < <("$peer" download "$proxy_port")
  [[ $end == eof ]] || fail "the download ended with $end"
  rate=$(awk -v b="$bytes" -v s="$secs" -v f="$first" 'BEGIN { printf "%.0f", b / (s - f) }')
  echo "--rate 1MiB --tick 1ms: $rate B/s ($(awk -v r="$rate" 'BEGIN { printf "%.2f", r / 10485.76 }')%)"
  within "$rate" 1038090 1069548 || fail "$rate B/s is not 99-102% of 1048576"
  stop_proxy
  kill "${pids[0]}"
  start_upstream http 524288
  start_proxy --total 1MiB --tick 1ms
  "$peer" downloads "$proxy_port" 4 >"$work/downloads.out" || fail "a download failed"
  rate=$(awk '/^eof/ { b += $2; if (!n++ || $4 < f) f = $4; if ($3 > e) e = $3 }
              END { printf "%.0f", b / (e - f) }' "$work/downloads.out")
  echo "4 under --total 1MiB --tick 1ms: $rate B/s ($(awk -v r="$rate" 'BEGIN { printf "%.2f", r / 10485.76 }')%)"
  # The group is made at start and holds its burst (50 ms, 2.5% of 2 s) when they begin.
  within "$rate" 1038090 1090519 || fail "$rate B/s is not 99-104% of 1048576"
  stop_proxy
  ;;

directions)
  # --rate-down and --total-up limit each direction alone: a download at 400 KiB/s, then
  # an upload at 100 KiB/s through the same limits.
  start_upstream http 614400
  start_proxy --rate-down 400KiB --total-up 100KiB
  read -r end bytes secs first < <("$peer" download "$proxy_port")
  [[ $end == eof ]] || fail "the download ended with $end"
  down=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.0f", b / s }')
  echo "--rate-down 400KiB: $down B/s down"
  within "$down" 368640 430080 || fail "download at $down B/s, not about 409600"
  stop_proxy
  kill "${pids[0]}"
  start_upstream count
  start_proxy --rate-down 400KiB --total-up 100KiB
  read -r end bytes secs first < <("$peer" upload "$proxy_port" 153600)
  [[ $end == eof ]] || fail "the upload ended with $end"
  up=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.0f", b / s }')
  echo "--total-up 100KiB: $up B/s up"
  within "$up" 92160 112640 || fail "upload at $up B/s, not about 102400"
  wait_for_line "$work/upstream.out" '^eof after 153600$'
  stop_proxy
  ;;

burst)
  # A connection idle for a second holds --burst (here a second's worth) and sends it at
  # once; without --burst it holds 50 ms' worth, so the same download takes twice as long.
  start_upstream http 409600
  start_proxy --rate 200KiB --burst 200KiB
  read -r end bytes secs first < <("$peer" download "$proxy_port" 1000)
  [[ $end == eof ]] || fail "the download ended with $end"
  echo "--burst 200KiB, after a second idle: 400 KiB in $secs s"
  within "$secs" 0.8 1.3 || fail "took $secs s, not about 1 s"
  stop_proxy
  start_proxy --rate 200KiB
  read -r end bytes secs first < <("$peer" download "$proxy_port" 1000)
  echo "default burst, after a second idle: 400 KiB in $secs s"
  within "$secs" 1.8 2.4 || fail "took $secs s, not about 2 s"
  stop_proxy
  ;;

maxconn)
  # --max-connections 2: four downloads of a second each; two wait in the backlog, so the
  # last end after about two seconds, and all complete.
  start_upstream http 204800
  start_proxy --rate 200KiB --max-connections 2
  grep -qE "^${ts}listening on .*, at most 2 connections$" "$work/proxy.out" || fail "no limit in the first line"
  "$peer" downloads "$proxy_port" 4 >"$work/downloads.out" || fail "a download failed"
  cat "$work/downloads.out"
  sort -k3 -n "$work/downloads.out" | awk '/^eof/ { t[++n] = $3 } END { exit !(n == 4 && t[2] < 1.5 && t[3] > 1.7) }' ||
    fail "not two at a time"
  stop_proxy
  ;;

fds)
  # Fewer descriptors than connections: the proxy takes what fits (two descriptors each,
  # and some spare) and leaves the others in the backlog until some close. Nothing fails,
  # and the process never runs out (a sanitizer could not even check its reports then).
  start_upstream http 100000
  fd_limit=64 start_proxy --rate 200KiB
  max=$(sed -nE 's/.*, at most ([0-9]+) connections \(file descriptors\)$/\1/p' "$work/proxy.out")
  [[ -n $max && $max -ge 5 && $max -le 30 ]] || fail "no or a strange limit: $(head -n1 "$work/proxy.out")"
  timeout 30 "$peer" downloads "$proxy_port" $((max * 3)) >"$work/downloads.out" ||
    fail "downloads failed: $(grep -v '^eof' "$work/downloads.out" | head -n3)"
  echo "$((max * 3)) downloads through a proxy with 64 descriptors (at most $max connections at once)"
  ! grep -E "^${ts}accept: |: upstream 127\.0\.0\.1:[0-9]+: " "$work/proxy.out" ||
    fail "an accept or an upstream connect failed"
  stop_proxy
  ;;

delay)
  # --delay 100ms adds 100 ms to a round trip (half each way), --jitter 40ms spreads it
  # over 60-140 ms, and bytes keep their order through both.
  start_upstream echo
  start_proxy
  read -r _ _ _ _ base _ < <("$peer" ping "$proxy_port" 5)
  stop_proxy
  start_proxy --delay 100ms
  read -r _ _ min _ median _ max < <("$peer" ping "$proxy_port" 10)
  echo "--delay 100ms: round trips of $min-$max ms (median $median; $base without)"
  added=$(awk -v m="$median" -v b="$base" 'BEGIN { print m - b }')
  within "$added" 98 110 || fail "the delay added $added ms, not 100"
  within "$max" 98 "$(awk -v b="$base" 'BEGIN { print b + 115 }')" || fail "a round trip took $max ms"
  timeout 10 "$peer" half-close-client "$proxy_port" 300000 || fail "bytes were lost or reordered"
  stop_proxy
  start_proxy --delay 100ms --jitter 40ms
  read -r _ _ min _ median _ max < <("$peer" ping "$proxy_port" 20)
  echo "--delay 100ms --jitter 40ms: round trips of $min-$max ms (median $median)"
  within "$min" 58 "$max" || fail "a round trip of $min ms"
  within "$max" "$min" "$(awk -v b="$base" 'BEGIN { print b + 150 }')" || fail "a round trip of $max ms"
  awk -v a="$min" -v b="$max" 'BEGIN { exit !(b - a > 10) }' || fail "no jitter: $min-$max ms"
  timeout 10 "$peer" half-close-client "$proxy_port" 300000 || fail "bytes were lost or reordered"
  stop_proxy
  ;;

emfile)
  # Not under sanitizers: descriptors taken away from the running proxy (prlimit), so that
  # an upstream socket, then an accept, fails with EMFILE. Each is logged as what it is,
  # the client is reset, and once descriptors are back, connections work again. (With no
  # descriptor free, UBSan's own checks fail: it needs a pipe to read memory safely, and
  # reports a valid object as having an invalid vptr.)
  command -v prlimit >/dev/null || { echo "prlimit is missing (util-linux)"; exit 77; }
  start_upstream http 1000
  start_proxy
  # The lowest two descriptors free: a limit of the second leaves room for one.
  read -r first_free second_free < <(ls "/proc/$proxy_pid/fd" |
    awk '{ used[$1] = 1 } END { for (i = 0; n < 2; ++i) if (!(i in used)) free[++n] = i; print free[1], free[2] }')
  prlimit --pid "$proxy_pid" --nofile="$second_free": # the soft limit: room for the accepted socket only
  result=$("$peer" download "$proxy_port" | head -n1)
  [[ $result == reset* ]] || fail "the client saw '$result', not a reset"
  wait_for_line "$work/proxy.out" "^${ts}#1 127\\.0\\.0\\.1:[0-9]+: upstream 127\\.0\\.0\\.1:$upstream_port: Too many open files$"
  prlimit --pid "$proxy_pid" --nofile="$first_free": # no room at all
  "$peer" download "$proxy_port" >"$work/waiting.out" &
  waiting=$!
  pids+=("$waiting")
  wait_for_line "$work/proxy.out" "^${ts}accept: Too many open files \\([0-9]+ failures?; retrying every 100ms\\)$"
  prlimit --pid "$proxy_pid" --nofile=1024:
  wait "$waiting" || true
  [[ $(head -n1 "$work/waiting.out") == eof\ 1* ]] || fail "the waiting connection did not complete: $(cat "$work/waiting.out")"
  stop_proxy
  cat "$work/proxy.out"
  ;;

accept)
  # Release only (1500 connections): with 1500 unlimited downloads running, new
  # connections are accepted at once and get their first byte within a second.
  start_upstream http 1000000000000000
  start_proxy
  "$peer" load "$proxy_port" 1500 >"$work/load.out" 2>&1 &
  pids+=($!)
  wait_for_line "$work/load.out" '^loaded 1500$' 60
  for i in 1 2 3; do
    "$peer" first-byte "$proxy_port" 20 1.0 || fail "a new connection waited over 1 s"
  done
  ;;

perip)
  # --per-ip 200KiB: two downloads from 127.0.0.1 share its 200 KiB/s, about 100 each,
  # while one from 127.0.0.2 has 200 KiB/s of its own.
  need_curl
  start_upstream http 400000
  start_proxy --per-ip 200KiB
  grep -qE "^${ts}listening on .*, 200\.0 KiB/s per client address," "$work/proxy.out" ||
    fail "no per-ip limit in the first line"
  froms=(127.0.0.1 127.0.0.1 127.0.0.2)
  for i in 0 1 2; do
    download_from "${froms[i]}" >"$work/curl$i.txt" 2>"$work/curl$i.err" &
    curls[i]=$!
  done
  for i in 0 1 2; do wait "${curls[i]}" || fail "curl $i failed: $(cat "$work/curl$i.err")"; done
  for i in 0 1 2; do
    read -r speed size <"$work/curl$i.txt"
    echo "from ${froms[i]} under --per-ip 200KiB: $speed B/s ($(awk -v s="$speed" 'BEGIN{printf "%.1f", s/1024}') KiB/s)"
    [[ $size -eq 400000 ]] || fail "curl $i downloaded $size bytes, not 400000"
  done
  read -r a _ <"$work/curl0.txt"
  read -r b _ <"$work/curl1.txt"
  read -r c _ <"$work/curl2.txt"
  within "$a" 61440 143360 || fail "from 127.0.0.1: $a B/s is not about half of 204800"
  within "$b" 61440 143360 || fail "from 127.0.0.1: $b B/s is not about half of 204800"
  within "$(awk -v a="$a" -v b="$b" 'BEGIN { print a + b }')" 153600 245760 ||
    fail "127.0.0.1's two downloads together are not about 204800 B/s"
  within "$c" 153600 266240 || fail "from 127.0.0.2: $c B/s is not about 204800"
  stop_proxy
  # --per-ip-max-connections 1: a second connection from 127.0.0.1 is refused (reset at
  # once) and logged while the first runs; 127.0.0.2 is served.
  kill "${pids[0]}"
  start_upstream http 300000
  start_proxy --per-ip-max-connections 1 --rate 100KiB --stats 100ms
  download_from 127.0.0.1 >"$work/first.txt" 2>&1 &
  first=$!
  wait_for_line "$work/proxy.out" "^${ts}stats: 1 connection \\| #1 down [1-9]"
  rc=0
  download_from 127.0.0.1 >"$work/second.txt" 2>&1 || rc=$?
  [[ $rc -ne 0 ]] || fail "a second connection from 127.0.0.1 was served: $(cat "$work/second.txt")"
  wait_for_line "$work/proxy.out" "^${ts}#2 127\\.0\\.0\\.1:[0-9]+: refused: 1 connection open from 127\\.0\\.0\\.1 \\(--per-ip-max-connections 1\\)$"
  read -r _ size < <(download_from 127.0.0.2) || fail "127.0.0.2 was not served"
  [[ $size -eq 300000 ]] || fail "127.0.0.2 downloaded $size bytes"
  wait "$first" || fail "the first download failed: $(cat "$work/first.txt")"
  read -r _ size <"$work/first.txt"
  [[ $size -eq 300000 ]] || fail "the first download got $size bytes"
  read -r _ size < <(download_from 127.0.0.1) || fail "127.0.0.1 was not served once its first closed"
  stop_proxy
  grep -E "refused" "$work/proxy.out"
  ;;

routes)
  # Two routes in one proxy, each with its own listener and upstream, used at once.
  need_curl
  start_upstream http 100000
  first_upstream=$upstream_port
  start_upstream http 200000
  second_upstream=$upstream_port
  start_proxy_raw routes --route "127.0.0.1:0=127.0.0.1:$first_upstream" \
    --route "127.0.0.1:0=127.0.0.1:$second_upstream" --rate 1MiB
  wait_for_line "$work/routes.out" "listening on .*, upstream 127\\.0\\.0\\.1:$second_upstream,"
  port1=$(grep "upstream 127.0.0.1:$first_upstream," "$work/routes.out" | listen_port)
  port2=$(grep "upstream 127.0.0.1:$second_upstream," "$work/routes.out" | listen_port)
  [[ -n $port1 && -n $port2 && $port1 != "$port2" ]] || fail "not two listening ports"
  for i in 1 2 1 2; do
    port=port$i
    timeout 30 curl --noproxy '*' -sS --max-time 25 -o /dev/null -w '%{size_download}\n' \
      "http://127.0.0.1:${!port}/" >>"$work/route$i.txt" &
    curls+=($!)
  done
  for c in "${curls[@]}"; do wait "$c" || fail "a download failed"; done
  [[ $(sort -u "$work/route1.txt") == 100000 ]] || fail "route 1 gave $(cat "$work/route1.txt")"
  [[ $(sort -u "$work/route2.txt") == 200000 ]] || fail "route 2 gave $(cat "$work/route2.txt")"
  stop_pid "$raw_pid"
  [[ $(grep -cE "^${ts}closed #" "$work/routes.out") -eq 4 ]] || fail "not 4 close lines"
  echo "two routes: 2 downloads of 100000 bytes through one, 2 of 200000 through the other"
  ;;

unix)
  # unix:PATH on both sides: curl -> unix socket -> proxy -> unix socket -> a second proxy
  # -> TCP upstream. A socket file left by a killed proxy is taken over; one in use, or a
  # file that is not a socket, is not; the proxy removes its socket file at exit.
  need_curl
  start_upstream http 100000
  in=$work/in.sock up=$work/up.sock
  start_proxy_raw bridge --route "unix:$up=127.0.0.1:$upstream_port"
  bridge=$raw_pid
  start_proxy_raw proxy --route "unix:$in=unix:$up" --per-ip-max-connections 1 --rate 1MiB
  grep -qE "^${ts}listening on unix:$in, upstream unix:$up," "$work/proxy.out" ||
    fail "no unix addresses in the first line"
  size=$(timeout 30 curl --noproxy '*' -sS --max-time 25 --unix-socket "$in" -o "$work/body" \
    -w '%{size_download}' http://localhost/) || fail "curl through the unix sockets failed"
  [[ $size -eq 100000 && -z $(tr -d x <"$work/body") ]] || fail "downloaded $size bytes"
  wait_for_line "$work/proxy.out" "^${ts}closed #1 unix: up .*, down 97\\.[0-9] KiB in"
  # A second proxy on the same path: refused, the first keeps it.
  rc=0
  timeout 5 "$proxy" --listen "unix:$in" --upstream "unix:$up" >/dev/null 2>"$work/second.err" || rc=$?
  [[ $rc -eq 1 ]] || fail "a second proxy on $in exited with $rc, not 1"
  grep -qF "cannot listen on unix:$in: something listens on it already" "$work/second.err" ||
    fail "the second proxy did not say why: $(cat "$work/second.err")"
  # Killed, it leaves its socket file; the next start takes it over.
  kill -KILL "$raw_pid"
  wait "$raw_pid" 2>/dev/null || true
  [[ -S $in ]] || fail "no socket file left by the killed proxy"
  start_proxy_raw proxy --listen "unix:$in" --upstream "unix:$up"
  size=$(timeout 30 curl --noproxy '*' -sS --max-time 25 --unix-socket "$in" -o /dev/null \
    -w '%{size_download}' http://localhost/) || fail "curl after the takeover failed"
  [[ $size -eq 100000 ]] || fail "downloaded $size bytes after the takeover"
  stop_pid "$raw_pid"
  [[ ! -e $in ]] || fail "the proxy left its socket file $in at exit"
  stop_pid "$bridge"
  [[ ! -e $up ]] || fail "the bridge left its socket file $up at exit"
  echo plain >"$work/file"
  rc=0
  timeout 5 "$proxy" --listen "unix:$work/file" --upstream "unix:$up" >/dev/null 2>"$work/file.err" || rc=$?
  [[ $rc -eq 1 ]] && grep -qF "the path exists and is not a socket" "$work/file.err" ||
    fail "a regular file as the listen path: exit $rc, $(cat "$work/file.err")"
  [[ $(cat "$work/file") == plain ]] || fail "the regular file was changed"
  echo "unix sockets both ways; a stale socket file taken over, one in use and a plain file not"
  ;;

metrics)
  # GET /metrics parses as Prometheus text and counts exactly the bytes moved, per route
  # and in total; GET /stats says the same in JSON.
  need_curl
  start_upstream http 300000
  start_proxy --admin 127.0.0.1:0 --rate-down 10MiB
  wait_for_line "$work/proxy.out" "^${ts}admin on http://127\\.0\\.0\\.1:[0-9]+/"
  admin_port=$(sed -nE 's|.*admin on http://127\.0\.0\.1:([0-9]+)/.*|\1|p' "$work/proxy.out")
  read -r end bytes _ < <("$peer" download "$proxy_port")
  [[ $end == eof ]] || fail "the download ended with $end"
  read -r end bytes2 _ < <("$peer" download "$proxy_port")
  wait_for_line "$work/proxy.out" "^${ts}closed #2 "
  [[ $(admin GET /metrics) == 200 ]] || fail "GET /metrics: $(cat "$work/admin.body")"
  cp "$work/admin.body" "$work/metrics.txt"
  prom_check "$work/metrics.txt" || fail "/metrics is not the Prometheus text format"
  route="route=\"127.0.0.1:$proxy_port\""
  down=$((bytes + bytes2))
  up=$((2 * 18)) # the peer's request: "GET / HTTP/1.0\r\n\r\n"
  for sample in "sluice_proxy_bytes_total{direction=\"down\"} $down" \
    "sluice_proxy_route_bytes_total{$route,direction=\"down\"} $down" \
    "sluice_proxy_bytes_total{direction=\"up\"} $up" \
    "sluice_proxy_route_bytes_total{$route,direction=\"up\"} $up" \
    "sluice_proxy_connections_accepted_total 2" \
    "sluice_proxy_route_connections_accepted_total{$route} 2" \
    "sluice_proxy_connections_open 0" \
    "sluice_proxy_client_addresses 0" \
    "sluice_proxy_limit_bytes_per_second{limit=\"rate\",direction=\"down\"} 10485760" \
    "sluice_proxy_limit_bytes_per_second{limit=\"total\",direction=\"down\"} +Inf"; do
    name=${sample% *}
    value=$(metric "$work/metrics.txt" "$name")
    [[ $value == "${sample##* }" ]] || fail "$name is '$value', not ${sample##* }"
  done
  grep -qE '^sluice_proxy_token_wait_seconds_total\{direction="down"\} [0-9.e+-]+$' "$work/metrics.txt" ||
    fail "no token wait"
  [[ $(down_bytes) == "$down" ]] || fail "/stats does not count $down bytes down"
  "$peer" json-lines "$work/admin.body" routes limits >/dev/null || fail "/stats lacks its keys"
  stop_proxy
  echo "/metrics: Prometheus text; $down bytes down and $up up, as moved"
  ;;

limits)
  # PUT /limits mid-download: the rate follows within a second, up and down. Bad bodies
  # get a 4xx and change nothing; so do requests from other origins.
  start_upstream http 100000000
  start_proxy --admin 127.0.0.1:0 --rate-down 100KiB
  wait_for_line "$work/proxy.out" "^${ts}admin on http://127\\.0\\.0\\.1:[0-9]+/"
  admin_port=$(sed -nE 's|.*admin on http://127\.0\.0\.1:([0-9]+)/.*|\1|p' "$work/proxy.out")
  "$peer" download "$proxy_port" >/dev/null &
  pids+=($!)
  # The rate over a second starting a second after $1: bytes by /stats.
  rate_after() {
    local t0 b0 t1 b1
    timeout 5 bash -c "until (( \$(date +%s%N) >= $1 + 1000000000 )); do sleep 0.01; done"
    t0=$(date +%s%N) b0=$(down_bytes)
    timeout 5 bash -c "until (( \$(date +%s%N) >= $t0 + 1000000000 )); do sleep 0.01; done"
    t1=$(date +%s%N) b1=$(down_bytes)
    awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" 'BEGIN { printf "%.0f", b / (t / 1e9) }'
  }
  poll 10 downloading || fail "the download did not start"
  before=$(rate_after "$(date +%s%N)")
  [[ $(admin PUT /limits '{"rate_down": "400KiB"}') == 200 ]] || fail "PUT: $(cat "$work/admin.body")"
  raised=$(rate_after "$(date +%s%N)")
  [[ $(admin PUT /limits '{"rate": "50KiB"}') == 200 ]] || fail "PUT: $(cat "$work/admin.body")"
  lowered=$(rate_after "$(date +%s%N)")
  echo "--rate-down 100KiB: $before B/s; PUT 400KiB: $raised B/s; PUT 50KiB: $lowered B/s (a second after each)"
  within "$before" 71680 133120 || fail "$before B/s is not about 102400"
  within "$raised" 286720 532480 || fail "$raised B/s is not about 409600 after the PUT"
  within "$lowered" 35840 66560 || fail "$lowered B/s is not about 51200 after the PUT"
  wait_for_line "$work/proxy.out" "^${ts}limits set: rate 50\\.0 KiB/s per connection, unlimited per client address, total unlimited$"
  # Bad requests: a 4xx with a message, and the limits as they were.
  [[ $(admin GET /limits) == 200 ]] || fail "GET /limits"
  cp "$work/admin.body" "$work/limits.before"
  big=$(head -c 20000 /dev/zero | tr '\0' ' ')
  for body in '' '{' '[1]' 'null' '{"rate": 0}' '{"rate": -1}' '{"rate": 1.5}' '{"rate": "1XB"}' \
    '{"bogus": 1}' '{"tick": "1ms"}' '{"total": "1MiB", "per_ip": "x"}' '{"burst": 1}' \
    '{"per_ip_max_connections": 0}' '{"rate": 99999999999999999999}' "{\"rate\": \"1K\"$big}"; do
    status=$(admin PUT /limits "$body")
    [[ $status == 4?? ]] || fail "PUT /limits '${body:0:40}': $status, not 4xx"
    grep -q '"error":' "$work/admin.body" || fail "PUT '${body:0:40}': no message: $(cat "$work/admin.body")"
  done
  echo "e.g.: $(admin PUT /limits '{"total": "1MiB", "per_ip": "x"}') $(cat "$work/admin.body")"
  [[ $(admin POST /limits '{}') == 405 ]] || fail "POST /limits is not 405"
  [[ $(admin GET /nothing) == 404 ]] || fail "GET /nothing is not 404"
  admin_curl_args=(-H 'Origin: http://example.com')
  [[ $(admin PUT /limits '{"rate": "1MiB"}') == 403 ]] || fail "a foreign Origin was not refused"
  admin_curl_args=(-H 'Host: rebound.example:80')
  [[ $(admin GET /metrics) == 403 ]] || fail "a foreign Host was not refused"
  admin_curl_args=(-H "Origin: http://localhost:$admin_port")
  [[ $(admin GET /limits) == 200 ]] || fail "the admin's own origin was refused"
  admin_curl_args=()
  cmp -s "$work/admin.body" "$work/limits.before" || fail "a bad request changed the limits"
  # Clients that connect and send nothing, or half a request, hold up no one, however many.
  for i in $(seq 40); do
    exec {idle}<>/dev/tcp/127.0.0.1/"$admin_port"
    idles+=("$idle")
  done
  # (The first ones are closed by now, for the later ones: a write to them would fail.)
  (trap '' PIPE; printf 'PUT /limits HTTP/1.1\r\nContent-Length: 100\r\n\r\n{' >&"${idles[-1]}") ||
    fail "the last idle client was closed"
  [[ $(admin GET /metrics) == 200 ]] || fail "/metrics did not answer beside idle clients"
  for idle in "${idles[@]}"; do exec {idle}<&-; done
  stop_proxy
  ;;

fleet)
  # Three proxies with --total 1MiB and one --total-store and --total-group: together about
  # 1 MiB/s, where without the store they would deliver 3. The rate is measured over 4 s by
  # the proxies' own byte counts (GET /stats), from 1.5 s after the downloads start.
  start_redis "$work/redis.sock"
  start_upstream http 100000000000
  fleet=(--total 1MiB --total-store "unix:$work/redis.sock" --total-group g --stats 1s
         --admin 127.0.0.1:0)
  for i in 1 2 3; do
    start_proxy_raw "fleet$i" --listen 127.0.0.1:0 --upstream "127.0.0.1:$upstream_port" "${fleet[@]}"
    fleet_pid[i]=$raw_pid
    fleet_port[i]=$(listen_port <"$work/fleet$i.out")
    wait_for_line "$work/fleet$i.out" "^${ts}admin on http://127\\.0\\.0\\.1:[0-9]+/"
    fleet_admin[i]=$(admin_port_of "$work/fleet$i.out")
  done
  grep -qE "^${ts}listening on .*, total 1\.0 MiB/s shared by fleet g at unix:$work/redis\.sock, " \
    "$work/fleet1.out" || fail "the 'listening on' line does not name the fleet"
  for i in 1 2 3; do
    "$peer" download "${fleet_port[i]}" >/dev/null &
    pids+=($!)
  done
  fleet_bytes() { # the bytes down of proxy $1
    admin_port=${fleet_admin[$1]}
    down_bytes
  }
  measure() { # $1 seconds: each proxy's rate over them in rate[1..3], their sum in $sum
    local t0 t1 i
    t0=$(date +%s%N)
    for i in 1 2 3; do b0[i]=$(fleet_bytes "$i"); done
    sleep "$1"
    t1=$(date +%s%N)
    for i in 1 2 3; do b1[i]=$(fleet_bytes "$i"); done
    sum=0
    for i in 1 2 3; do
      rate[i]=$(awk -v b="$((b1[i] - b0[i]))" -v t="$((t1 - t0))" 'BEGIN { printf "%.0f", b / (t / 1e9) }')
      sum=$((sum + rate[i]))
    done
    ratio=$(awk -v s="$sum" 'BEGIN { printf "%.3f", s / 1048576 }')
  }
  sleep 1.5
  measure 4
  for i in 1 2 3; do echo "proxy $i of 3 sharing --total 1MiB: ${rate[i]} B/s"; done
  echo "aggregate: $sum B/s, $ratio of 1 MiB/s (4 s, from 1.5 s after the start)"
  within "$ratio" 0.85 1.10 || fail "the three proxies together moved $ratio of 1 MiB/s"
  for i in 1 2 3; do # each a third, give or take: each has one connection
    within "${rate[i]}" 209715 489336 || fail "proxy $i: ${rate[i]} B/s is not about a third"
  done
  # Each proxy says it is one of three: the stats line, /stats and /metrics.
  for i in 1 2 3; do
    wait_for_line "$work/fleet$i.out" "^${ts}stats: .* \| fleet g down: share [0-9.]+ KiB/s, 3 members, leased \| fleet g up: share .*, 3 members, leased$"
    admin_port=${fleet_admin[i]}
    [[ $(admin GET /stats) == 200 ]] || fail "GET /stats"
    fleet_of down | grep -qE '"members":3,"mode":"leased","connected":true' ||
      fail "proxy $i: /stats has no fleet of 3: $(cat "$work/admin.body")"
    [[ $(admin GET /metrics) == 200 ]] || fail "GET /metrics"
    cp "$work/admin.body" "$work/metrics$i.txt"
    prom_check "$work/metrics$i.txt" || fail "/metrics is not the Prometheus text format"
    [[ $(metric "$work/metrics$i.txt" 'sluice_proxy_fleet_members{direction="down"}') == 3 ]] ||
      fail "proxy $i: /metrics has no fleet of 3"
  done
  echo "proxy 1: $(admin_port=${fleet_admin[1]}; admin GET /stats >/dev/null; fleet_of down)"
  # The shared total is not one proxy's to change; other limits are.
  admin_port=${fleet_admin[1]}
  [[ $(admin PUT /limits '{"total": "2MiB"}') == 409 ]] || fail "PUT total: $(cat "$work/admin.body")"
  grep -qF '"error":"total: the total is shared with a fleet' "$work/admin.body" ||
    fail "PUT total: $(cat "$work/admin.body")"
  [[ $(admin PUT /limits '{"rate": "10MiB", "total": "1MiB"}') == 200 ]] ||
    fail "PUT rate: $(cat "$work/admin.body")"
  # Redis killed: each proxy holds its last share, so the fleet stays at its total.
  kill -KILL "$redis_pid"
  wait "$redis_pid" 2>/dev/null || true
  for i in 1 2 3; do
    wait_for_line "$work/fleet$i.out" "^${ts}fleet g down: store unreachable \\(.*\\): holding the last share, " 5
  done
  measure 1.5
  echo "Redis killed: aggregate $sum B/s, $ratio of 1 MiB/s (1.5 s on the held shares)"
  within "$ratio" 0.85 1.10 || fail "with Redis killed the three proxies moved $ratio of 1 MiB/s"
  for i in 1 2 3; do stop_pid "${fleet_pid[i]}"; done
  ;;

fleetfaults)
  # A fleet proxy whose store is down at start serves at its own --total; it leases once the
  # store comes; Redis killed mid-transfer: the connection flows on the held share; Redis
  # restarted empty: leased again; a frozen Redis does not hold up SIGTERM. With
  # --total-on-failure closed, a store down at start holds connections to a trickle.
  start_upstream http 100000000000
  sock="$work/redis.sock"
  start_proxy_raw fleet --listen 127.0.0.1:0 --upstream "127.0.0.1:$upstream_port" \
    --total 512KiB --total-store "unix:$sock" --total-group f --stats 500ms --admin 127.0.0.1:0
  fleet_pid=$raw_pid
  port=$(listen_port <"$work/fleet.out")
  wait_for_line "$work/fleet.out" "^${ts}admin on http://127\\.0\\.0\\.1:[0-9]+/"
  admin_port=$(admin_port_of "$work/fleet.out")
  wait_for_line "$work/fleet.out" "^${ts}fleet f down: store unreachable at start \(.*\): 512\.0 KiB/s until it answers$"
  "$peer" download "$port" >/dev/null &
  pids+=($!)
  rate_over() { # $1 seconds: the download's rate over them, by /stats
    local t0 b0 t1 b1
    t0=$(date +%s%N) b0=$(down_bytes)
    sleep "$1"
    t1=$(date +%s%N) b1=$(down_bytes)
    awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" 'BEGIN { printf "%.0f", b / (t / 1e9) }'
  }
  poll 10 downloading || fail "the download did not start"
  r=$(rate_over 1)
  echo "store down at start: $r B/s (--total 512KiB, as if alone)"
  within "$r" 367001 576716 || fail "$r B/s with the store down at start, not about 524288"
  start_redis "$sock"
  wait_for_line "$work/fleet.out" "^${ts}fleet f down: store back: share 512\.0 KiB/s, 1 member$" 5
  admin GET /stats >/dev/null
  fleet_of down | grep -qE '"members":1,"mode":"leased","connected":true' ||
    fail "/stats: not leased once the store came: $(cat "$work/admin.body")"
  kill -KILL "$redis_pid"
  wait "$redis_pid" 2>/dev/null || true
  wait_for_line "$work/fleet.out" "^${ts}fleet f down: store unreachable \(.*\): holding the last share, 512\.0 KiB/s$" 5
  r=$(rate_over 1)
  echo "Redis killed mid-transfer: $r B/s on the held share"
  within "$r" 367001 576716 || fail "$r B/s with Redis killed, not about 524288"
  admin GET /stats >/dev/null
  fleet_of down | grep -qE '"mode":"holding","connected":false' ||
    fail "/stats: not holding with Redis killed: $(cat "$work/admin.body")"
  rm -f "$sock"
  start_redis "$sock"
  wait_for_line "$work/fleet.out" "^${ts}fleet f down: the store lost its state" 5
  # ... and leased again after a TTL of learning: a second "store back".
  leased_twice() { [[ $(grep -cE "^${ts}fleet f down: store back: " "$work/fleet.out") -eq 2 ]]; }
  poll 5 leased_twice || fail "not leased again after Redis restarted"
  kill -STOP "$redis_pid"
  stop_pid "$fleet_pid" # the release to a frozen store times out: no hang
  kill -CONT "$redis_pid"
  grep -E "^${ts}fleet f down" "$work/fleet.out"
  # --total-on-failure closed: nothing but a trickle until the store answers.
  start_proxy_raw closed --listen 127.0.0.1:0 --upstream "127.0.0.1:$upstream_port" \
    --total 512KiB --total-store "unix:$work/none.sock" --total-group f --total-on-failure closed
  closed_pid=$raw_pid
  "$peer" download "$(listen_port <"$work/closed.out")" >/dev/null &
  pids+=($!)
  wait_for_line "$work/closed.out" "^${ts}fleet f down: store unreachable at start \\(.*\\): 0 B/s until it answers$"
  sleep 2
  stop_pid "$closed_pid"
  bytes=$(sed -nE "s/^${ts}closed #1 .*, down ([0-9]+) B in .*/\\1/p" "$work/closed.out")
  [[ -n $bytes && $bytes -le 1000 ]] ||
    fail "--total-on-failure closed with the store down: not a trickle: $(grep closed "$work/closed.out")"
  grep -E "^${ts}closed #1 " "$work/closed.out"
  # Started with stdout closed (>&-), with a stats line every 100 ms: /dev/null holds the
  # descriptor (else the io_context's eventfd or a socket took it, and got the log lines),
  # and the lines are counted as lost at exit.
  "$proxy" --listen 127.0.0.1:0 --upstream "127.0.0.1:$upstream_port" --total 512KiB \
    --total-store "unix:$work/none.sock" --total-group f --stats 100ms >&- 2>"$work/nostdout.err" &
  nostdout_pid=$!
  pids+=("$nostdout_pid")
  stdout_is_null() { [[ $(readlink "/proc/$nostdout_pid/fd/1") == /dev/null ]]; }
  poll 5 stdout_is_null || fail "stdout closed at start: fd 1 is $(readlink "/proc/$nostdout_pid/fd/1")"
  sleep 0.5
  stop_pid "$nostdout_pid"
  grep -qE '^sluice-proxy: [0-9]+ log lines dropped: stdout was closed$' "$work/nostdout.err" ||
    fail "stdout closed at start: $(cat "$work/nostdout.err")"
  ;;

*)
  echo "unknown check $check" >&2
  exit 2
  ;;
esac
echo "PASS: $check"
