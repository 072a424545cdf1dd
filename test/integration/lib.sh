# shellcheck shell=bash disable=SC2034  # QG_* variables are read by the sourcing script
# Helpers for qosgate's network-namespace tests and for tools/demo.sh.
#
#   source test/integration/lib.sh
#   qg_init                      # installs the cleanup trap (EXIT INT TERM)
#   qg_require_root; qg_require_netns; qg_require_tools ip tcpdump tshark
#   qg_build_bump NS_A NS_GW NS_B IF_A IF_GW_A IF_GW_B IF_B
#   qg_start_qosgate NS_GW CONFIG DIR && ... && qg_stop_qosgate
#   qg_require_manager; qg_start_qosmgr NS CONFIG LOG && ... && qg_stop_qosmgr
#
# Everything a script makes through these helpers (namespaces, background
# processes, temporary directories, DPDK runtime directories) is recorded
# here and removed by qg_cleanup, also when the script fails or is
# interrupted.  qg_cleanup kills only processes it started (their PIDs are
# recorded when started) and, as a safety net, whatever still runs inside the
# namespaces it created (only this script's children can be there).
#
# Test hosts use addresses from 198.18.0.0/15 (RFC 2544) and 2001:db8::/32
# (RFC 3849), inside the namespaces only.

# Host addresses of the standard topology: A and B share one L2 segment
# through the bump, so both sit in 198.18.0.0/15 and in 2001:db8:1::/64.
QG_A_V4=198.18.1.10
QG_B_V4=198.19.1.20
QG_V4_PLEN=15
QG_A_V6=2001:db8:1::10
QG_B_V6=2001:db8:1::20
QG_V6_PLEN=64

# The interpreter with scapy (Debian's python3-scapy lives under /usr/bin).
QG_PYTHON=${QG_PYTHON:-/usr/bin/python3}

# A short run id for names: interface names are limited to 15 characters.
QG_ID=${QG_ID:-$$}

QG_NAMESPACES=()      # namespaces qg_netns_add made
QG_PIDS=()            # background processes this script started
QG_TMPDIRS=()         # directories qg_mktemp made
QG_DPDK_PREFIXES=()   # EAL --file-prefix values whose runtime dirs we remove
QG_PASSES=0
QG_FAILS=0
QG_KEEP_TMP=${QG_KEEP_TMP:-0}   # 1: leave temporary directories for inspection

QG_QOSGATE_PID=""     # set by qg_start_qosgate
QG_QOSGATE_OUT=""     # its stdout file (final counters)
QG_QOSGATE_ERR=""     # its stderr file (log)
QG_QOSGATE_RC=""      # set by qg_stop_qosgate
QG_QOSMGR_PID=""      # set by qg_start_qosmgr
QG_QOSMGR_RC=""       # set by qg_stop_qosmgr

# ---------------------------------------------------------------------------
# Reporting

qg_log() { printf '%s\n' "$*"; }
qg_pass() { QG_PASSES=$((QG_PASSES + 1)); printf 'PASS: %s\n' "$*"; }
qg_fail() { QG_FAILS=$((QG_FAILS + 1)); printf 'FAIL: %s\n' "$*"; }

# qg_check DESCRIPTION COMMAND...: PASS if COMMAND succeeds, else FAIL.
qg_check() {
  local what=$1
  shift
  if "$@"; then qg_pass "$what"; else qg_fail "$what"; fi
}

# Prints the tally; returns 1 if anything failed or nothing was checked.
qg_summary() {
  printf '%d passed, %d failed\n' "$QG_PASSES" "$QG_FAILS"
  ((QG_FAILS == 0 && QG_PASSES > 0))
}

# A prerequisite is missing: SKIP (exit 77, meson's skip code), except under
# CI=true where a skip would hide that the test did not run, so FAIL.
qg_skip_or_fail() {
  if [[ ${CI:-} == true ]]; then
    printf 'FAIL: %s (CI=true: a missing prerequisite is a failure)\n' "$*" >&2
    exit 1
  fi
  printf 'SKIP: %s\n' "$*" >&2
  exit 77
}

qg_die() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------
# Prerequisites

qg_require_root() {
  [[ $(id -u) -eq 0 ]] || qg_skip_or_fail "needs root (network namespaces, veth, af_packet)"
}

qg_require_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || qg_skip_or_fail "missing tool '$t' (tools/setup.sh installs it)"
  done
}

# Creating a namespace is the only sure test that we may.
qg_require_netns() {
  local probe="qg-probe-$QG_ID"
  command -v ip >/dev/null 2>&1 || qg_skip_or_fail "missing tool 'ip' (iproute2)"
  if ! ip netns add "$probe" 2>/dev/null; then
    qg_skip_or_fail "cannot create network namespaces (ip netns add failed)"
  fi
  ip netns del "$probe"
}

# qg_require_qosgate: $QOSGATE must name an executable.
qg_require_qosgate() {
  [[ -n ${QOSGATE:-} ]] || qg_die "set QOSGATE to the qosgate executable (meson passes it)"
  [[ -x $QOSGATE ]] || qg_die "QOSGATE=$QOSGATE is not an executable"
}

# qg_require_manager: $QOSMGR and $QOSCTL must name executables.
qg_require_manager() {
  local v
  for v in QOSMGR QOSCTL; do
    [[ -n ${!v:-} ]] || qg_die "set $v to the ${v,,} executable (meson passes it)"
    [[ -x ${!v} ]] || qg_die "$v=${!v} is not an executable"
  done
}

# ---------------------------------------------------------------------------
# Cleanup

# Note: bash runs an INT trap only once the foreground command ends, and not
# at all if that command caught SIGINT and exited normally (ping, iperf3 do).
# A Ctrl-C then stops those tools and qosgate (same process group), the
# script runs on to its end with FAILs, and the EXIT trap still cleans up.
qg_init() {
  trap qg_cleanup EXIT
  # exit runs the EXIT trap, which cleans up once.
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# qg_alive PID: the process exists and is not a zombie waiting to be reaped.
qg_alive() {
  local state
  [[ -r /proc/$1/stat ]] || return 1
  state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# qg_wait_exit PID SECONDS: waits for PID to end; returns 1 on timeout.
qg_wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while qg_alive "$pid"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# qg_forget_pid PID: no longer ours to clean up (it was reaped).
qg_forget_pid() {
  local keep=() p
  for p in "${QG_PIDS[@]}"; do
    [[ $p == "$1" ]] || keep+=("$p")
  done
  QG_PIDS=("${keep[@]}")
}

# qg_kill_pid PID [SIGNAL]: SIGNAL (default TERM), then KILL after 5 s.
qg_kill_pid() {
  local pid=$1 sig=${2:-TERM}
  if qg_alive "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null
    if ! qg_wait_exit "$pid" 5; then
      kill -KILL "$pid" 2>/dev/null
      qg_wait_exit "$pid" 5
    fi
  fi
  wait "$pid" 2>/dev/null
  qg_forget_pid "$pid"
}

qg_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid ns dir prefix
  # qosgate first, with SIGINT so it frees its ports and mbufs cleanly.
  if [[ -n $QG_QOSGATE_PID ]] && qg_alive "$QG_QOSGATE_PID"; then
    qg_kill_pid "$QG_QOSGATE_PID" INT
  fi
  for pid in "${QG_PIDS[@]}"; do
    qg_kill_pid "$pid" TERM
  done
  for ns in "${QG_NAMESPACES[@]}"; do
    # Safety net: anything still inside a namespace we made was started by
    # this script (a grandchild we did not record); a namespace with live
    # processes would outlive "ip netns del".
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null
    done
    ip netns del "$ns" 2>/dev/null
  done
  for prefix in "${QG_DPDK_PREFIXES[@]}"; do
    [[ -n $prefix ]] && rm -rf "/var/run/dpdk/$prefix"
  done
  if [[ $QG_KEEP_TMP == 1 ]]; then
    ((${#QG_TMPDIRS[@]})) && printf 'kept temporary files in %s\n' "${QG_TMPDIRS[*]}" >&2
  else
    for dir in "${QG_TMPDIRS[@]}"; do
      rm -rf "$dir"
    done
  fi
  exit "$rc"
}

# qg_mktemp: makes a temporary directory that cleanup removes and sets QG_TMP
# to it.  (It cannot print the name: "$(qg_mktemp)" would run in a subshell,
# which cannot record the directory for cleanup.)
qg_mktemp() {
  QG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/qosgate-test.XXXXXX") || qg_die "mktemp failed"
  QG_TMPDIRS+=("$QG_TMP")
}

# ---------------------------------------------------------------------------
# Namespaces and links

# qg_in NS COMMAND...: runs COMMAND inside namespace NS.
qg_in() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

# qg_netns_add NS: a new namespace with loopback up, recorded for cleanup.
qg_netns_add() {
  ip netns add "$1" || qg_die "cannot create namespace $1"
  QG_NAMESPACES+=("$1")
  ip -n "$1" link set lo up
  # IPv6 addresses usable at once: no duplicate address detection.
  qg_in "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# qg_veth NS1 IF1 NS2 IF2: a veth pair with one end in each namespace.
qg_veth() {
  local ns1=$1 if1=$2 ns2=$3 if2=$4 n
  for n in "$if1" "$if2"; do
    ((${#n} <= 15)) || qg_die "interface name '$n' is longer than 15 characters"
  done
  ip link add "$if1" netns "$ns1" type veth peer name "$if2" netns "$ns2" ||
    qg_die "cannot create veth $if1<->$if2"
}

# qg_offloads_off NS IF: af_packet must see frames as they are on the wire.
# Segmentation offloads (TSO/GSO/GRO) would hand it frames larger than the
# MTU, and transmit checksum offload leaves UDP/TCP checksums unfinished
# (CHECKSUM_PARTIAL), which the receiving host drops after the bump sends the
# frame on as-is.
qg_offloads_off() {
  local ns=$1 ifname=$2
  if command -v ethtool >/dev/null 2>&1; then
    qg_in "$ns" ethtool -K "$ifname" tso off gso off gro off tx off >/dev/null 2>&1 ||
      qg_die "ethtool -K $ifname failed"
  else
    qg_die "ethtool is needed to turn off veth offloads (apt-get install ethtool)"
  fi
}

# qg_mac NS IF: prints the interface's MAC address.
qg_mac() {
  qg_in "$1" cat "/sys/class/net/$2/address"
}

# qg_build_bump NS_A NS_GW NS_B IF_A IF_GW_A IF_GW_B IF_B
#
#   NS_A [IF_A] ===veth=== [IF_GW_A] NS_GW [IF_GW_B] ===veth=== [IF_B] NS_B
#   198.18.1.10/15                    (no IP)                 198.19.1.20/15
#   2001:db8:1::10/64                                      2001:db8:1::20/64
#
# The gateway's interfaces carry no address and no IPv6, so the gateway's own
# kernel stays silent and only qosgate joins the two segments.
qg_build_bump() {
  local ns_a=$1 ns_gw=$2 ns_b=$3 if_a=$4 if_gw_a=$5 if_gw_b=$6 if_b=$7 ifname
  qg_netns_add "$ns_a"
  qg_netns_add "$ns_gw"
  qg_netns_add "$ns_b"
  qg_veth "$ns_a" "$if_a" "$ns_gw" "$if_gw_a"
  qg_veth "$ns_gw" "$if_gw_b" "$ns_b" "$if_b"

  for ifname in "$if_gw_a" "$if_gw_b"; do
    qg_in "$ns_gw" sysctl -qw "net.ipv6.conf.$ifname.disable_ipv6=1"
    qg_offloads_off "$ns_gw" "$ifname"
    ip -n "$ns_gw" link set "$ifname" up
  done
  qg_offloads_off "$ns_a" "$if_a"
  qg_offloads_off "$ns_b" "$if_b"
  qg_in "$ns_a" sysctl -qw "net.ipv6.conf.$if_a.accept_dad=0"
  qg_in "$ns_b" sysctl -qw "net.ipv6.conf.$if_b.accept_dad=0"
  ip -n "$ns_a" addr add "$QG_A_V4/$QG_V4_PLEN" dev "$if_a"
  ip -n "$ns_a" addr add "$QG_A_V6/$QG_V6_PLEN" dev "$if_a" nodad
  ip -n "$ns_b" addr add "$QG_B_V4/$QG_V4_PLEN" dev "$if_b"
  ip -n "$ns_b" addr add "$QG_B_V6/$QG_V6_PLEN" dev "$if_b" nodad
  ip -n "$ns_a" link set "$if_a" up
  ip -n "$ns_b" link set "$if_b" up
}

# ---------------------------------------------------------------------------
# Processes

# qg_bg NS OUT ERR COMMAND...: starts COMMAND in NS in the background; sets
# QG_BG_PID and records it for cleanup.  "ip netns exec" execs COMMAND, so
# the PID is COMMAND's own.
# qg_link NS1 IF1 ADDR1 NS2 IF2 ADDR2: a routed point-to-point link (a veth
# pair, ADDR/PLEN on each end), e.g. a host's management link to the
# namespace where qosmgr runs.
qg_link() {
  local ns1=$1 if1=$2 addr1=$3 ns2=$4 if2=$5 addr2=$6
  qg_veth "$ns1" "$if1" "$ns2" "$if2"
  ip -n "$ns1" addr add "$addr1" dev "$if1"
  ip -n "$ns2" addr add "$addr2" dev "$if2"
  ip -n "$ns1" link set "$if1" up
  ip -n "$ns2" link set "$if2" up
}
qg_bg() {
  local ns=$1 out=$2 err=$3
  shift 3
  ip netns exec "$ns" "$@" >"$out" 2>"$err" &
  QG_BG_PID=$!
  QG_PIDS+=("$QG_BG_PID")
}

# qg_wait_for_line FILE REGEX PID SECONDS: waits until FILE has a line
# matching REGEX; returns 1 if PID ends first or on timeout.
qg_wait_for_line() {
  local file=$1 regex=$2 pid=$3 deadline=$((SECONDS + $4))
  until grep -Eq -- "$regex" "$file" 2>/dev/null; do
    qg_alive "$pid" || { grep -Eq -- "$regex" "$file" 2>/dev/null; return; }
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# qg_free_port [NS]: prints a TCP port on 127.0.0.1 that nothing listens on
# (in NS if given: qosgate serves its metrics inside the gateway namespace).
qg_free_port() {
  local cmd=("$QG_PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
  if [[ -n ${1:-} ]]; then qg_in "$1" "${cmd[@]}"; else "${cmd[@]}"; fi
}

# qg_start_qosgate NS CONFIG DIR [PREFIX]: starts qosgate in NS, logging to
# DIR/qosgate.{out,err}, and waits until it logs "forwarding:".  PREFIX is the
# EAL --file-prefix the config uses (its runtime dir is removed at cleanup).
# Returns 1 (and prints the log) if it exits or does not start within 30 s.
qg_start_qosgate() {
  local ns=$1 config=$2 dir=$3 prefix=${4:-}
  [[ -n $prefix ]] && QG_DPDK_PREFIXES+=("$prefix")
  QG_QOSGATE_OUT=$dir/qosgate.out
  QG_QOSGATE_ERR=$dir/qosgate.err
  QG_QOSGATE_RC=""
  qg_bg "$ns" "$QG_QOSGATE_OUT" "$QG_QOSGATE_ERR" "$QOSGATE" --config "$config"
  QG_QOSGATE_PID=$QG_BG_PID
  if ! qg_wait_for_line "$QG_QOSGATE_ERR" 'forwarding:' "$QG_QOSGATE_PID" 30; then
    printf 'qosgate did not start; its log:\n' >&2
    sed 's/^/  | /' "$QG_QOSGATE_ERR" "$QG_QOSGATE_OUT" >&2
    return 1
  fi
}

# qg_stop_qosgate: SIGINT to the qosgate we started, waits up to 20 s for it
# to exit (then SIGKILL), sets QG_QOSGATE_RC.  Returns 1 if it had to be killed.
qg_stop_qosgate() {
  [[ -n $QG_QOSGATE_PID ]] || return 1
  qg_stop_daemon qosgate "$QG_QOSGATE_PID" INT 20
  local stopped=$?
  QG_QOSGATE_RC=$QG_STOP_RC
  QG_QOSGATE_PID=""
  return "$stopped"
}

# qg_stop_daemon NAME PID SIGNAL SECONDS: SIGNAL to PID (one we started),
# waits up to SECONDS for it to exit (then SIGKILL), reaps it and sets
# QG_STOP_RC to its exit status.  Returns 1 if it had to be killed.
qg_stop_daemon() {
  local name=$1 pid=$2 sig=$3 seconds=$4 killed=0
  kill "-$sig" "$pid" 2>/dev/null
  if ! qg_wait_exit "$pid" "$seconds"; then
    printf '%s did not stop within %s s of SIG%s: killing it\n' "$name" "$seconds" "$sig" >&2
    kill -KILL "$pid" 2>/dev/null
    killed=1
  fi
  wait "$pid" 2>/dev/null
  QG_STOP_RC=$?
  qg_forget_pid "$pid"
  ((killed == 0))
}

# qg_start_qosmgr NS CONFIG LOG: starts qosmgr in NS, logging to LOG, and
# waits until it logs "serving on".  Returns 1 (and prints the log) if it
# exits or does not start within 30 s.
qg_start_qosmgr() {
  local ns=$1 config=$2 log=$3
  QG_QOSMGR_RC=""
  qg_bg "$ns" "$log.out" "$log" "$QOSMGR" --config "$config"
  QG_QOSMGR_PID=$QG_BG_PID
  if ! qg_wait_for_line "$log" 'serving on' "$QG_QOSMGR_PID" 30; then
    printf 'qosmgr did not start; its log:\n' >&2
    sed 's/^/  | /' "$log" >&2
    return 1
  fi
}

# qg_stop_qosmgr [SIGNAL]: SIGNAL (default TERM) to the qosmgr we started;
# waits up to 10 s (then SIGKILL); sets QG_QOSMGR_RC.  Returns 1 if it had
# to be killed.
qg_stop_qosmgr() {
  [[ -n $QG_QOSMGR_PID ]] || return 1
  qg_stop_daemon qosmgr "$QG_QOSMGR_PID" "${1:-TERM}" 10
  local stopped=$?
  QG_QOSMGR_RC=$QG_STOP_RC
  QG_QOSMGR_PID=""
  return "$stopped"
}

# qg_wait_until SECONDS COMMAND...: runs COMMAND every 0.2 s until it
# succeeds; returns 1 if it has not within SECONDS.
qg_wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# qg_metrics NS PORT: prints qosgate's Prometheus text (fetched inside NS).
qg_metrics() {
  qg_in "$1" "$QG_PYTHON" -c 'import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())' "$2"
}

# qg_metric_sum TEXT NAME [LABEL_REGEX]: sums the samples of metric NAME whose
# label set matches LABEL_REGEX (an ERE over the text between the braces).
qg_metric_sum() {
  awk -v name="$2" -v re="${3:-}" '
    $1 ~ "^" name "({|$)" {
      labels = $1
      if (index(labels, "{")) { sub(/^[^{]*{/, "", labels); sub(/}$/, "", labels) } else labels = ""
      if (re == "" || labels ~ re) sum += $NF
    }
    END { printf "%d\n", sum }' <<<"$1"
}

# qg_capture_start NS IF FILE FILTER [COUNT]: tcpdump into FILE in the
# background, ending by itself after COUNT packets if given; returns once
# tcpdump listens.  Sets QG_CAPTURE_PID.
qg_capture_start() {
  local ns=$1 ifname=$2 file=$3 filter=$4 count_args=()
  [[ -n ${5:-} ]] && count_args=(-c "$5")
  qg_bg "$ns" "$file.log" "$file.err" tcpdump -n -U -i "$ifname" "${count_args[@]}" -w "$file" "$filter"
  QG_CAPTURE_PID=$QG_BG_PID
  if ! qg_wait_for_line "$file.err" 'listening on' "$QG_CAPTURE_PID" 15; then
    sed 's/^/  | /' "$file.err" >&2
    return 1
  fi
}

# qg_capture_stop [SECONDS]: gives the capture started last up to SECONDS
# (default 0) to reach its COUNT and end by itself, then stops it with
# SIGINT (tcpdump writes out what it has).
# qg_tshark_start NS IF FILE FILTER: tshark capturing on IF into FILE
# (stop it with qg_capture_stop).
qg_tshark_start() {
  local ns=$1 ifname=$2 file=$3 filter=$4
  qg_bg "$ns" "$file.log" "$file.err" tshark -n -i "$ifname" -f "$filter" -w "$file"
  QG_CAPTURE_PID=$QG_BG_PID
  if ! qg_wait_for_line "$file.err" '^Capturing on' "$QG_CAPTURE_PID" 15; then
    sed 's/^/  | /' "$file.err" >&2
    return 1
  fi
}
# qg_pcap_dscp_counts FILE: what tshark reads in FILE's UDP packets, one line
# per source, destination and DSCP: "COUNT SRC DST DSCP" (IPv4 and IPv6).
qg_pcap_dscp_counts() {
  tshark -n -r "$1" -Y udp -T fields -E separator=' ' -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst \
    -e ip.dsfield.dscp -e ipv6.tclass.dscp 2>/dev/null |
    awk '{ n[$1 " " $2 " " $3] += 1 } END { for (k in n) print n[k], k }' | sort -k2,2 -k4,4n
}
# qg_pcap_rate PCAP SRC DPORT DSCP [FROM]: SRC's UDP packets to port DPORT in
# PCAP (from epoch FROM on): their IP-level rate in Mbit/s between the first
# and the last, how many carried DSCP, and how many there were:
# "MBIT N_DSCP N_ALL".
qg_pcap_rate() {
  tshark -n -r "$1" -Y "ip.src == $2 && udp.dstport == $3" -T fields \
    -e frame.time_epoch -e ip.len -e ip.dsfield.dscp 2>/dev/null |
    awk -v from="${5:-0}" -v dscp="$4" '$1 >= from {
        if (first == "") first = $1; last = $1; bytes += $2; n++; if ($3 == dscp) m++ }
      END { t = last - first; printf "%.3f %d %d\n", (t > 0 ? bytes * 8 / t / 1e6 : 0), m, n }'
}

qg_capture_stop() {
  [[ -n ${QG_CAPTURE_PID:-} ]] || return 0
  qg_wait_exit "$QG_CAPTURE_PID" "${1:-0}"
  qg_kill_pid "$QG_CAPTURE_PID" INT
  QG_CAPTURE_PID=""
}

# qg_udp_send NS SRC DST DPORT TOS COUNT [SPORT]: COUNT small UDP datagrams
# with IP_TOS (IPv4) or IPV6_TCLASS (IPv6) set to TOS, 20 ms apart.
qg_udp_send() {
  qg_in "$1" "$QG_PYTHON" - "$2" "$3" "$4" "$5" "$6" "${7:-0}" <<'EOF'
import socket, sys, time
src, dst, dport, tos, count, sport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4], 0), int(sys.argv[5]), int(sys.argv[6])
v6 = ":" in dst
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
else:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
s.bind((src, sport))
for i in range(count):
    s.sendto(b"qosgate-test %d" % i, (dst, dport))
    time.sleep(0.02)
EOF
}

# qg_pcap_tos PCAP: prints one line per UDP packet in PCAP:
# "SRC SPORT DST DPORT TOS", TOS being the IPv4 TOS byte or the IPv6 traffic
# class, in decimal (DSCP = TOS >> 2, ECN = TOS & 3).
qg_pcap_tos() {
  local src4 src6 sport dst4 dst6 dport tos4 tos6
  tshark -n -r "$1" -Y udp -T fields -E separator=, -e ip.src -e ipv6.src -e udp.srcport \
    -e ip.dst -e ipv6.dst -e udp.dstport -e ip.dsfield -e ipv6.tclass 2>/dev/null |
    while IFS=, read -r src4 src6 sport dst4 dst6 dport tos4 tos6; do
      tos4=${tos4:-$tos6}
      [[ $tos4 =~ ^0x[0-9a-fA-F]+$ ]] || continue
      printf '%s %s %s %s %d\n' "${src4:-$src6}" "$sport" "${dst4:-$dst6}" "$dport" "$tos4"
    done
}

# qg_police_run NS_SRC NS_DST SRC DST PORT CPORT MBIT SECONDS PAYLOAD DIR:
# iperf3 sends UDP at MBIT Mbit/s (payloads of PAYLOAD bytes) from SRC:CPORT
# in NS_SRC to an iperf3 server on DST:PORT in NS_DST for SECONDS.  Sets
#   QG_SENT_PKTS QG_RCVD_PKTS     datagrams sent / received
#   QG_SENT_MBIT QG_RCVD_MBIT     rates at IP level (payload + IP + UDP
#                                 headers, the bytes a meter counts) over the
#                                 sender's duration, in Mbit/s
#   QG_SECONDS                    the sender's duration
# Returns 1 (and prints iperf3's errors) if the run failed.
qg_police_run() {
  local ns_src=$1 ns_dst=$2 src=$3 dst=$4 port=$5 cport=$6 mbit=$7 seconds=$8 payload=$9
  local dir=${10} server_pid client_rc header=28 deadline sent_bytes rcvd_bytes
  [[ $dst == *:* ]] && header=48
  QG_SENT_PKTS="" QG_RCVD_PKTS="" QG_SENT_MBIT="" QG_RCVD_MBIT="" QG_SECONDS=""
  qg_bg "$ns_dst" "$dir/iperf-server.json" "$dir/iperf-server.err" \
    iperf3 -s -1 -J -B "$dst" -p "$port"
  server_pid=$QG_BG_PID
  deadline=$((SECONDS + 10))
  until qg_in "$ns_dst" ss -Hltn "sport = :$port" | grep -q .; do
    ((SECONDS < deadline)) || break
    sleep 0.1
  done
  qg_in "$ns_src" iperf3 -c "$dst" -B "$src" -p "$port" --cport "$cport" -u \
    -b "${mbit}M" -l "$payload" -t "$seconds" -J \
    >"$dir/iperf-client.json" 2>"$dir/iperf-client.err"
  client_rc=$?
  qg_wait_exit "$server_pid" 10
  qg_kill_pid "$server_pid" TERM
  # iperf3's UDP receiver counts "packets" as the highest sequence number
  # seen, so what arrived is packets - lost_packets.
  read -r QG_SENT_PKTS sent_bytes QG_SECONDS QG_RCVD_PKTS rcvd_bytes < <(
    "$QG_PYTHON" - "$dir/iperf-client.json" "$dir/iperf-server.json" <<'PY' 2>/dev/null
import json, sys
c = json.load(open(sys.argv[1]))["end"]["sum_sent"]
s = json.load(open(sys.argv[2]))["end"]["sum_received"]
print(c["packets"], c["bytes"], c["seconds"], s["packets"] - s["lost_packets"], s["bytes"])
PY
  )
  if ((client_rc != 0)) || [[ -z ${rcvd_bytes:-} ]]; then
    printf 'iperf3 failed (client exit %s):\n' "$client_rc" >&2
    sed 's/^/  | /' "$dir/iperf-client.err" "$dir/iperf-server.err" | head -20 >&2
    return 1
  fi
  read -r QG_SENT_MBIT QG_RCVD_MBIT < <(awk -v sp="$QG_SENT_PKTS" -v sb="$sent_bytes" \
    -v rp="$QG_RCVD_PKTS" -v rb="$rcvd_bytes" -v t="$QG_SECONDS" -v h="$header" '
    BEGIN { printf "%.2f %.3f\n", (sb + sp * h) * 8 / t / 1e6, (rb + rp * h) * 8 / t / 1e6 }')
}

# ---------------------------------------------------------------------------
# The example world as shipped, for whole-system tests

# qg_example_world DIR NS_A NS_GW IF_GW_A IF_GW_B PREFIX LEASE CLIENT_TIMEOUT:
# host A's management link to the gateway's namespace (A 198.18.255.2/30,
# gw 198.18.255.1/30, interfaces qm<id>a / qm<id>g), fresh keys in DIR/keys,
# and the shipped configs (conf/qosmgr.toml, conf/demo.toml,
# conf/qos-agent.toml) in DIR with this run's ports, interfaces, keys, state,
# lease (seconds) and client timeout (seconds).  qosgate's EAL file prefix
# is PREFIX; the agent listens on DIR/run/agent.sock.  Sets
#   QG_WORLD_DIR QG_WORLD_NS    DIR and NS_GW, for qg_world_ctl
#   QG_ENDPOINT                 qosmgr's endpoint from NS_GW
#   QG_MGR_METRICS QG_GW_METRICS  the daemons' metrics ports (in NS_GW)
#   QG_AGENT_SOCK               the agent's socket
qg_example_world() {
  local dir=$1 ns_a=$2 ns_gw=$3 if_gw_a=$4 if_gw_b=$5 prefix=$6 lease=$7 client_timeout=$8
  local repo mgmt_gw=198.18.255.1 mgr_port name f
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  qg_link "$ns_a" "qm${QG_ID}a" 198.18.255.2/30 "$ns_gw" "qm${QG_ID}g" "$mgmt_gw/30"
  mgr_port=$(qg_free_port "$ns_gw")
  QG_MGR_METRICS=$(qg_free_port "$ns_gw")
  QG_GW_METRICS=$(qg_free_port "$ns_gw")
  QG_ENDPOINT=tcp://127.0.0.1:$mgr_port
  QG_WORLD_DIR=$dir
  QG_WORLD_NS=$ns_gw
  QG_AGENT_SOCK=$dir/run/agent.sock
  mkdir -p "$dir/keys" "$dir/run"
  chmod 755 "$dir" "$dir/run"
  for name in qosmgr gw1 ops host-a; do
    "$QOSCTL" keygen "$dir/keys/$name" >/dev/null || qg_die "qosctl keygen $name failed"
  done
  sed -e "s|^listen = \"tcp://127.0.0.1:7700\"|listen = \"tcp://*:$mgr_port\"|" \
    -e "s|^state = \"[^\"]*\"|state = \"$dir/state.db\"|" \
    -e "s|^lease = \"[^\"]*\"|lease = \"${lease}s\"|" \
    -e "s|^listen = \"127.0.0.1:9471\"|listen = \"127.0.0.1:$QG_MGR_METRICS\"|" \
    -e "s|= \"keys/|= \"$dir/keys/|" "$repo/conf/qosmgr.toml" >"$dir/qosmgr.toml"
  sed -e "s|--file-prefix=qosgate-demo|--file-prefix=$prefix|" \
    -e "s|iface=qd-gw-a|iface=$if_gw_a|; s|iface=qd-gw-b|iface=$if_gw_b|" \
    -e "s|^listen = \"127.0.0.1:9470\"|listen = \"127.0.0.1:$QG_GW_METRICS\"|" \
    -e "s|^manager = \"tcp://127.0.0.1:7700\"|manager = \"$QG_ENDPOINT\"|" \
    -e "s|= \"keys/|= \"$dir/keys/|" "$repo/conf/demo.toml" >"$dir/qosgate.toml"
  sed -e "s|^listen = \"[^\"]*\"|listen = \"ipc://$QG_AGENT_SOCK\"|" \
    -e "s|^manager = \"[^\"]*\"|manager = \"tcp://$mgmt_gw:$mgr_port\"|" \
    -e "s|^client_timeout = \"[^\"]*\"|client_timeout = \"${client_timeout}s\"|" \
    -e "s|= \"keys/|= \"$dir/keys/|" "$repo/conf/qos-agent.toml" >"$dir/qos-agent.toml"
  for f in qosmgr qosgate qos-agent; do
    grep -q "$dir" "$dir/$f.toml" || qg_die "the example for $f.toml no longer has the lines this test rewrites"
  done
}

# qg_media_enforcement LIMIT IF: the agent config's [enforce] (nftables,
# LIMIT, on IF) and a standing policy for host A's media server (the
# example's "media" application, A -> B udp/5004), on stdout.
qg_media_enforcement() {
  cat <<TOML

[enforce]
mode = "nftables"
limit = "$1"
interface = "$2"

[[policy]]
name = "media"
app = "media"
src = "$QG_A_V4"
dst = "$QG_B_V4"
proto = "udp"
dport = 5004
TOML
}

# qg_world_ctl ARGS...: qosctl as the operator (the ops key) in the example world.
qg_world_ctl() {
  qg_in "$QG_WORLD_NS" "$QOSCTL" --endpoint "$QG_ENDPOINT" --timeout 3000 \
    --key "$QG_WORLD_DIR/keys/ops.key" --manager-key "$QG_WORLD_DIR/keys/qosmgr.pub" "$@"
}

# qg_json EXPR: EXPR evaluated in Python on the JSON read from stdin (as d).
qg_json() { "$QG_PYTHON" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }

# qg_world_flows: how many flows the manager holds.
qg_world_flows() { qg_world_ctl --json flows | qg_json 'len(d["flows"])'; }

# qg_world_gw1_up: whether gw1 has synced with the manager.
qg_world_gw1_up() { [[ $(qg_world_ctl appliances 2>/dev/null | awk '$1 == "gw1" { print $5 }') == up ]]; }
