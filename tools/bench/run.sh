#!/usr/bin/env bash
# qosgate forwarding benchmark: qosgate vs dpdk-testpmd (io) vs DPDK's qos_meter
# example, one worker lcore, pcap in memory -> net_null.  See README.md.
#
#   tools/bench/run.sh [--quick] [bench.py options...]
#
# Environment:
#   QOSGATE          qosgate binary (default: build/appliance/qosgate)
#   BUILD_DIR        meson build dir to build qosbench-gen in (default: the one
#                    QOSGATE was built in, if it is one; else build/)
#   TESTPMD          default /usr/bin/dpdk-testpmd
#   QOSBENCH_WORKDIR inputs, logs and results (default /tmp/qosbench)
#
# Needs root (DPDK, and 2 MB hugepages it reserves for the run and gives back).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
qosgate="${QOSGATE:-$repo/build/appliance/qosgate}"
testpmd="${TESTPMD:-/usr/bin/dpdk-testpmd}"
workdir="${QOSBENCH_WORKDIR:-/tmp/qosbench}"

[[ $EUID -eq 0 ]] || { echo "run.sh: run as root (DPDK, hugepages)" >&2; exit 1; }
[[ -x "$qosgate" ]] || { echo "run.sh: no qosgate at $qosgate (tools/setup.sh, or QOSGATE=...)" >&2; exit 1; }
[[ -x "$testpmd" ]] || { echo "run.sh: no dpdk-testpmd at $testpmd (apt-get install dpdk)" >&2; exit 1; }

if [[ -z "${BUILD_DIR:-}" ]]; then
  candidate="$(dirname "$(dirname "$qosgate")")"
  if [[ -f "$candidate/build.ninja" ]]; then BUILD_DIR="$candidate"; else BUILD_DIR="$repo/build"; fi
fi
mkdir -p "$workdir/bin"

# 1. The generator: the meson target when the build dir builds it; else (no
#    build dir, or it cannot reconfigure right now) compiled directly: it is
#    one file that links nothing.
gen="$workdir/bin/qosbench-gen"
if [[ -f "$BUILD_DIR/build.ninja" ]] && ninja -C "$BUILD_DIR" tools/bench/qosbench-gen >"$workdir/gen-build.log" 2>&1; then
  cp -p "$BUILD_DIR/tools/bench/qosbench-gen" "$gen"  # -p: inputs are rebuilt only when it changes
else
  [[ -f "$BUILD_DIR/build.ninja" ]] && echo "run.sh: ninja failed (see $workdir/gen-build.log); compiling qosbench-gen directly" >&2
  if [[ ! -x "$gen" || "$here/traffic_gen.cc" -nt "$gen" ]]; then
    c++ -std=c++20 -O2 -Wall -Wextra -Wpedantic -Wshadow -Werror -o "$gen" "$here/traffic_gen.cc"
  fi
fi

# 2. DPDK's qos_meter example, adapted to vdevs.
"$here/build_qos_meter.sh" "$workdir/qos_meter" >/dev/null

# 3. A private copy of qosgate, so a rebuild during the run cannot mix versions.
cp "$qosgate" "$workdir/bin/qosgate"

# The driver (and its telemetry sampling) stays off the worker CPU.
exec taskset -c 0 python3 "$here/bench.py" \
  --qosgate "$workdir/bin/qosgate" --testpmd "$testpmd" \
  --qos-meter "$workdir/qos_meter/qos_meter" --gen "$gen" --workdir "$workdir" "$@"
