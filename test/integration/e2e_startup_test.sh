#!/usr/bin/env bash
# qosgate's start-up failures, each made to happen: every one must end with
# one clear line ("qosgate: error: ...", the last on stderr) and exit status
# 1 (or 2 for a config it refuses), never a crash, and leave nothing behind:
# no DPDK runtime directory, no hugepage file.  Virtual devices only
# (net_null, net_pcap); --no-huge, and once on hugepages when this machine
# can reserve them (the case that used to crash).
#
#   QOSGATE=/path/to/qosgate bash test/integration/e2e_startup_test.sh
# Needs root (DPDK); without it it skips (exit 77), except under CI=true.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/integration/lib.sh
source "$here/lib.sh"

qg_require_qosgate
qg_require_root
qg_init
qg_mktemp
dir=$QG_TMP
gen=${QOSBENCH_GEN:-$(dirname "$(dirname "$QOSGATE")")/tools/bench/qosbench-gen}
[[ -x $gen ]] || qg_die "no $gen (it writes the capture; set QOSBENCH_GEN)"
"$gen" pcap --flows 100 --frame-bytes 64 --packets 20000 --out "$dir/20k.pcap" >/dev/null ||
  qg_die "qosbench-gen pcap failed"

n=0
# fails NAME EXPECT_STATUS EXPECT_TEXT TOML_BODY [EAL ARGS...]: qosgate with
# [[pair]] net_null0/net_null1 unless the body names its own, and the given
# EAL args (with a file prefix of its own), its environment plus fail_env.
fail_env=()
fails() {
  local name=$1 want_rc=$2 want=$3 body=$4
  shift 4
  n=$((n + 1))
  local prefix=qg-start-$QG_ID-$n config=$dir/case$n.toml
  QG_DPDK_PREFIXES+=("$prefix")
  {
    printf '%s\n' "$body"
    grep -q '^\[\[pair\]\]' <<<"$body" || printf '[[pair]]\ninside = "net_null0"\noutside = "net_null1"\n'
  } >"$config"
  env "${fail_env[@]}" timeout 60 "$QOSGATE" --config "$config" -- --file-prefix="$prefix" "$@" \
    >"$dir/case$n.out" 2>"$dir/case$n.err"
  local rc=$? last
  last=$(tail -n 1 "$dir/case$n.err")
  local left=""
  [[ -e /var/run/dpdk/$prefix ]] && left+=" /var/run/dpdk/$prefix"
  compgen -G "/dev/hugepages/${prefix}*" >/dev/null && left+=" $(echo /dev/hugepages/"${prefix}"*)"
  if [[ $rc == "$want_rc" && $last == "qosgate: error: "*"$want"* && -z $left ]]; then
    qg_pass "$name: exit $rc; last line: ${last#qosgate: error: }"
  else
    qg_fail "$name: exit $rc (want $want_rc), left behind:${left:- nothing}; stderr ends:"
    tail -n 4 "$dir/case$n.err" | sed 's/^/  | /'
  fi
}

null2=(--vdev=net_null0 --vdev=net_null1)
nohuge=(--no-huge -m 512)

fails "EAL refuses an argument" 1 "EAL initialization failed" "" \
  "${nohuge[@]}" -l 0-1 --no-such-eal-option "${null2[@]}"
fails "one lcore, no worker" 1 "no worker lcore" "" "${nohuge[@]}" -l 0 "${null2[@]}"
fails "a port the EAL args do not make" 1 "no DPDK port named 'net_null7'" \
  $'[[pair]]\ninside = "net_null0"\noutside = "net_null7"' "${nohuge[@]}" -l 0-1 "${null2[@]}"
fails "mbufs fewer than the descriptors need" 1 "is too few" \
  $'[dataplane]\nmbufs = 2000' "${nohuge[@]}" -l 0-1 "${null2[@]}"
fails "an mbuf pool larger than EAL's memory" 1 "cannot create the mbuf pool" \
  $'[dataplane]\nmbufs = 1000000' "${nohuge[@]}" -l 0-1 "${null2[@]}"
fails "a flow table larger than EAL's memory" 1 "lower dataplane.max_flows" \
  $'[dataplane]\nmax_flows = 16777216' "${nohuge[@]}" -l 0-1 "${null2[@]}"
fails "more workers than a port has queues" 1 "workers need one each" \
  $'[[pair]]\ninside = "net_pcap0"\noutside = "net_null0"' \
  "${nohuge[@]}" --lcores=0@0,1@1,2@1 "--vdev=net_pcap0,rx_pcap=$dir/20k.pcap" --vdev=net_null0
fails "net_pcap infinite_rx over a capture larger than the pool" 1 \
  "set [dataplane] mbufs to at least 24672" \
  $'[[pair]]\ninside = "net_pcap0"\noutside = "net_null0"\n[dataplane]\nmbufs = 16383' \
  --no-huge -m 512 -l 0-1 "--vdev=net_pcap0,rx_pcap=$dir/20k.pcap,infinite_rx=1" --vdev=net_null0
# The steps no input can make fail, failed on purpose (appliance/runtime/startup_fault.h):
# the RCU variable, and the launch of the second of two workers (the first,
# already running, is stopped).
fail_env=(QOSGATE_FAIL_STEP=rcu)
fails "the RCU variable cannot be made" 1 "cannot create the RCU variable" "" \
  "${nohuge[@]}" -l 0-1 "${null2[@]}"
fail_env=(QOSGATE_FAIL_STEP=launch)
fails "a worker that cannot be launched" 1 "cannot launch the worker on lcore 2" "" \
  "${nohuge[@]}" --lcores=0@0,1@1,2@1 "${null2[@]}"
fail_env=()
busy_port=$(qg_free_port)
"$QG_PYTHON" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)' "$busy_port" &
QG_PIDS+=($!)
sleep 0.3
fails "a metrics port already in use" 1 "127.0.0.1:$busy_port" \
  "[metrics]"$'\n'"listen = \"127.0.0.1:$busy_port\"" "${nohuge[@]}" -l 0-1 "${null2[@]}"
fails "a config it refuses" 2 "case" $'[dataplane]\nmax_flows = "many"' "${nohuge[@]}" -l 0-1

# Hugepages: the case that crashed (SIGSEGV) when the pool was freed before
# the PMD gave its mbufs back.  Reserve some if there are none, and put the
# machine back as it was.
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [[ -w $hp ]]; then
  before=$(cat "$hp")
  mounted=0
  if ! mountpoint -q /dev/hugepages; then
    mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages && mounted=1
  fi
  ((before >= 512)) || echo 512 >"$hp"
  if (($(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages) >= 300)); then
    fails "on hugepages: net_pcap infinite_rx over a capture larger than the pool" 1 \
      "set [dataplane] mbufs to at least 24672" \
      $'[[pair]]\ninside = "net_pcap0"\noutside = "net_null0"\n[dataplane]\nmbufs = 16383' \
      -m 512 -l 0-1 "--vdev=net_pcap0,rx_pcap=$dir/20k.pcap,infinite_rx=1" --vdev=net_null0
  else
    qg_log "SKIP: no 300 free 2 MB hugepages to run on"
  fi
  echo "$before" >"$hp"
  ((mounted)) && umount /dev/hugepages
fi
qg_summary
