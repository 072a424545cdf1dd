#!/usr/bin/env bash
# End to end, the joined system: qosmgr grants, qosgate enforces on the
# wire, over CURVE; real processes, real packets, kill -9 on either side.
#
#   A (198.18.1.10) ==veth== GW: qosgate (gw1) + qosmgr ==veth== B (198.19.1.20)
#
# The manager's world: lan-a (198.18.1.0/24, DiffServ, EF = DSCP 46) is
# joined by gw1 to wan (transit, DiffServ, EF = DSCP 40), which reaches lan-b
# (198.19.1.0/24, no DiffServ).  gw1's inside port faces A (lan-a), its
# outside port faces B (the wan side).  So a granted A->B packet enters wan
# at gw1 and leaves marked 40; the reverse B->A packet enters lan-a and is
# marked 46.  qosmgr listens on loopback inside the gateway's namespace;
# every peer (gw1, the operator "ops", the host "host-a") has a CURVE key.
#
# Checks:
#   a. before any grant, a flow claiming EF is re-marked to 0
#   b. a host's bidirectional grant: enforced when the reply comes; A->B
#      arrives as 40, B->A as 46, ECN kept
#   c. 5 Mbit/s offered on a 1 Mbit/s grant arrives at about 1 Mbit/s;
#      qosctl flows shows what gw1 passed and policed
#   d. a release, and a lapsed lease, each stop the marking
#   e. keys: a stranger, no key, a host doing an admin's work: exit 4; a
#      host cannot release another's flow
#   f. kill -9 qosmgr: gw1 keeps enforcing; restarted, it resyncs without
#      touching unchanged rules; a release then reaches gw1
#   g. kill -9 qosgate: shown down; restarted, it gets its rules back
#   h. the time from a grant's reply to its first marked packet, over
#      E2E_GRANTS grants (default 100)
#   i. both stop cleanly: exit 0, no mbuf leak
#
#   QOSGATE=... QOSMGR=... QOSCTL=... bash test/integration/e2e_manager_test.sh
# Needs root; without it (or without ip netns / tools) it skips (exit 77),
# except under CI=true where it fails.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/integration/lib.sh
source "$here/lib.sh"

started=$SECONDS
grants=${E2E_GRANTS:-100}
qg_require_qosgate
qg_require_manager
qg_require_root
qg_require_tools ip tcpdump tshark iperf3 ping ss ethtool "$QG_PYTHON"
qg_require_netns
qg_init

id=$QG_ID
ns_a=qm-a-$id
ns_gw=qm-gw-$id
ns_b=qm-b-$id
if_a=qm${id}a
if_gw_a=qm${id}ga
if_gw_b=qm${id}gb
if_b=qm${id}b
prefix=qm-e2e-$id
probe=$here/wire_probe.py

# TOS bytes on the wire: DSCP << 2 | ECN.
tos_wan_ef=0xa0   # 40: EF in wan, what A->B carries past gw1
tos_lan_ef=0xb8   # 46: EF in lan-a, what B->A carries past gw1

qg_mktemp
dir=$QG_TMP
qg_build_bump "$ns_a" "$ns_gw" "$ns_b" "$if_a" "$if_gw_a" "$if_gw_b" "$if_b"
mgr_port=$(qg_free_port "$ns_gw")
mgr_metrics=$(qg_free_port "$ns_gw")
gw_metrics=$(qg_free_port "$ns_gw")
endpoint=tcp://127.0.0.1:$mgr_port

mkdir -p "$dir/keys"
for name in qosmgr gw1 ops host-a stranger; do
  "$QOSCTL" keygen "$dir/keys/$name" >/dev/null || qg_die "qosctl keygen $name failed"
done

cat >"$dir/qosmgr.toml" <<EOF
[manager]
listen = "$endpoint"
state = "$dir/state.db"
lease = "60s"
max_lease = "1h"
heartbeat = "1s"
enforce_wait = "1s"

[metrics]
listen = "127.0.0.1:$mgr_metrics"

[[network]]
name = "lan-a"
prefixes = ["198.18.1.0/24"]
class_enabled = true
classes = { EF = { dscp = 46, capacity = "20mbit" }, BE = { dscp = 0 } }

[[network]]
name = "wan"
class_enabled = true
classes = { EF = { dscp = 40, capacity = "20mbit" }, BE = { dscp = 0 } }

[[network]]
name = "lan-b"
prefixes = ["198.19.1.0/24"]
class_enabled = false

[[link]]
between = ["lan-a", "wan"]
[[link]]
between = ["wan", "lan-b"]

[[application]]
name = "voip"
default = { class = "EF", rate = "1mbit", burst = "16kB" }

[[appliance]]
name = "gw1"
link = ["lan-a", "wan"]

[security]
mode = "curve"
secret_key = "keys/qosmgr.key"

[[peer]]
name = "gw1"
role = "appliance"
public_key = "keys/gw1.pub"

[[peer]]
name = "ops"
role = "admin"
public_key = "keys/ops.pub"

[[peer]]
name = "host-a"
role = "host"
public_key = "keys/host-a.pub"
EOF

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

[dataplane]
max_flows = 1024
idle_sleep_us = 50

[metrics]
listen = "127.0.0.1:$gw_metrics"

[control]
manager = "$endpoint"
name = "gw1"
secret_key = "keys/gw1.key"
manager_public_key = "keys/qosmgr.pub"
EOF

# ctl KEY ARGS...: qosctl in the gateway's namespace with KEY's secret key
# (ctl_argv KEY: the same command line, in CTL_ARGV).
ctl_argv() {
  CTL_ARGV=(ip netns exec "$ns_gw" "$QOSCTL" --endpoint "$endpoint" --timeout 3000
    --key "$dir/keys/$1.key" --manager-key "$dir/keys/qosmgr.pub")
}
ctl() {
  ctl_argv "$1"
  shift
  "${CTL_ARGV[@]}" "$@"
}
json_get() { "$QG_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# gw1_state: prints gw1's state in "qosctl appliances" (up, down, ...).
gw1_state() { ctl ops appliances 2>/dev/null | awk '$1 == "gw1" { print $5 }'; }
gw1_is() { [[ $(gw1_state) == "$1" ]]; }

# tos_of NS_SRC SRC SPORT NS_DST IF_DST DST DPORT TOS_SENT COUNT: sends COUNT
# datagrams and prints the TOS each arrived with, space-separated.
tos_of() {
  local ns_src=$1 src=$2 sport=$3 ns_dst=$4 if_dst=$5 dst=$6 dport=$7 tos=$8 count=$9
  local pcap=$dir/tos-$sport-$RANDOM.pcap
  qg_capture_start "$ns_dst" "$if_dst" "$pcap" "udp and src port $sport and dst port $dport" "$count" ||
    qg_die "tcpdump did not start in $ns_dst"
  qg_udp_send "$ns_src" "$src" "$dst" "$dport" "$tos" "$count" "$sport"
  qg_capture_stop 5
  qg_pcap_tos "$pcap" | awk '{ printf "0x%02x ", $5 }'
}

# expect_tos WHAT GOT COUNT TOS: GOT (from tos_of) holds COUNT times TOS.
expect_tos() {
  local what=$1 got=$2 count=$3 tos want=""
  tos=$(printf '0x%02x' "$4")
  for ((i = 0; i < count; i++)); do want+="$tos "; done
  if [[ $got == "$want" ]]; then
    qg_pass "$what: $count of $count arrived with TOS $tos"
  else
    qg_fail "$what: expected $count with TOS $tos, got: ${got:-nothing}"
  fi
}

# a_to_b SPORT TOS_SENT COUNT / b_to_a DPORT TOS_SENT COUNT: tos_of for
# A:SPORT -> B:5004 and for B:5004 -> A:DPORT.
a_to_b() { tos_of "$ns_a" "$QG_A_V4" "$1" "$ns_b" "$if_b" "$QG_B_V4" 5004 "$2" "$3"; }
b_to_a() { tos_of "$ns_b" "$QG_B_V4" 5004 "$ns_a" "$if_a" "$QG_A_V4" "$1" "$2" "$3"; }

# unmarked_within SPORT SECONDS [COMMAND...]: A:SPORT -> B:5004, sent every
# 2 ms, arrives at B with TOS 0 within SECONDS (of COMMAND's return if one
# is given: it runs once the flow is under way); sets UNMARKED_AFTER to
# those seconds (negative: unmarked before COMMAND returned).
unmarked_within() {
  local sport=$1 seconds=$2 out
  shift 2
  out=$("$QG_PYTHON" "$probe" until --send "$ns_a" "$QG_A_V4:$sport" --to "$QG_B_V4:5004" \
    --recv "$ns_b" "$if_b" --tos 0 --timeout "$seconds" --interval-ms 2 -- "$@")
  UNMARKED_AFTER=$(awk '$1 == "seconds" { print $2 }' <<<"$out")
  [[ -n $UNMARKED_AFTER ]] || { printf '  | %s\n' "$out"; return 1; }
}
ms() { awk -v s="$1" 'BEGIN { printf "%.1f ms", s * 1000 }'; }

# --- start ------------------------------------------------------------------
qg_check "qosmgr --check-config accepts the config" "$QOSMGR" --config "$dir/qosmgr.toml" --check-config
qg_check "qosgate --check-config accepts the config (keys found)" \
  qg_in "$ns_gw" "$QOSGATE" --config "$dir/qosgate.toml" --check-config
qg_start_qosmgr "$ns_gw" "$dir/qosmgr.toml" "$dir/qosmgr.log" || qg_die "qosmgr did not start"
qg_check "gw1 is down before qosgate runs" gw1_is down
qg_start_qosgate "$ns_gw" "$dir/qosgate.toml" "$dir" "$prefix" || qg_die "qosgate did not start"
if qg_wait_until 10 gw1_is up; then
  qg_pass "gw1 connected and synced: qosctl appliances shows it up"
else
  qg_fail "gw1 is '$(gw1_state)' 10 s after qosgate started"
fi
qg_check "ping A->B through the bump" qg_in "$ns_a" ping -q -c 2 -i 0.2 -W 2 "$QG_B_V4"

# --- a. no grant, no class ----------------------------------------------------
expect_tos "a. before any grant, A->B claiming EF is re-marked" "$(a_to_b 41001 0xb8 3)" 3 0

# --- b. a host's bidirectional grant --------------------------------------------
out=$(ctl host-a --json request --app voip --src "$QG_A_V4:41001" --dst "$QG_B_V4:5004" --proto udp --bidir)
rc=$?
if ((rc == 0)); then
  qg_pass "b. host-a's request granted"
  flow1=$(json_get flow_id <<<"$out")
  qg_check "b. the host is told DSCP 46 (lan-a, the first class-enabled network)" \
    test "$(json_get dscp <<<"$out")" = 46
  qg_check "b. the reply says gw1 enforces it" test "$(json_get enforced_by <<<"$out")" = "['gw1']"
else
  qg_fail "b. host-a's request: exit $rc: $out"
  flow1=""
fi
# At once: the reply came after gw1 acknowledged the rules.
expect_tos "b. A->B (sent unmarked) arrives marked for wan" "$(a_to_b 41001 0x00 3)" 3 "$tos_wan_ef"
expect_tos "b. A->B keeps ECN (TOS 0x02 sent)" "$(a_to_b 41001 0x02 2)" 2 $((tos_wan_ef | 2))
expect_tos "b. B->A (reverse) arrives marked for lan-a" "$(b_to_a 41001 0x00 3)" 3 "$tos_lan_ef"
expect_tos "b. another source port is not granted" "$(a_to_b 41009 0xb8 2)" 2 0

# --- c. policing ---------------------------------------------------------------
out=$(ctl ops --json request --app voip --src "$QG_A_V4:40000" --dst "$QG_B_V4:5004" --proto udp)
flow_police=$(json_get flow_id <<<"$out" 2>/dev/null)
if [[ -z $flow_police ]]; then
  qg_fail "c. the policing flow was not granted: $out"
elif ! qg_police_run "$ns_a" "$ns_b" "$QG_A_V4" "$QG_B_V4" 5004 40000 5 5 1000 "$dir"; then
  qg_fail "c. the iperf3 run failed"
else
  qg_log "policed: sent $QG_SENT_MBIT Mbit/s, arrived $QG_RCVD_MBIT Mbit/s [$QG_SENT_PKTS sent, $QG_RCVD_PKTS received, ${QG_SECONDS}s]"
  # The grant's srTCM: CIR 1 mbit/s, CBS = EBS = 16 kB, so 1 Mbit/s plus
  # 256 kbit over 5 s = 1.05 Mbit/s; the band is e2e_dscp's.
  if awk -v r="$QG_RCVD_MBIT" 'BEGIN { exit !(r >= 0.8 && r <= 1.25) }'; then
    qg_pass "c. the grant's 1 Mbit/s is policed: $QG_RCVD_MBIT Mbit/s arrived of $QG_SENT_MBIT"
  else
    qg_fail "c. $QG_RCVD_MBIT Mbit/s arrived, outside 0.8..1.25 Mbit/s"
  fi
  # qosgate reads its counters for the manager at most once a second.
  delivery() {
    ctl ops --json flows | "$QG_PYTHON" -c '
import json, sys
for f in json.load(sys.stdin)["flows"]:
    if f["flow_id"] == int(sys.argv[1]):
        d = f["delivery"]
        print(d["passed_pkts"], d["policed_pkts"])' "$flow_police"
  }
  delivery_counted() {
    read -r passed policed < <(delivery)
    [[ -n ${policed:-} ]] && ((passed >= QG_RCVD_PKTS && policed > 0))
  }
  if qg_wait_until 5 delivery_counted; then
    qg_pass "c. qosctl flows: gw1 passed $passed and policed $policed of the flow's packets"
  else
    qg_fail "c. qosctl flows shows passed=${passed:-?} policed=${policed:-?}; B received $QG_RCVD_PKTS"
  fi
fi

# --- d. release and lease ----------------------------------------------------------
if [[ -n $flow1 ]]; then
  ctl_argv host-a
  if unmarked_within 41001 5 "${CTL_ARGV[@]}" release "$flow1"; then
    qg_pass "d. host-a released its flow: A->B arrives unmarked $(ms "$UNMARKED_AFTER") after qosctl returned"
  else
    qg_fail "d. host-a's release failed, or A->B is still marked 5 s after it"
  fi
  expect_tos "d. after the release B->A claiming EF is re-marked" "$(b_to_a 41001 0xb8 2)" 2 0
fi
[[ -n ${flow_police:-} ]] && ctl ops release "$flow_police" >/dev/null
out=$(ctl host-a --json request --app voip --src "$QG_A_V4:41002" --dst "$QG_B_V4:5004" --proto udp --lease 3)
lease_granted=$SECONDS
expect_tos "d. a 3 s lease is enforced" "$(a_to_b 41002 0x00 2)" 2 "$tos_wan_ef"
if unmarked_within 41002 10; then
  lapsed=$((SECONDS - lease_granted))
  if ((lapsed >= 2)); then
    qg_pass "d. the lapsed 3 s lease stops the marking (about ${lapsed}s after the grant)"
  else
    qg_fail "d. the marking stopped ${lapsed}s after a 3 s lease was granted"
  fi
else
  qg_fail "d. A->B still marked 10 s after a 3 s lease"
fi

# --- e. keys ------------------------------------------------------------------
expect_exit() {
  local want=$1 what=$2 got
  shift 2
  "$@" >"$dir/out" 2>"$dir/err"
  got=$?
  if [[ $got == "$want" ]]; then
    qg_pass "$what (exit $got)"
  else
    qg_fail "$what: exit $got, wanted $want: $(cat "$dir/out" "$dir/err")"
  fi
}
expect_exit 4 "e. a stranger's key is refused" ctl stranger ping
expect_exit 4 "e. a host key asking for the appliances is refused" ctl host-a appliances
expect_exit 4 "e. no key at all is refused" qg_in "$ns_gw" "$QOSCTL" --endpoint "$endpoint" --timeout 3000 ping
out=$(ctl ops --json request --app voip --src "$QG_A_V4:41003" --dst "$QG_B_V4:5004" --proto udp)
flow3=$(json_get flow_id <<<"$out" 2>/dev/null)
expect_exit 2 "e. host-a cannot release ops' flow" ctl host-a release "${flow3:-0}"
expect_tos "e. ... which gw1 still enforces" "$(a_to_b 41003 0x00 2)" 2 "$tos_wan_ef"

# --- f. kill -9 qosmgr ------------------------------------------------------------
qg_stop_qosmgr KILL
expect_tos "f. qosmgr killed: gw1 keeps enforcing" "$(a_to_b 41003 0x00 3)" 3 "$tos_wan_ef"
expect_tos "f. qosmgr killed: the trust boundary holds" "$(a_to_b 41004 0xb8 2)" 2 0
connects_before=$(grep -c 'connected to the manager' "$QG_QOSGATE_ERR")
qg_start_qosmgr "$ns_gw" "$dir/qosmgr.toml" "$dir/qosmgr2.log" || qg_die "qosmgr did not restart"
resynced() { (($(grep -c 'connected to the manager' "$QG_QOSGATE_ERR") > connects_before)) && gw1_is up; }
if qg_wait_until 30 resynced; then
  qg_pass "f. restarted qosmgr: gw1 reconnected and is up"
else
  qg_fail "f. gw1 did not resync with the restarted qosmgr within 30 s"
fi
resync=$(grep 'in sync with the manager' "$QG_QOSGATE_ERR" | tail -1)
if [[ $resync =~ ": 0 manager rule(s) added, 0 removed, 0 changed, "[1-9][0-9]*" unchanged"$ ]]; then
  qg_pass "f. the resync left gw1's rules alone (${resync##*: })"
else
  qg_fail "f. the resync after qosmgr's restart: '$resync'"
fi
expect_tos "f. after the resync the grant is still enforced" "$(a_to_b 41003 0x00 2)" 2 "$tos_wan_ef"
if [[ -n $flow3 ]]; then
  ctl_argv ops
  if unmarked_within 41003 5 "${CTL_ARGV[@]}" release "$flow3"; then
    qg_pass "f. a release by the restarted qosmgr reached gw1: A->B unmarked $(ms "$UNMARKED_AFTER") after qosctl returned"
  else
    qg_fail "f. the release failed, or A->B is still marked 5 s after it"
  fi
fi

# --- g. kill -9 qosgate -------------------------------------------------------------
out=$(ctl ops --json request --app voip --src "$QG_A_V4:41005" --dst "$QG_B_V4:5004" --proto udp)
expect_tos "g. a grant before qosgate is killed" "$(a_to_b 41005 0x00 2)" 2 "$tos_wan_ef"
qg_stop_daemon qosgate "$QG_QOSGATE_PID" KILL 5
QG_QOSGATE_PID=""
if qg_wait_until 15 gw1_is down; then
  qg_pass "g. qosgate killed: qosctl appliances shows gw1 down"
else
  qg_fail "g. gw1 is '$(gw1_state)' 15 s after qosgate was killed"
fi
reservation_kept() { [[ $(ctl ops flows) == *41005* ]]; }
qg_check "g. the reservation stays while gw1 is down" reservation_kept
mv "$QG_QOSGATE_ERR" "$dir/qosgate-first.err"
qg_start_qosgate "$ns_gw" "$dir/qosgate.toml" "$dir" "$prefix" || qg_die "qosgate did not restart"
if qg_wait_until 15 gw1_is up; then
  qg_pass "g. restarted qosgate synced: gw1 up"
else
  qg_fail "g. gw1 is '$(gw1_state)' 15 s after qosgate restarted"
fi
expect_tos "g. the restarted qosgate enforces the grant again" "$(a_to_b 41005 0x00 3)" 3 "$tos_wan_ef"

# --- h. grant -> first marked packet ---------------------------------------------------
ctl_argv host-a
qg_log "h. measuring $grants grants: reply -> first marked packet at B (a datagram every 1 ms)"
if "$QG_PYTHON" "$probe" grants --send "$ns_a" --src "$QG_A_V4" --sport-base 42000 \
  --to "$QG_B_V4:5004" --recv "$ns_b" "$if_b" --tos "$tos_wan_ef" --count "$grants" -- \
  "${CTL_ARGV[@]}" >"$dir/latency.json"; then
  qg_pass "h. all $grants grants were marked on the wire within 2 s of their reply"
else
  qg_fail "h. some grants failed or were not marked: $(cat "$dir/latency.json")"
fi
"$QG_PYTHON" - "$dir/latency.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
if "reply_to_mark_ms" in s:
    r, m = s["request_to_reply_ms"], s["reply_to_mark_ms"]
    print("   request -> reply (qosctl process, CURVE handshake, admission, commit, gw1's ack):"
          " median %.1f ms, p90 %.1f, worst %.1f" % (r["median"], r["p90"], r["worst"]))
    print("   reply -> first marked datagram at B (negative: marked before qosctl exited):"
          " median %.1f ms, p90 %.1f, worst %.1f" % (m["median"], m["p90"], m["worst"]))
    print("   datagrams sent after a reply that arrived unmarked: %d; replies naming gw1: %d of %d"
          % (s["unmarked_after_reply"], s["enforced_in_reply"], s["marked"]))
EOF
if "$QG_PYTHON" -c 'import json, sys; s = json.load(open(sys.argv[1])); sys.exit(s.get("unmarked_after_reply", 1) != 0)' \
  "$dir/latency.json"; then
  qg_pass "h. no datagram sent after a grant's reply arrived unmarked"
else
  qg_fail "h. datagrams sent after a reply arrived unmarked (see above)"
fi

# --- i. clean stops ----------------------------------------------------------------------
if qg_stop_qosgate; then qg_pass "i. qosgate stopped on SIGINT"; else qg_fail "i. qosgate did not stop"; fi
qg_check "i. qosgate exited 0 (got $QG_QOSGATE_RC)" test "$QG_QOSGATE_RC" = 0
qg_check "i. no mbufs in use after qosgate stopped" grep -Eq 'mbufs in use after stop: 0 of [0-9]+' "$QG_QOSGATE_OUT"
if qg_stop_qosmgr TERM; then qg_pass "i. qosmgr stopped on SIGTERM"; else qg_fail "i. qosmgr did not stop"; fi
qg_check "i. qosmgr exited 0 (got $QG_QOSMGR_RC)" test "$QG_QOSMGR_RC" = 0

if ((QG_FAILS > 0)); then
  for f in "$dir/qosmgr.log" "$dir/qosmgr2.log" "$dir/qosgate-first.err" "$QG_QOSGATE_ERR"; do
    [[ -f $f ]] || continue
    qg_log "--- $(basename "$f"):"
    tail -40 "$f" | sed 's/^/  | /'
  done
fi
qg_log "ran in $((SECONDS - started)) s"
qg_summary
