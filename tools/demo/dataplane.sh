#!/usr/bin/env bash
# The gateway and the manager on one machine, in about a minute, with
# qosctl standing in for the host's middleware (tools/demo.sh shows the
# whole system, host middleware included):
#
#   sudo bash tools/demo.sh --dataplane [BUILD_DIR]
#
# Installs what is missing and builds (tools/setup.sh, into ./build unless
# BUILD_DIR is given), makes the example's CURVE keys (tools/example_keys.sh,
# in conf/keys/), then builds a small network in namespaces:
#
#   host A (ns qd-a)               gateway gw1 (ns qd-gw)                  host B (ns qd-b)
#   qd-a 198.18.1.10/15 ==veth== qd-gw-a [ qosgate ] qd-gw-b ==veth== qd-b 198.19.1.20/15
#        lan-a                             qosmgr                          (wan side)
#
# and runs the services manager (qosmgr, conf/qosmgr.toml: two LANs and a
# WAN) and the gateway (qosgate, conf/demo.toml) in qd-gw.  It shows what
# arrives at B and A: a flow claiming EF without a grant re-marked; a host's
# grant on the wire at once, marked for the network each direction enters;
# the flow policed to its grant; what the gateway reports back; a release
# undoing it.  Everything it makes is removed when it ends, whatever happens.
# Exit status: 0 when every step showed what it should.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/build}
# shellcheck source=tools/demo/common.sh
source "$repo/tools/demo/common.sh"
# The voip flow: the example's voip application is UDP to ports 16384-32767,
# EF at 100 kbit/s with a 10 kB burst.
voip_sport=40000
voip_dport=20000

demo_begin "bash tools/demo.sh --dataplane"
demo_network
demo_start_qosmgr "$endpoint"
demo_start_qosgate

step "Ping from A to B through the bump"
if out=$(qg_in "$ns_a" ping -c 3 -i 0.2 -W 2 "$QG_B_V4" 2>&1); then
  good "$(grep 'packets transmitted' <<<"$out")"
else
  bad "ping failed:"
  indent <<<"$out"
fi

step "Trust boundary: A's voip flow claims EF before any grant"
send_and_show "A sends to B:$voip_dport marked EF (and ECN ECT(1)); nothing grants it, so gw1 re-marks it to 0 and keeps ECN:" \
  a "$voip_sport" b "$voip_dport" 0xb9 0x01

step "Host A asks qosmgr for QoS for its voip call (with host A's key)"
say "   qosctl request --app voip --src $QG_A_V4:$voip_sport --dst $QG_B_V4:$voip_dport --proto udp --bidir"
if ctl host-a request --app voip --src "$QG_A_V4:$voip_sport" --dst "$QG_B_V4:$voip_dport" \
  --proto udp --bidir >"$dir/grant.txt" 2>&1; then
  indent <"$dir/grant.txt"
  good "granted; the reply came once gw1 had the rules (enforced by gw1)"
else
  indent <"$dir/grant.txt"
  bad "the request was not granted"
fi
say "   Host A is told DSCP 46, lan-a's EF.  gw1 marks each direction for the network"
say "   it enters: A->B enters the wan (EF = 40), B->A enters lan-a (EF = 46)."

step "Marking: the granted flow, sent without any mark"
send_and_show "A sends to B:$voip_dport unmarked; gw1 writes the wan's EF:" a "$voip_sport" b "$voip_dport" 0x00 0xa0
send_and_show "B answers from port $voip_dport unmarked; gw1 writes lan-a's EF:" b "$voip_dport" a "$voip_sport" 0x00 0xb8

step "Policing: A sends the voip flow at 1 Mbit/s for 5 seconds; its grant is 100 kbit/s"
say "   iperf3 in A (UDP, 500-byte datagrams, source port $voip_sport) to an iperf3 server in B on port $voip_dport..."
if qg_police_run "$ns_a" "$ns_b" "$QG_A_V4" "$QG_B_V4" "$voip_dport" "$voip_sport" 1 5 500 "$dir"; then
  say "   A sent     $QG_SENT_MBIT Mbit/s ($QG_SENT_PKTS datagrams)"
  say "   B received $QG_RCVD_MBIT Mbit/s ($QG_RCVD_PKTS datagrams), counted at IP level as the meter does"
  say "   Expected: 100 kbit/s plus the 20 kB of the two buckets spread over 5 s, about 0.13 Mbit/s."
  if awk -v r="$QG_RCVD_MBIT" 'BEGIN { exit !(r >= 0.09 && r <= 0.17) }'; then
    good "policed to $QG_RCVD_MBIT Mbit/s"
  else
    bad "B received $QG_RCVD_MBIT Mbit/s, expected about 0.13 Mbit/s"
  fi
else
  bad "the iperf3 run failed"
fi

step "What gw1 reported back (qosctl flows, as the operator ops; counters come once a second)"
sleep 1.5
ctl ops flows | indent
if [[ $(ctl ops --json flows 2>/dev/null | "$QG_PYTHON" -c 'import json, sys
print(sum(f["delivery"]["policed_pkts"] for f in json.load(sys.stdin)["flows"]))') -gt 0 ]]; then
  good "gw1 passed what fits the grant and policed the rest"
else
  bad "qosctl flows shows no policed packets"
fi
if metrics=$(qg_metrics "$ns_gw" "$metrics_port" 2>/dev/null); then
  say "   qosgate's own metrics (http://127.0.0.1:$metrics_port/metrics inside $ns_gw):"
  grep -E '^qosgate_(dropped_packets_total\{.*meter_red|rules\{|manager_connected)' <<<"$metrics" | indent
else
  bad "could not read qosgate's metrics on 127.0.0.1:$metrics_port"
fi

step "Keys: a host key may not do an operator's work"
say "   qosctl networks, with host A's key:"
ctl host-a networks 2>&1 | indent
rc=${PIPESTATUS[0]}
if ((rc == 4)); then good "refused (exit 4): host keys request, refresh, release and list their own flows only"; else
  bad "exit $rc, expected 4"; fi

step "Release: host A hangs up"
flow_id=$(sed -n 's/^granted flow \([0-9]*\):.*/\1/p' "$dir/grant.txt")
say "   qosctl release $flow_id (with host A's key: a host may release its own flows)"
if [[ -n $flow_id ]] && ctl host-a release "$flow_id" | indent; then
  send_and_show "A's flow claims EF again; the grant is gone, so gw1 re-marks it:" a "$voip_sport" b "$voip_dport" 0xb8 0x00
else
  bad "could not release flow '${flow_id:-?}'"
fi

demo_stop_daemons
demo_end
