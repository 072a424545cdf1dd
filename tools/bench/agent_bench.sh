#!/usr/bin/env bash
# What the host middleware costs: qosmgr (CURVE, durability on) and qos-agent
# on this machine, driven by agent_load as an application would be.
#   1. round trip of a request (and of its release), straight to the manager
#      with the host's key, and through qos-agent over ipc://, alternating;
#   2. N grants held through one agent for S seconds with 30 s leases (the
#      agent refreshes each every 10 s): the agent's and qosmgr's CPU.
#
#   tools/bench/agent_bench.sh [BUILD_DIR] [N] [S]     default 10000 grants, 40 s
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$repo/build}"
n="${2:-10000}"
hold="${3:-40}"
work="$(mktemp -d /tmp/agent-bench.XXXXXX)"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_s() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }   # utime + stime, 100 Hz ticks

mkdir -p "$work/keys"
for name in qosmgr host-a; do "$build/tools/qosctl/qosctl" keygen "$work/keys/$name" >/dev/null; done
mgr="tcp://127.0.0.1:$(free_port)"
cat >"$work/qosmgr.toml" <<TOML
[manager]
listen = "$mgr"
state = "$work/state.db"
lease = "30s"
[metrics]
listen = "127.0.0.1:$(free_port)"
[[network]]
name = "lan-a"
prefixes = ["198.18.1.0/24"]
class_enabled = true
classes = { EF = { dscp = 46, capacity = "100tbit" } }
[[network]]
name = "lan-b"
prefixes = ["198.19.0.0/16"]
[[link]]
between = ["lan-a", "lan-b"]
[[application]]
name = "voip"
default = { class = "EF", rate = "100kbit", burst = "10kB" }
[security]
mode = "curve"
secret_key = "keys/qosmgr.key"
[[peer]]
name = "host-a"
role = "host"
public_key = "keys/host-a.pub"
TOML
cat >"$work/agent.toml" <<TOML
[agent]
listen = "ipc://$work/agent.sock"
name = "host-a"
manager = "$mgr"
secret_key = "keys/host-a.key"
manager_public_key = "keys/qosmgr.pub"
client_timeout = "5s"
TOML
"$build/manager/qosmgr" --config "$work/qosmgr.toml" >"$work/qosmgr.log" 2>&1 &
mgr_pid=$!
pids+=("$mgr_pid")
"$build/control/qos-agent" --config "$work/agent.toml" >"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
sleep 1
load="$build/tools/bench/agent_load"
direct=(--endpoint "$mgr" --key "$work/keys/host-a.key" --manager-key "$work/keys/qosmgr.pub")
via=(--endpoint "ipc://$work/agent.sock")

echo "agent benchmark: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "  qosmgr: SQLite WAL, synchronous=FULL, CURVE; qos-agent on ipc://; one request at a time"
for round in 1 2; do
  echo "round $round"
  echo "  direct (host key): $("$load" rtt "${direct[@]}" --requests 1000)"
  echo "  via qos-agent:     $("$load" rtt "${via[@]}" --requests 1000)"
done

echo "holding $n grants through qos-agent for $hold s (30 s leases: refreshed every 10 s)"
"$load" hold "${via[@]}" --grants "$n" --seconds "$hold" >"$work/hold.txt" &
hold_pid=$!
until grep -q "^granted" "$work/hold.txt" 2>/dev/null || ! kill -0 "$hold_pid" 2>/dev/null; do sleep 0.2; done
a0=$(cpu_s "$agent_pid"); m0=$(cpu_s "$mgr_pid"); t0=$(date +%s.%N)
until grep -q "^still held" "$work/hold.txt" 2>/dev/null || ! kill -0 "$hold_pid" 2>/dev/null; do sleep 0.2; done
a1=$(cpu_s "$agent_pid"); m1=$(cpu_s "$mgr_pid"); t1=$(date +%s.%N)
wait "$hold_pid" || true   # its session releases the grants as it closes
sed 's/^/  /' "$work/hold.txt"
awk -v a0="$a0" -v a1="$a1" -v m0="$m0" -v m1="$m1" -v t0="$t0" -v t1="$t1" 'BEGIN {
  printf "  over %.0f s: qos-agent used %.1f%% of a core, qosmgr %.1f%%\n",
    t1 - t0, 100 * (a1 - a0) / (t1 - t0), 100 * (m1 - m0) / (t1 - t0) }'
