#!/usr/bin/env bash
# End to end, the host's middleware in the whole system: qos-agent on host
# A (host A's key; qosmgr over a management link), qos-call's libqosclient
# behind it, qosgate and qosmgr in the gateway's namespace, qos-call
# listening on host B.  The example world as shipped (conf/qosmgr.toml,
# conf/demo.toml, conf/qos-agent.toml), with a 4 s lease and a 2 s
# client timeout so that lapses are quick:
#
#   A (198.18.1.10) ==veth== GW: qosgate (gw1) ==veth== B (198.19.1.20)
#   qos-agent, dial            qosmgr                  qos-call listen
#   A 198.18.255.2/30 ==veth (management)== GW 198.18.255.1/30
#
# Checks:
#   a. a call through the agent: tshark at A sees A's media leave marked 46
#      (lan-a's EF) and B's arrive as 46; at B, A's arrive as 40 (the wan's
#      EF) and B's leave as 40 (the reverse DSCP A told B in the set-up);
#      the grant is released at the hang-up and gw1 marks no more
#   b. kill -9 of a calling qos-call: the agent releases its grant at the
#      manager within client_timeout, and gw1 stops marking the flow
#   c. kill -9 of qos-agent during a call: nothing is released at once; the
#      grant lapses with its lease, and the caller's library reports it lost
#   d. a restarted agent serves again on the socket the killed one left
#   e. a user that the socket's directory keeps out gets no QoS (exit 1)
#   f. SIGTERM: the agent, qosgate and qosmgr stop cleanly
# and that each daemon's scrape holds every metric family its code builds.
#
#   QOSGATE=... QOSMGR=... QOSCTL=... QOS_AGENT=... QOS_CALL=... bash test/integration/e2e_host_test.sh
# Needs root; without it (or without ip netns / tools) it skips (exit 77),
# except under CI=true where it fails.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/integration/lib.sh
source "$here/lib.sh"

qg_require_qosgate
qg_require_manager
for v in QOS_AGENT QOS_CALL; do
  [[ -x ${!v:-} ]] || qg_die "set $v to the ${v,,} executable (meson passes it)"
done
qg_require_root
qg_require_tools ip tcpdump tshark ethtool setpriv "$QG_PYTHON"
qg_require_netns
qg_init

id=$QG_ID
ns_a=qh-a-$id ns_gw=qh-gw-$id ns_b=qh-b-$id
if_a=qh${id}a if_gw_a=qh${id}ga if_gw_b=qh${id}gb if_b=qh${id}b
prefix=qh-e2e-$id
lease_s=4
client_timeout_s=2

qg_mktemp
dir=$QG_TMP
qg_build_bump "$ns_a" "$ns_gw" "$ns_b" "$if_a" "$if_gw_a" "$if_gw_b" "$if_b"
qg_example_world "$dir" "$ns_a" "$ns_gw" "$if_gw_a" "$if_gw_b" "$prefix" "$lease_s" "$client_timeout_s"
gw_metrics=$QG_GW_METRICS mgr_metrics=$QG_MGR_METRICS sock=$QG_AGENT_SOCK
sip_port=5060

ctl() { qg_world_ctl "$@"; }
json() { qg_json "$1"; }
flow_count() { qg_world_flows; }
holds() { (($(flow_count) == $1)); }
gw1_up() { qg_world_gw1_up; }
start_agent() {
  qg_bg "$ns_a" "$dir/agent.out" "$dir/agent.log" "$QOS_AGENT" --config "$dir/qos-agent.toml"
  agent_pid=$QG_BG_PID
  qg_wait_for_line "$dir/agent.log" 'serving local applications' "$agent_pid" 15 ||
    { sed 's/^/  | /' "$dir/agent.log"; return 1; }
}
# dial SECONDS OUT: a voip call from A to B through the agent, in the background.
dial() {
  qg_bg "$ns_a" "$2" "$2.err" "$QOS_CALL" dial "$QG_B_V4:$sip_port" --app voip --seconds "$1" \
    --rate 64kbit --agent "ipc://$sock" --json
  dial_pid=$QG_BG_PID
}
# held_flow: the one flow the manager holds, as "ID SPORT DPORT CLIENT".
held_flow() {
  ctl --json flows | json '" ".join(str(x) for x in (lambda f: (f["flow_id"], f["sport"], f["dport"], f["client"]))(d["flows"][0])) if len(d["flows"]) == 1 else ""'
}
# wait_flows N SECONDS: until the manager holds N flows; ELAPSED is the time taken.
wait_flows() {
  local want=$1 start now
  start=$(date +%s.%N)
  while (($(flow_count) != want)); do
    now=$(date +%s.%N)
    awk -v a="$start" -v b="$now" -v s="$2" 'BEGIN { exit !(b - a < s) }' || return 1
    sleep 0.05
  done
  ELAPSED=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
}
# arrives_as SPORT DPORT TOS_SENT: the TOS bytes three A:SPORT -> B:DPORT
# datagrams arrive with at B.
arrives_as() {
  local pcap=$dir/tos-$1-$RANDOM.pcap
  qg_capture_start "$ns_b" "$if_b" "$pcap" "udp and src port $1 and dst port $2" 3 || qg_die "tcpdump did not start"
  qg_udp_send "$ns_a" "$QG_A_V4" "$QG_B_V4" "$2" "$3" 3 "$1"
  qg_capture_stop 5
  qg_pcap_tos "$pcap" | awk '{ printf "%d ", $5 }'
}
# all_dscp PCAP SRC DST DSCP: tshark read SRC->DST packets and every one carried DSCP.
all_dscp() {
  local counts all right
  counts=$(qg_pcap_dscp_counts "$1")
  all=$(awk -v s="$2" -v d="$3" '$2 == s && $3 == d { n += $1 } END { print n + 0 }' <<<"$counts")
  right=$(awk -v s="$2" -v d="$3" -v x="$4" '$2 == s && $3 == d && $4 == x { n += $1 } END { print n + 0 }' <<<"$counts")
  DSCP_SEEN="$right of $all"
  ((all > 50 && all == right))
}

# --- start ----------------------------------------------------------------
qg_check "qos-agent --check-config accepts the example with this run's paths" \
  qg_in "$ns_a" "$QOS_AGENT" --config "$dir/qos-agent.toml" --check-config
qg_start_qosmgr "$ns_gw" "$dir/qosmgr.toml" "$dir/qosmgr.log" || qg_die "qosmgr did not start"
qg_start_qosgate "$ns_gw" "$dir/qosgate.toml" "$dir" "$prefix" || qg_die "qosgate did not start"
qg_wait_until 15 gw1_up || qg_die "gw1 did not sync with qosmgr"
start_agent || qg_die "qos-agent did not start"
qg_bg "$ns_b" "$dir/callee.out" "$dir/callee.err" "$QOS_CALL" listen --port "$sip_port" --seconds 600 --json
callee_pid=$QG_BG_PID
callee_ready() { qg_in "$ns_b" ss -Hlun "sport = :$sip_port" | grep -q .; }
qg_wait_until 5 callee_ready || qg_die "qos-call listen did not start: $(cat "$dir/callee.err")"

# --- a. a call through the agent, seen by tshark at both ends ------------
qg_tshark_start "$ns_a" "$if_a" "$dir/a.pcap" "udp and not port $sip_port" || qg_die "tshark did not start in $ns_a"
cap_a=$QG_CAPTURE_PID
qg_tshark_start "$ns_b" "$if_b" "$dir/b.pcap" "udp and not port $sip_port" || qg_die "tshark did not start in $ns_b"
sleep 1 # dumpcap says "Capturing on" a moment before its filter is in place
dial 4 "$dir/call-a.json"
qg_wait_exit "$dial_pid" 20
wait "$dial_pid"
rc=$?
qg_forget_pid "$dial_pid"
sleep 0.5 # what is still in the kernel's capture buffer
qg_capture_stop
QG_CAPTURE_PID=$cap_a
qg_capture_stop
call=$(cat "$dir/call-a.json")
[[ $rc == 0 && $(json 'd["qos"]["granted"], d["qos"]["class"], d["qos"]["dscp"], d["qos"]["reverse_dscp"]' <<<"$call") == "(True, 'EF', 46, 40)" ]] &&
  qg_pass "a call through the agent: EF, DSCP 46 at A, 40 told to B" || qg_fail "the call: exit $rc: $call $(cat "$dir/call-a.json.err")"
all_dscp "$dir/a.pcap" "$QG_A_V4" "$QG_B_V4" 46 && qg_pass "tshark at A: A's media left marked 46 ($DSCP_SEEN)" ||
  qg_fail "tshark at A: $DSCP_SEEN A->B packets marked 46"
all_dscp "$dir/b.pcap" "$QG_A_V4" "$QG_B_V4" 40 && qg_pass "tshark at B: A's media arrived marked 40 ($DSCP_SEEN)" ||
  qg_fail "tshark at B: $DSCP_SEEN A->B packets marked 40"
all_dscp "$dir/b.pcap" "$QG_B_V4" "$QG_A_V4" 40 && qg_pass "tshark at B: B's media left marked 40, the reverse DSCP ($DSCP_SEEN)" ||
  qg_fail "tshark at B: $DSCP_SEEN B->A packets marked 40"
all_dscp "$dir/a.pcap" "$QG_B_V4" "$QG_A_V4" 46 && qg_pass "tshark at A: B's media arrived marked 46 ($DSCP_SEEN)" ||
  qg_fail "tshark at A: $DSCP_SEEN B->A packets marked 46"
sent=$(json 'd["to_callee"]["sent"]' <<<"$call")
for at in a b; do
  seen=$(qg_pcap_dscp_counts "$dir/$at.pcap" | awk -v s="$QG_A_V4" '$2 == s { n += $1 } END { print n + 0 }')
  ((seen == sent)) && qg_pass "tshark at ${at^^} counted every media datagram A sent ($sent)" ||
    qg_fail "tshark at ${at^^} counted $seen of the $sent media datagrams A sent"
done
(($(flow_count) == 0)) && qg_pass "hung up: the grant was released at the manager" || qg_fail "$(flow_count) flow(s) held after the hang-up"
read -r sport dport < <(json 'd["media"]["local"].split(":")[1], d["media"]["remote"].split(":")[1]' <<<"$call" | tr -d "(),'")
[[ $(arrives_as "$sport" "$dport" 0xb8) == "0 0 0 " ]] && qg_pass "after the hang-up gw1 re-marks the call's media claiming EF to 0" ||
  qg_fail "after the hang-up the call's media arrives as $(arrives_as "$sport" "$dport" 0xb8)"

# --- metrics: every family a daemon builds is in its scrape -----------------
# The names are read from the code that builds them, so a family added
# there and not returned fails here.
for daemon in qosgate:"$gw_metrics":appliance/runtime/metrics.cc qosmgr:"$mgr_metrics":manager/service/server_metrics.cc; do
  IFS=: read -r name port source <<<"$daemon"
  scrape=$(qg_metrics "$ns_gw" "$port")
  missing=()
  while read -r family; do
    grep -q "^# TYPE $family " <<<"$scrape" || missing+=("$family")
  done < <(grep -ohE "\"${name}_[a-z0-9_]+\"" "$repo/$source" | tr -d '"' | sort -u)
  n=$(grep -ohE "\"${name}_[a-z0-9_]+\"" "$repo/$source" | sort -u | wc -l)
  ((n > 5 && ${#missing[@]} == 0)) && qg_pass "$name exports all $n metric families it builds" ||
    qg_fail "$name's scrape lacks ${missing[*]:-?} (of $n families in $source)"
done

# --- b. kill -9 of a client behind the agent ------------------------------
dial 60 "$dir/call-b.json"
qg_wait_until 10 holds 1 || qg_fail "the second call's grant did not appear"
read -r flow sport dport client < <(held_flow)
[[ ${client:-} == host-a ]] && qg_pass "the call's grant is host-a's at the manager (flow ${flow:-?})" || qg_fail "held: ${flow:-none} ${client:-}"
kill -KILL "$dial_pid"
qg_wait_exit "$dial_pid" 5
wait "$dial_pid" 2>/dev/null
qg_forget_pid "$dial_pid"
if wait_flows 0 $((client_timeout_s + 3)); then
  qg_pass "kill -9 of the caller: the agent released its grant ${ELAPSED} s later (client_timeout ${client_timeout_s} s)"
  awk -v e="$ELAPSED" -v t="$client_timeout_s" 'BEGIN { exit !(e <= t + 1) }' &&
    qg_pass "...within client_timeout and the agent's 1 s check" || qg_fail "...but ${ELAPSED} s is more than client_timeout + 1 s"
else
  qg_fail "kill -9 of the caller: its grant still held $((client_timeout_s + 3)) s later"
fi
grep -q 'went silent: released 1' "$dir/agent.log" && qg_pass "the agent logged the release" || qg_fail "agent log: $(tail -3 "$dir/agent.log")"
callee_calls() { (($(wc -l <"$dir/callee.out") >= $1)); }
qg_wait_until 10 callee_calls 2 && [[ $(sed -n 2p "$dir/callee.out" | json 'd["caller_silent"]') == True ]] &&
  qg_pass "the callee hung up when the dead caller's media stopped" || qg_fail "callee: $(cat "$dir/callee.out")"
[[ -n ${sport:-} && $(arrives_as "$sport" "$dport" 0xb8) == "0 0 0 " ]] && qg_pass "gw1 no longer marks the dead caller's flow" ||
  qg_fail "the dead caller's flow still marked: $(arrives_as "${sport:-1}" "${dport:-1}" 0xb8)"

# --- c. kill -9 of the agent during a call --------------------------------
dial 14 "$dir/call-c.json"
qg_wait_until 10 holds 1 || qg_fail "the third call's grant did not appear"
killed_at=$(date +%s.%N)
kill -KILL "$agent_pid"
qg_wait_exit "$agent_pid" 5
wait "$agent_pid" 2>/dev/null
qg_forget_pid "$agent_pid"
sleep $((client_timeout_s + 1))
(($(flow_count) == 1)) && qg_pass "kill -9 of the agent: the grant is kept past client_timeout (nobody released it)" ||
  qg_fail "kill -9 of the agent: $(flow_count) flows held"
if wait_flows 0 $((lease_s + 3)); then
  since=$(awk -v a="$killed_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  awk -v e="$since" -v l="$lease_s" 'BEGIN { exit !(e <= l + 1.5) }' &&
    qg_pass "...and lapses with its lease (${lease_s} s): gone ${since} s after the kill" ||
    qg_fail "...gone only ${since} s after the kill, later than its ${lease_s} s lease"
else
  qg_fail "the grant did not lapse within its lease"
fi
qg_wait_exit "$dial_pid" 20
wait "$dial_pid"
qg_forget_pid "$dial_pid"
lost=$(json 'd["qos"].get("lost")' <"$dir/call-c.json")
[[ -n $lost && $lost != None ]] && qg_pass "the caller's library reported the grant lost: $lost" ||
  qg_fail "the caller was not told: $(cat "$dir/call-c.json" "$dir/call-c.json.err")"

# --- d. a restarted agent --------------------------------------------------
start_agent || qg_fail "qos-agent did not restart on the socket the killed one left"
dial 1 "$dir/call-d.json"
qg_wait_exit "$dial_pid" 15
wait "$dial_pid"
rc=$?
qg_forget_pid "$dial_pid"
[[ $rc == 0 && $(json 'd["qos"]["granted"]' <"$dir/call-d.json") == True ]] &&
  qg_pass "the restarted agent grants again" || qg_fail "after the restart: exit $rc $(cat "$dir/call-d.json")"

# --- e. the socket's permissions -------------------------------------------
chmod 700 "$dir/run"
qg_in "$ns_a" setpriv --reuid=nobody --regid=nogroup --clear-groups "$QOS_CALL" dial "$QG_B_V4:$sip_port" \
  --app voip --seconds 1 --agent "ipc://$sock" --json >"$dir/call-e.json" 2>"$dir/call-e.err"
rc=$?
chmod 755 "$dir/run"
[[ $rc == 1 && $(json 'd["qos"]["granted"]' <"$dir/call-e.json" 2>/dev/null) == False ]] &&
  qg_pass "a user the socket's directory keeps out gets no QoS (exit 1; the call went best effort)" ||
  qg_fail "nobody: exit $rc: $(cat "$dir/call-e.json" "$dir/call-e.err")"
(($(flow_count) == 0)) && qg_pass "...and the manager holds nothing for it" || qg_fail "$(flow_count) flow(s) held"

# --- f. clean stops ---------------------------------------------------------
qg_stop_daemon qos-agent "$agent_pid" TERM 10
[[ $QG_STOP_RC == 0 ]] && qg_pass "qos-agent: SIGTERM, exit 0" || qg_fail "qos-agent exited $QG_STOP_RC"
qg_stop_daemon qos-call "$callee_pid" INT 10
qg_stop_qosgate
[[ $QG_QOSGATE_RC == 0 ]] && grep -q 'mbufs in use after stop: 0 of' "$QG_QOSGATE_OUT" &&
  qg_pass "qosgate: exit 0, no mbuf leak" || qg_fail "qosgate exited $QG_QOSGATE_RC: $(cat "$QG_QOSGATE_OUT")"
qg_stop_qosmgr TERM
[[ $QG_QOSMGR_RC == 0 ]] && qg_pass "qosmgr: exit 0" || qg_fail "qosmgr exited $QG_QOSMGR_RC"
qg_summary
