# shellcheck shell=bash disable=SC2034  # variables are read by the sourcing demo
# What the demos (tools/demo.sh, tools/demo/dataplane.sh) share: reporting,
# the build, the example keys, the example world's network and daemons.
#
#   repo=...; build=...; source "$repo/tools/demo/common.sh"
#
# Environment:
#   QOS_DEMO_KEYS=DIR   where the example CURVE keys are made and read
#                       (default conf/keys, beside the example configs)
#   QOS_DEMO_BUILT=1    the binaries in BUILD_DIR are built: skip tools/setup.sh

# shellcheck source=test/integration/lib.sh disable=SC2154  # repo: set by the demo
source "$repo/test/integration/lib.sh"

keys=${QOS_DEMO_KEYS:-$repo/conf/keys}
# The names conf/demo.toml expects.
ns_a=qd-a ns_gw=qd-gw ns_b=qd-b
if_a=qd-a if_gw_a=qd-gw-a if_gw_b=qd-gw-b if_b=qd-b
metrics_port=9470
prefix=qosgate-demo
endpoint=tcp://127.0.0.1:7700

ok=1
say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
good() { printf '   ok: %s\n' "$*"; }
bad() {
  printf '   NOT AS EXPECTED: %s\n' "$*"
  ok=0
}
stop_here() {
  printf '\ndemo failed: %s\n' "$*" >&2
  exit 1
}
indent() { sed 's/^/     /'; }

# demo_begin USAGE_COMMAND: root, the build, the keys, a clean slate.
demo_begin() {
  if [[ $(id -u) -ne 0 ]]; then
    stop_here "run it as root (it installs packages, makes network namespaces and runs DPDK): sudo $1"
  fi
  if [[ ${QOS_DEMO_BUILT:-0} != 1 ]]; then
    step "Building (tools/setup.sh: installs missing Debian packages, then meson + ninja into $build)"
    "$repo/tools/setup.sh" "$build" || stop_here "tools/setup.sh failed"
  fi
  QOSGATE=$build/appliance/qosgate
  QOSMGR=$build/manager/qosmgr
  QOSCTL=$build/tools/qosctl/qosctl
  QOS_AGENT=$build/control/qos-agent
  QOS_CALL=$build/tools/qos-call/qos-call
  local exe tool ns
  for exe in "$QOSGATE" "$QOSMGR" "$QOSCTL" "$QOS_AGENT" "$QOS_CALL"; do
    [[ -x $exe ]] || stop_here "no $exe after the build"
  done
  for tool in ip ethtool tcpdump tshark iperf3 ping ss "$QG_PYTHON"; do
    command -v "$tool" >/dev/null 2>&1 || stop_here "missing '$tool' (tools/setup.sh should have installed it)"
  done
  say "   $("$QOSGATE" --version), $("$QOSMGR" --version)"

  step "CURVE keys (tools/example_keys.sh): the manager's, gw1's, the operator's (ops), host A's (host-a)"
  bash "$repo/tools/example_keys.sh" "$build" "$keys" | indent || stop_here "tools/example_keys.sh failed"

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
}

# demo_network: hosts A and B with the gateway gw1 between them.
demo_network() {
  step "Building the network: hosts A and B, and the gateway gw1 between them"
  qg_build_bump "$ns_a" "$ns_gw" "$ns_b" "$if_a" "$if_gw_a" "$if_gw_b" "$if_b"
  say "   A  (namespace $ns_a): $if_a  $QG_A_V4/$QG_V4_PLEN   in lan-a (198.18.1.0/24)"
  say "   B  (namespace $ns_b): $if_b  $QG_B_V4/$QG_V4_PLEN   in lan-b (198.19.1.0/24), reached over the wan"
  say "   gw1 (namespace $ns_gw): $if_gw_a faces lan-a, $if_gw_b the wan; no IP address: only"
  say "      qosgate joins the two links, a bump in the wire.  qosmgr runs beside it."
}

# demo_start_qosmgr LISTEN: qosmgr in qd-gw with the example world as
# shipped (conf/qosmgr.toml), listening on LISTEN, its state and keys the
# demo's own so that it starts with no reservations.
demo_start_qosmgr() {
  step "Starting qosmgr in $ns_gw (the example world, conf/qosmgr.toml)"
  say "   lan-a: EF is DSCP 46, AF41 34.  wan: EF is DSCP 40, AF41 26 (another DiffServ"
  say "   domain, its own code points).  lan-b: no DiffServ.  gw1 sits on the lan-a|wan link."
  sed -e "s|^state = \"[^\"]*\"|state = \"$dir/qosmgr-state.db\"|" \
    -e "s|^listen = \"tcp://127.0.0.1:7700\"|listen = \"$1\"|" \
    -e "s|= \"keys/|= \"$keys/|" "$repo/conf/qosmgr.toml" >"$dir/qosmgr.toml"
  qg_start_qosmgr "$ns_gw" "$dir/qosmgr.toml" "$dir/qosmgr.log" || stop_here "qosmgr did not start (its log is above)"
  say "   $(grep -m1 'serving on' "$dir/qosmgr.log")"
}

# ctl KEY ARGS...: qosctl in qd-gw (where qosmgr listens) with KEY's secret key.
ctl() {
  local key=$1
  shift
  qg_in "$ns_gw" "$QOSCTL" --endpoint "$endpoint" --timeout 3000 \
    --key "$keys/$key.key" --manager-key "$keys/qosmgr.pub" "$@"
}
gw1_up() { [[ $(ctl ops appliances 2>/dev/null | awk '$1 == "gw1" { print $5 }') == up ]]; }

# demo_start_qosgate: qosgate in qd-gw (conf/demo.toml), in sync as gw1.
demo_start_qosgate() {
  step "Starting qosgate in $ns_gw (conf/demo.toml): it connects to qosmgr as gw1"
  sed -e "s|= \"keys/|= \"$keys/|" "$repo/conf/demo.toml" >"$dir/qosgate.toml"
  if ! qg_start_qosgate "$ns_gw" "$dir/qosgate.toml" "$dir" "$prefix"; then
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
}

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

# demo_stop_daemons: qosgate (SIGINT, its final counters), then qosmgr.
demo_stop_daemons() {
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
}

# demo_end: the verdict (the EXIT trap removes namespaces and processes).
demo_end() {
  step "Cleaning up (namespaces $ns_a $ns_gw $ns_b and everything in them)"
  if ((ok)); then
    say "Demo complete: every step showed what it should."
    exit 0
  fi
  say "Demo finished, but some steps did not show what they should (NOT AS EXPECTED above)."
  exit 1
}
