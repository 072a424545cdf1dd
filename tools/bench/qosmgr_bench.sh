#!/usr/bin/env bash
# qosmgr admission benchmark: starts qosmgr with durability on (SQLite WAL,
# synchronous=FULL, group commit) on loopback, preloads 100k reservations,
# then measures admissions/s, releases/s and latency percentiles with many
# requests in flight (tools/loadgen/qosmgr_load.cc).  Prints the figures
# and the conditions.
#
#   tools/bench/qosmgr_bench.sh [BUILD_DIR] [--preload N] [--requests N] [--connections N] [--window N]
# QOSMGR_BENCH_PERF=FILE also records a perf profile of qosmgr into FILE.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$repo/build}"
shift || true
work="$(mktemp -d /tmp/qosmgr-bench.XXXXXX)"
pid=""
trap '[[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

# Capacity large enough that nothing is denied: the benchmark measures the
# manager, not the topology.  The path crosses two class-enabled networks and an SLA.
cat >"$work/qosmgr.toml" <<TOML
[manager]
listen = "tcp://127.0.0.1:$port"
state = "$work/state.db"
lease = "3600s"
[[network]]
name = "lan-a"
prefixes = ["198.18.0.0/16"]
class_enabled = true
classes = { AF41 = { dscp = 34, capacity = "100tbit" } }
[[network]]
name = "wan"
class_enabled = true
classes = { AF41 = { dscp = 26, capacity = "100tbit" } }
[[network]]
name = "lan-b"
prefixes = ["198.19.0.0/16"]
class_enabled = false
[[link]]
between = ["lan-a", "wan"]
[[link]]
between = ["wan", "lan-b"]
[[sla]]
name = "carrier"
network = "wan"
classes = { AF41 = { rate = "100tbit" } }
[[application]]
name = "bulk"
default = { class = "AF41", rate = "1mbit", burst = "16kB" }
TOML

"$build/manager/qosmgr" --config "$work/qosmgr.toml" >"$work/qosmgr.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  "$build/tools/qosctl/qosctl" --endpoint "tcp://127.0.0.1:$port" --timeout 200 stats >/dev/null 2>&1 && break
  sleep 0.05
done
echo "qosmgr benchmark: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "  store: SQLite WAL, synchronous=FULL, one transaction per batch of requests; $work on $(df -h "$work" | awk 'NR==2 {print $1}')"
echo "  path: lan-a -> wan -> lan-b, checked against 2 networks and 1 SLA per request"
[[ -n "${QOSMGR_BENCH_PERF:-}" ]] && { perf record -e cpu-clock --call-graph dwarf,16384 -F 2000 -p "$pid" -o "$QOSMGR_BENCH_PERF" 2>/dev/null & perf_pid=$!; }
"$build/tools/loadgen/qosmgr-load" --endpoint "tcp://127.0.0.1:$port" --app bulk --server-pid "$pid" "$@"
[[ -n "${perf_pid:-}" ]] && { kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; }
echo "  qosmgr RSS: $(ps -o rss= -p "$pid" | awk '{printf "%.0f MiB", $1/1024}'), store file: $(du -h "$work/state.db" | cut -f1)"
