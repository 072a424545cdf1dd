#!/usr/bin/env bash
# End to end: qosgate as a bump in the wire between two hosts in network
# namespaces, real packets, DSCP read back on the wire with tcpdump/tshark.
#
#   A (198.18.1.10/15, 2001:db8:1::10/64) ==veth== GW: qosgate ==veth== B (198.19.1.20/15, 2001:db8:1::20/64)
#
# Checks:
#   c. ping A->B (IPv4 and IPv6) through the bump; A learns B's MAC (ARP passes)
#   a. a configured UDP flow sent with DSCP 0 arrives with DSCP 46; ECN kept
#   b. an unconfigured UDP flow claiming EF (DSCP 46) arrives re-marked to 0;
#      ECN kept (TOS 0xb9 -> 0x01)
#   v6. a configured IPv6 UDP flow sent with traffic class 0 arrives with DSCP 34;
#       an unconfigured one claiming EF is re-marked to 0, ECN kept
#   t. the trust boundary holds for malformed frames a downstream device
#      still reads as IP: a UDP header cut to 7 bytes, nine IPv6 extension
#      headers, three VLAN tags before the IP header, all claiming EF, arrive
#      at B re-marked to 0 (the IPv4 ones with a checksum that verifies)
#   d. 5 Mbit/s of the configured flow is policed to ~1 Mbit/s (srTCM, CIR
#      1 mbit/s) and qosgate counts meter_red drops
#   e. SIGINT: exit 0, no mbuf leak, no conservation violation
#
#   QOSGATE=/path/to/qosgate bash test/integration/e2e_dscp_test.sh
# Needs root; without it (or without ip netns / tools) it skips (exit 77),
# except under CI=true where it fails.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/integration/lib.sh
source "$here/lib.sh"

started=$SECONDS
qg_require_qosgate
qg_require_root
qg_require_tools ip tcpdump tshark iperf3 ping ss ethtool "$QG_PYTHON"
qg_require_netns
qg_init

id=$QG_ID
ns_a=qg-a-$id
ns_gw=qg-gw-$id
ns_b=qg-b-$id
if_a=qg${id}a        # A's end of A<->GW
if_gw_a=qg${id}ga    # GW's end of A<->GW  (qosgate "inside")
if_gw_b=qg${id}gb    # GW's end of GW<->B  (qosgate "outside")
if_b=qg${id}b        # B's end of GW<->B
prefix=qg-e2e-$id

# Policing scenario: 5 Mbit/s offered for 5 s against CIR 1 mbit/s.
cir_mbit=1
offer_mbit=5
offer_seconds=5
payload_bytes=1000

qg_mktemp
dir=$QG_TMP

qg_build_bump "$ns_a" "$ns_gw" "$ns_b" "$if_a" "$if_gw_a" "$if_gw_b" "$if_b"
metrics_port=$(qg_free_port "$ns_gw")

cat >"$dir/qosgate.toml" <<EOF
[eal]
args = ["--no-huge", "-m", "512", "--no-pci", "-l", "0-1", "--file-prefix=$prefix",
        "--vdev=net_af_packet0,iface=$if_gw_a", "--vdev=net_af_packet1,iface=$if_gw_b"]

[[pair]]
inside = "net_af_packet0"
outside = "net_af_packet1"

[policy]
unmatched = "remark"
default_dscp = 0
malformed = "forward"

[[flow]]
src = "$QG_A_V4"
dst = "$QG_B_V4"
proto = "udp"
sport = 0
dport = 5004
dscp = 46
meter = { mode = "srtcm", cir = "${cir_mbit}mbit", cbs = "16kB", ebs = "16kB", yellow = "pass", red = "drop" }

[[flow]]
src = "$QG_A_V6"
dst = "$QG_B_V6"
proto = "udp"
dport = 5006
dscp = 34

[dataplane]
max_flows = 1024
idle_sleep_us = 50

[metrics]
listen = "127.0.0.1:$metrics_port"
EOF

if ! qg_start_qosgate "$ns_gw" "$dir/qosgate.toml" "$dir" "$prefix"; then
  qg_die "qosgate did not start"
fi
qg_log "qosgate forwarding in $ns_gw ($if_gw_a <-> $if_gw_b), metrics on 127.0.0.1:$metrics_port"

# --- c. ICMP and ARP through the bump --------------------------------------
# ping_ok ARGS...: ping from A; its output is shown only when it fails.
ping_ok() {
  local out
  out=$(qg_in "$ns_a" ping -q -c 3 -i 0.2 -W 2 "$@" 2>&1) && return 0
  sed 's/^/  | /' <<<"$out"
  return 1
}
qg_check "c. ping A->B over IPv4 through the bump" ping_ok "$QG_B_V4"
qg_check "c. ping A->B over IPv6 through the bump (neighbour discovery passes)" ping_ok -6 "$QG_B_V6"
mac_b=$(qg_mac "$ns_b" "$if_b")
neigh=$(ip -n "$ns_a" neigh show "$QG_B_V4" dev "$if_a")
if [[ -n $mac_b && $neigh == *"lladdr $mac_b"* ]]; then
  qg_pass "c. ARP resolved through the bump: A has $QG_B_V4 at $mac_b"
else
  qg_fail "c. ARP: A's neighbour entry for $QG_B_V4 is '$neigh', B's MAC is $mac_b"
fi

# --- a, b, v6: DSCP on the wire in B ----------------------------------------
pcap=$dir/marks.pcap
n_marks=24   # the sum of the counts sent below
if ! qg_capture_start "$ns_b" "$if_b" "$pcap" \
  "udp and (dst port 5004 or dst port 5006 or dst port 6000)" "$n_marks"; then
  qg_die "tcpdump did not start in $ns_b"
fi
# Each batch has its own source port, so the capture tells them apart.
#                  ns     src        dst        dport tos  count sport
qg_udp_send "$ns_a" "$QG_A_V4" "$QG_B_V4" 5004 0x00 5 41001   # flow, DSCP 0
qg_udp_send "$ns_a" "$QG_A_V4" "$QG_B_V4" 5004 0x02 3 41002   # flow, DSCP 0 + ECT(0)
qg_udp_send "$ns_a" "$QG_A_V4" "$QG_B_V4" 6000 0xb8 5 41003   # unconfigured, claims EF
qg_udp_send "$ns_a" "$QG_A_V4" "$QG_B_V4" 6000 0xb9 3 41004   # unconfigured, EF + ECT(1)
qg_udp_send "$ns_a" "$QG_A_V6" "$QG_B_V6" 5006 0x00 5 41005   # IPv6 flow, class 0
qg_udp_send "$ns_a" "$QG_A_V6" "$QG_B_V6" 6000 0xb9 3 41006   # IPv6 unconfigured, EF + ECT(1)
qg_capture_stop 5   # ends at once when all arrived, else waits up to 5 s

qg_pcap_tos "$pcap" >"$dir/marks.txt"

# expect_marks WHAT SPORT COUNT TOS: all COUNT packets from SPORT carried TOS.
expect_marks() {
  local what=$1 sport=$2 count=$3 tos=$4 seen=0 bad=0 got="" p t
  while read -r _ p _ _ t; do
    [[ $p == "$sport" ]] || continue
    seen=$((seen + 1))
    got+=$(printf '0x%02x ' "$t")
    ((t == tos)) || bad=$((bad + 1))
  done <"$dir/marks.txt"
  if ((seen == count && bad == 0)); then
    qg_pass "$what: $count of $count arrived with TOS $tos"
  else
    qg_fail "$what: expected $count packets with TOS $tos, B saw $seen: ${got:-none}"
  fi
}
expect_marks "a. configured flow sent with DSCP 0 arrives as DSCP 46 (EF)" 41001 5 0xb8
expect_marks "a. configured flow keeps ECN: TOS 0x02 arrives as 0xba" 41002 3 0xba
expect_marks "b. unconfigured flow claiming DSCP 46 is re-marked to 0" 41003 5 0x00
expect_marks "b. re-marking keeps ECN: TOS 0xb9 arrives as 0x01" 41004 3 0x01
expect_marks "v6. configured IPv6 flow sent with class 0 arrives as DSCP 34 (AF41)" 41005 5 0x88
expect_marks "v6. unconfigured IPv6 flow claiming EF is re-marked to 0, ECN kept" 41006 3 0x01

# --- t. the trust boundary and malformed frames ------------------------------
# Frames written by scapy on A's interface, 3 of each, all claiming EF.
tpcap=$dir/trust.pcap
qg_capture_start "$ns_b" "$if_b" "$tpcap" "ether src $(qg_mac "$ns_a" "$if_a")" 9 ||
  qg_die "tcpdump did not start in $ns_b"
qg_in "$ns_a" "$QG_PYTHON" - "$if_a" "$mac_b" "$QG_A_V4" "$QG_B_V4" "$QG_A_V6" "$QG_B_V6" <<'PY'
import sys
from scapy.all import Ether, Dot1Q, Dot1AD, IP, IPv6, IPv6ExtHdrDestOpt, UDP, Raw, sendp
iface, mac, a4, b4, a6, b6 = sys.argv[1:]
eth = Ether(dst=mac)
cut_udp = eth / IP(src=a4, dst=b4, tos=0xb8, proto=17, len=27) / Raw(b"\x9c\x41\x13\x8c\x00\x10\x00")
chain = IPv6ExtHdrDestOpt()
for _ in range(8):
    chain = IPv6ExtHdrDestOpt() / chain
nine_ext = eth / IPv6(src=a6, dst=b6, tc=0xb8) / chain / UDP(sport=40002, dport=6000) / Raw(b"x" * 8)
three_tags = Ether(dst=mac, type=0x88a8) / Dot1Q(vlan=0, type=0x8100) / Dot1Q(vlan=0, type=0x8100) / \
    Dot1Q(vlan=0) / IP(src=a4, dst=b4, tos=0xb8) / UDP(sport=40003, dport=6000) / Raw(b"x" * 8)
for frame in (cut_udp, nine_ext, three_tags):
    sendp(frame, iface=iface, count=3, inter=0.02, verbose=False)
PY
qg_capture_stop 5
# trust_tos: one line per frame B saw: the IP TOS / IPv6 traffic class, and
# whether the IPv4 header checksum verified.
tshark -n -r "$tpcap" -o ip.check_checksum:TRUE -T fields -E separator=, \
  -e ip.dsfield -e ipv6.tclass -e ip.checksum.status -e ip.src -e ipv6.src >"$dir/trust.txt" 2>/dev/null
n_ef=$(grep -c '0xb8\|0x000000b8' "$dir/trust.txt")
n_zero=$(grep -Ec '^0x0*0,|^,0x0*0,' "$dir/trust.txt")
n_bad_sum=$(grep -c ',0,\|Bad' "$dir/trust.txt")
if (($(wc -l <"$dir/trust.txt") == 9 && n_zero == 9 && n_ef == 0)); then
  qg_pass "t. 9 of 9 malformed frames claiming EF arrived re-marked to 0 (cut UDP, 9 IPv6 extensions, 3 tags)"
else
  qg_fail "t. malformed frames claiming EF: $(wc -l <"$dir/trust.txt") arrived, $n_zero with DSCP 0: $(tr '\n' ' ' <"$dir/trust.txt")"
fi
((n_bad_sum == 0)) && qg_pass "t. their IPv4 checksums verify" || qg_fail "t. $n_bad_sum bad IPv4 checksums"

# --- d. policing ------------------------------------------------------------
if ! qg_police_run "$ns_a" "$ns_b" "$QG_A_V4" "$QG_B_V4" 5004 40000 \
  "$offer_mbit" "$offer_seconds" "$payload_bytes" "$dir"; then
  qg_fail "d. the iperf3 run failed"
else
  # The meter counts IP bytes, and lets through CIR x T plus its two buckets
  # (cbs + ebs = 32 kB): 1 mbit/s + 256 kbit / 5 s = 1.05 Mbit/s.  The band
  # 0.8..1.25 Mbit/s leaves room for timer jitter at either end of a 5 s run
  # (~0.2 s = 4%), iperf3's pacing and any frame af_packet misses, yet fails
  # clearly if the meter does not police (5 Mbit/s) or over-polices.
  read -r pct in_band < <(awk -v r="$QG_RCVD_MBIT" -v cir="$cir_mbit" '
    BEGIN { printf "%.0f %d\n", 100 * r / cir, (r >= 0.8 * cir && r <= 1.25 * cir) }')
  qg_log "policed: sent $QG_SENT_MBIT Mbit/s, arrived $QG_RCVD_MBIT Mbit/s ($pct% of the $cir_mbit Mbit/s CIR)" \
    "[$QG_SENT_PKTS datagrams sent, $QG_RCVD_PKTS received, over ${QG_SECONDS}s]"
  if ((in_band)); then
    qg_pass "d. policing: $QG_RCVD_MBIT Mbit/s arrived, within 0.8..1.25 Mbit/s"
  else
    qg_fail "d. policing: $QG_RCVD_MBIT Mbit/s arrived, outside 0.8..1.25 Mbit/s"
  fi
  if awk -v s="$QG_SENT_MBIT" 'BEGIN { exit !(s >= 4) }'; then
    qg_pass "d. the sender offered $QG_SENT_MBIT Mbit/s (>= 4), so the meter was overrun"
  else
    qg_fail "d. the sender offered only $QG_SENT_MBIT Mbit/s: the policing figure means little"
  fi
fi
if metrics=$(qg_metrics "$ns_gw" "$metrics_port"); then
  red=$(qg_metric_sum "$metrics" qosgate_dropped_packets_total 'reason="meter_red"')
  flow_hits=$(qg_metric_sum "$metrics" qosgate_classified_packets_total 'match="flow"')
  qg_log "metrics: meter_red drops $red, packets matched to a flow $flow_hits"
  if ((red > 0)); then
    qg_pass "d. qosgate_dropped_packets_total{reason=\"meter_red\"} = $red > 0"
  else
    qg_fail "d. qosgate_dropped_packets_total{reason=\"meter_red\"} = $red, expected > 0"
  fi
  if [[ -n $QG_RCVD_PKTS ]] && ((red > 0)); then
    # Every datagram iperf3 sent and B did not get should be a red drop.
    lost=$((QG_SENT_PKTS - QG_RCVD_PKTS))
    # The count is exact when af_packet loses nothing; allow a little slack.
    if ((lost > 0 && red >= lost * 9 / 10 && red <= lost + 10)); then
      qg_pass "d. red drops ($red) account for the datagrams B missed ($lost)"
    else
      qg_fail "d. red drops ($red) do not match the datagrams B missed ($lost)"
    fi
  fi
else
  qg_fail "d. cannot read qosgate's metrics on 127.0.0.1:$metrics_port in $ns_gw"
fi

# --- e. clean stop ------------------------------------------------------------
if qg_stop_qosgate; then
  qg_pass "e. qosgate stopped on SIGINT"
else
  qg_fail "e. qosgate did not stop within 20 s of SIGINT"
fi
qg_log "qosgate's final counters:"
sed 's/^/  | /' "$QG_QOSGATE_OUT"
qg_check "e. qosgate exited 0 (got $QG_QOSGATE_RC)" test "$QG_QOSGATE_RC" = 0
qg_check "e. no mbufs in use after stop" grep -Eq 'mbufs in use after stop: 0 of [0-9]+' "$QG_QOSGATE_OUT"
qg_check "e. no CONSERVATION VIOLATED line" \
  bash -c '! grep -q "CONSERVATION VIOLATED" "$1"' _ "$QG_QOSGATE_OUT"

if ((QG_FAILS > 0)); then
  qg_log "qosgate's log:"
  sed 's/^/  | /' "$QG_QOSGATE_ERR"
fi
qg_log "ran in $((SECONDS - started)) s"
qg_summary
