#!/usr/bin/env bash
# Installs exactly the Debian 12 packages qosgate needs, then configures and
# builds it with meson.  Idempotent: re-running only rebuilds what changed.
#
#   tools/setup.sh [BUILD_DIR] [extra meson options...]
#
# Packages are installed only when one is missing, so a warm machine skips apt.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build}"
shift || true

packages=(
  # build
  meson ninja-build pkg-config g++ clang-format clang-tidy
  # libFuzzer targets (tools/ci/fuzz.sh)
  clang libclang-rt-14-dev
  # libraries
  dpdk-dev libdpdk-dev libboost-program-options-dev libtomlplusplus-dev
  prometheus-cpp-dev libzmq3-dev cppzmq-dev nlohmann-json3-dev libsimdjson-dev libsqlite3-dev
  libgtest-dev libgmock-dev libpcap-dev
  # qos-agent's host enforcement: nftables and netlink (tc)
  libnftables-dev libnl-route-3-dev
  # run-time tools for the demo, tests and benchmarks
  dpdk dpdk-doc iproute2 ethtool tshark tcpdump python3-scapy python3-zmq iputils-ping iperf3 procps curl
  nftables
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer it up front.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -f "$build/build.ninja" ]]; then
  meson setup "$build" "$repo" --buildtype=debugoptimized -Dwerror=true "$@"
fi
ninja -C "$build"
