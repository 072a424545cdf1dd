#!/usr/bin/env bash
# One-second smoke run on net_null ports (DPDK's devtools/test-null.sh idea):
# qosgate forwards a flood, stops on SIGINT, returns every mbuf, and its
# counters balance.  Needs neither namespaces nor hugepages.
set -uo pipefail
QOSGATE="${QOSGATE:?path to qosgate}"
work="$(mktemp -d /tmp/qosgate-smoke.XXXXXX)"
pid=""
trap '[[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null; rm -rf "$work" "/var/run/dpdk/smoke-$$"' EXIT
cat >"$work/null.toml" <<TOML
[eal]
args = ["--no-huge", "-m", "256", "--no-pci", "-l", "0-1", "--file-prefix=smoke-$$",
        "--vdev=net_null0", "--vdev=net_null1", "--log-level=lib.eal:error"]
[[pair]]
inside = "net_null0"
outside = "net_null1"
[dataplane]
max_flows = 4096
TOML
"$QOSGATE" --config "$work/null.toml" >"$work/out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "forwarding:" "$work/out" && break; sleep 0.05; done
sleep 1
kill -INT "$pid"
wait "$pid"
rc=$?
pid=""
cat "$work/out"
[[ $rc == 0 ]] || { echo "FAIL: exit $rc"; exit 1; }
grep -q "mbufs in use after stop: 0 of" "$work/out" || { echo "FAIL: mbufs leaked"; exit 1; }
grep -q "CONSERVATION VIOLATED" "$work/out" && { echo "FAIL: counters do not balance"; exit 1; }
rx="$(awk '$2 == "net_null0" { print $4 }' "$work/out")"
[[ -n "$rx" && "$rx" -gt 0 ]] || { echo "FAIL: nothing forwarded"; exit 1; }
echo "PASS: $rx frames forwarded from net_null0, no leak, counters balance"
