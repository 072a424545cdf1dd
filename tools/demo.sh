#!/usr/bin/env bash
# The whole system on one machine, in under a minute:
#
#   sudo bash tools/demo.sh [BUILD_DIR]
#   sudo bash tools/demo.sh --dataplane [BUILD_DIR]   # the gateway and manager alone
#
# Installs what is missing and builds (tools/setup.sh, into ./build unless
# BUILD_DIR is given), makes the example's CURVE keys (tools/example_keys.sh,
# in conf/keys/), then builds a small network in namespaces:
#
#   host A (ns qd-a)                  gateway gw1 (ns qd-gw)                 host B (ns qd-b)
#   qd-a 198.18.1.10/15 ====veth==== qd-gw-a [ qosgate ] qd-gw-b ==veth== qd-b 198.19.1.20/15
#   qos-agent, qos-call dial                   qosmgr                       qos-call listen
#   qd-a-mgmt 198.18.255.2/30 ==veth== qd-gw-mgmt 198.18.255.1/30
#        (host A's management link: its agent reaches qosmgr over CURVE)
#
# qosmgr (conf/qosmgr.toml: two LANs and a WAN) and qosgate (conf/demo.toml)
# run in qd-gw, qos-agent (conf/qos-agent.toml) on host A.  Host A calls
# host B with qos-call, whose middleware (libqosclient, through the agent)
# asks for a two-way grant for the call's media; tshark at B and at A shows
# the media arriving with the DSCP the manager chose for the network each
# direction enters; qosctl shows the capacity taken during the call and
# free after it; the hang-up takes the mark off a sender that goes on.
# Then a busy hour: a video call that does not fit its default profile gets
# an alternate, and one that fits nowhere goes best effort.  Last, a media
# server on A that never asks for QoS: the agent holds a standing policy for
# it and enforces the grant in A's own kernel (marked AF41, shaped to its
# 1 Mbit/s), and leaves nothing behind when it stops.
# Everything it makes is removed when it ends, whatever happens.
# Exit status: 0 when every step showed what it should.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ${1:-} == --dataplane ]]; then
  shift
  exec bash "$repo/tools/demo/dataplane.sh" "$@"
fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
  exit 0
fi
build=${1:-$repo/build}
# shellcheck source=tools/demo/common.sh
source "$repo/tools/demo/common.sh"

# Host A's management link to qd-gw, where qosmgr listens.
if_a_mgmt=qd-a-mgmt if_gw_mgmt=qd-gw-mgmt
mgmt_a=198.18.255.2 mgmt_gw=198.18.255.1
sip_port=5060

demo_begin "bash tools/demo.sh"
demo_network
qg_link "$ns_a" "$if_a_mgmt" "$mgmt_a/30" "$ns_gw" "$if_gw_mgmt" "$mgmt_gw/30"
say "   A's management link: $if_a_mgmt $mgmt_a/30 <-> $if_gw_mgmt $mgmt_gw/30 in $ns_gw"
say "      (qosmgr's address for host A's agent; the media takes the bump)"

# qosmgr listens on every address of qd-gw: loopback for gw1 and qosctl,
# the management link for host A.
demo_start_qosmgr "tcp://*:7700"
demo_start_qosgate

step "Starting qos-agent on host A (conf/qos-agent.toml): host A's key, qosmgr over the management link"
agent_sock=$dir/run/agent.sock
sed -e "s|^listen = \"[^\"]*\"|listen = \"ipc://$agent_sock\"|" \
  -e "s|^manager = \"[^\"]*\"|manager = \"tcp://$mgmt_gw:7700\"|" \
  -e "s|= \"keys/|= \"$keys/|" "$repo/conf/qos-agent.toml" >"$dir/qos-agent.toml"
qg_bg "$ns_a" "$dir/qos-agent.out" "$dir/qos-agent.log" "$QOS_AGENT" --config "$dir/qos-agent.toml"
agent_pid=$QG_BG_PID
qg_wait_for_line "$dir/qos-agent.log" 'serving local applications' "$agent_pid" 15 ||
  stop_here "qos-agent did not start: $(cat "$dir/qos-agent.log")"
say "   $(grep -m1 'serving local applications' "$dir/qos-agent.log")"
say "   Applications on A reach it at ipc://$agent_sock; only it holds host A's key."

step "Host B waits for calls (qos-call listen --port $sip_port)"
qg_bg "$ns_b" "$dir/callee.out" "$dir/callee.err" "$QOS_CALL" listen --port "$sip_port" --calls 3 --seconds 600
callee_pid=$QG_BG_PID
qg_wait_for_line "$dir/callee.out" 'listening on' "$callee_pid" 10 || stop_here "qos-call listen did not start: $(cat "$dir/callee.err")"
say "   $(head -1 "$dir/callee.out")"

# show_networks CLASS: qosctl networks, that class's lines.
show_networks() {
  ctl ops networks | awk -v c=" $1 " 'NR == 1 || index($0, c)' | indent
}
# reserved NETWORK|SLA CLASS: the bit/s reserved there now.
reserved() {
  ctl ops --json networks | "$QG_PYTHON" -c 'import json, sys
for c in json.load(sys.stdin)["classes"]:
    if c["owner"] == sys.argv[1] and c["class"] == sys.argv[2]:
        print(c["reserved_bps"])' "$1" "$2"
}
# dial APP SECONDS RATE OUT: a call from A to B through the agent.
dial() {
  qg_in "$ns_a" "$QOS_CALL" dial "$QG_B_V4:$sip_port" --app "$1" --seconds "$2" --rate "$3" \
    --agent "ipc://$agent_sock" >"$4" 2>&1
}
# capture_call NAME: tshark at A and at B on the media (UDP but the signaling).
capture_call() {
  qg_tshark_start "$ns_a" "$if_a" "$dir/$1-a.pcap" "udp and not port $sip_port" || stop_here "tshark did not start in $ns_a"
  cap_a=$QG_CAPTURE_PID
  qg_tshark_start "$ns_b" "$if_b" "$dir/$1-b.pcap" "udp and not port $sip_port" || stop_here "tshark did not start in $ns_b"
  sleep 1 # dumpcap says "Capturing on" a moment before its filter is in place
}
capture_stop() {
  sleep 0.5 # what is still in the kernel's capture buffer
  qg_capture_stop
  QG_CAPTURE_PID=$cap_a
  qg_capture_stop
}
# seen PCAP SRC DST DSCP WHERE: every SRC->DST packet tshark read carried DSCP.
seen() {
  local counts all right
  counts=$(qg_pcap_dscp_counts "$1")
  all=$(awk -v s="$2" -v d="$3" '$2 == s && $3 == d { n += $1 } END { print n + 0 }' <<<"$counts")
  right=$(awk -v s="$2" -v d="$3" -v x="$4" '$2 == s && $3 == d && $4 == x { n += $1 } END { print n + 0 }' <<<"$counts")
  if ((all > 0 && all == right)); then
    good "$5: all $all packets $2 -> $3 carry DSCP $4"
  else
    bad "$5: $right of $all packets $2 -> $3 carry DSCP $4"
  fi
}
# tshark_says PCAP WHERE: what tshark read, per direction and DSCP.
tshark_says() {
  say "   tshark at $2:"
  qg_pcap_dscp_counts "$1" | awk '{ printf "     %5d packets  %s -> %s  DSCP %d\n", $1, $2, $3, $4 }'
}

step "Before the call: qosctl networks (EF)"
show_networks EF

step "Host A calls host B: qos-call dial $QG_B_V4:$sip_port --app voip --seconds 6 --rate 64kbit"
say "   qos-call's middleware (libqosclient) asks the agent, the agent asks qosmgr as"
say "   host-a: a two-way grant for the media.  A marks its media with the DSCP it is"
say "   given (lan-a's EF, 46) and tells B the reverse DSCP (the wan's EF, 40: B->A"
say "   enters the wan first) in the call set-up.  gw1 re-marks each direction for the"
say "   network it enters.  tshark listens at A and at B."
capture_call call1
dial voip 6 64kbit "$dir/call1.txt" &
dial_pid=$!
sleep 3
step "During the call: qosctl networks (EF) and qosctl flows"
show_networks EF
ctl ops flows | indent
[[ $(reserved lan-a EF) == 200000 && $(reserved wan EF) == 200000 && $(reserved carrier-x EF) == 200000 ]] &&
  good "EF for the call on lan-a, the wan and carrier-x: 100 kbit/s each way" ||
  bad "EF reserved: lan-a $(reserved lan-a EF), wan $(reserved wan EF), carrier-x $(reserved carrier-x EF); expected 200000 on each"
wait "$dial_pid"
rc=$?
capture_stop
step "The call, as qos-call on A printed it (exit $rc)"
indent <"$dir/call1.txt"
((rc == 0)) && grep -q 'EF at 100kbit (default profile); DSCP 46 here, 40 at the callee' "$dir/call1.txt" &&
  good "granted: EF, DSCP 46 at A, 40 at B" || bad "expected a grant of EF, DSCP 46 at A and 40 at B (exit $rc)"
say "   B: $(tail -1 "$dir/callee.out")"
read -r media_a media_b < <(sed -n 's/.*: media \([^ ]*\) <-> \([^ ]*\) .*/\1 \2/p' "$dir/call1.txt")
tshark_says "$dir/call1-a.pcap" "A ($ns_a, $if_a)"
tshark_says "$dir/call1-b.pcap" "B ($ns_b, $if_b)"
seen "$dir/call1-a.pcap" "$QG_A_V4" "$QG_B_V4" 46 "A sent"
seen "$dir/call1-b.pcap" "$QG_A_V4" "$QG_B_V4" 40 "B received"
seen "$dir/call1-b.pcap" "$QG_B_V4" "$QG_A_V4" 40 "B sent"
seen "$dir/call1-a.pcap" "$QG_B_V4" "$QG_A_V4" 46 "A received"

step "After the hang-up: qosctl networks (EF)"
show_networks EF
[[ $(reserved lan-a EF) == 0 && $(reserved wan EF) == 0 ]] && good "the call's EF is free again" ||
  bad "EF still reserved: lan-a $(reserved lan-a EF), wan $(reserved wan EF)"
say "   The agent logged the grant and its release:"
grep -E 'granted|released' "$dir/qos-agent.log" | indent

step "A sender that goes on after the hang-up, still marking EF"
if [[ -n ${media_a:-} && -n ${media_b:-} ]]; then
  send_and_show "A's phone sends on the call's media ports ($media_a -> $media_b) marked 46; no grant now:" \
    a "${media_a##*:}" b "${media_b##*:}" 0xb8 0x00
else
  bad "no media ports in qos-call's output"
fi

# book_video N...: the operator books a video session for lan-a host .1N.
book_video() {
  local i
  for i in "$@"; do
    ctl ops request --app video --src "198.18.1.1$i:5004" --dst "198.19.1.2$i:5004" --proto udp |
      sed -n 1p | indent
  done
  show_networks AF41
}
# video_call NAME: a 3 s video call from A, captured at A and B; its exit in rc.
video_call() {
  capture_call "$1"
  dial video 3 500kbit "$dir/$1.txt"
  rc=$?
  capture_stop
  indent <"$dir/$1.txt"
}

step "Busy hour: two video sessions of other lan-a hosts take 8 of carrier-x's 10 Mbit/s of AF41"
book_video 1 2

step "A video call from A: its default profile (AF41 at 4 Mbit/s each way) does not fit"
video_call call2
((rc == 0)) && grep -q 'AF41 at 500kbit (alternate 2 profile); DSCP 34 here, 26 at the callee' "$dir/call2.txt" &&
  good "granted the first alternate that fits: AF41 at 500 kbit/s each way (1.5 Mbit/s each way does not)" ||
  bad "expected the second alternate, AF41 at 500kbit (exit $rc)"
tshark_says "$dir/call2-b.pcap" "B ($ns_b, $if_b)"
seen "$dir/call2-b.pcap" "$QG_A_V4" "$QG_B_V4" 26 "B received (the wan's AF41)"

step "Busier: two more sessions take the rest of carrier-x's AF41"
book_video 3 4

step "A video call from A now fits nowhere"
video_call call3
((rc == 3)) && grep -q 'the call goes best effort, unmarked' "$dir/call3.txt" &&
  good "denied (exit 3): the call went on best effort" || bad "qos-call exited $rc, expected 3"
tshark_says "$dir/call3-b.pcap" "B ($ns_b, $if_b)"
seen "$dir/call3-b.pcap" "$QG_A_V4" "$QG_B_V4" 0 "B received"
seen "$dir/call3-b.pcap" "$QG_B_V4" "$QG_A_V4" 0 "B sent"

step "The busy hour ends: the operator releases the four sessions"
for id in $(ctl ops --json flows | "$QG_PYTHON" -c 'import json, sys
print(" ".join(str(f["flow_id"]) for f in json.load(sys.stdin)["flows"]))'); do
  ctl ops release "$id" | indent
done
show_networks AF41
[[ $(reserved wan AF41) == 0 ]] && good "AF41 free again" || bad "wan AF41 still reserved: $(reserved wan AF41)"

step "A media server on A that never asks for QoS: a standing policy, enforced in A's kernel"
say "   qos-agent restarts with [enforce] mode = \"nftables\" (shaping on $if_a) and a"
say "   [[policy]] for the media server's RTP stream, $QG_A_V4 -> $QG_B_V4 udp/5004 (the"
say "   \"media\" application of conf/qosmgr.toml: AF41, 1 Mbit/s).  The server itself"
say "   (iperf3 here) marks nothing and sends 5 Mbit/s."
qg_stop_daemon qos-agent "$agent_pid" TERM 10 || bad "qos-agent did not stop"
qg_media_enforcement shape "$if_a" >>"$dir/qos-agent.toml"
qg_bg "$ns_a" "$dir/qos-agent.out" "$dir/qos-agent.log" "$QOS_AGENT" --config "$dir/qos-agent.toml"
agent_pid=$QG_BG_PID
qg_wait_for_line "$dir/qos-agent.log" 'policy media: granted' "$agent_pid" 15 ||
  stop_here "the standing policy was not granted: $(tail -3 "$dir/qos-agent.log")"
grep -E 'enforce: |policy media: granted' "$dir/qos-agent.log" | sed 's/^qos-agent: info: //' | indent
say "   qos-agent --status:"
qg_in "$ns_a" "$QOS_AGENT" --config "$dir/qos-agent.toml" --status 2>&1 | indent
qg_tshark_start "$ns_a" "$if_a" "$dir/media-a.pcap" "udp and dst port 5004" || stop_here "tshark did not start in $ns_a"
cap_a=$QG_CAPTURE_PID
qg_tshark_start "$ns_b" "$if_b" "$dir/media-b.pcap" "udp and dst port 5004" || stop_here "tshark did not start in $ns_b"
sleep 1
t_media=$(date +%s.%N)
qg_police_run "$ns_a" "$ns_b" "$QG_A_V4" "$QG_B_V4" 5004 40000 5 4 1200 "$dir" || bad "iperf3 did not run"
capture_stop
read -r mbit marked all < <(qg_pcap_rate "$dir/media-a.pcap" "$QG_A_V4" 5004 34 \
  "$(awk -v t="$t_media" 'BEGIN { printf "%.3f", t + 1 }')")
tshark_says "$dir/media-a.pcap" "A ($ns_a, $if_a)"
((all > 0 && marked == all)) && awk -v m="$mbit" 'BEGIN { exit !(m > 0.85 && m < 1.15) }' &&
  good "left A marked AF41 (34) at $mbit Mbit/s, shaped by its HTB class: $QG_SENT_PKTS sent, $QG_RCVD_PKTS arrived" ||
  bad "at A: $marked of $all packets marked 34, $mbit Mbit/s"
tshark_says "$dir/media-b.pcap" "B ($ns_b, $if_b)"
seen "$dir/media-b.pcap" "$QG_A_V4" "$QG_B_V4" 26 "B received (the wan's AF41, gw1's marking)"
show_networks AF41

step "Stopping qos-agent (SIGTERM) and host B's qos-call"
qg_stop_daemon qos-agent "$agent_pid" TERM 10 && ((QG_STOP_RC == 0)) &&
  good "qos-agent stopped: $(tail -1 "$dir/qos-agent.log" | sed 's/^qos-agent: info: //')" ||
  bad "qos-agent exited $QG_STOP_RC"
! qg_in "$ns_a" nft list table inet qos_agent >/dev/null 2>&1 &&
  [[ $(qg_in "$ns_a" tc qdisc show dev "$if_a" | awk '/ root / { print $2; exit }') == noqueue ]] &&
  good "nothing of the agent's left in A's kernel: no nftables table, $if_a's qdisc the default again" ||
  bad "the agent left its table or its qdisc on A"
qg_stop_daemon qos-call "$callee_pid" INT 10
say "   What B's qos-call printed:"
indent <"$dir/callee.out"

demo_stop_daemons
demo_end
