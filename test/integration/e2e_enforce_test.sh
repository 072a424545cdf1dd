#!/usr/bin/env bash
# End to end, host enforcement of a standing policy: host A runs a media
# sender that does not mark and knows nothing of QoS; qos-agent on A holds
# the flow for it ([[policy]], the "media" application: AF41, 1 Mbit/s,
# 16 kB burst) and enforces the grant in A's own kernel ([enforce] mode =
# "nftables").  The example world as shipped, with a 4 s lease:
#
#   A (198.18.1.10) ==veth== GW: qosgate (gw1) ==veth== B (198.19.1.20)
#   qos-agent, sender          qosmgr                  iperf3 server
#   A 198.18.255.2/30 ==veth (management)== GW 198.18.255.1/30
#
# Checks:
#   a. from the agent's start to the first packet that leaves A marked
#      (the sender already running): measured and reported
#   b. policing (the grant's HTB class on A's interface, 2 frames queued):
#      5 Mbit/s offered on the 1 Mbit/s policy; on A's own interface every
#      packet is AF41 (DSCP 34) and the rate within 15 % of 1 Mbit/s; at B
#      they arrive as 26 (the wan's AF41, gw1's marking); what the class dropped
#   c. shaping (the class queues 100 ms): the same
#   d. SIGTERM: the grant is released and no table, class or qdisc of the
#      agent's is left
#   e. kill -9 leaves them; a restarted agent deletes them, asks again and
#      enforces again (one table, one class, packets marked)
#   f. --status says what the host enforces
#   g. with an operator's own root qdisc on A's interface the agent leaves
#      it alone and polices with nftables at the interface's egress hook
#
#   QOSGATE=... QOSMGR=... QOSCTL=... QOS_AGENT=... bash test/integration/e2e_enforce_test.sh
# Needs root; without it (or without ip netns / tools) it skips (exit 77),
# except under CI=true where it fails.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/integration/lib.sh
source "$here/lib.sh"

qg_require_qosgate
qg_require_manager
[[ -x ${QOS_AGENT:-} ]] || qg_die "set QOS_AGENT to the qos-agent executable (meson passes it)"
qg_require_root
qg_require_tools ip tc nft tcpdump tshark ethtool iperf3 "$QG_PYTHON"
qg_require_netns
qg_init

id=$QG_ID
ns_a=qe-a-$id ns_gw=qe-gw-$id ns_b=qe-b-$id
if_a=qe${id}a if_gw_a=qe${id}ga if_gw_b=qe${id}gb if_b=qe${id}b
prefix=qe-e2e-$id
media_port=5004
policy_mbit=1

qg_mktemp
dir=$QG_TMP
qg_build_bump "$ns_a" "$ns_gw" "$ns_b" "$if_a" "$if_gw_a" "$if_gw_b" "$if_b"
qg_example_world "$dir" "$ns_a" "$ns_gw" "$if_gw_a" "$if_gw_b" "$prefix" 4 2
cp "$dir/qos-agent.toml" "$dir/qos-agent.base.toml"

# agent_config LIMIT: the example agent with the media policy, enforcing with LIMIT.
agent_config() {
  cp "$dir/qos-agent.base.toml" "$dir/qos-agent.toml"
  qg_media_enforcement "$1" "$if_a" >>"$dir/qos-agent.toml"
}
start_agent() {
  qg_bg "$ns_a" "$dir/agent.out" "$dir/agent.log" "$QOS_AGENT" --config "$dir/qos-agent.toml"
  agent_pid=$QG_BG_PID
  qg_wait_for_line "$dir/agent.log" 'serving local applications' "$agent_pid" 15 ||
    { sed 's/^/  | /' "$dir/agent.log"; return 1; }
}
status_json() { qg_in "$ns_a" "$QOS_AGENT" --config "$dir/qos-agent.toml" --status --json; }
policy_held() { [[ $(status_json 2>/dev/null | qg_json 'd["policies"][0]["state"], d["policies"][0]["enforced"]') == "('held', True)" ]]; }
released() { (($(qg_world_flows) == 0)); }
has_table() { qg_in "$ns_a" nft list table inet qos_agent >/dev/null 2>&1; }
root_qdisc() { qg_in "$ns_a" tc qdisc show dev "$if_a" | awk '/ root / { print $2, $3; exit }'; }
agent_classes() { qg_in "$ns_a" tc class show dev "$if_a" | grep -c 'a9e0:'; }
map_elements() { qg_in "$ns_a" nft -j list map inet qos_agent flows4_dport | qg_json 'len(d["nftables"][1]["map"].get("elem", []))'; }
within() { awk -v x="$1" -v want="$2" -v pct="$3" 'BEGIN { d = x - want; if (d < 0) d = -d; exit !(d <= want * pct / 100) }'; }

qg_start_qosmgr "$ns_gw" "$dir/qosmgr.toml" "$dir/qosmgr.log" || qg_die "qosmgr did not start"
qg_start_qosgate "$ns_gw" "$dir/qosgate.toml" "$dir" "$prefix" || qg_die "qosgate did not start"
qg_wait_until 15 qg_world_gw1_up || qg_die "gw1 did not sync with qosmgr"

# --- a. from the agent's start to the first marked packet -------------------
agent_config police
qg_tshark_start "$ns_a" "$if_a" "$dir/first.pcap" "udp and dst port $media_port" || qg_die "tshark did not start"
sleep 1
qg_udp_send "$ns_a" "$QG_A_V4" "$QG_B_V4" "$media_port" 0 400 &
sender=$!
sleep 0.5
t_start=$(date +%s.%N)
start_agent || qg_die "qos-agent did not start"
qg_wait_until 10 policy_held || qg_fail "the policy was not held and enforced: $(status_json 2>&1)"
wait "$sender"
qg_capture_stop
first=$(tshark -n -r "$dir/first.pcap" -Y "ip.dsfield.dscp == 34" -T fields -e frame.time_epoch 2>/dev/null | head -1)
if [[ -n $first ]]; then
  first_ms=$(awk -v a="$t_start" -v b="$first" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
  qg_pass "the first marked packet left A ${first_ms} ms after the agent was started (packets every 20 ms)"
else
  qg_fail "no packet left A marked 34"
fi
grep -q "enforce: nftables on output (table inet qos_agent): mark; police with HTB on $if_a (a9e0:)" "$dir/agent.log" &&
  qg_pass "the agent says what the host enforces: $(grep -m1 -o 'enforce: .*' "$dir/agent.log")" ||
  qg_fail "no enforcement line in the agent's log"

# --- b. policing: 5 Mbit/s offered on the 1 Mbit/s policy -------------------
# offer NAME LABEL: 5 Mbit/s for 5 s, tshark at A and B; checks that every
# packet left A marked, at about the granted rate, and arrived at B as 26.
offer() {
  qg_tshark_start "$ns_a" "$if_a" "$dir/$1-a.pcap" "udp and dst port $media_port" || qg_die "tshark did not start at A"
  local cap_a=$QG_CAPTURE_PID
  qg_tshark_start "$ns_b" "$if_b" "$dir/$1-b.pcap" "udp and dst port $media_port" || qg_die "tshark did not start at B"
  sleep 1
  t_offer=$(date +%s.%N)
  qg_police_run "$ns_a" "$ns_b" "$QG_A_V4" "$QG_B_V4" "$media_port" 40000 5 5 1200 "$dir" ||
    qg_fail "iperf3 did not run"
  sleep 0.5
  qg_capture_stop
  QG_CAPTURE_PID=$cap_a
  qg_capture_stop
  # The first second fills the bucket (or the queue): the rate is read after it.
  read -r a_mbit a_marked a_all < <(qg_pcap_rate "$dir/$1-a.pcap" "$QG_A_V4" "$media_port" 34 \
    "$(awk -v t="$t_offer" 'BEGIN { printf "%.3f", t + 1 }')")
  read -r _ b_marked b_all < <(qg_pcap_rate "$dir/$1-b.pcap" "$QG_A_V4" "$media_port" 26)
  class_stats=$(qg_in "$ns_a" tc -s class show dev "$if_a" | grep -A1 'a9e0:1 ' | tail -1)
  dropped=$(sed -n 's/.*(dropped \([0-9]*\),.*/\1/p' <<<"$class_stats")
  ((a_all > 100 && a_marked == a_all)) && qg_pass "$2: every packet of the flow left A marked 34 ($a_marked of $a_all)" ||
    qg_fail "$2: $a_marked of $a_all packets left A marked 34"
  within "$a_mbit" "$policy_mbit" 15 &&
    qg_pass "$2: ${a_mbit} Mbit/s left A for ${policy_mbit} Mbit/s granted, 5 offered (iperf3 sent $QG_SENT_PKTS, B got $QG_RCVD_PKTS${dropped:+; its HTB class dropped $dropped})" ||
    qg_fail "$2: ${a_mbit} Mbit/s left A for ${policy_mbit} Mbit/s"
  ((b_all > 100 && b_marked == b_all)) && qg_pass "$2: at B the flow arrived as 26, the wan's AF41 ($b_marked of $b_all)" ||
    qg_fail "$2: at B $b_marked of $b_all packets arrived as 26"
}
offer police policing
# --- d. SIGTERM: released, nothing left ------------------------------------
qg_stop_daemon qos-agent "$agent_pid" TERM 10
qg_wait_until 5 released && qg_pass "a stopped agent released the grant" ||
  qg_fail "$(qg_world_flows) flow(s) held after the agent stopped"
! has_table && [[ $(root_qdisc) == "noqueue 0:" ]] && qg_pass "a stopped agent left no table and no qdisc (root: $(root_qdisc))" ||
  qg_fail "left behind: table $(has_table && echo yes || echo no), root qdisc $(root_qdisc)"

# --- c. shaping ------------------------------------------------------------
agent_config shape
start_agent || qg_die "qos-agent did not start (shape)"
qg_wait_until 10 policy_held || qg_fail "the policy was not held and enforced (shape)"
[[ $(root_qdisc) == "htb a9e0:" ]] && (($(agent_classes) == 1)) &&
  qg_pass "shaping: the agent's HTB root and one class on $if_a" || qg_fail "shaping: root $(root_qdisc), $(agent_classes) class(es)"
offer shape shaping

# --- f. --status -------------------------------------------------------------
status=$(qg_in "$ns_a" "$QOS_AGENT" --config "$dir/qos-agent.toml" --status 2>&1)
grep -q "enforcement: nftables on output (table inet qos_agent): mark; shape with HTB on $if_a (a9e0:)" <<<"$status" &&
  grep -q 'media: held, udp 198.18.1.10:any -> 198.19.1.20:5004, app media, flow [0-9]*, AF41 DSCP 34, 1mbit, burst 16000 B, enforced here' <<<"$status" &&
  qg_pass "--status: the policy held and enforced" || qg_fail "--status: $status"

# --- e. kill -9 and a restart ---------------------------------------------
qg_kill_pid "$agent_pid" KILL
has_table && [[ $(root_qdisc) == "htb a9e0:" ]] && qg_pass "kill -9 left the table and the HTB tree" ||
  qg_fail "after kill -9: table $(has_table && echo yes || echo no), root $(root_qdisc)"
start_agent || qg_die "qos-agent did not restart"
grep -q 'deleted the HTB tree an earlier run left' "$dir/agent.log" && qg_pass "the restarted agent deleted the tree the killed one left" ||
  qg_fail "the restarted agent did not say it cleaned up"
qg_wait_until 10 policy_held || qg_fail "the restarted agent did not hold and enforce the policy"
(($(agent_classes) == 1 && $(map_elements) == 1)) && qg_pass "and enforces again: one class, one map element" ||
  qg_fail "after the restart: $(agent_classes) class(es), $(map_elements) element(s)"
qg_capture_start "$ns_a" "$if_a" "$dir/again.pcap" "udp and dst port $media_port" 5 || qg_die "tcpdump did not start"
qg_udp_send "$ns_a" "$QG_A_V4" "$QG_B_V4" "$media_port" 0 5
qg_capture_stop 3
[[ $(qg_pcap_tos "$dir/again.pcap" | awk '{ printf "%d ", $5 }') == "136 136 136 136 136 " ]] &&
  qg_pass "packets leave A marked again after the restart" || qg_fail "after the restart: TOS $(qg_pcap_tos "$dir/again.pcap" | awk '{ printf "%d ", $5 }')"
qg_stop_daemon qos-agent "$agent_pid" TERM 10
! has_table && [[ $(root_qdisc) == "noqueue 0:" ]] && qg_pass "stopped again: nothing of the agent's is left" ||
  qg_fail "left behind at the end: table $(has_table && echo yes || echo no), root $(root_qdisc)"

# --- g. someone else's root qdisc: left alone, policed by nftables ----------
qg_in "$ns_a" tc qdisc add dev "$if_a" root handle 1: pfifo limit 1000 || qg_die "cannot add a pfifo qdisc"
agent_config police
start_agent || qg_die "qos-agent did not start (an operator's qdisc)"
qg_wait_until 10 policy_held || qg_fail "the policy was not held and enforced (nftables policing)"
grep -q "enforce: nftables on $if_a's egress (table netdev qos_agent): mark and police" "$dir/agent.log" &&
  qg_pass "with an operator's root qdisc the agent polices with nftables at $if_a's egress" ||
  qg_fail "no nftables policing line: $(grep -m1 'enforce:' "$dir/agent.log")"
# The sender never sees a drop (iperf3 would give up on EPERM) and, once the
# limit's bucket (the burst and one second of the rate) has drained, 1 Mbit/s.
offer nft "nftables policing"
qg_stop_daemon qos-agent "$agent_pid" TERM 10
! has_table && [[ $(root_qdisc) == "pfifo 1:" ]] && qg_pass "stopped: no table left, and the operator's qdisc untouched" ||
  qg_fail "after the stop: table $(has_table && echo yes || echo no), root $(root_qdisc)"

qg_stop_qosgate
qg_stop_qosmgr
qg_summary
