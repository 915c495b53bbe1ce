#!/usr/bin/env bash
# sluice-proxy against HAProxy and socat on loopback, in one run, side by side:
#
#   throughput   iperf3 through each proxy (and straight, for the ceiling): 1 and 8
#                streams, each direction; sluice-proxy both unlimited and with limits that
#                never bind (--rate and --total far above what loopback moves). Each case
#                gives the proxy's throughput and its CPU time per GB moved (utime + stime
#                from /proc/PID/stat around the run, its reaped children's too: socat
#                forks one per connection), and both as ratios to HAProxy's in the same
#                repetition. HAProxy runs as its own benchmarks run it: one thread, mode tcp,
#                option splice-auto.
#   fairness     a binding --total with 1,000 downloads at once: the rate achieved against
#                the limit, and Jain's fairness index over the connections (proxy_fairness).
#
# Usage (the proxy_bench target passes the first two):
#   run.sh PROXY FAIRNESS [--reps N] [--seconds S] [--quick]
# Installs haproxy, socat, iperf3 and jq when missing (apt-get, as scripts/setup.sh does):
# they are for this benchmark only, so the setup of the build and CI does not carry them.
set -euo pipefail
proxy=$1 fairness=$2
shift 2
reps=3 seconds=5 connections=1000 total=20MiB total_bytes=$((20 * 1024 * 1024))
fair_warmup=2 fair_seconds=10
while (($#)); do
  case $1 in
  --reps) reps=$2 && shift ;;
  --seconds) seconds=$2 && shift ;;
  --quick) reps=1 seconds=1 connections=100 fair_warmup=1 fair_seconds=2 ;;
  *) echo "usage: run.sh PROXY FAIRNESS [--reps N] [--seconds S] [--quick]" >&2 && exit 2 ;;
  esac
  shift
done

# --- Packages ------------------------------------------------------------------------------
missing=()
for p in haproxy socat iperf3 jq; do
  command -v "$p" >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "proxy bench: installing ${missing[*]}"
  as_root=()
  [[ $(id -u) -eq 0 ]] || as_root=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Processes -----------------------------------------------------------------------------
source "$(dirname "$0")/../../test/tool/processes.sh"

# A port of 127.0.0.1 that nothing listens on (HAProxy and socat take no port 0 they
# would tell us about).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 30000))
    [[ -z $(ss -Htln "sport = :$port") ]] && echo "$port" && return
  done
}
listening() { [[ -n $(ss -Htln "sport = :$1") ]]; }
port_line() { grep -sqE "$2" "$1"; }

# The descriptor limit: 1,000 connections take two descriptors each in the proxy, and one
# each in the client and in the source.
ulimit -n "$(ulimit -Hn)"

upstream=$(free_port)
iperf3 -s -B 127.0.0.1 -p "$upstream" >"$work/iperf3-server.out" 2>&1 &
pids+=($!)
poll 10 listening "$upstream" || { echo "iperf3 -s did not start" >&2 && exit 1; }

# start_sluice NAME OPTIONS...: sluice-proxy in front of iperf3; sets port[NAME], pid[NAME].
declare -A port pid
start_sluice() {
  local name=$1
  shift
  "$proxy" --listen 127.0.0.1:0 --upstream "127.0.0.1:$upstream" "$@" >"$work/$name.out" 2>&1 &
  pid[$name]=$!
  pids+=($!)
  poll 10 port_line "$work/$name.out" 'listening on ' || { cat "$work/$name.out" >&2 && exit 1; }
  port[$name]=$(sed -nE 's/.*listening on .*:([0-9]+), upstream .*/\1/p' "$work/$name.out")
}

start_haproxy() {
  port[haproxy]=$(free_port)
  cat >"$work/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  option splice-auto
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen bench
  bind 127.0.0.1:${port[haproxy]}
  server iperf3 127.0.0.1:$upstream
EOF
  haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.out" 2>&1 & # -db: one process, in front
  pid[haproxy]=$!
  pids+=($!)
  poll 10 listening "${port[haproxy]}" || { cat "$work/haproxy.out" >&2 && exit 1; }
}

start_socat() {
  port[socat]=$(free_port)
  socat "TCP-LISTEN:${port[socat]},bind=127.0.0.1,fork,reuseaddr" "TCP:127.0.0.1:$upstream" \
    >"$work/socat.out" 2>&1 &
  pid[socat]=$!
  pids+=($!)
  poll 10 listening "${port[socat]}" || { cat "$work/socat.out" >&2 && exit 1; }
}

# CPU seconds of PID and of its children that it has waited for: utime stime cutime cstime,
# fields 14-17 of /proc/PID/stat, counted from after the command's name (which may hold
# spaces).
hz=$(getconf CLK_TCK)
cpu_seconds() {
  sed -E 's/^.*\) //' "/proc/$1/stat" | awk -v hz="$hz" '{ printf "%.2f", ($12 + $13 + $14 + $15) / hz }'
}
no_children() { [[ -z $(ps -o pid= --ppid "$1") ]]; }

start_sluice sluice
start_sluice sluice_limits --rate 100GiB --total 100GiB
start_haproxy
start_socat
port[direct]=$upstream

load() { awk '{ print $1, $2, $3 }' /proc/loadavg; }

# --- Throughput ----------------------------------------------------------------------------
# One line per measurement in $work/results: rep streams direction proxy Gbit/s CPU-s/GB.
measure() { # rep streams direction proxy
  local rep=$1 streams=$2 dir=$3 name=$4 before after flags=()
  [[ $dir == down ]] && flags=(-R)
  before=$([[ $name == direct ]] && echo 0 || cpu_seconds "${pid[$name]}")
  iperf3 -c 127.0.0.1 -p "${port[$name]}" -t "$seconds" -P "$streams" "${flags[@]}" -J \
    >"$work/iperf3.json" || { echo "iperf3 through $name failed" >&2 && cat "$work/iperf3.json" >&2 && exit 1; }
  [[ $name == socat ]] && poll 10 no_children "${pid[socat]}" # until its children are reaped
  after=$([[ $name == direct ]] && echo 0 || cpu_seconds "${pid[$name]}")
  jq -r --arg r "$rep" --arg s "$streams" --arg d "$dir" --arg n "$name" \
    --argjson cpu "$(awk -v a="$after" -v b="$before" 'BEGIN { print a - b }')" \
    '.end.sum_received | [$r, $s, $d, $n, (.bits_per_second / 1e9),
      (if $n == "direct" then 0 else $cpu / (.bytes / 1e9) end)] | @tsv' \
    "$work/iperf3.json" >>"$work/results"
}

proxies=(direct sluice sluice_limits haproxy socat)
echo "sluice-proxy $("$proxy" --version | awk '{ print $2 }') against $(haproxy -v | awk 'NR == 1 { print "HAProxy", $3 }') and socat $(socat -V | awk '/socat version/ { print $3 }'), iperf3 $(iperf3 --version | awk 'NR == 1 { print $2 }') on loopback"
echo "$(nproc) cores; $reps repetitions of ${seconds} s per case; load average (1, 5, 15 min) at the start: $(load)"
for ((rep = 1; rep <= reps; ++rep)); do
  for streams in 1 8; do
    for dir in up down; do
      # The proxies take turns within a case, so that a change in the machine's other work
      # falls on all of them alike.
      for name in "${proxies[@]}"; do measure "$rep" "$streams" "$dir" "$name"; done
    done
  done
  echo "repetition $rep done; load average $(load)"
done

# Ratios within a repetition (same minutes, same machine), then the median and the range
# over the repetitions.
echo
echo "Throughput (Gbit/s) and proxy CPU per GB moved (CPU-s/GB); ratios to HAProxy in the same"
echo "repetition (throughput: higher is better; CPU/GB: lower is better). median [min-max] of $reps."
echo "direct = iperf3 without a proxy; sluice+limits = --rate 100GiB --total 100GiB (never binding);"
echo "up = client to server, down = -R."
awk -F'\t' -v order="${proxies[*]}" '
  { key = $2 " " $3; g[$1, key, $4] = $5; c[$1, key, $4] = $6; reps[$1] = 1; keys[key] = 1 }
  function stats(arr, n,    i, j, t, s) { # sorts arr[1..n]; returns "median [min-max]"
    for (i = 2; i <= n; ++i) for (j = i; j > 1 && arr[j - 1] > arr[j]; --j) { t = arr[j]; arr[j] = arr[j - 1]; arr[j - 1] = t }
    s = n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
    return sprintf("%s [%s-%s]", fmt(s), fmt(arr[1]), fmt(arr[n]))
  }
  function fmt(x) { return x >= 10 ? sprintf("%.1f", x) : sprintf("%.2f", x) }
  END {
    np = split(order, names, " ")
    printf "%-7s %-4s %-14s %-20s %-20s %-20s %-20s\n", "streams", "dir", "proxy", "Gbit/s", "CPU-s/GB", "Gbit/s / HAProxy", "CPU/GB / HAProxy"
    split("1 up,1 down,8 up,8 down", cases, ",")
    for (ci = 1; ci <= 4; ++ci) {
      key = cases[ci]; split(key, kk, " ")
      for (pi = 1; pi <= np; ++pi) {
        p = names[pi]; n = 0
        for (r in reps) { ++n; a[n] = g[r, key, p]; b[n] = c[r, key, p]; x[n] = g[r, key, p] / g[r, key, "haproxy"]; y[n] = c[r, key, "haproxy"] > 0 ? c[r, key, p] / c[r, key, "haproxy"] : 0 }
        name = p == "sluice_limits" ? "sluice+limits" : p
        printf "%-7s %-4s %-14s %-20s %-20s %-20s %-20s\n", kk[1], kk[2], name, stats(a, n), p == "direct" ? "-" : stats(b, n), stats(x, n), p == "direct" ? "-" : stats(y, n)
      }
    }
  }' "$work/results"
echo "load average at the end: $(load)"

# --- Fairness ------------------------------------------------------------------------------
echo
"$fairness" source >"$work/source.out" 2>&1 &
pids+=($!)
poll 10 port_line "$work/source.out" '^port [0-9]+$' || { echo "the source did not start" >&2 && exit 1; }
upstream=$(awk '{ print $2 }' "$work/source.out")
start_sluice fair --total "$total"
echo "--total $total over $connections downloads at once, ${fair_seconds} s measured after all had a byte and ${fair_warmup} s more; load average $(load)"
for ((rep = 1; rep <= reps; ++rep)); do
  "$fairness" measure "${port[fair]}" "$connections" "$fair_warmup" "$fair_seconds" "$total_bytes" |
    awk '{ for (i = 1; i < NF; i += 2) v[$i] = $(i + 1)
           printf "  achieved/limit %.4f  Jain %.5f  slowest %.0f B/s  fastest %.0f B/s  (all had a byte after %s s)\n",
                  v["ratio"], v["jain"], v["slowest_Bps"], v["fastest_Bps"], v["all_started_s"] }'
done
echo "load average at the end: $(load)"
