#!/usr/bin/env bash
# qosgate in action, on one machine, in a few seconds:
#
#   sudo bash tools/demo.sh [BUILD_DIR]
#
# Installs what is missing and builds (tools/setup.sh, into ./build unless
# BUILD_DIR is given), then builds a small network in namespaces:
#
#   host A (ns qd-a)               bump in the wire (ns qd-gw)            host B (ns qd-b)
#   qd-a 198.18.1.10/15 ==veth== qd-gw-a [ qosgate ] qd-gw-b ==veth== qd-b 198.19.1.20/15
#
# starts qosgate with conf/demo.toml, sends real packets from A to B and shows
# what arrives: a flow's DSCP set by the bump, a packet claiming a class it
# was not granted re-marked, ping and ARP passing, a flow policed to its
# rate.  Everything it makes is removed when it ends, whatever happens.
# Exit status: 0 when every step showed what it should.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
config=$repo/conf/demo.toml
# shellcheck source=test/integration/lib.sh
source "$repo/test/integration/lib.sh"

# The names conf/demo.toml expects.
ns_a=qd-a ns_gw=qd-gw ns_b=qd-b
if_a=qd-a if_gw_a=qd-gw-a if_gw_b=qd-gw-b if_b=qd-b
metrics_port=9470
prefix=qosgate-demo

ok=1
say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
good() { printf '   ok: %s\n' "$*"; }
bad() { printf '   NOT AS EXPECTED: %s\n' "$*"; ok=0; }
stop_here() { printf '\ndemo failed: %s\n' "$*" >&2; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
  stop_here "run it as root (it installs packages, makes network namespaces and runs DPDK): sudo bash tools/demo.sh"
fi

step "Building qosgate (tools/setup.sh: installs missing Debian packages, then meson + ninja into $build)"
"$repo/tools/setup.sh" "$build" || stop_here "tools/setup.sh failed"
QOSGATE=$build/appliance/qosgate
[[ -x $QOSGATE ]] || stop_here "no $QOSGATE after the build"
for tool in ip ethtool tcpdump tshark iperf3 ping ss "$QG_PYTHON"; do
  command -v "$tool" >/dev/null 2>&1 || stop_here "missing '$tool' (tools/setup.sh should have installed it)"
done
say "   $("$QOSGATE" --version)"

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

step "Building the network: hosts A and B, and the gateway between them"
qg_build_bump "$ns_a" "$ns_gw" "$ns_b" "$if_a" "$if_gw_a" "$if_gw_b" "$if_b"
say "   A  (namespace $ns_a): $if_a  $QG_A_V4/$QG_V4_PLEN"
say "   B  (namespace $ns_b): $if_b  $QG_B_V4/$QG_V4_PLEN"
say "   GW (namespace $ns_gw): $if_gw_a and $if_gw_b, no IP address: the gateway's own"
say "      kernel does not route; only qosgate joins the two links, so A and B"
say "      are on one Ethernet segment with qosgate in the middle (a bump in the wire)."

step "The rule qosgate enforces ($config)"
say "   Admitted flow: UDP from $QG_A_V4 (any port) to $QG_B_V4 port 5004"
say "     -> DSCP 46 (EF, expedited forwarding), policed with srTCM at 1 Mbit/s"
say "        (committed burst 16 kB, excess burst 16 kB; red packets dropped)."
say "   Everything else is re-marked to DSCP 0 (best effort): a host cannot grant"
say "   itself a class at the trust boundary."

step "Starting qosgate in $ns_gw"
qg_require_qosgate
if ! qg_start_qosgate "$ns_gw" "$config" "$dir" "$prefix"; then
  stop_here "qosgate did not start (its log is above)"
fi
say "   $(grep -m1 'forwarding:' "$QG_QOSGATE_ERR")"

step "Ping from A to B through the bump"
if out=$(qg_in "$ns_a" ping -c 3 -i 0.2 -W 2 "$QG_B_V4" 2>&1); then
  good "$(grep 'packets transmitted' <<<"$out")"
else
  bad "ping failed:"
  sed 's/^/      /' <<<"$out"
fi
mac_b=$(qg_mac "$ns_b" "$if_b")
neigh=$(ip -n "$ns_a" neigh show "$QG_B_V4" dev "$if_a")
if [[ $neigh == *"lladdr $mac_b"* ]]; then
  good "ARP crossed the bump: A knows $QG_B_V4 is at $mac_b (B's own MAC)"
else
  bad "A's neighbour entry for $QG_B_V4 is '$neigh'; B's MAC is $mac_b"
fi

# send_and_show WHAT DPORT TOS SPORT EXPECT_TOS: one batch of 3 datagrams
# A -> B, captured on A's link (as sent) and on B's link (as received).
send_and_show() {
  local what=$1 dport=$2 tos=$3 sport=$4 expect=$5 cap_a=$dir/a-$4.pcap cap_b=$dir/b-$4.pcap
  local filter="udp and src port $sport" pid_a n_ok=0 n=0 src p dst dp t
  qg_capture_start "$ns_a" "$if_a" "$cap_a" "$filter" 3 || stop_here "tcpdump did not start in $ns_a"
  pid_a=$QG_CAPTURE_PID
  qg_capture_start "$ns_b" "$if_b" "$cap_b" "$filter" 3 || stop_here "tcpdump did not start in $ns_b"
  qg_udp_send "$ns_a" "$QG_A_V4" "$QG_B_V4" "$dport" "$tos" 3 "$sport"
  qg_capture_stop 5
  QG_CAPTURE_PID=$pid_a
  qg_capture_stop 5
  say "   $what"
  while read -r src p dst dp t; do
    say "$(printf '     A sent:      %s:%s -> %s:%s  DSCP %2d  ECN %d  (TOS 0x%02x)' "$src" "$p" "$dst" "$dp" $((t >> 2)) $((t & 3)) "$t")"
    break
  done < <(qg_pcap_tos "$cap_a")
  while read -r src p dst dp t; do
    n=$((n + 1))
    ((t == expect)) && n_ok=$((n_ok + 1))
    ((n == 1)) &&
      say "$(printf '     B received:  %s:%s -> %s:%s  DSCP %2d  ECN %d  (TOS 0x%02x)' "$src" "$p" "$dst" "$dp" $((t >> 2)) $((t & 3)) "$t")"
  done < <(qg_pcap_tos "$cap_b")
  if ((n == 3 && n_ok == 3)); then
    good "3 of 3 datagrams arrived with DSCP $((expect >> 2)), ECN bits $((expect & 3)) as sent"
  else
    bad "$n_ok of 3 datagrams arrived with TOS $(printf '0x%02x' "$expect") ($n arrived)"
  fi
}

step "Marking: the admitted flow, sent by A with DSCP 0"
send_and_show "A sends to B:5004 without any mark; qosgate writes the flow's DSCP:" 5004 0x00 41001 0xb8

step "Trust boundary: an unadmitted flow that claims EF (DSCP 46)"
send_and_show "A sends to B:6000 marked EF (and ECN ECT(1)); no rule grants it, so qosgate re-marks it to 0 and keeps ECN:" \
  6000 0xb9 41002 0x01

step "Policing: A sends the admitted flow at 5 Mbit/s for 5 seconds"
say "   iperf3 in A (UDP, 1000-byte datagrams, source port 40000) to an iperf3 server in B on port 5004..."
if qg_police_run "$ns_a" "$ns_b" "$QG_A_V4" "$QG_B_V4" 5004 40000 5 5 1000 "$dir"; then
  say "   A sent     $QG_SENT_MBIT Mbit/s ($QG_SENT_PKTS datagrams)"
  say "   B received $QG_RCVD_MBIT Mbit/s ($QG_RCVD_PKTS datagrams), counted at IP level as the meter does"
  say "   Expected: the 1 Mbit/s rate plus the 32 kB of burst spread over 5 s, about 1.05 Mbit/s."
  if awk -v r="$QG_RCVD_MBIT" 'BEGIN { exit !(r >= 0.8 && r <= 1.25) }'; then
    good "policed to $QG_RCVD_MBIT Mbit/s, $(awk -v r="$QG_RCVD_MBIT" 'BEGIN { printf "%.0f", 100 * r }')% of the 1 Mbit/s committed rate"
  else
    bad "B received $QG_RCVD_MBIT Mbit/s, expected about 1 Mbit/s"
  fi
else
  bad "the iperf3 run failed"
fi
if metrics=$(qg_metrics "$ns_gw" "$metrics_port" 2>/dev/null); then
  red=$(qg_metric_sum "$metrics" qosgate_dropped_packets_total 'reason="meter_red"')
  say "   qosgate's metrics (http://127.0.0.1:$metrics_port/metrics inside $ns_gw):"
  grep -E '^qosgate_(dropped_packets_total\{.*meter_red|classified_packets_total\{.*flow|remarked_packets_total|flows )' \
    <<<"$metrics" | sed 's/^/     /'
  if ((red > 0)); then
    good "the $red datagrams above the rate were dropped by the meter (red)"
  else
    bad "no meter_red drops counted"
  fi
else
  bad "could not read qosgate's metrics on 127.0.0.1:$metrics_port"
fi

step "Stopping qosgate (SIGINT): its final counters"
qg_stop_qosgate || bad "qosgate did not stop within 20 s"
sed 's/^/   /' "$QG_QOSGATE_OUT"
if [[ $QG_QOSGATE_RC == 0 ]] && grep -q 'mbufs in use after stop: 0 of' "$QG_QOSGATE_OUT" &&
  ! grep -q 'CONSERVATION VIOLATED' "$QG_QOSGATE_OUT"; then
  good "clean stop: every frame received was forwarded or dropped for a reason, no buffer leaked"
else
  bad "qosgate exited $QG_QOSGATE_RC; see its counters above"
  sed 's/^/   | /' "$QG_QOSGATE_ERR"
fi

step "Cleaning up (namespaces $ns_a $ns_gw $ns_b and everything in them)"
if ((ok)); then
  say "Demo complete: every step showed what it should."
  exit 0
fi
say "Demo finished, but some steps did not show what they should (NOT AS EXPECTED above)."
exit 1
