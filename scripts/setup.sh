#!/usr/bin/env bash
# Installs what sluice needs on a Debian machine. Idempotent, and quiet when all is there.
set -euo pipefail

packages=(
  g++ cmake make pkg-config
  libboost1.81-dev libboost-test1.81-dev libboost-json1.81-dev
  libssl-dev zlib1g-dev
  libevent-dev                 # the benchmarks compare with libevent
  clang libclang-rt-14-dev     # the fuzz preset (libFuzzer)
  curl                         # the sluice-proxy tests download through it
  libhiredis-dev redis-server  # sluice::redis (the fleet group) and its tests
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "sluice: installing ${missing[*]}"
as_root=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "sluice: need root (or sudo) to install packages" >&2; exit 1; }
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
