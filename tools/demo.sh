#!/usr/bin/env bash
# The whole system on one machine, in about a minute:
#
#   sudo bash tools/demo.sh [BUILD_DIR]
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

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
gw_config=$repo/conf/demo.toml
mgr_example=$repo/conf/qosmgr.toml
keys=$repo/conf/keys
# shellcheck source=test/integration/lib.sh
source "$repo/test/integration/lib.sh"

# The names conf/demo.toml expects.
ns_a=qd-a ns_gw=qd-gw ns_b=qd-b
if_a=qd-a if_gw_a=qd-gw-a if_gw_b=qd-gw-b if_b=qd-b
metrics_port=9470
prefix=qosgate-demo
endpoint=tcp://127.0.0.1:7700
# The voip flow: the example's voip application is UDP to ports 16384-32767,
# EF at 100 kbit/s with a 10 kB burst.
voip_sport=40000
voip_dport=20000

ok=1
say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
good() { printf '   ok: %s\n' "$*"; }
bad() { printf '   NOT AS EXPECTED: %s\n' "$*"; ok=0; }
stop_here() { printf '\ndemo failed: %s\n' "$*" >&2; exit 1; }
indent() { sed 's/^/     /'; }

if [[ $(id -u) -ne 0 ]]; then
  stop_here "run it as root (it installs packages, makes network namespaces and runs DPDK): sudo bash tools/demo.sh"
fi

step "Building (tools/setup.sh: installs missing Debian packages, then meson + ninja into $build)"
"$repo/tools/setup.sh" "$build" || stop_here "tools/setup.sh failed"
QOSGATE=$build/appliance/qosgate
QOSMGR=$build/manager/qosmgr
QOSCTL=$build/tools/qosctl/qosctl
for exe in "$QOSGATE" "$QOSMGR" "$QOSCTL"; do
  [[ -x $exe ]] || stop_here "no $exe after the build"
done
for tool in ip ethtool tcpdump tshark iperf3 ping ss "$QG_PYTHON"; do
  command -v "$tool" >/dev/null 2>&1 || stop_here "missing '$tool' (tools/setup.sh should have installed it)"
done
say "   $("$QOSGATE" --version), $("$QOSMGR" --version)"

step "CURVE keys (tools/example_keys.sh): the manager's, gw1's, the operator's (ops), host A's (host-a)"
bash "$repo/tools/example_keys.sh" "$build" | indent || stop_here "tools/example_keys.sh failed"

# An earlier demo that was killed outright (SIGKILL) leaves its namespaces.
for ns in "$ns_a" "$ns_gw" "$ns_b"; do
  if ip netns list | grep -Eq "^$ns( |$)"; then
    if [[ -n $(ip netns pids "$ns" 2>/dev/null) ]]; then
      stop_here "namespace $ns exists and has processes (another demo running?): stop them, then: ip netns del $ns"
    fi
    say "   removing namespace $ns left by an earlier demo"
    ip netns del "$ns"
  fi
done

qg_init
qg_mktemp
dir=$QG_TMP

step "Building the network: hosts A and B, and the gateway gw1 between them"
qg_build_bump "$ns_a" "$ns_gw" "$ns_b" "$if_a" "$if_gw_a" "$if_gw_b" "$if_b"
say "   A  (namespace $ns_a): $if_a  $QG_A_V4/$QG_V4_PLEN   in lan-a (198.18.1.0/24)"
say "   B  (namespace $ns_b): $if_b  $QG_B_V4/$QG_V4_PLEN   in lan-b (198.19.1.0/24), reached over the wan"
say "   gw1 (namespace $ns_gw): $if_gw_a faces lan-a, $if_gw_b the wan; no IP address: only"
say "      qosgate joins the two links, a bump in the wire.  qosmgr runs beside it."

step "Starting qosmgr in $ns_gw (the example world, $mgr_example)"
say "   lan-a: EF is DSCP 46.  wan: EF is DSCP 40 (another DiffServ domain, its own code"
say "   points).  lan-b: no DiffServ.  gw1 sits on the lan-a|wan link."
# The example as shipped, with its state in this demo's own directory so
# that the demo starts with no reservations.
sed -e "s|^state = \"[^\"]*\"|state = \"$dir/qosmgr-state.db\"|" \
  -e "s|= \"keys/|= \"$keys/|" "$mgr_example" >"$dir/qosmgr.toml"
qg_start_qosmgr "$ns_gw" "$dir/qosmgr.toml" "$dir/qosmgr.log" || stop_here "qosmgr did not start (its log is above)"
say "   $(grep -m1 'serving on' "$dir/qosmgr.log")"

# ctl KEY ARGS...: qosctl in qd-gw (where qosmgr listens) with KEY's secret key.
ctl() {
  local key=$1
  shift
  qg_in "$ns_gw" "$QOSCTL" --endpoint "$endpoint" --timeout 3000 \
    --key "$keys/$key.key" --manager-key "$keys/qosmgr.pub" "$@"
}
gw1_up() { [[ $(ctl ops appliances 2>/dev/null | awk '$1 == "gw1" { print $5 }') == up ]]; }

step "Starting qosgate in $ns_gw ($gw_config): it connects to qosmgr as gw1"
if ! qg_start_qosgate "$ns_gw" "$gw_config" "$dir" "$prefix"; then
  stop_here "qosgate did not start (its log is above)"
fi
say "   $(grep -m1 'forwarding:' "$QG_QOSGATE_ERR")"
if qg_wait_until 10 gw1_up; then
  good "gw1 is in sync with qosmgr (qosctl appliances):"
  ctl ops appliances | indent
else
  bad "gw1 did not sync with qosmgr within 10 s:"
  sed 's/^/   | /' "$QG_QOSGATE_ERR" | tail -5
fi

step "Ping from A to B through the bump"
if out=$(qg_in "$ns_a" ping -c 3 -i 0.2 -W 2 "$QG_B_V4" 2>&1); then
  good "$(grep 'packets transmitted' <<<"$out")"
else
  bad "ping failed:"
  indent <<<"$out"
fi

# send_and_show WHAT FROM SPORT TO DPORT TOS EXPECT_TOS: 3 datagrams from
# FROM to TO ("a" or "b"), captured as sent and as received.
send_and_show() {
  local what=$1 from=$2 sport=$3 to=$4 dport=$5 tos=$6 expect=$7
  local ns_src=$ns_a if_src=$if_a src=$QG_A_V4 ns_dst=$ns_b if_dst=$if_b dst=$QG_B_V4
  if [[ $from == b ]]; then
    ns_src=$ns_b if_src=$if_b src=$QG_B_V4 ns_dst=$ns_a if_dst=$if_a dst=$QG_A_V4
  fi
  local cap_src=$dir/src-$sport-$RANDOM.pcap cap_dst=$dir/dst-$sport-$RANDOM.pcap
  local filter="udp and src port $sport and dst port $dport" pid_src n_ok=0 n=0 s p d dp t
  qg_capture_start "$ns_src" "$if_src" "$cap_src" "$filter" 3 || stop_here "tcpdump did not start in $ns_src"
  pid_src=$QG_CAPTURE_PID
  qg_capture_start "$ns_dst" "$if_dst" "$cap_dst" "$filter" 3 || stop_here "tcpdump did not start in $ns_dst"
  qg_udp_send "$ns_src" "$src" "$dst" "$dport" "$tos" 3 "$sport"
  qg_capture_stop 5
  QG_CAPTURE_PID=$pid_src
  qg_capture_stop 5
  say "   $what"
  while read -r s p d dp t; do
    say "$(printf '     %s sent:      %s:%s -> %s:%s  DSCP %2d  ECN %d' "${from^^}" "$s" "$p" "$d" "$dp" $((t >> 2)) $((t & 3)))"
    break
  done < <(qg_pcap_tos "$cap_src")
  while read -r s p d dp t; do
    n=$((n + 1))
    ((t == expect)) && n_ok=$((n_ok + 1))
    ((n == 1)) &&
      say "$(printf '     %s received:  %s:%s -> %s:%s  DSCP %2d  ECN %d' "${to^^}" "$s" "$p" "$d" "$dp" $((t >> 2)) $((t & 3)))"
  done < <(qg_pcap_tos "$cap_dst")
  if ((n == 3 && n_ok == 3)); then
    good "3 of 3 datagrams arrived with DSCP $((expect >> 2)), ECN bits $((expect & 3))"
  else
    bad "$n_ok of 3 datagrams arrived with DSCP $((expect >> 2)), ECN $((expect & 3)) ($n arrived)"
  fi
}

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

step "Stopping qosgate (SIGINT): its final counters"
qg_stop_qosgate || bad "qosgate did not stop within 20 s"
indent <"$QG_QOSGATE_OUT"
if [[ $QG_QOSGATE_RC == 0 ]] && grep -q 'mbufs in use after stop: 0 of' "$QG_QOSGATE_OUT" &&
  ! grep -q 'CONSERVATION VIOLATED' "$QG_QOSGATE_OUT"; then
  good "clean stop: every frame received was forwarded or dropped for a reason, no buffer leaked"
else
  bad "qosgate exited $QG_QOSGATE_RC; see its counters above"
  sed 's/^/   | /' "$QG_QOSGATE_ERR"
fi
qg_stop_qosmgr TERM || bad "qosmgr did not stop within 10 s"
if [[ $QG_QOSMGR_RC == 0 ]]; then
  good "qosmgr stopped: $(tail -1 "$dir/qosmgr.log" | sed 's/^qosmgr: info: //')"
else
  bad "qosmgr exited $QG_QOSMGR_RC"
fi

step "Cleaning up (namespaces $ns_a $ns_gw $ns_b and everything in them)"
if ((ok)); then
  say "Demo complete: every step showed what it should."
  exit 0
fi
say "Demo finished, but some steps did not show what they should (NOT AS EXPECTED above)."
exit 1
