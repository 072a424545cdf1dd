#!/usr/bin/env bash
# Builds DPDK's qos_meter example, as Debian's dpdk-doc ships it, so that it
# runs on the benchmark's virtual devices (net_pcap in, net_null out).
#
#   tools/bench/build_qos_meter.sh OUT_DIR      -> OUT_DIR/qos_meter
#
# The example's code is copied to OUT_DIR/src at bench time and never kept in
# this repository.  Only two things are changed, each because a vdev needs it;
# the metering code, its parameters and its main loop stay as shipped:
#
#  1. port_conf.rxmode.offloads: RTE_ETH_RX_OFFLOAD_CHECKSUM -> 0.  net_pcap
#     and net_null offer no RX offloads, and rte_eth_dev_configure() refuses
#     a port that asks for one ("requested Rx offloads 0xe doesn't match").
#     (The RSS mq_mode is accepted as is: the example already masks rss_hf
#     with what the device supports, which is nothing.)
#  2. NB_MBUF (8192): net_pcap's infinite_rx copies the whole capture into
#     mbufs of the RX queue's pool at queue setup, so the pool must hold every
#     packet of the capture plus the working set.  The pool size is read from
#     the environment variable QOSBENCH_NB_MBUF (8192 when unset); run.sh
#     gives all three programs the same pool size.
#
# Built with the example's own Makefile (pkg-config libdpdk, -O3, shared).
set -euo pipefail

out="${1:?usage: build_qos_meter.sh OUT_DIR}"
example="${QOS_METER_SRC:-/usr/share/dpdk/examples/qos_meter}"

if [[ ! -f "$example/main.c" ]]; then
  echo "build_qos_meter: $example/main.c not found (apt-get install dpdk-doc)" >&2
  exit 1
fi
pkg-config --exists libdpdk || { echo "build_qos_meter: pkg-config cannot find libdpdk" >&2; exit 1; }

rm -rf "$out/src"
mkdir -p "$out"
cp -r "$example" "$out/src"
chmod -R u+w "$out/src"
main="$out/src/main.c"

# Applies one substitution and fails loudly if it no longer matches the
# example's text (a newer DPDK may have changed it).
substitute() {
  local what="$1" from="$2" to="$3"
  if ! grep -qF -- "$from" "$main"; then
    echo "build_qos_meter: cannot adapt ($what): '$from' not found in $main" >&2
    exit 1
  fi
  local before
  before="$(md5sum <"$main")"
  FROM="$from" TO="$to" perl -0pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/' "$main"
  [[ "$(md5sum <"$main")" != "$before" ]] || { echo "build_qos_meter: $what: no change" >&2; exit 1; }
}

substitute "no RX offloads on vdevs" \
  ".offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM," \
  ".offloads = 0, /* qosbench: vdevs have no RX offloads */"
substitute "pool holds the whole pcap" \
  "#define NB_MBUF             8192" \
  '#define NB_MBUF (getenv("QOSBENCH_NB_MBUF") != NULL ? (unsigned)atoi(getenv("QOSBENCH_NB_MBUF")) : 8192u) /* qosbench */'

( cd "$out/src" && diff -u "$example/main.c" main.c >"$out/qos_meter.diff" ) || true
make -s -C "$out/src" >"$out/build.log" 2>&1 || { cat "$out/build.log" >&2; exit 1; }
ln -sf src/build/qos_meter-shared "$out/qos_meter"
echo "build_qos_meter: built $out/qos_meter (changes: $out/qos_meter.diff)"
