#!/usr/bin/env bash
# What host enforcement costs: qos-agent holding N standing policies (one
# per UDP port) and enforcing them in this host's kernel, and the CPU the
# host spends sending their traffic with and without enforcement.
#
#   tools/bench/enforce_bench.sh [BUILD_DIR] [N] [PPS] [SECONDS]   default 1000 flows, 100000 pps, 10 s
#
# In a network namespace of its own: a veth interface (198.18.0.1, and a
# route to 198.19.0.0/16 through it; the far end drops every frame as it
# receives it, the same in every run), qosmgr on loopback, qos-agent
# with N [[policy]] (198.18.0.1 -> 198.19.0.2, UDP ports 10000..), each
# granted 1 Mbit/s with a 16 kB burst.  udp_flows sends PPS datagrams of 200
# bytes (IP) a second spread over the N flows (about 160 kbit/s each: under
# the grant, nothing is dropped), for each of:
#   baseline   [enforce] mode = "none" (the grants held, the kernel left alone)
#   mark       limit = "none": nftables marks
#   police     HTB class per grant, 2 frames queued
#   shape      HTB class per grant, 100 ms queued
# and reports how long the agent took from its start to N policies held and
# enforced; the sender's CPU (user + system: nftables and the qdisc run in
# its system calls) and what it spent per packet more than in the baseline;
# the machine's busy CPU (all CPUs, /proc/stat, tick-sampled: coarser) and
# the same difference; the agent's CPU during the send; what the classes
# dropped.  Needs root.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$repo/build}"
n="${2:-1000}"
pps="${3:-100000}"
seconds="${4:-10}"
ns="qeb-$$"
work="$(mktemp -d /tmp/enforce-bench.XXXXXX)"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$ns-sink" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
in_ns() { ip netns exec "$ns" "$@"; }
free_port() { in_ns /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
cpu_s() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }
[[ $(id -u) == 0 ]] || { echo "enforce_bench: needs root" >&2; exit 2; }
for exe in manager/qosmgr control/qos-agent tools/bench/udp_flows; do
  [[ -x $build/$exe ]] || { echo "enforce_bench: no $build/$exe (ninja -C $build)" >&2; exit 2; }
done

ip netns add "$ns"
in_ns ip link set lo up
# A veth pair whose far end, in a namespace of its own, sees frames
# addressed to another MAC: the kernel drops them as it receives them.
ip netns add "$ns-sink"
ip link add d0 netns "$ns" type veth peer name d1 netns "$ns-sink"
in_ns ip addr add 198.18.0.1/24 dev d0
in_ns ip link set d0 up
ip -n "$ns-sink" link set d1 up
in_ns ip route add 198.19.0.0/16 dev d0
in_ns ip neigh add 198.19.0.2 lladdr 02:00:00:00:00:99 dev d0 nud permanent

mgr="tcp://127.0.0.1:$(free_port)"
cat >"$work/qosmgr.toml" <<TOML
[manager]
listen = "$mgr"
state = "$work/state.db"
lease = "60s"
[[network]]
name = "lan-a"
prefixes = ["198.18.0.0/16"]
class_enabled = true
classes = { AF41 = { dscp = 34, capacity = "100tbit" } }
[[network]]
name = "lan-b"
prefixes = ["198.19.0.0/16"]
[[link]]
between = ["lan-a", "lan-b"]
[[application]]
name = "bench"
default = { class = "AF41", rate = "1mbit", burst = "16kB" }
TOML
ip netns exec "$ns" "$build/manager/qosmgr" --config "$work/qosmgr.toml" >"$work/qosmgr.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do grep -q 'serving on' "$work/qosmgr.log" && break; sleep 0.1; done

# agent_config MODE LIMIT
agent_config() {
  {
    printf '[agent]\nlisten = "ipc://%s/agent.sock"\nname = "bench"\nmanager = "%s"\n' "$work" "$mgr"
    printf '[enforce]\nmode = "%s"\n' "$1"
    [[ $1 == none ]] || printf 'limit = "%s"\ninterface = "d0"\n' "$2"
    for ((i = 0; i < n; i++)); do
      printf '[[policy]]\napp = "bench"\nsrc = "198.18.0.1"\ndst = "198.19.0.2"\nproto = "udp"\ndport = %d\n' $((10000 + i))
    done
  } >"$work/agent.toml"
}
held_and_enforced() {
  in_ns "$build/control/qos-agent" --config "$work/agent.toml" --status --json 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin); print(sum(1 for p in d["policies"] if p["state"] == "held" and (p["enforced"] or sys.argv[1] == "none")))' "$1"
}

echo "enforce benchmark: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r)"
echo "$n flows, $pps pps of 200-byte datagrams for $seconds s each run"
printf '%-9s %9s %8s %11s %12s %11s %12s %9s %6s\n' run "ready(s)" pps "sender(s)" "+ns/pkt" "busy(cores)" "+ns/pkt" "agent(s)" drops
base_busy="" base_sender=""
for run in baseline mark police shape; do
  case $run in
    baseline) agent_config none none ;;
    mark) agent_config nftables none ;;
    *) agent_config nftables "$run" ;;
  esac
  t0=$(date +%s.%N)
  ip netns exec "$ns" "$build/control/qos-agent" --config "$work/agent.toml" >"$work/agent-$run.log" 2>&1 &
  agent=$!
  pids+=("$agent")
  mode=$([[ $run == baseline ]] && echo none || echo nftables)
  ready=""
  for _ in $(seq 1 600); do
    if [[ $(held_and_enforced "$mode") == "$n" ]]; then
      ready=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
      break
    fi
    sleep 0.1
  done
  [[ -n $ready ]] || { echo "$run: the agent did not hold $n policies in 60 s" >&2; tail -5 "$work/agent-$run.log" >&2; exit 1; }
  agent_cpu0=$(cpu_s "$agent")
  busy0=$(busy_ticks)
  out=$(in_ns "$build/tools/bench/udp_flows" 198.18.0.1 198.19.0.2 10000 "$n" "$pps" "$seconds" 172)
  busy1=$(busy_ticks)
  agent_cpu=$(awk -v a="$agent_cpu0" -v b="$(cpu_s "$agent")" 'BEGIN { printf "%.2f", b - a }')
  drops=$(in_ns tc -s class show dev d0 2>/dev/null | sed -n 's/.*(dropped \([0-9]*\),.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
  read -r sent_pps sender_s < <(awk '{ print $8, $10 + $12 }' <<<"$out")
  busy=$(awk -v a="$busy0" -v b="$busy1" -v s="$seconds" 'BEGIN { printf "%.3f", (b - a) / 100 / s }')
  [[ -n $base_busy ]] || { base_busy=$busy; base_sender=$sender_s; }
  extra_busy=$(awk -v b="$busy" -v z="$base_busy" -v p="$sent_pps" 'BEGIN { printf "%.0f", (b - z) * 1e9 / p }')
  extra_sender=$(awk -v b="$sender_s" -v z="$base_sender" -v p="$sent_pps" -v s="$seconds" 'BEGIN { printf "%.0f", (b - z) * 1e9 / (p * s) }')
  printf '%-9s %9s %8s %11s %12s %11s %12s %9s %6s\n' "$run" "$ready" "$sent_pps" "$sender_s" "$extra_sender" "$busy" "$extra_busy" "$agent_cpu" "$drops"
  kill -TERM "$agent"
  wait "$agent" 2>/dev/null || true
  if in_ns nft list tables 2>/dev/null | grep -q qos_agent; then
    echo "$run: the agent left its table" >&2
    tail -5 "$work/agent-$run.log" >&2
    exit 1
  fi
done
