#!/usr/bin/env bash
# How fast grants reach an appliance: qosmgr (durability on) and one qosgate
# (net_null ports, no hugepages) on loopback, the appliance on the path of
# every grant.  qosmgr-load admits N flows; the script polls `qosctl
# appliances` until the appliance has acknowledged a rule for each, and
# prints rules/s from the first request to the last acknowledgement, and
# how long after the last grant reply the appliance caught up.
#
# Run twice: with enforce_wait = 0 (replies do not wait for the appliance:
# the sync's own rate) and with enforce_wait = 1s (each reply waits for the
# appliance's acknowledgement: admissions at the pace of enforcement).
#
#   tools/bench/sync_bench.sh [BUILD_DIR] [N]        default N = 10000
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$repo/build}"
n="${2:-10000}"
work="$(mktemp -d /tmp/sync-bench.XXXXXX)"
mgr_pid=""
gw_pid=""
cleanup() {
  for pid in "$gw_pid" "$mgr_pid"; do
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  rm -rf "$work" "/var/run/dpdk/syncbench-$$"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

run() {
  local wait=$1 port endpoint qosctl
  port="$(free_port)"
  endpoint="tcp://127.0.0.1:$port"
  qosctl=("$build/tools/qosctl/qosctl" --endpoint "$endpoint" --timeout 2000)
  rm -f "$work"/state.db*
  cat >"$work/qosmgr.toml" <<TOML
[manager]
listen = "$endpoint"
state = "$work/state.db"
lease = "3600s"
enforce_wait = "$wait"
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
[[link]]
between = ["lan-a", "wan"]
[[link]]
between = ["wan", "lan-b"]
[[application]]
name = "bulk"
default = { class = "AF41", rate = "1mbit", burst = "16kB" }
[[appliance]]
name = "gw1"
link = ["lan-a", "wan"]
TOML
  cat >"$work/qosgate.toml" <<TOML
[eal]
args = ["--no-huge", "-m", "1024", "--no-pci", "-l", "0-1", "--file-prefix=syncbench-$$",
        "--vdev=net_null0", "--vdev=net_null1", "--log-level=lib.eal:error"]
[[pair]]
inside = "net_null0"
outside = "net_null1"
[dataplane]
max_flows = $((n * 2 > 1024 ? n * 2 : 1024))
idle_sleep_us = 1000
[control]
manager = "$endpoint"
name = "gw1"
TOML
  "$build/manager/qosmgr" --config "$work/qosmgr.toml" >"$work/qosmgr.log" 2>&1 &
  mgr_pid=$!
  "$build/appliance/qosgate" --config "$work/qosgate.toml" >"$work/qosgate.out" 2>"$work/qosgate.err" &
  gw_pid=$!
  local up=0
  for _ in $(seq 1 200); do
    if "${qosctl[@]}" --json appliances 2>/dev/null | grep -q '"state": "up"'; then
      up=1
      break
    fi
    sleep 0.05
  done
  ((up)) || { echo "the appliance did not come up:"; cat "$work/qosmgr.log" "$work/qosgate.err"; exit 1; }

  local start end_load done_at installed=0
  start=$(now)
  "$build/tools/loadgen/qosmgr-load" --endpoint "$endpoint" --preload "$n" --requests 0 \
    --server-pid "$mgr_pid" >"$work/load.txt"
  end_load=$(now)
  until ((installed >= n)); do
    installed=$("${qosctl[@]}" --json appliances | /usr/bin/python3 -c \
      'import json,sys; a=json.load(sys.stdin)["appliances"][0]; print(a["rules_installed"] if a["seq_acked"]==a["seq"] else 0)')
    awk -v n="$(now)" -v s="$start" 'BEGIN { exit !(n - s <= 120) }' || { echo "timed out"; exit 1; }
  done
  done_at=$(now)
  echo "enforce_wait = $wait:"
  sed -n 's/^preload */  admissions: /p' "$work/load.txt" | head -1
  awk -v s="$start" -v l="$end_load" -v d="$done_at" -v n="$n" 'BEGIN {
    printf "  %d rules on the appliance in %.3f s = %.0f rules/s; the last acknowledged %.0f ms after the last grant reply\n",
      n, d - s, n / (d - s), (d - l) * 1000 }'
  kill -TERM "$gw_pid" "$mgr_pid"
  wait "$gw_pid" "$mgr_pid" 2>/dev/null || true
  gw_pid=""
  mgr_pid=""
}

echo "sync benchmark: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $n grants"
echo "  qosmgr: SQLite WAL, synchronous=FULL; qosgate: net_null ports, one worker; both on loopback"
echo "  (the poll of qosctl appliances adds up to ~10 ms to each total)"
run 0
run 1s
